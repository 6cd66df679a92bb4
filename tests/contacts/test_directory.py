"""Directory on both databases: import (CSV/XLSX, encodings, headers), bad rows, re-import, relevance, index sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from contacts import crud
from contacts.directory import directory_index, search_directory
from contacts.importer import ImportFileError, export_rows, import_file
from contacts.models import Contact, Department
from contacts.service import rebuild_index
from tests.contacts.sample import HEADER_EN, HEADER_ZH, RELEVANCE, ROWS, csv_text


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def loaded(session: Session, tmp_path: Path) -> Path:
    """The sample directory imported into the database and the index; returns DATA_DIR."""
    data_dir = tmp_path / "data"
    report = import_file(session, directory_index(data_dir), write(tmp_path, "s.csv", csv_text().encode()))
    assert (report.created, report.updated, report.failed) == (len(ROWS), 0, [])
    return data_dir


def test_relevance_table(loaded: Path) -> None:
    """Every way of finding people finds the right one first (public and privileged callers)."""
    wrong = []
    for query, public_top, staff_top in RELEVANCE:
        for privileged, expected in ((False, public_top), (True, staff_top)):
            result = search_directory(loaded, query, privileged=privileged)
            top = result.items[0]["name"] if result.items else None
            if top != expected:
                wrong.append((query, privileged, expected, [i["name"] for i in result.items]))
            assert result.total >= len(result.items)
    assert wrong == []


def test_highlights_and_ranking_order(loaded: Path) -> None:
    result = search_directory(loaded, "张伟", privileged=False)
    names = [i["name"] for i in result.items]
    assert names[:2] == ["张伟", "张伟明"]  # exact, then prefix
    assert result.items[0]["highlights"]["name"] == "<em>张伟</em>"
    assert result.items[1]["highlights"]["name"] == "<em>张伟</em>明"
    # A key spelling the whole name ranks above one that only starts it; ties follow department order.
    assert [i["name"] for i in search_directory(loaded, "zhangwei", privileged=False).items] == [
        "张伟",
        "章薇",
        "张伟明",
    ]
    assert [i["name"] for i in search_directory(loaded, "zw", privileged=False).items] == ["张伟", "章薇", "张伟明"]
    combo = search_directory(loaded, "江山 应急 局长", privileged=False).items[0]["highlights"]
    assert combo["position"] == "<em>局长</em>" and "<em>应急</em>" in combo["department_path"]


def test_privacy_public_never_sees_private_numbers(loaded: Path) -> None:
    for query in ("张伟", "6688", "市府办", "zw", "办公室主任"):
        for item in search_directory(loaded, query, privileged=False).items:
            assert not {"mobile", "short_number", "email"} & set(item), item
            assert item["visibility"] == "public"
            assert "13912346688" not in str(item) and "661234" not in str(item)
    assert [i["name"] for i in search_directory(loaded, "6688", privileged=True).items] == ["赵敏", "张伟"]
    # The mobile tail matches only for staff, and the highlight shows where.
    assert search_directory(loaded, "13912346688", privileged=False).total == 0
    staff = search_directory(loaded, "13912346688", privileged=True)
    assert staff.items[0]["highlights"]["mobile"] == "<em>13912346688</em>"
    assert search_directory(loaded, "王芳", privileged=False).total == 0
    assert search_directory(loaded, "王芳", privileged=True).items[0]["mobile"] == "13800005555"


def test_department_filter_includes_subdepartments(loaded: Path) -> None:
    names = {i["name"] for i in search_directory(loaded, "", department="江山市应急管理局", privileged=False).items}
    assert names == {"曾小明", "单丽", "李强"}
    assert {i["name"] for i in search_directory(loaded, "局长", department="江山应急局", privileged=False).items} == {
        "曾小明"
    }
    assert search_directory(loaded, "科长", region="柯城", privileged=False).items[0]["name"] == "解放"
    assert search_directory(loaded, "", department="不存在的部门", privileged=False).total == 0


@pytest.mark.parametrize("query", ["", "   ", "张" * 500, "AND (", "*", "？？！！", "OR NOT", "name:张伟", "\x00", "1"])
def test_bad_queries_never_fail(loaded: Path, query: str) -> None:
    from search.analyzer import QueryError

    try:
        result = search_directory(loaded, query, privileged=False)
    except QueryError as exc:
        assert exc.code in ("query_empty", "query_too_long")
    else:
        assert result.total >= 0


def test_import_chinese_header_bom_and_gb18030(session: Session, tmp_path: Path) -> None:
    ix = directory_index(tmp_path / "data")
    bom = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + csv_text(chinese=True).encode("utf-8"))
    report = import_file(session, ix, bom)
    assert (report.created, report.failed) == (len(ROWS), [])
    gbk = write(tmp_path, "gb.csv", csv_text(chinese=True).encode("gb18030"))
    again = import_file(session, ix, gbk)
    assert (again.created, again.updated, again.failed) == (0, len(ROWS), [])
    assert len(session.exec(select(Contact)).all()) == len(ROWS)
    assert session.exec(select(Department).where(Department.path == "衢州市人民政府办公室/秘书一处")).one()


def test_import_xlsx(session: Session, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER_ZH.split(","))
    sheet.append(["陈静", "衢州市财政局/预算科", "科长", "0570-3051234", 13511112222, "", "", "市级", "公开", "x1"])
    path = tmp_path / "d.xlsx"
    book.save(path)
    report = import_file(session, directory_index(tmp_path / "data"), path)
    assert (report.created, report.failed) == (1, [])
    assert session.exec(select(Contact)).one().mobile == "13511112222"
    assert search_directory(tmp_path / "data", "cj", privileged=False).items[0]["name"] == "陈静"


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(session: Session, tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER_EN,
            "好人,衢州市财政局,科员,0570-3051234,13511112222,,,市级,public,g1",
            "坏手机,衢州市财政局,科员,0570-3051235,12345,,,市级,public,b1",
            ",衢州市财政局,科员,0570-3051236,,,,市级,public,b2",
            "坏座机,衢州市财政局,科员,12-34,,,,市级,public,b3",
            "坏范围,衢州市财政局,科员,,,,,市级,everyone,b4",
            "另一个好人,衢州市财政局/预算科,科长,,,,,市级,staff,g2",
        ]
    )
    report = import_file(session, directory_index(tmp_path / "data"), write(tmp_path, "bad.csv", text.encode()))
    assert report.created == 2
    assert [line for line, _ in report.failed] == [3, 4, 5, 6]
    reasons = dict(report.failed)
    assert "手机" in reasons[3] and "mobile" in reasons[3]
    assert "name" in reasons[4]
    assert "office phone" in reasons[5]
    assert "visibility" in reasons[6]
    assert {c.name for c in session.exec(select(Contact)).all()} == {"好人", "另一个好人"}


def test_reimport_updates_by_external_id_then_by_name_and_department(session: Session, tmp_path: Path) -> None:
    ix = directory_index(tmp_path / "data")
    first = "\n".join([HEADER_EN, "甲,衢州市财政局,科员,,,,,市级,public,e1", "乙,衢州市财政局,科员,,,,,市级,public,"])
    import_file(session, ix, write(tmp_path, "a.csv", first.encode()))
    second = "\n".join(
        [HEADER_EN, "甲甲,衢州市财政局,科长,,,,,市级,public,e1", "乙,衢州市财政局,副科长,,,,,市级,public,"]
    )
    report = import_file(session, ix, write(tmp_path, "b.csv", second.encode()))
    assert (report.created, report.updated) == (0, 2)
    rows = {c.name: c.position for c in session.exec(select(Contact)).all()}
    assert rows == {"甲甲": "科长", "乙": "副科长"}
    assert search_directory(tmp_path / "data", "甲甲", privileged=False).items[0]["position"] == "科长"
    assert search_directory(tmp_path / "data", "甲", privileged=False).total == 1  # the old name is gone


def test_dingtalk_userid_column_imports_checks_and_exports(session: Session, tmp_path: Path) -> None:
    text = "\n".join(
        [
            f"{HEADER_ZH},钉钉ID",
            "甲,衢州市应急管理局,科员,,,,,市级,public,d1,manager4521",
            "乙,衢州市应急管理局,科员,,,,,市级,public,d2,",
            "丙,衢州市应急管理局,科员,,,,,市级,public,d3,有 空格",
        ]
    )
    report = import_file(session, None, write(tmp_path, "d.csv", text.encode()))
    assert report.created == 2 and [line for line, _ in report.failed] == [4]
    assert "钉钉ID" in report.failed[0][1] and "DingTalk" in report.failed[0][1]
    found = {c.name: c.dingtalk_userid for c in session.exec(select(Contact)).all()}
    assert found == {"甲": "manager4521", "乙": ""}
    rows = list(export_rows(session))
    assert rows[0][-1] == "dingtalk_userid" and [r[-1] for r in rows[1:]] == ["manager4521", ""]
    # A file without the column leaves the ids as they are.
    import_file(
        session, None, write(tmp_path, "e.csv", f"{HEADER_ZH}\n甲,衢州市应急管理局,科长,,,,,市级,public,d1".encode())
    )
    assert session.exec(select(Contact).where(Contact.name == "甲")).one().dingtalk_userid == "manager4521"


def test_unreadable_files(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError):
        import_file(session, None, write(tmp_path, "x.csv", b"foo,bar\n1,2\n"))
    with pytest.raises(ImportFileError):
        import_file(session, None, write(tmp_path, "e.csv", b""))
    with pytest.raises(ImportFileError):
        import_file(session, None, write(tmp_path, "x.xlsx", b"not a workbook"))


def test_export_round_trip(session: Session, loaded: Path, tmp_path: Path) -> None:
    import csv

    rows = list(export_rows(session, chinese=True))
    assert rows[0] == [*HEADER_ZH.split(","), "钉钉ID"]
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)
    report = import_file(session, directory_index(loaded), path)
    assert (report.created, report.updated, report.failed) == (0, len(ROWS), [])


def test_index_follows_crud_and_rebuild(session: Session, loaded: Path, engine: Engine) -> None:
    ix = directory_index(loaded)
    contact = crud.create_contact(
        session, ix, {"name": "钱多多", "department": "衢州市财政局/国库科", "position": "科长", "region": "市级"}
    )
    assert search_directory(loaded, "qdd", privileged=False).items[0]["name"] == "钱多多"
    crud.update_contact(session, ix, contact, {"name": "钱少少"})
    assert search_directory(loaded, "qdd", privileged=False).total == 0
    assert search_directory(loaded, "钱少少", privileged=False).total == 1
    # Renaming a department re-indexes the people below it.
    dept = session.exec(select(Department).where(Department.path == "衢州市财政局")).one()
    crud.update_department(session, ix, dept, {"name": "衢州市财政局（国资委）", "aliases": ["财政局"]})
    found = search_directory(loaded, "财政局", privileged=False).items
    assert found[0]["department_path"] == "衢州市财政局（国资委）/国库科"
    crud.delete_contact(session, ix, contact)
    assert search_directory(loaded, "钱少少", privileged=False).total == 0
    # A rebuild from the database gives the same answers.
    with Session(engine) as other:
        assert rebuild_index(other, ix) == len(ROWS)
    assert search_directory(loaded, "zxm", privileged=False).items[0]["name"] == "曾小明"
    assert ix.doc_count() == len(ROWS)
