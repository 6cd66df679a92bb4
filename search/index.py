"""The whoosh index of the directory: writes (incremental, locked, retried) and the searcher cache."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from whoosh import columns, fields, index, writing
from whoosh.analysis import SpaceSeparatedTokenizer
from whoosh.formats import Existence
from whoosh.index import LockError

from search.analyzer import Segmenter, normalize, stable_hash
from search.records import (
    PUBLIC_VISIBILITY,
    DepartmentInfo,
    DirectoryRecord,
    leadership_rank,
    name_hashes,
    phone_number,
    record_terms,
)

log = logging.getLogger("search.index")

INDEX_NAME = "directory"
TERM_FIELDS = ("name_part", "sur_py", "given_py", "given_alt", "pos", "area")
NAME_COLUMNS = ("name_h0", "name_h1", "name_h2", "name_h3")
NUMERIC_COLUMNS = (
    "dept_id",
    "sort_order",
    "cid",
    "staff_only",
    "office",
    "mobile",
    "short",
    "lead",
    "pos_h",
    *NAME_COLUMNS,
)
DEPARTMENTS_FILE = "departments.json"
APPLIED_FILE = "applied_change.json"
WRITE_TIMEOUT_S = 60.0


class _TermsField(fields.FieldType):
    """Pre-analysed terms separated by spaces; existence only (we rank ourselves, not by BM25)."""

    def __init__(self) -> None:
        super().__init__(Existence(), SpaceSeparatedTokenizer(), scorable=False, stored=False)  # type: ignore[arg-type]


def build_schema() -> fields.Schema:
    """The index schema: one id, term fields, stored display JSON and numeric ranking columns."""
    schema: dict[str, Any] = {name: _TermsField() for name in TERM_FIELDS}
    schema["id"] = fields.ID(unique=True, stored=True)
    schema["data"] = fields.STORED()
    for name in NUMERIC_COLUMNS:
        schema[name] = fields.COLUMN(columns.NumericColumn("q", default=0))
    return fields.Schema(**schema)


def _atomic_write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


class DirectoryIndex:
    """A directory index in one folder; safe for many readers and writers across processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.segmenter = Segmenter()
        self._open_lock = threading.Lock()
        if index.exists_in(str(self.path), indexname=INDEX_NAME):
            self._ix = index.open_dir(str(self.path), indexname=INDEX_NAME)
            if set(self._ix.schema.names()) != set(build_schema().names()):
                # An index from an older GovConnect: start empty; `govconnect index rebuild` refills it.
                log.warning("directory index schema changed; recreating %s", self.path)
                self._ix = index.create_in(str(self.path), build_schema(), indexname=INDEX_NAME)
        else:
            try:
                self._ix = index.create_in(str(self.path), build_schema(), indexname=INDEX_NAME)
            except Exception:  # noqa: BLE001 - another process created it first
                self._ix = index.open_dir(str(self.path), indexname=INDEX_NAME)
        from search.snapshot import SnapshotCache  # local: snapshot imports this module

        self.snapshots = SnapshotCache(self)

    # --- departments: a small table beside the index (names, aliases, tree, order) ---

    def set_departments(self, departments: Iterable[DepartmentInfo]) -> None:
        """Store the department table; searches pick it up (and its words for jieba) on their next call.

        Unchanged tables are not rewritten: a new file makes every search process rebuild its table."""
        value = [asdict(d) for d in departments]
        path = self.path / DEPARTMENTS_FILE
        try:
            if json.loads(path.read_text(encoding="utf-8")) == value:
                return
        except (FileNotFoundError, ValueError):
            pass
        _atomic_write_json(path, value)

    def departments(self) -> tuple[float, list[DepartmentInfo]]:
        """(mtime, departments) as last stored."""
        path = self.path / DEPARTMENTS_FILE
        try:
            mtime = path.stat().st_mtime_ns
            return mtime, [DepartmentInfo(**d) for d in json.loads(path.read_text(encoding="utf-8"))]
        except FileNotFoundError:
            return 0, []

    def departments_mtime(self) -> float:
        """When the department table last changed (0 when never written)."""
        try:
            return (self.path / DEPARTMENTS_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    # --- which change of the database's log this index reflects (kept by contacts.index_sync) ---

    def applied_change(self) -> int | None:
        """The last change id applied to this index, None when never recorded (a fresh folder)."""
        try:
            return int(json.loads((self.path / APPLIED_FILE).read_text(encoding="utf-8"))["applied"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def set_applied_change(self, change_id: int) -> None:
        """Record the last change id applied (written atomically; only changes are written)."""
        if self.applied_change() != change_id:
            _atomic_write_json(self.path / APPLIED_FILE, {"applied": int(change_id)})

    # --- writing ---

    @contextmanager
    def writer(self, clear: bool = False, procs: int = 1) -> Iterator[writing.IndexWriter]:
        """A locked writer; waits for other writers (other processes too) up to WRITE_TIMEOUT_S."""
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        extra: dict[str, Any] = {}
        if procs > 1:
            # Sub-processes each write their own segment (no final merge); spawn, as we may have threads.
            extra = {"procs": procs, "multisegment": True, "start_method": "spawn", "batchsize": 500}
        while True:
            try:
                w = self._ix.writer(timeout=2.0, delay=0.05, limitmb=256, **extra)
                break
            except LockError:
                if time.monotonic() > deadline:
                    raise
        try:
            yield w
        except BaseException:
            w.cancel()
            raise
        else:
            # CLEAR drops the old segments when this commit lands; readers keep the old generation.
            w.commit(mergetype=writing.CLEAR) if clear else w.commit()

    def _document(self, record: DirectoryRecord) -> dict[str, Any]:
        terms = record_terms(record, self.segmenter)
        doc: dict[str, Any] = {name: " ".join(values) for name, values in terms.items() if values}
        doc["id"] = str(record.id)
        doc["data"] = json.dumps(record.display(), ensure_ascii=False)
        doc["dept_id"] = record.department_id
        doc["sort_order"] = max(0, min(record.sort_order, 4095))
        doc["cid"] = record.id
        doc["staff_only"] = int(record.visibility != PUBLIC_VISIBILITY)
        doc["office"] = phone_number(record.office_phone)
        doc["mobile"] = phone_number(record.mobile)
        doc["short"] = phone_number(record.short_number)
        doc["lead"] = leadership_rank(record.position)
        doc["pos_h"] = stable_hash(normalize(record.position).replace(" ", ""))
        doc.update(name_hashes(record.name))
        return doc

    def upsert(self, records: Iterable[DirectoryRecord]) -> int:
        """Add or replace records (one commit for the batch)."""
        records = list(records)
        if not records:
            return 0
        with self.writer() as w:
            for record in records:
                w.update_document(**self._document(record))
        self.snapshots.invalidate()
        return len(records)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove records by contact id."""
        ids = list(ids)
        if not ids:
            return
        with self.writer() as w:
            for cid in ids:
                w.delete_by_term("id", str(cid))
        self.snapshots.invalidate()

    def rebuild(self, records: Iterable[DirectoryRecord], procs: int = 1) -> int:
        """Replace the whole index in one commit; searches see the old data until it lands.

        `procs` > 1 spreads the whoosh indexing over sub-processes (worth it from tens of thousands).
        They are spawned, so a script calling this must guard its entry point with
        `if __name__ == "__main__":` (the CLI and the bench do)."""
        count = 0
        with self.writer(clear=True, procs=procs) as w:
            for record in records:
                w.add_document(**self._document(record))
                count += 1
        self.snapshots.invalidate()
        return count

    def doc_count(self) -> int:
        """Live documents in the index."""
        with self._ix.refresh().searcher() as searcher:
            return int(searcher.doc_count())

    def latest_generation(self) -> int:
        """The newest committed generation on disk (cheap: lists the folder)."""
        return int(self._ix.latest_generation())

    def open_searcher(self) -> Any:
        """A whoosh searcher on the latest generation."""
        with self._open_lock:
            self._ix = self._ix.refresh()  # type: ignore[assignment]
            return self._ix.searcher()

    def search(self, query: str, **kwargs: Any) -> Any:
        """Search (see `search.engine.search`)."""
        from search.engine import search

        return search(self, query, **kwargs)


_INDEXES: dict[str, DirectoryIndex] = {}
_INDEXES_LOCK = threading.Lock()


def open_index(path: Path) -> DirectoryIndex:
    """The process-wide DirectoryIndex for a folder (its searcher cache is shared)."""
    key = str(Path(path).resolve())
    with _INDEXES_LOCK:
        found = _INDEXES.get(key)
        if found is None:
            found = _INDEXES[key] = DirectoryIndex(Path(key))
        return found


def normalized_path(path: str) -> str:
    """A department path as the filter terms store it."""
    return normalize(path).replace(" ", "_")
