"""Subscriber import (CLI, as a user runs it) and the demo seed of categories and subscribers."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from govconnect.citizens.models import Subscriber, SubscriberCategory, SubscriberRegion
from govconnect.demo.notices import seed_notice_demo
from govconnect.demo.seed import DemoInfo
from govconnect.notices.models import Category
from govconnect.settings import Settings
from tests.factories import make_categories
from tests.govconnect.test_cli import cli_env, run  # noqa: F401 - fixture reuse


def test_subscribers_import_cli(cli_env: dict[str, str], session: Session, tmp_path: Path) -> None:  # noqa: F811
    make_categories(session)
    path = tmp_path / "subs.csv"
    path.write_text(
        "phone,openid,name,categories,regions,channels\n"
        "13800000001,oid-1,张三,yjyj;sbyl,江山市,sms;wechat\n"
        "+86 138-0000-0002,,李四,yjyj,,sms\n"
        "12345,,坏号码,yjyj,,sms\n"
        "13800000003,,王五,nope,,sms\n",
        encoding="utf-8",
    )
    out = run(["subscribers", "import", str(path)], cli_env, check=False)
    assert out.returncode == 1  # bad rows: non-zero, like `contacts import`; the good rows are kept
    assert "created 2" in out.stdout and "errors 2" in out.stdout
    assert "13800000001" not in out.stderr  # errors name lines, not people
    again = run(["subscribers", "import", str(path)], cli_env, check=False)
    assert "created 0, updated 2" in again.stdout
    session.expire_all()
    subs = {s.phone: s for s in session.exec(select(Subscriber)).all()}
    assert set(subs) == {"13800000001", "13800000002"}
    cats = session.exec(
        select(SubscriberCategory).where(SubscriberCategory.subscriber_id == subs["13800000001"].id)
    ).all()
    assert {c.category for c in cats} == {"yjyj", "sbyl"}
    assert len(session.exec(select(SubscriberRegion)).all()) == 1
    missing = run(["subscribers", "import", str(tmp_path / "nope.csv")], cli_env, check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_demo_seed_is_idempotent(engine, settings: Settings, session: Session) -> None:  # type: ignore[no-untyped-def]
    info = DemoInfo("qz-demo", "k", "demo", "pw")
    seed_notice_demo(engine, settings, info)
    seed_notice_demo(engine, settings, info)
    names = {c.name for c in session.exec(select(Category)).all()}
    assert names == {"政务公开", "应急预警", "交通出行", "社保医疗", "教育", "政策解读"}
    assert len(session.exec(select(Subscriber)).all()) == 300
    assert any("flood" in note for note in info.notes)


def test_an_import_leaves_planner_statistics_for_the_next_broadcast(session: Session) -> None:
    from sqlalchemy import text

    from govconnect.citizens.importer import import_subscribers

    make_categories(session)
    rows = "".join(f"1390000{i:04d},,市民{i},yjyj,,sms\n" for i in range(300))
    report = import_subscribers(session, "phone,openid,name,categories,regions,channels\n" + rows)
    assert report.created == 300
    if session.get_bind().dialect.name == "postgresql":
        counted = session.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'subscriber'")).scalar_one()
    else:
        stat = session.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'subscriber' LIMIT 1")).scalar_one()
        counted = int(str(stat).split()[0])
    assert counted == 300
