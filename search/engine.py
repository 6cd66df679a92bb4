"""Query execution over the whoosh index, built for speed.

Whoosh's own searcher scores every matching document through Python matcher objects, which costs
~60 ms for a query such as 科长 that matches tens of thousands of contacts. We keep whoosh as the
store (segments, locking, atomic commits) and evaluate queries ourselves:

* a snapshot per index generation holds, per segment, the numeric columns as numpy arrays and a
  precomputed tie-break key (leadership, department order, sort order, id);
* posting lists are decoded once per segment and term, block by block, into numpy arrays and kept
  (segments are immutable; a write adds a segment, deletions only change a mask);
* name hashes, the whole position, department and phone columns are sorted once per segment
  (`search/sorted_columns.py`), so a token finds its documents by binary search and touches only
  them (a phone tail is one range of the numbers read backwards);
* a query is a few vectorised min/and operations over arrays of the segment size, then a partial
  sort for the top k: `total` is exact and costs no more than the top k. The fallbacks reuse
  each token's tiers computed for the exact pass.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from search.analyzer import (
    COMPLETE,
    QueryError,
    QueryToken,
    name_pinyin_keys,
    normalize,
    pinyin_full,
    stable_hash,
    surname_length,
)
from search.highlight import highlights
from search.planner import fewer_terms, plan, sounding_alike
from search.records import PRIVATE_FIELDS
from search.snapshot import BASE_BITS, DepartmentTable, Leaf, Snapshot

if TYPE_CHECKING:
    from search.index import DirectoryIndex

MISS = np.uint8(255)
MAX_LIMIT = 100
MAX_NUMBER_DIGITS = 18  # 10**18 < 2**63: numbers are kept in int64 columns
# Lower is better; a document's score is the sum over query tokens of its best tier.
(
    TIER_EXACT,  # the whole name
    TIER_PREFIX,  # the name starts so
    TIER_PINYIN,  # pinyin / initials spelling the whole name, usual readings
    TIER_PINYIN_PREFIX,  # ... spelling its start
    TIER_PINYIN_ALT,  # pinyin spelling the whole name with a rarer reading of a given-name character
    TIER_PINYIN_ALT_PREFIX,
    TIER_PART,  # a part of the name
    TIER_POSITION_EXACT,  # the whole position (局长 for 局长, not 副局长)
    TIER_DEPT,  # a department word or short name, or the region
    TIER_POSITION,  # a word inside the position
    TIER_SOUND,  # a name sounding the same, same surname character
    TIER_SOUND_OTHER,  # ... another surname character
    TIER_SOUND_PREFIX,  # a name starting with the same sounds
) = range(13)
# Bands rank whole groups of hits below others: 0 exact, 1 a name only sounds the same,
# 2 fewer terms (nothing matched them all), 3 directory words sounding like the query's.
BAND_EXACT, BAND_SOUND, BAND_FEWER, BAND_HOMOPHONE = range(4)
SCORE_BITS = 5
Fallback = Literal["fewer_terms", "homophones"]


@dataclass
class SearchResult:
    """What a search answers: exact total, one page of items, time taken, and any fallback used."""

    total: int
    items: list[dict[str, Any]]
    took_ms: float
    tokens: list[str] = field(default_factory=list)
    fallback: Fallback | None = None  # None: exact hits


# --- query execution ---


def _token_best(leaf: Leaf, table: DepartmentTable, token: QueryToken, privileged: bool) -> np.ndarray:
    """Per document of the leaf, the best (lowest) tier at which the token matches; MISS if none."""
    if token.sounds_like:
        best = np.full(leaf.data.size, MISS, dtype=np.uint8)
        for word in token.sounds_like:
            np.minimum(best, _single_best(leaf, table, QueryToken(word, "han"), privileged, False), out=best)
        return best
    best = _single_best(leaf, table, token, privileged, True)
    if token.parts:
        # The glued reading (秘书科 + 科长): all pieces must match; a little below the whole reading.
        combined = np.ones(leaf.data.size, dtype=np.int32)
        for part in token.parts:
            combined += _single_best(leaf, table, QueryToken(part, "han"), privileged, False)
        np.minimum(best, np.minimum(combined, MISS).astype(np.uint8), out=best)
    return best


def _single_best(leaf: Leaf, table: DepartmentTable, token: QueryToken, privileged: bool, sounds: bool) -> np.ndarray:
    size = leaf.data.size
    best = np.full(size, MISS, dtype=np.uint8)

    def take(ids_or_mask: np.ndarray, tier: int) -> None:
        if ids_or_mask.dtype == bool:
            np.minimum(best, np.where(ids_or_mask, np.uint8(tier), MISS), out=best)
        elif ids_or_mask.size:
            best[ids_or_mask] = np.minimum(best[ids_or_mask], np.uint8(tier))

    t = token.text
    data = leaf.data
    if token.kind == "han":
        h = stable_hash(t)
        take(data.sorted_column("name_h0").equal(h), TIER_EXACT)
        if len(t) <= 3:
            take(data.sorted_column(f"name_h{len(t)}").equal(h), TIER_PREFIX)
        take(leaf.lookup("name_part", t), TIER_PART)
        take(leaf.lookup("area", t), TIER_DEPT)
        depts = table.word_departments(t)
        if depts is not None:
            take(data.sorted_column("dept_id").any_of(depts), TIER_DEPT)
        positions = leaf.lookup("pos", t)
        if positions.size:
            take(positions, TIER_POSITION)
            take(data.sorted_column("pos_h").equal(h), TIER_POSITION_EXACT)
        if sounds and 2 <= len(t) <= 4:
            # Homophones (张威 finds 张伟); a same-surname homophone ranks first.
            groups = pinyin_match(leaf, pinyin_full(t))
            surname = stable_hash(t[:1])
            for sound in (*groups[0], *groups[2]):
                same = data.columns["name_h1"][sound] == surname
                take(sound[same], TIER_SOUND)
                take(sound[~same], TIER_SOUND_OTHER)
            for sound in (*groups[1], *groups[3]):
                take(sound, TIER_SOUND_PREFIX)
    elif token.kind == "latin":
        for group, tier in zip(pinyin_match(leaf, t), PINYIN_TIERS, strict=True):
            for ids in group:
                take(ids, tier)
    elif token.kind == "mixed":
        _mixed(leaf, t, take)
    elif 3 <= len(t) <= MAX_NUMBER_DIGITS:  # a longer digit run matches no stored (int64) number
        for name in ("office", "mobile", "short") if privileged else ("office",):
            take(data.phone_tails(name).ending_with(t), TIER_PINYIN)
    return best


PINYIN_TIERS = (TIER_PINYIN, TIER_PINYIN_PREFIX, TIER_PINYIN_ALT, TIER_PINYIN_ALT_PREFIX)
GIVEN_FIELDS = (("given_py", TIER_PINYIN, TIER_PINYIN_PREFIX), ("given_alt", TIER_PINYIN_ALT, TIER_PINYIN_ALT_PREFIX))


def _mixed(leaf: Leaf, t: str, take: Any) -> None:
    """张w, 张xiaom: the Chinese head starts the name, the Latin tail spells the rest."""
    head = "".join(ch for ch in t if not ch.isascii())
    tail = t[len(head) :]
    head_mask = np.zeros(leaf.data.size, dtype=bool)
    if len(head) <= 3:
        head_mask[leaf.data.sorted_column(f"name_h{len(head)}").equal(stable_hash(head))] = True
    heads = np.flatnonzero(head_mask)
    if len(head) == surname_length(head + "名"):
        for fieldname, complete_tier, prefix_tier in GIVEN_FIELDS:
            for wanted, tier in ((tail + COMPLETE, complete_tier), (tail, prefix_tier)):
                given = leaf.lookup(fieldname, wanted)
                take(given[head_mask[given]], tier)
    elif heads.size:
        # Rare (张小m: the head runs into the given name): check the few candidates one by one.
        keep = [d for d in heads.tolist() if tail in name_pinyin_keys(_stored_name(leaf, d)[len(head) :], False)]
        take(np.asarray(keep, dtype=np.int64), TIER_PINYIN)


def pinyin_match(leaf: Leaf, key: str) -> tuple[list[np.ndarray], ...]:
    """Docs whose name a pinyin / initials key spells (surname form + given-name key: zhang+wei, z+w), as
    doc-number arrays grouped (usual reading complete, usual prefix, rarer reading complete, rarer prefix)."""
    groups: tuple[list[np.ndarray], ...] = ([], [], [], [])
    for form in leaf.data.surname_forms(leaf.reader):
        if key.startswith(form):
            people = leaf.lookup("sur_py", form)
            rest = key[len(form) :]
            if not rest:
                groups[1].append(people)
                continue
            # Intersect through a mask: linear, where np.intersect1d sorts (broad initials such as z+w).
            has_surname = np.zeros(leaf.data.size, dtype=bool)
            has_surname[people] = True
            for g, (fieldname, suffix) in enumerate(
                (("given_py", COMPLETE), ("given_py", ""), ("given_alt", COMPLETE), ("given_alt", ""))
            ):
                given = leaf.lookup(fieldname, rest + suffix)
                if given.size:
                    groups[g].append(given[has_surname[given]])
    return groups


def _stored_name(leaf: Leaf, docnum: int) -> str:
    return normalize(json.loads(leaf.reader.stored_fields(docnum)["data"])["name"])


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
        view = _View(snap, privileged, department, region)
        total, items = view.run(tokens, offset, offset + limit)
        fallback = None
        if total == 0 and tokens:
            total, items, tokens, fallback = _fall_back(view, query or "", tokens, offset, offset + limit)
    return SearchResult(total, items, _ms(started), [t.text for t in tokens], fallback)


def _fall_back(
    view: _View, raw: str, tokens: list[QueryToken], offset: int, want: int
) -> tuple[int, list[dict[str, Any]], list[QueryToken], Fallback | None]:
    """Nothing matched every token: fewer tokens, then homophones of the directory's words (planner)."""
    counts = [view.run([token], 0, 0)[0] for token in tokens]
    for fewer in fewer_terms(tokens, counts):
        total, items = view.run(fewer, offset, want, BAND_FEWER)
        if total:
            return total, items, fewer, "fewer_terms"
    sounded = sounding_alike(view.snap, raw, tokens, counts)
    if sounded is not None:
        total, items = view.run(sounded, offset, want, BAND_HOMOPHONE)
        if total:
            return total, items, sounded, "homophones"
        sounded_counts = [view.run([token], 0, 0)[0] for token in sounded]
        for fewer in fewer_terms(sounded, sounded_counts):
            total, items = view.run(fewer, offset, want, BAND_HOMOPHONE)
            if total:
                return total, items, fewer, "homophones"
    return 0, [], tokens, None


