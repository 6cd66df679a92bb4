"""The whoosh index: incremental updates, rebuild, searching while writing, writers in several processes."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from search.analyzer import QueryError
from search.index import DirectoryIndex, open_index
from search.records import DepartmentInfo, DirectoryRecord

DEPTS = [
    DepartmentInfo(id=1, name="衢州市应急管理局", path="衢州市应急管理局", aliases=["市应急局"], region="市级", rank=0),
    DepartmentInfo(id=2, name="办公室", path="衢州市应急管理局/办公室", parent_id=1, region="市级", rank=1),
]


def person(i: int, name: str, dept: int = 2, **kw: object) -> DirectoryRecord:
    return DirectoryRecord(id=i, name=name, department_id=dept, department="办公室", **kw)  # type: ignore[arg-type]


def fresh(tmp_path: Path) -> DirectoryIndex:
    ix = open_index(tmp_path / "ix")
    ix.set_departments(DEPTS)
    return ix


def test_incremental_upsert_delete_and_rebuild(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    ix.upsert([person(1, "张伟", position="科长"), person(2, "李娜", office_phone="0570-3012345")])
    assert ix.search("张伟").items[0]["id"] == 1
    ix.upsert([person(1, "张卫", position="科长")])  # replaces, never duplicates
    assert ix.search("zw").total == 1 and ix.search("张伟").items[0]["name"] == "张卫"  # homophone still finds
    assert ix.search("2345").items[0]["name"] == "李娜"
    ix.delete([2])
    assert ix.search("2345").total == 0
    assert ix.search("市应急局").total == 1  # department alias reaches people in sub-departments
    assert ix.rebuild([person(5, "王强"), person(6, "王芳")]) == 2
    assert ix.search("张卫").total == 0 and ix.search("王").total == 2 and ix.doc_count() == 2


def test_staff_only_entries_and_private_numbers(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    ix.upsert([person(1, "张伟", mobile="13912346688", short_number="661234"), person(2, "内部", visibility="staff")])
    assert ix.search("6688", privileged=False).total == 0
    assert ix.search("661234", privileged=False).total == 0
    hit = ix.search("6688", privileged=True).items[0]
    assert hit["highlights"] == {"mobile": "1391234<em>6688</em>"}
    assert ix.search("内部", privileged=False).total == 0 and ix.search("内部", privileged=True).total == 1
    public = ix.search("张伟", privileged=False).items[0]
    assert "mobile" not in public and "short_number" not in public


def test_bad_queries(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    ix.upsert([person(1, "张伟")])
    for query in ("AND (", "*", "？！", "OR", "a:b", "((("):
        assert ix.search(query).total == 0
    for query, code in (("", "query_empty"), ("张" * 500, "query_too_long")):
        try:
            ix.search(query)
        except QueryError as exc:
            assert exc.code == code
        else:
            raise AssertionError(query)


def test_searches_keep_working_while_the_index_is_written(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    ix.upsert([person(1, "张伟")])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                assert ix.search("张伟").total == 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    for batch in range(10):
        ix.upsert([person(100 + batch * 10 + k, f"李{batch}{k}") for k in range(10)])
    ix.rebuild([person(1, "张伟"), *(person(200 + k, f"王{k}") for k in range(50))])
    stop.set()
    thread.join()
    assert errors == []
    assert ix.search("王").total == 50


def _write_many(path: str, start: int) -> None:
    ix = DirectoryIndex(Path(path))
    for k in range(15):
        ix.upsert([person(start + k, f"赵{start + k}")])


def test_writers_in_several_processes(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(ix.path), start)) for start in (1000, 2000, 3000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert ix.search("赵").total == 45  # every write landed, none corrupted another
    assert ix.doc_count() == 45


def test_parallel_rebuild_gives_the_same_answers(tmp_path: Path) -> None:
    ix = fresh(tmp_path)
    records = [person(i, f"{'张李王'[i % 3]}{i}", position="科长" if i % 2 else "科员") for i in range(1, 301)]
    assert ix.rebuild(records, procs=2) == 300
    assert ix.doc_count() == 300
    assert ix.search("科长").total == 150 and ix.search("张").total == 100
    ix.upsert([person(1, "赵一")])  # incremental writes still work on a multi-segment index
    assert ix.search("赵一").total == 1 and ix.search("李").total == 99  # id 1 was 李1


def test_an_index_that_was_never_written_answers_empty(tmp_path: Path) -> None:
    """A new node's fresh data dir: every kind of query finds nothing, none fails."""
    ix = DirectoryIndex(tmp_path / "new")
    for query in ("张伟", "zw", "张w", "6688", "经信局", "秘书科科长", "规化科"):
        assert ix.search(query).total == 0
    assert ix.search("", department="办公室").total == 0
