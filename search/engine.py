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
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from search.analyzer import (
    COMPLETE,
    QueryError,
    QueryToken,
    name_pinyin_keys,
    normalize,
    pinyin_full,
    query_chunks,
    stable_hash,
    surname_length,
)
from search.highlight import highlights
from search.records import PRIVATE_FIELDS
from search.snapshot import DepartmentTable, Leaf, Snapshot

if TYPE_CHECKING:
    from search.index import DirectoryIndex

MISS = np.uint8(255)
MAX_LIMIT = 100
MAX_NUMBER_DIGITS = 18  # 10**18 < 2**63: numbers are kept in int64 columns
# Lower is better; a document's score is the sum over query tokens of its best tier.
(TIER_EXACT, TIER_PREFIX, TIER_PINYIN, TIER_PINYIN_PREFIX, TIER_PART, TIER_DEPT, TIER_POSITION, TIER_SOUND) = range(8)


@dataclass
class SearchResult:
    """What a search answers: exact total, one page of items, time taken."""

    total: int
    items: list[dict[str, Any]]
    took_ms: float
    tokens: list[str] = field(default_factory=list)


# --- query planning and execution ---


def _token_best(leaf: Leaf, table: DepartmentTable, token: QueryToken, privileged: bool) -> np.ndarray:
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
            sounds, sound_prefixes = _pinyin_match(leaf, pinyin_full(t))
            surname = stable_hash(t[:1])
            for sound in sounds:
                same = cols["name_h1"][sound] == surname
                take(sound[same], TIER_SOUND)
                take(sound[~same], TIER_SOUND + 1)
            for sound in sound_prefixes:
                take(sound, TIER_SOUND + 2)
    elif token.kind == "latin":
        complete, prefix = _pinyin_match(leaf, t)
        for ids in complete:
            take(ids, TIER_PINYIN)
        for ids in prefix:
            take(ids, TIER_PINYIN_PREFIX)
    elif token.kind == "mixed":
        head = "".join(ch for ch in t if not ch.isascii())
        tail = t[len(head) :]
        if len(head) <= 3:
            head_mask = cols[f"name_h{len(head)}"] == stable_hash(head)
        else:
            head_mask = np.zeros(size, dtype=bool)
        heads = np.flatnonzero(head_mask)
        if len(head) == surname_length(head + "名"):
            for wanted, tier in ((tail + COMPLETE, TIER_PINYIN), (tail, TIER_PINYIN_PREFIX)):
                given = leaf.lookup("given_py", wanted)
                take(given[head_mask[given]], tier)
        elif heads.size:
            # Rare (张小m: the head runs into the given name): check the few candidates one by one.
            keep = [d for d in heads.tolist() if tail in name_pinyin_keys(_stored_name(leaf, d)[len(head) :], False)]
            take(np.asarray(keep, dtype=np.int64), TIER_PINYIN)
    elif 3 <= len(t) <= MAX_NUMBER_DIGITS:  # a longer digit run matches no stored (int64) number
        modulus, value = 10 ** len(t), int(t)
        columns = ("office", "mobile", "short") if privileged else ("office",)
        for name in columns:
            col = cols[name]
            take((col >= 0) & (col % modulus == value), TIER_PINYIN)
    return best


def _pinyin_match(leaf: Leaf, key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Docs whose name a pinyin / initials key spells (surname form + given-name key: zhang+wei, z+w),
    as (spelt completely, spelt as a prefix) lists of doc-number arrays (they may overlap)."""
    complete: list[np.ndarray] = []
    prefix: list[np.ndarray] = []
    for form in leaf.data.surname_forms(leaf.reader):
        if key.startswith(form):
            people = leaf.lookup("sur_py", form)
            rest = key[len(form) :]
            if not rest:
                prefix.append(people)
                continue
            # Intersect through a mask: linear, where np.intersect1d sorts (broad initials such as z+w).
            has_surname = np.zeros(leaf.data.size, dtype=bool)
            has_surname[people] = True
            for wanted, out in ((rest + COMPLETE, complete), (rest, prefix)):
                given = leaf.lookup("given_py", wanted)
                if given.size:
                    out.append(given[has_surname[given]])
    return complete, prefix


def _stored_name(leaf: Leaf, docnum: int) -> str:
    return normalize(json.loads(leaf.reader.stored_fields(docnum)["data"])["name"])


def _known(snap: Snapshot, text: str, sound: bool = False) -> bool:
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
        return any(ids.size for leaf in snap.leaves for ids in _pinyin_match(leaf, key)[1])
    return False


def _segment(snap: Snapshot, text: str) -> list[str] | None:
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


def plan(ix: DirectoryIndex, snap: Snapshot, raw: str) -> list[QueryToken]:
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


def _filter_mask(leaf: Leaf, table: DepartmentTable, department: int | str | None, region: str | None) -> np.ndarray:
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
    has_filter = bool((department is not None and str(department).strip()) or (region and region.strip()))
    if (query is None or not query.strip()) and not has_filter:
        raise QueryError("query_empty", "请输入查询内容 / The query is empty")
    with ix.snapshots.use() as snap:
        tokens = plan(ix, snap, query) if query and query.strip() else []
        if query and query.strip() and not tokens:  # only punctuation or symbols: nothing can match
            return SearchResult(0, [], _ms(started))
        total, items = _run(snap, tokens, privileged, department, region, offset, offset + limit)
    return SearchResult(total, items, _ms(started), [t.text for t in tokens])


def _run(
    snap: Snapshot,
    tokens: list[QueryToken],
    privileged: bool,
    department: int | str | None,
    region: str | None,
    offset: int,
    want: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Exact total and the page [offset, want) of hits, best first."""
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
    return total, items


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
