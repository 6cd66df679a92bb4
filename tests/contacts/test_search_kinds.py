"""Issue 15's kinds of query, on both databases: short names, glued words, fallbacks, polyphonic
given names, namesakes and ranks; alone (25 people) and hidden among generated contacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from contacts.demo_data import department_plan, generate
from contacts.directory import directory_index, search_directory
from contacts.importer import import_file
from contacts.models import Contact
from contacts.service import ensure_department, get_or_create_region, rebuild_index
from tests.contacts.kinds_sample import AMONG_GENERATED, RELEVANCE, ROWS, csv_text


def _load(session: Session, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    source = tmp_path / "kinds.csv"
    source.write_text(csv_text(), encoding="utf-8")
    report = import_file(session, directory_index(data_dir), source)
    assert (report.created, report.failed) == (len(ROWS), [])
    return data_dir


def _add_generated(session: Session, count: int) -> None:
    depts = {}
    for path, region, aliases in department_plan():
        dept = ensure_department(session, path, get_or_create_region(session, region))
        dept.aliases = aliases
        depts[path] = dept
    session.commit()
    regions = {r: get_or_create_region(session, r) for r in {row["region"] for row in generate(200)}}
    rows = list(generate(count, seed=15))
    values = [
        {
            "name": r["name"],
            "department_id": depts[r["department"]].id,
            "position": r["position"],
            "office_phone": r["office_phone"],
            "region_id": regions[r["region"]].id if r["region"] in regions else None,  # type: ignore[union-attr]
            "visibility": r["visibility"],
            "sort_order": 0,
        }
        for r in rows
    ]
    session.execute(insert(Contact), values)
    session.commit()


def _check(data_dir: Path, cases: list[tuple[str, str, str | None, str | None, str | None]]) -> list[object]:
    wrong: list[object] = []
    for kind, query, public_top, staff_top, region in cases:
        for privileged, expected in ((False, public_top), (True, staff_top)):
            result = search_directory(data_dir, query, privileged=privileged)
            top = result.items[0] if result.items else None
            got = top["name"] if top else None
            if got != expected or (region and top and top["region"] != region):
                names = [(i["name"], i["region"], i["position"]) for i in result.items[:4]]
                wrong.append((kind, query, privileged, expected, region, names, result.fallback))
    return wrong


def test_kinds_of_query_find_the_right_person_first(session: Session, tmp_path: Path) -> None:
    """Every kind of query, public and privileged callers, on the 25-person directory."""
    data_dir = _load(session, tmp_path)
    assert _check(data_dir, RELEVANCE) == []


def test_kinds_of_query_among_generated_contacts(session: Session, tmp_path: Path) -> None:
    """The same people hidden among 2,000 generated contacts are still found first."""
    data_dir = _load(session, tmp_path)
    _add_generated(session, 2000)
    assert rebuild_index(session, directory_index(data_dir)) == 2000 + len(ROWS)
    cases = [case for case in RELEVANCE if case[1] in AMONG_GENERATED]
    assert len(cases) == len(AMONG_GENERATED)
    assert _check(data_dir, cases) == []


@pytest.fixture
def kinds(session: Session, tmp_path: Path) -> Path:
    return _load(session, tmp_path)


def test_fallbacks_are_said_and_rank_below_exact_matches(kinds: Path) -> None:
    exact = search_directory(kinds, "秘书科科长", privileged=False)
    assert exact.fallback is None and [i["name"] for i in exact.items] == ["秦岭"]
    fewer = search_directory(kinds, "秦岭 局长", privileged=False)
    assert fewer.fallback == "fewer_terms" and fewer.tokens == ["秦岭"] and fewer.total == 1
    sounds = search_directory(kinds, "规化科", privileged=False)
    assert sounds.fallback == "homophones"
    assert [i["name"] for i in sounds.items] == ["韩梅", "王建军"]  # the 科长, then staff
    assert sounds.items[0]["highlights"]["department_path"].endswith("<em>规划科</em>")
    # Nothing matches and nothing sounds alike: empty, and no fallback claimed.
    nothing = search_directory(kinds, "张威", privileged=False)
    assert nothing.total == 0 and nothing.fallback is None


def test_polyphonic_given_names_rank_the_usual_reading_first(kinds: Path) -> None:
    assert [i["name"] for i in search_directory(kinds, "zengyue", privileged=False).items] == ["曾月", "曾乐"]
    assert [i["name"] for i in search_directory(kinds, "zengle", privileged=False).items] == ["曾乐"]
    assert [i["name"] for i in search_directory(kinds, "zy", privileged=False).items][:2] == ["曾月", "曾乐"]
    assert search_directory(kinds, "shanxiaozeng", privileged=False).items[0]["highlights"]["name"] == (
        "<em>单晓曾</em>"
    )


def test_ranks_局长_before_副局长_and_leaders_before_staff(kinds: Path) -> None:
    names = [(i["name"], i["position"]) for i in search_directory(kinds, "经信局", privileged=False).items]
    assert names == [("周建国", "局长"), ("吴海燕", "副局长"), ("孔明", "办公室主任"), ("郑晓东", "科员")]
    chiefs = [(i["name"], i["position"]) for i in search_directory(kinds, "局长", privileged=False).items]
    assert [p for _n, p in chiefs].index("副局长") > [p for _n, p in chiefs].index("局长")
    assert all(p == "局长" for _n, p in chiefs[:5]) and {p for _n, p in chiefs} == {"局长", "副局长"}


@pytest.mark.parametrize(
    "query",
    ["经信局*", "秘书科科长 AND (", "规化科 OR", "应机局" * 20, "曾y*", "局局局局", "市", "zengyue 经信局 6688 ☃"],
)
def test_odd_queries_on_the_new_paths_never_fail(kinds: Path, query: str) -> None:
    for privileged in (False, True):
        result = search_directory(kinds, query, privileged=privileged)
        assert result.total >= len(result.items) >= 0
