"""What searches read: one open whoosh searcher per index generation, with per-segment data as numpy arrays.

Segments are immutable, so posting lists decoded once (block by block) and numeric columns stay valid
until whoosh merges the segment away; a new generation reuses them and only recomputes the
deletion mask and the tie-break keys.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from whoosh.reading import TermNotFound

from search.abbreviations import department_words as abbreviation_words
from search.abbreviations import is_abbreviation, split_unit
from search.analyzer import CITY, Segmenter, derived_aliases, normalize, pinyin_full, region_short
from search.index import NAME_COLUMNS, NUMERIC_COLUMNS
from search.records import DepartmentInfo, department_words
from search.sorted_columns import PhoneTails, SortedColumn

if TYPE_CHECKING:
    from search.index import DirectoryIndex

POSTINGS_CACHE_TERMS = 20_000
# A result's sort key, most significant first: band 2 bits, score 5, leadership 3, department order
# 12, sort order 11, contact id 30 (63 bits, so it stays a positive int64).
ID_BITS, SORT_BITS, DEPT_BITS, LEAD_BITS = 30, 11, 12, 3
BASE_BITS = ID_BITS + SORT_BITS + DEPT_BITS + LEAD_BITS
ABBREVIATION_CACHE = 20_000


class SegmentData:
    """What we keep per immutable whoosh segment: decoded posting lists and numeric columns."""

    def __init__(self, reader: Any) -> None:
        self.size = int(reader.doc_count_all())
        self.columns = {name: self._column(reader, name) for name in NUMERIC_COLUMNS}
        self.dept_id = self.columns["dept_id"]
        self.sort_order = self.columns["sort_order"]
        self.cid = self.columns["cid"]
        self.staff_only = self.columns["staff_only"].astype(bool)
        self.postings: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._surname_forms: list[str] | None = None
        self._name_hashes: np.ndarray | None = None
        self._position_sounds: dict[str, list[str]] | None = None
        self._sorted: dict[str, SortedColumn] = {}
        self._tails: dict[str, PhoneTails] = {}
        self.lock = threading.Lock()

    def sorted_column(self, name: str) -> SortedColumn:
        """The column sorted (built on first use, kept with the segment)."""
        found = self._sorted.get(name)
        if found is None:
            found = self._sorted[name] = SortedColumn(self.columns[name])
        return found

    def phone_tails(self, name: str) -> PhoneTails:
        """A phone column by reversed digits (built on first use, kept with the segment)."""
        found = self._tails.get(name)
        if found is None:
            found = self._tails[name] = PhoneTails(self.columns[name])
        return found

    def _column(self, reader: Any, name: str) -> np.ndarray:
        if not reader.has_column(name):
            return np.zeros(self.size, dtype=np.int64)
        return np.fromiter(iter(reader.column_reader(name)), dtype=np.int64, count=self.size)

    def has_name_hash(self, value: int) -> bool:
        """Whether some whole name or 1-3 character name prefix in the segment hashes so (query planning).

        A sorted array rather than a set: 4 hashes a contact are 32 MB a million, a set of them 300 MB."""
        if self._name_hashes is None:
            found = np.unique(np.concatenate([self.columns[name] for name in NAME_COLUMNS]))
            self._name_hashes = found[found != 0]
        at = int(np.searchsorted(self._name_hashes, value))
        return at < self._name_hashes.size and int(self._name_hashes[at]) == value

    def surname_forms(self, reader: Any) -> list[str]:
        """The surname pinyin forms present in this segment (a few hundred)."""
        if self._surname_forms is None:
            self._surname_forms = [t.decode("utf-8") if isinstance(t, bytes) else t for t in reader.lexicon("sur_py")]
        return self._surname_forms

    def position_sounds(self, reader: Any) -> dict[str, list[str]]:
        """Pinyin → the position words of this segment that sound so (for the homophone fallback)."""
        if self._position_sounds is None:
            sounds: dict[str, list[str]] = {}
            for raw in reader.lexicon("pos"):
                word = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                sounds.setdefault(pinyin_full(word), []).append(word)
            self._position_sounds = sounds
        return self._position_sounds

    def lookup(self, reader: Any, fieldname: str, term: str) -> np.ndarray:
        """Doc numbers in this segment containing the term (deleted ones included; masked later)."""
        key = (fieldname, term)
        with self.lock:
            found = self.postings.get(key)
            if found is not None:
                self.postings.move_to_end(key)
                return found
        ids = _read_postings(reader, fieldname, term)
        with self.lock:
            self.postings[key] = ids
            if len(self.postings) > POSTINGS_CACHE_TERMS:
                self.postings.popitem(last=False)
        return ids


EMPTY = np.zeros(0, dtype=np.int32)


def _read_postings(reader: Any, fieldname: str, term: str) -> np.ndarray:
    """Decode a posting list block by block (whoosh's per-id generator is ~10x slower)."""
    btext = term.encode("utf-8")
    terms = getattr(reader, "_terms", None)
    try:
        if terms is None:
            return np.fromiter(reader.postings(fieldname, term).all_ids(), dtype=np.int32)
        if (fieldname, btext) not in terms:
            return EMPTY
        matcher = terms.matcher(fieldname, btext, reader.schema[fieldname].format)
    except (KeyError, TermNotFound):  # an empty index's reader raises TermNotFound for every term
        return EMPTY
    if not hasattr(matcher, "_read_ids"):
        return np.fromiter(matcher.all_ids(), dtype=np.int32)
    chunks: list[Any] = []
    while matcher.is_active():
        matcher._read_ids()
        chunks.append(matcher._ids)
        matcher._next_block()
    if not chunks:
        return EMPTY
    return np.fromiter((i for chunk in chunks for i in chunk), dtype=np.int32)


class Leaf:
    """One segment as seen by one snapshot: its reader, cached data, live mask and tie-break keys."""

    def __init__(self, reader: Any, data: SegmentData, table: DepartmentTable) -> None:
        self.reader = reader
        self.data = data
        self.live = np.ones(data.size, dtype=bool)
        deleted = getattr(reader, "deleted_docs_set", None)
        if deleted is None:
            deleted = {d for d in range(data.size) if reader.is_deleted(d)}
        if deleted:
            self.live[np.fromiter(deleted, dtype=np.int64)] = False
        ranks = table.rank_of(data.dept_id)
        ranks = np.clip(ranks, 0, (1 << DEPT_BITS) - 1)
        lead = np.clip(data.columns["lead"], 0, (1 << LEAD_BITS) - 1)
        self.base_key = (
            (lead << (DEPT_BITS + SORT_BITS + ID_BITS))
            | (ranks << (SORT_BITS + ID_BITS))
            | (np.clip(data.sort_order, 0, (1 << SORT_BITS) - 1) << ID_BITS)
            | (data.cid & ((1 << ID_BITS) - 1))
        )

    def lookup(self, fieldname: str, term: str) -> np.ndarray:
        return self.data.lookup(self.reader, fieldname, term)

    def any_of(self, fieldname: str, terms: list[str]) -> np.ndarray:
        """Boolean mask of docs having any of the terms."""
        mask = np.zeros(self.data.size, dtype=bool)
        for term in terms:
            mask[self.lookup(fieldname, term)] = True
        return mask


class DepartmentTable:
    """The department tree in memory: word → departments (with their subtrees) as lookup arrays."""

    def __init__(self, departments: list[DepartmentInfo], segmenter: Segmenter) -> None:
        self.by_id = {d.id: d for d in departments}
        self.size = max(self.by_id, default=0) + 2
        self.ranks = np.full(self.size, (1 << DEPT_BITS) - 1, dtype=np.int64)
        for d in departments:
            self.ranks[d.id] = min(d.rank, (1 << DEPT_BITS) - 1)
        children: dict[int | None, list[int]] = {}
        for d in departments:
            children.setdefault(d.parent_id, []).append(d.id)
        self._children = children
        segmenter.add_words(w for d in departments for w in (d.name, *d.aliases, *derived_aliases(d.name, d.region)))
        self.words: dict[str, set[int]] = {}
        for d in departments:
            for word in department_words(d, segmenter):
                self.words.setdefault(word, set()).add(d.id)
        self.paths = {normalize(d.path): d.id for d in departments}
        self.names: dict[str, set[int]] = {}
        for d in departments:
            for name in (d.name, *d.aliases, *derived_aliases(d.name, d.region)):
                self.names.setdefault(normalize(name), set()).add(d.id)
        self._luts: dict[str, np.ndarray] = {}
        self._word_ids: dict[str, np.ndarray] = {}
        self._init_abbreviations(departments, segmenter)
        self.sounds: dict[str, set[str]] = {}
        for word in self.words:
            if len(word) >= 2:
                self.sounds.setdefault(pinyin_full(word), set()).add(word)

    def _init_abbreviations(self, departments: list[DepartmentInfo], segmenter: Segmenter) -> None:
        """Per department, the words a short name is built from (see search.abbreviations), and
        which departments a query's first and last characters can point at."""
        self._abbreviation_words: dict[int, tuple[str, ...]] = {}
        self._heads: dict[int, tuple[str, ...]] = {}
        self._by_char: dict[str, set[int]] = {}
        self._abbreviations: OrderedDict[str, frozenset[int]] = OrderedDict()
        for d in departments:
            name, region = normalize(d.name), normalize(d.region)
            heads = [""]
            core = name
            for prefix, short in ((CITY, ("市", region_short(CITY))), (region, (region_short(region),))):
                if prefix and prefix != "市级" and name.startswith(prefix) and len(name) > len(prefix) + 1:
                    core = name[len(prefix) :]
                    heads += [*short, prefix]
                    break
            stem, unit = split_unit(core)
            if not unit or not stem:
                continue
            words = abbreviation_words(segmenter.dictionary_cut(stem), unit)
            self._abbreviation_words[d.id] = words
            self._heads[d.id] = tuple(dict.fromkeys(heads))
            for word in words:
                self._by_char.setdefault(word[:1], set()).add(d.id)
            for head in heads:
                if head:
                    self._by_char.setdefault(head[:1], set()).add(d.id)

    def abbreviation_of(self, query: str) -> frozenset[int]:
        """Departments the query is a derived short name of (江山经信局 → 江山市经济和信息化局)."""
        found = self._abbreviations.get(query)
        if found is not None:
            return found
        ids: set[int] = set()
        if 2 <= len(query) <= 12:
            for dept_id in self._by_char.get(query[:1], ()):
                words = self._abbreviation_words[dept_id]
                for head in self._heads[dept_id]:
                    if query.startswith(head) and is_abbreviation(query[len(head) :], words):
                        ids.add(dept_id)
                        break
        found = frozenset(ids)
        self._abbreviations[query] = found
        if len(self._abbreviations) > ABBREVIATION_CACHE:
            self._abbreviations.popitem(last=False)
        return found

    def subtree(self, roots: set[int]) -> set[int]:
        """The departments and everything below them."""
        out: set[int] = set()
        stack = list(roots)
        while stack:
            current = stack.pop()
            if current not in out:
                out.add(current)
                stack.extend(self._children.get(current, []))
        return out

    def lut(self, ids: set[int]) -> np.ndarray:
        """A boolean array indexed by department id."""
        mask = np.zeros(self.size, dtype=bool)
        if ids:
            mask[np.fromiter(ids, dtype=np.int64)] = True
        return mask

    def word_lut(self, word: str) -> np.ndarray | None:
        """Departments (with subtrees) a word or derived short name finds, or None when none has it."""
        found = self._luts.get(word)
        if found is not None:
            return found
        roots = self.words.get(word) or self.abbreviation_of(word)
        if not roots:
            return None
        found = self._luts[word] = self.lut(self.subtree(set(roots)))
        return found

    def word_departments(self, word: str) -> np.ndarray | None:
        """Ids of the departments (with subtrees) a word or short name finds, or None."""
        found = self._word_ids.get(word)
        if found is None:
            lut = self.word_lut(word)
            if lut is None:
                return None
            found = self._word_ids[word] = np.flatnonzero(lut)
        return found

    def resolve(self, key: str) -> set[int]:
        """A department filter (id, path, name or alias) → the departments it covers, subtrees included."""
        key = key.strip()
        if key.isdigit():
            return self.subtree({int(key)} & set(self.by_id))
        text = "/".join(p.strip() for p in normalize(key).split("/") if p.strip())
        if text in self.paths:
            return self.subtree({self.paths[text]})
        return self.subtree(self.names.get(text, set()))

    def rank_of(self, dept_ids: np.ndarray) -> np.ndarray:
        """Tree-order rank for each department id (unknown ones last)."""
        if not dept_ids.size:
            return np.zeros(0, dtype=np.int64)
        return self.ranks[np.clip(dept_ids, 0, self.size - 1)]


class Snapshot:
    def __init__(
        self, searcher: Any, generation: int, leaves: list[Leaf], table: DepartmentTable, mtime: float
    ) -> None:
        self.searcher = searcher
        self.generation = generation
        self.leaves = leaves
        self.table = table
        self.dept_mtime = mtime
        self._users = 0
        self._retired = False
        self._closed = False
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Mark a query as using this snapshot; False when it was already closed."""
        with self._lock:
            if self._closed:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        """A query is done; the last one out closes a retired snapshot."""
        with self._lock:
            self._users -= 1
            self._close_if_idle()

    def retire(self) -> None:
        """A newer snapshot replaced this one: close it once no query uses it."""
        with self._lock:
            self._retired = True
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self._retired and self._users == 0 and not self._closed:
            self._closed = True
            self.searcher.close()


class SnapshotCache:
    """Keeps one open searcher and its decoded segments; reopens only when the index changed."""

    def __init__(self, ix: DirectoryIndex) -> None:
        self.ix = ix
        self._current: Snapshot | None = None
        self._segments: dict[str, SegmentData] = {}
        self._lock = threading.Lock()
        self._checked_at = 0.0

    def invalidate(self) -> None:
        """Force a generation check on the next search (this process just wrote)."""
        self._checked_at = 0.0

    @contextmanager
    def use(self) -> Iterator[Snapshot]:
        """The newest snapshot, held open for the duration of one query."""
        while True:
            snap = self._latest()
            if snap.acquire():
                break
        try:
            yield snap
        finally:
            snap.release()

    def _latest(self) -> Snapshot:
        # Checks the disk at most every few ms: a listing of the index folder and one stat.
        now = time.monotonic()
        snap = self._current
        if snap is not None and now - self._checked_at < 0.005:
            return snap
        generation = self.ix.latest_generation()
        mtime = self.ix.departments_mtime()
        if snap is not None and snap.generation == generation and snap.dept_mtime == mtime:
            self._checked_at = now
            return snap
        with self._lock:
            snap = self._current
            if snap is None or snap.generation != generation or snap.dept_mtime != mtime:
                previous, snap = snap, self._open(snap, generation)
                self._current = snap
                if previous is not None:
                    previous.retire()  # closes when the queries still reading it are done
            self._checked_at = time.monotonic()
            return snap

    def _open(self, previous: Snapshot | None, generation: int) -> Snapshot:
        mtime, departments = self.ix.departments()
        if previous is not None and previous.dept_mtime == mtime:
            table = previous.table
        else:
            table = DepartmentTable(departments, self.ix.segmenter)
        # Labelled with the generation seen before opening: if a newer one landed meanwhile we open
        # it already, and the next check merely reopens once more.
        searcher = self.ix.open_searcher()
        leaves = []
        seen: dict[str, SegmentData] = {}
        for sub, _offset in searcher.leaf_searchers():
            reader = sub.reader()
            segment = reader.segment() if hasattr(reader, "segment") else None
            segid = segment.segment_id() if segment is not None else f"anon-{id(reader)}"
            data = self._segments.get(segid) or SegmentData(reader)
            seen[segid] = data
            leaves.append(Leaf(reader, data, table))
        self._segments = seen
        return Snapshot(searcher, generation, leaves, table, mtime)
