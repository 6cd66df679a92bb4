"""Directory commands as a user runs them, and the demo seeder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from contacts.directory import search_directory
from contacts.models import Contact
from govconnect.demo.directory import DEMO_CONTACTS, seed_directory
from govconnect.demo.seed import DemoInfo
from govconnect.settings import Settings
from tests.contacts.sample import HEADER_ZH
from tests.govconnect.test_cli import cli_env, run  # noqa: F401 - cli_env is a fixture

__all__ = ["cli_env"]


def test_import_export_rebuild_and_demo_data(cli_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    demo = tmp_path / "demo.csv"
    assert "wrote 40" in run(["demo-data", "contacts", "--count", "40", "--out", str(demo)], cli_env).stdout
    ok = run(["contacts", "import", str(demo)], cli_env)
    assert "40 created" in ok.stdout and "0 failed" in ok.stdout
    bad = tmp_path / "bad.csv"
    rows = [
        HEADER_ZH,
        "好人,衢州市财政局,科员,0570-3051234,,,,市级,公开,k1",
        "坏人,衢州市财政局,科员,,123,,,市级,公开,k2",
    ]
    bad.write_bytes("\n".join(rows).encode("gb18030"))
    failed = run(["contacts", "import", str(bad)], cli_env, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "line 3" in failed.stderr and "mobile" in failed.stderr
    assert "1 created" in failed.stdout and "1 failed" in failed.stdout
    missing = run(["contacts", "import", str(tmp_path / "nope.csv")], cli_env, check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    out = tmp_path / "export.csv"
    run(["contacts", "export", "--out", str(out), "--chinese"], cli_env)
    exported = out.read_bytes()
    assert exported.startswith(b"\xef\xbb\xbf" + "姓名,部门".encode()) and exported.count(b"\n") == 42
    assert "indexed 41 contacts" in run(["index", "rebuild"], cli_env).stdout
    data_dir = Path(cli_env["GOVCONNECT_DATA_DIR"])
    assert search_directory(data_dir, "好人", privileged=False).items[0]["department_path"] == "衢州市财政局"


def test_demo_seeder_is_quick_and_searchable(engine: Engine, settings: Settings) -> None:
    info = DemoInfo("qz-demo", "key", "demo", "pw")
    seed_directory(engine, settings, info)
    result = search_directory(settings.data_dir, "应急局", privileged=True)
    assert result.total > 100 and result.items[0]["department_path"].startswith("衢州市应急管理局")
    assert search_directory(settings.data_dir, "", region="开化县", privileged=True).total > 100
    seed_directory(engine, settings, info)  # a second start adds nothing
    with Session(engine) as session:
        assert len(session.exec(select(Contact.id)).all()) == DEMO_CONTACTS
    assert "通讯录" in info.notes[0]
