"""Query execution over the whoosh index, built for speed.

Whoosh's own searcher scores every matching document through Python matcher objects, which costs
~60 ms for a query such as 科长 that matches tens of thousands of contacts. We keep whoosh as the
store (segments, locking, atomic commits) and evaluate queries ourselves:

* a snapshot per index generation holds, per segment, the numeric columns as numpy arrays and a
  precomputed tie-break key (department order, sort order, id);
* posting lists are decoded once per segment and term, block by block, into numpy arrays and kept
  (segments are immutable; a write adds a segment, deletions only change a mask);
* a query is a few vectorised min/and operations over arrays of the segment size, then a partial
  sort for the top k: `total` is exact and costs no more than the top k.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from search.analyzer import (
    QueryError,
    QueryToken,
    Segmenter,
    derived_aliases,
    name_pinyin_keys,
    normalize,
    pinyin_full,
    query_chunks,
    stable_hash,
    surname_length,
)
from search.highlight import highlights
from search.index import NAME_COLUMNS, NUMERIC_COLUMNS
from search.records import PRIVATE_FIELDS, DepartmentInfo, department_words

if TYPE_CHECKING:
    from search.index import DirectoryIndex

MISS = np.uint8(255)
MAX_LIMIT = 100
POSTINGS_CACHE_TERMS = 20_000
TIER_EXACT, TIER_PREFIX, TIER_PINYIN, TIER_PART, TIER_DEPT, TIER_POSITION, TIER_SOUND = range(7)
_ID_BITS, _SORT_BITS, _DEPT_BITS = 30, 12, 16


@dataclass
class SearchResult:
    """What a search answers: exact total, one page of items, time taken."""

    total: int
    items: list[dict[str, Any]]
    took_ms: float
    tokens: list[str] = field(default_factory=list)


class _SegmentData:
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
        self._name_hashes: set[int] | None = None
        self.lock = threading.Lock()

    def _column(self, reader: Any, name: str) -> np.ndarray:
        if not reader.has_column(name):
            return np.zeros(self.size, dtype=np.int64)
        return np.fromiter(iter(reader.column_reader(name)), dtype=np.int64, count=self.size)

    def name_hashes(self) -> set[int]:
        """Hashes of every whole name and 1-3 character prefix in the segment (for query planning)."""
        if self._name_hashes is None:
            found: set[int] = set()
            for name in NAME_COLUMNS:
                found.update(self.columns[name].tolist())
            found.discard(0)
            self._name_hashes = found
        return self._name_hashes

    def surname_forms(self, reader: Any) -> list[str]:
        """The surname pinyin forms present in this segment (a few hundred)."""
        if self._surname_forms is None:
            self._surname_forms = [t.decode("utf-8") if isinstance(t, bytes) else t for t in reader.lexicon("sur_py")]
        return self._surname_forms

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


_EMPTY = np.zeros(0, dtype=np.int32)


def _read_postings(reader: Any, fieldname: str, term: str) -> np.ndarray:
    """Decode a posting list block by block (whoosh's per-id generator is ~10x slower)."""
    btext = term.encode("utf-8")
    terms = getattr(reader, "_terms", None)
    try:
        if terms is None:
            return np.fromiter(reader.postings(fieldname, term).all_ids(), dtype=np.int32)
        if (fieldname, btext) not in terms:
            return _EMPTY
        matcher = terms.matcher(fieldname, btext, reader.schema[fieldname].format)
    except KeyError:
        return _EMPTY
    if not hasattr(matcher, "_read_ids"):
        return np.fromiter(matcher.all_ids(), dtype=np.int32)
    chunks: list[Any] = []
    while matcher.is_active():
        matcher._read_ids()
        chunks.append(matcher._ids)
        matcher._next_block()
    if not chunks:
        return _EMPTY
    return np.fromiter((i for chunk in chunks for i in chunk), dtype=np.int32)


class _Leaf:
    """One segment as seen by one snapshot: its reader, cached data, live mask and tie-break keys."""

    def __init__(self, reader: Any, data: _SegmentData, table: DepartmentTable) -> None:
        self.reader = reader
        self.data = data
        self.live = np.ones(data.size, dtype=bool)
        deleted = getattr(reader, "deleted_docs_set", None)
        if deleted is None:
            deleted = {d for d in range(data.size) if reader.is_deleted(d)}
        if deleted:
            self.live[np.fromiter(deleted, dtype=np.int64)] = False
        ranks = table.rank_of(data.dept_id)
        ranks = np.clip(ranks, 0, (1 << _DEPT_BITS) - 1)
        self.base_key = (
            (ranks << (_SORT_BITS + _ID_BITS))
            | (np.clip(data.sort_order, 0, (1 << _SORT_BITS) - 1) << _ID_BITS)
            | (data.cid & ((1 << _ID_BITS) - 1))
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
        self.ranks = np.full(self.size, (1 << _DEPT_BITS) - 1, dtype=np.int64)
        for d in departments:
            self.ranks[d.id] = min(d.rank, (1 << _DEPT_BITS) - 1)
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
        """Departments (with subtrees) a word finds, or None when no department has it."""
        if word not in self.words:
            return None
        found = self._luts.get(word)
        if found is None:
            found = self._luts[word] = self.lut(self.subtree(self.words[word]))
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


class _Snapshot:
    def __init__(
        self, searcher: Any, generation: int, leaves: list[_Leaf], table: DepartmentTable, mtime: float
    ) -> None:
        self.searcher = searcher
        self.generation = generation
        self.leaves = leaves
        self.table = table
        self.dept_mtime = mtime


class SnapshotCache:
    """Keeps one open searcher and its decoded segments; reopens only when the index changed."""

    def __init__(self, ix: DirectoryIndex) -> None:
        self.ix = ix
        self._current: _Snapshot | None = None
        self._retired: _Snapshot | None = None
        self._segments: dict[str, _SegmentData] = {}
        self._lock = threading.Lock()
        self._checked_at = 0.0

    def invalidate(self) -> None:
        """Force a generation check on the next search (this process just wrote)."""
        self._checked_at = 0.0

    def get(self) -> _Snapshot:
        """The snapshot of the newest generation (checking disk at most every few ms)."""
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
                snap = self._open(snap)
                # Close the snapshot before the previous one: a query still running keeps its files.
                if self._retired is not None and self._retired.searcher is not snap.searcher:
                    self._retired.searcher.close()
                self._retired, self._current = self._current, snap
            self._checked_at = time.monotonic()
            return snap

    def _open(self, previous: _Snapshot | None) -> _Snapshot:
        mtime, departments = self.ix.departments()
        if previous is not None and previous.dept_mtime == mtime:
            table = previous.table
        else:
            table = DepartmentTable(departments, self.ix.segmenter)
        searcher = self.ix.open_searcher()
        generation = int(searcher.reader().generation() or 0)
        leaves = []
        seen: dict[str, _SegmentData] = {}
        for sub, _offset in searcher.leaf_searchers():
            reader = sub.reader()
            segment = reader.segment()
            segid = segment.segment_id() if segment is not None else f"anon-{id(reader)}"
            data = self._segments.get(segid) or _SegmentData(reader)
            seen[segid] = data
            leaves.append(_Leaf(reader, data, table))
        self._segments = seen
        return _Snapshot(searcher, generation, leaves, table, mtime)


# --- query planning and execution ---


def _token_best(leaf: _Leaf, table: DepartmentTable, token: QueryToken, privileged: bool) -> np.ndarray:
    """Per document of the leaf, the best (lowest) tier at which the token matches; MISS if none."""
    size = leaf.data.size
    best = np.full(size, MISS, dtype=np.uint8)

    def take(ids_or_mask: np.ndarray, tier: int) -> None:
        if ids_or_mask.dtype == bool:
            np.minimum(best, np.where(ids_or_mask, np.uint8(tier), MISS), out=best)
        elif ids_or_mask.size:
            best[ids_or_mask] = np.minimum(best[ids_or_mask], np.uint8(tier))

    t = token.text
    cols = leaf.data.columns
    if token.kind == "han":
        take(cols["name_h0"] == stable_hash(t), TIER_EXACT)
        if len(t) <= 3:
            take(cols[f"name_h{len(t)}"] == stable_hash(t), TIER_PREFIX)
        take(leaf.lookup("name_part", t), TIER_PART)
        take(leaf.lookup("area", t), TIER_DEPT)
        lut = table.word_lut(t)
        if lut is not None:
            take(lut[np.clip(leaf.data.dept_id, 0, table.size - 1)], TIER_DEPT)
        take(leaf.lookup("pos", t), TIER_POSITION)
        if 2 <= len(t) <= 4:
            # Homophones (张威 finds 张伟); a same-surname homophone ranks first.
            sound = _pinyin_match(leaf, pinyin_full(t))
            if sound.size:
                same = cols["name_h1"][sound] == stable_hash(t[:1])
                take(sound[same], TIER_SOUND)
                take(sound[~same], TIER_SOUND + 1)
    elif token.kind == "latin":
        take(_pinyin_match(leaf, t), TIER_PINYIN)
    elif token.kind == "mixed":
        head = "".join(ch for ch in t if not ch.isascii())
        tail = t[len(head) :]
        if len(head) <= 3:
            heads = np.flatnonzero(cols[f"name_h{len(head)}"] == stable_hash(head))
        else:
            heads = np.zeros(0, dtype=np.int64)
        if len(head) == surname_length(head + "名"):
            take(np.intersect1d(heads, leaf.lookup("given_py", tail)), TIER_PINYIN)
        elif heads.size:
            # Rare (张小m: the head runs into the given name): check the few candidates one by one.
            keep = [d for d in heads.tolist() if tail in name_pinyin_keys(_stored_name(leaf, d)[len(head) :], False)]
            take(np.asarray(keep, dtype=np.int64), TIER_PINYIN)
    elif len(t) >= 3:
        modulus, value = 10 ** len(t), int(t)
        columns = ("office", "mobile", "short") if privileged else ("office",)
        for name in columns:
            col = cols[name]
            take((col >= 0) & (col % modulus == value), TIER_PINYIN)
    return best


def _pinyin_match(leaf: _Leaf, key: str) -> np.ndarray:
    """Docs whose name a pinyin / initials key spells: surname form + given-name key (zhang+wei, z+w)."""
    found: list[np.ndarray] = []
    for form in leaf.data.surname_forms(leaf.reader):
        if key.startswith(form):
            people = leaf.lookup("sur_py", form)
            rest = key[len(form) :]
            if rest:
                people = np.intersect1d(people, leaf.lookup("given_py", rest), assume_unique=True)
            if people.size:
                found.append(people)
    if not found:
        return _EMPTY
    return found[0] if len(found) == 1 else np.unique(np.concatenate(found))


def _stored_name(leaf: _Leaf, docnum: int) -> str:
    return normalize(json.loads(leaf.reader.stored_fields(docnum)["data"])["name"])


def _known(snap: _Snapshot, text: str, sound: bool = False) -> bool:
    """Whether a Chinese text is a name, name part, department word, position word or region we have
    (or, with `sound`, sounds like a name we have)."""
    if snap.table.word_lut(text) is not None:
        return True
    h = stable_hash(text)
    for leaf in snap.leaves:
        if h in leaf.data.name_hashes() or any(leaf.lookup(f, text).size for f in ("name_part", "pos", "area")):
            return True
    if sound and 2 <= len(text) <= 4:
        key = pinyin_full(text)
        return any(_pinyin_match(leaf, key).size for leaf in snap.leaves)
    return False


def _segment(snap: _Snapshot, text: str) -> list[str] | None:
    """Cut a Chinese run into known pieces, fewest pieces first and single characters avoided."""
    if len(text) > 24:
        return None
    inf = 10**9
    cost = [0] + [inf] * len(text)
    back = [0] * (len(text) + 1)
    for end in range(1, len(text) + 1):
        for start in range(max(0, end - 12), end):
            if cost[start] == inf:
                continue
            piece = text[start:end]
            step = 1 if len(piece) > 1 else 3
            if cost[start] + step < cost[end] and _known(snap, piece):
                cost[end], back[end] = cost[start] + step, start
    if cost[-1] == inf:
        return None
    pieces, end = [], len(text)
    while end > 0:
        pieces.append(text[back[end] : end])
        end = back[end]
    return pieces[::-1]


def plan(ix: DirectoryIndex, snap: _Snapshot, raw: str) -> list[QueryToken]:
    """Tokens to AND together. A Chinese run we do not know as a whole is cut into known pieces
    (江山应急局长 → 江山 应急 局长), falling back to jieba with the directory's words."""
    tokens: list[QueryToken] = []
    for token in query_chunks(raw):
        if token.kind == "han" and len(token.text) > 1 and not _known(snap, token.text, sound=True):
            words = _segment(snap, token.text) or ix.segmenter.cut(token.text)
            if len(words) > 1:
                tokens.extend(QueryToken(w, "han") for w in words)
                continue
        tokens.append(token)
    return tokens


def _filter_mask(leaf: _Leaf, table: DepartmentTable, department: int | str | None, region: str | None) -> np.ndarray:
    alive = leaf.live.copy()
    if department is not None and str(department).strip():
        alive &= table.lut(table.resolve(str(department)))[np.clip(leaf.data.dept_id, 0, table.size - 1)]
    if region is not None and region.strip():
        name = normalize(region)
        mask = np.zeros(leaf.data.size, dtype=bool)
        for term in {name, *(name + s for s in "市区县")}:
            mask[leaf.lookup("area", term)] = True
        alive &= mask
    return alive


def search(
    ix: DirectoryIndex,
    query: str | None,
    *,
    privileged: bool = False,
    department: int | str | None = None,
    region: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    """Search the directory. Public viewers never see (or match on) private numbers or staff-only entries.

    An empty query with a department or region filter lists that part of the directory.
    Raises QueryError for an empty or over-long query.
    """
    started = time.perf_counter()
    limit = max(0, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    snap = ix.snapshots.get()
    has_filter = bool((department is not None and str(department).strip()) or (region and region.strip()))
    if query is None or not query.strip():
        if not has_filter:
            raise QueryError("query_empty", "请输入查询内容 / The query is empty")
        tokens: list[QueryToken] = []
    else:
        tokens = plan(ix, snap, query)
        if not tokens:  # only punctuation or symbols: nothing can match
            return SearchResult(0, [], _ms(started))
    want = offset + limit
    total = 0
    candidates: list[tuple[int, int, int]] = []  # (key, leaf index, docnum)
    for li, leaf in enumerate(snap.leaves):
        if leaf.data.size == 0:
            continue
        alive = _filter_mask(leaf, snap.table, department, region)
        if not privileged:
            alive &= ~leaf.data.staff_only
        score = np.zeros(leaf.data.size, dtype=np.int64)
        for token in tokens:
            best = _token_best(leaf, snap.table, token, privileged)
            alive &= best != MISS
            score += best
        hits = np.flatnonzero(alive)
        total += int(hits.size)
        if not hits.size or not want:
            continue
        keys = (np.minimum(score[hits], 31) << 58) | leaf.base_key[hits]
        if hits.size > want:
            part = np.argpartition(keys, want - 1)[:want]
            hits, keys = hits[part], keys[part]
        candidates.extend((int(k), li, int(d)) for k, d in zip(keys, hits, strict=True))
    candidates.sort()
    items = []
    for _key, li, docnum in candidates[offset:want]:
        leaf = snap.leaves[li]
        record = json.loads(leaf.reader.stored_fields(docnum)["data"])
        items.append(present(record, tokens, privileged))
    return SearchResult(total, items, _ms(started), [t.text for t in tokens])


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def present(record: dict[str, Any], tokens: list[QueryToken], privileged: bool) -> dict[str, Any]:
    """The record as this viewer may see it, with highlights computed only from visible fields."""
    item = dict(record)
    if not privileged:
        for name in PRIVATE_FIELDS:
            item.pop(name, None)
    item["highlights"] = highlights(item, tokens)
    return item


__all__ = ["QueryError", "SearchResult", "search", "present"]
