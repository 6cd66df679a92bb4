"""Query planning: which tokens to AND, how glued words split, and the fallbacks when nothing matches.

Kinds of query and how each is read:

* a Chinese run we know as a whole (a name, a department word or short name, a position, a
  region) stays one token; when it also splits into department / position / region words
  (办公室主任 = 办公室 + 主任) that split is kept as a second reading (`QueryToken.parts`);
* a Chinese run we do not know is cut into known pieces, fewest first (秘书科科长 → 秘书科 科长,
  江山应急局长 → 江山 应急 局长), else by jieba with the directory's words;
* no hit at all: `fewer_terms` drops the least selective token (the one matching most people)
  until something matches, then `sounding_alike` swaps tokens that match nobody for directory
  words that sound the same (应机局 → 应急局). Both rank below every exact match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from search.analyzer import QueryToken, pinyin_full, query_chunks, stable_hash
from search.snapshot import Snapshot

if TYPE_CHECKING:
    from search.index import DirectoryIndex

MAX_GLUED_CHARS = 24
VOCABULARY_FIELDS = ("pos", "area")


def _pinyin_known(snap: Snapshot, key: str) -> bool:
    from search.engine import pinyin_match  # local: engine imports this module

    return any(ids.size for leaf in snap.leaves for group in pinyin_match(leaf, key) for ids in group)


def known(snap: Snapshot, text: str, sound: bool = False) -> bool:
    """Whether a Chinese text is a name, name part, department word or short name, position word or
    region we have (or, with `sound`, sounds like a name we have)."""
    if snap.table.word_lut(text) is not None:
        return True
    h = stable_hash(text)
    for leaf in snap.leaves:
        if leaf.data.has_name_hash(h) or any(leaf.lookup(f, text).size for f in ("name_part", *VOCABULARY_FIELDS)):
            return True
    if sound and 2 <= len(text) <= 4:
        return _pinyin_known(snap, pinyin_full(text))
    return False


def vocabulary_word(snap: Snapshot, text: str) -> bool:
    """Whether a text is a department word (or short name), a position word or a region."""
    if snap.table.word_lut(text) is not None:
        return True
    return any(leaf.lookup(f, text).size for leaf in snap.leaves for f in VOCABULARY_FIELDS)


def segment(snap: Snapshot, text: str, is_known: Callable[[Snapshot, str], bool] = known) -> list[str] | None:
    """Cut a Chinese run into known pieces, fewest pieces first and single characters avoided."""
    if len(text) > MAX_GLUED_CHARS:
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
            if cost[start] + step < cost[end] and is_known(snap, piece):
                cost[end], back[end] = cost[start] + step, start
    if cost[-1] == inf:
        return None
    pieces, end = [], len(text)
    while end > 0:
        pieces.append(text[back[end] : end])
        end = back[end]
    return pieces[::-1]


def plan(ix: DirectoryIndex, snap: Snapshot, raw: str) -> list[QueryToken]:
    """Tokens to AND together (see the module docstring)."""
    tokens: list[QueryToken] = []
    for token in query_chunks(raw):
        text = token.text
        if token.kind != "han" or len(text) < 2:
            tokens.append(token)
            continue
        if known(snap, text, sound=True):
            parts = segment(snap, text, vocabulary_word) if len(text) >= 4 else None
            tokens.append(QueryToken(text, "han", parts=tuple(parts) if parts and len(parts) > 1 else ()))
            continue
        words = segment(snap, text) or ix.segmenter.cut(text)
        tokens.extend(QueryToken(w, "han") for w in words) if len(words) > 1 else tokens.append(token)
    return tokens


def fewer_terms(tokens: list[QueryToken], counts: list[int]) -> list[list[QueryToken]]:
    """Ever shorter token lists, each dropping the least selective token left (most matches first;
    of equally selective ones the later, as people type the main word first).

    A token that matches nobody on its own is never the least selective, so it goes last; the
    caller moves on to homophones when even one token finds nothing.
    """
    order = sorted(range(len(tokens)), key=lambda i: (-counts[i], -i))
    kept = set(range(len(tokens)))
    out = []
    for index in order[:-1]:
        kept.discard(index)
        out.append([tokens[i] for i in sorted(kept)])
    return out


def homophones(snap: Snapshot, text: str) -> tuple[str, ...]:
    """Department, position and region words of the directory that sound like the text (not itself)."""
    if len(text) < 2:
        return ()
    key = pinyin_full(text)
    words = set(snap.table.sounds.get(key, ()))
    for leaf in snap.leaves:
        words.update(leaf.data.position_sounds(leaf.reader).get(key, ()))
    words.discard(text)
    return tuple(sorted(words))


def sounding_alike(snap: Snapshot, raw: str, tokens: list[QueryToken], counts: list[int]) -> list[QueryToken] | None:
    """The query read by sound: each Chinese run cut into pieces that are directory words or sound
    like some (应机局 → 应急局, 江山应机局 → 江山 + 应急局), the sound-alikes standing in for the
    pieces; Chinese tokens that match somebody as planned are kept. None when nothing sounds alike."""
    matched = {t.text for t, count in zip(tokens, counts, strict=True) if count and t.kind == "han"}
    out: list[QueryToken] = []
    changed = False

    def word_or_sound(snap: Snapshot, piece: str) -> bool:
        return piece in matched or vocabulary_word(snap, piece) or bool(homophones(snap, piece))

    for chunk in query_chunks(raw):
        if chunk.kind != "han" or chunk.text in matched:
            out.append(chunk)
            continue
        pieces = segment(snap, chunk.text, word_or_sound) or [chunk.text]
        for piece in pieces:
            if piece in matched or vocabulary_word(snap, piece):
                out.append(QueryToken(piece, "han"))
                continue
            alike = homophones(snap, piece)
            changed = changed or bool(alike)
            out.append(QueryToken(piece, "han", sounds_like=alike) if alike else QueryToken(piece, "han"))
    return out if changed else None