class _View:
    """One viewer's search over one snapshot, with the department / region filter applied."""

    def __init__(self, snap: Snapshot, privileged: bool, department: int | str | None, region: str | None) -> None:
        self.snap = snap
        self.privileged = privileged
        self._bests: dict[tuple[int, QueryToken], np.ndarray] = {}
        self._alive: list[np.ndarray] = []
        for leaf in snap.leaves:
            alive = _filter_mask(leaf, snap.table, department, region)
            if not privileged:
                alive &= ~leaf.data.staff_only
            self._alive.append(alive)

    def _best(self, li: int, leaf: Leaf, token: QueryToken) -> np.ndarray:
        """A token's tiers in a leaf, computed once per search (the fallbacks reuse them)."""
        key = (li, token)
        found = self._bests.get(key)
        if found is None:
            found = self._bests[key] = _token_best(leaf, self.snap.table, token, self.privileged)
        return found

    def run(
        self, tokens: list[QueryToken], offset: int, want: int, band: int = BAND_EXACT
    ) -> tuple[int, list[dict[str, Any]]]:
        """Exact total and the page [offset, want) of hits, best first."""
        snap = self.snap
        total = 0
        candidates: list[tuple[int, int, int]] = []  # (key, leaf index, docnum)
        for li, leaf in enumerate(snap.leaves):
            if leaf.data.size == 0:
                continue
            alive = self._alive[li].copy()
            score = np.zeros(leaf.data.size, dtype=np.int16)
            han_bests = []
            for token in tokens:
                best = self._best(li, leaf, token)
                alive &= best != MISS
                score += best
                if band == BAND_EXACT and token.kind == "han":
                    han_bests.append(best)
            hits = np.flatnonzero(alive)
            total += int(hits.size)
            if not hits.size or not want:
                continue
            sounded = np.zeros(hits.size, dtype=bool)
            for best in han_bests:
                sounded |= best[hits] >= TIER_SOUND
            bands = np.where(sounded, BAND_SOUND, band).astype(np.int64)
            keys = (
                (bands << (SCORE_BITS + BASE_BITS))
                | (np.minimum(score[hits].astype(np.int64), (1 << SCORE_BITS) - 1) << BASE_BITS)
                | leaf.base_key[hits]
            )
            if hits.size > want:
                part = np.argpartition(keys, want - 1)[:want]
                hits, keys = hits[part], keys[part]
            candidates.extend((int(k), li, int(d)) for k, d in zip(keys, hits, strict=True))
        candidates.sort()
        items = []
        shown = highlight_tokens(tokens)
        for _key, li, docnum in candidates[offset:want]:
            leaf = snap.leaves[li]
            record = json.loads(leaf.reader.stored_fields(docnum)["data"])
            items.append(present(record, shown, self.privileged))
        return total, items


def highlight_tokens(tokens: list[QueryToken]) -> list[QueryToken]:
    """The tokens highlights mark: glued pieces and the homophones that stood in, too."""
    out: list[QueryToken] = []
    for token in tokens:
        if not token.sounds_like:
            out.append(token)
        out.extend(QueryToken(word, "han") for word in (*token.parts, *token.sounds_like))
    return out


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
