"""Chinese text analysis for the directory: normalisation, jieba words, pinyin keys, query tokens."""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jieba
import opencc
from pypinyin import Style, lazy_pinyin, pinyin

from search.abbreviations import COMMON_ALIASES, DictionaryWords

jieba.setLogLevel(logging.WARNING)
_T2S = opencc.OpenCC("t2s")
_HAN = re.compile(r"[\u3400-\u9fff]")
_SPLIT = re.compile(r"[^\u3400-\u9fffa-z0-9]+")
_CHUNK = re.compile(r"[\u3400-\u9fff]+|[a-z]+|[0-9]+")
_DIGIT_DASH = re.compile(r"(?<=\d)[-\s](?=\d)")
MAX_QUERY_CHARS = 100

# Surnames read differently from the character's everyday reading (百家姓 readings); the first
# reading is the surname one, the rest are kept so a caller typing the common reading still finds them.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "曾": ("zeng", "ceng"),
    "单": ("shan", "dan"),
    "解": ("xie", "jie"),
    "仇": ("qiu", "chou"),
    "区": ("ou", "qu"),
    "朴": ("piao", "pu"),
    "查": ("zha", "cha"),
    "盖": ("ge", "gai"),
    "乐": ("yue", "le"),
    "覃": ("qin", "tan"),
    "翟": ("zhai", "di"),
    "缪": ("miao", "mou"),
    "召": ("shao", "zhao"),
    "冼": ("xian",),
    "纪": ("ji",),
    "任": ("ren",),
    "宁": ("ning",),
    "员": ("yun", "yuan"),
    "尉": ("yu", "wei"),
    "隗": ("wei", "kui"),
    "万": ("wan", "mo"),
    "长": ("chang", "zhang"),
    "沈": ("shen",),
    "柏": ("bai", "bo"),
    "秘": ("bi", "mi"),
    "都": ("du", "dou"),
    "重": ("chong", "zhong"),
    "种": ("chong", "zhong"),
    "繁": ("po", "fan"),
    "黑": ("he", "hei"),
}
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "夏侯")


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII), traditional → simplified, lower case, trimmed."""
    text = unicodedata.normalize("NFKC", text or "")
    if _HAN.search(text):
        text = _T2S.convert(text)
    return text.lower().strip()


def has_han(text: str) -> bool:
    """True when the text contains a CJK ideograph."""
    return bool(_HAN.search(text))


MAX_READINGS = 3


@lru_cache(maxsize=200_000)
def name_syllables(name: str, surname: bool = True) -> tuple[tuple[str, ...], ...]:
    """Per character, its possible readings, the usual one first (surname readings first for the surname).

    Given-name characters keep every toneless reading pypinyin knows (曾 zeng/ceng, 乐 le/yue), at
    most MAX_READINGS, so a caller who reads a polyphonic character either way finds the person.
    """
    if not name:
        return ()
    out: list[tuple[str, ...]] = []
    for index, ch in enumerate(name):
        readings = SURNAME_READINGS.get(ch) if index == 0 and surname else None
        if readings:
            out.append(tuple(dict.fromkeys((*readings, _char_reading(ch)))))
        else:
            out.append(char_readings(ch))
    return tuple(out)


@lru_cache(maxsize=65_536)
def char_readings(ch: str) -> tuple[str, ...]:
    """Toneless readings of one character, the common one first (乐 → le, yue)."""
    common = _char_reading(ch)
    if not _HAN.match(ch):
        return (common,)
    found = pinyin(ch, style=Style.NORMAL, heteronym=True, errors=lambda x: [x])  # type: ignore[arg-type, return-value]
    others = [r.lower() for r in (found[0] if found else []) if r and r.isascii() and r.isalpha()]
    return tuple(dict.fromkeys((common, *others)))[:MAX_READINGS]


@lru_cache(maxsize=65_536)
def _char_reading(ch: str) -> str:
    readings = lazy_pinyin(ch, style=Style.NORMAL, errors=lambda x: [x])  # type: ignore[arg-type, return-value]
    return (readings[0] if readings else ch).lower()


def pinyin_full(text: str) -> str:
    """Toneless pinyin of a text, character by character, joined (张伟 → zhangwei), as names are indexed."""
    return "".join(_char_reading(ch) for ch in text)


@lru_cache(maxsize=200_000)
def name_pinyin_keys(name: str, surname: bool = True) -> frozenset[str]:
    """The pinyin / initials keys that should find this name, with prefixes typed while searching.

    张伟 → zhangwei, zhangwe, zhangw, zhang, zwei, zwe, zw. Prefixes shorter than the first
    syllable's written form (z, zh, zha) are left out: nobody searches a person by them, and they
    would bloat the index. Each syllable may be typed in full or as its initial.
    """
    sylls = name_syllables(name, surname)
    if not sylls or len(name) > 6:
        return frozenset()
    choices = []
    for readings in sylls:
        forms = {f for r in readings if r and r.isascii() and r.isalpha() for f in (r, r[0])}
        if not forms:
            return frozenset()
        choices.append(sorted(forms))
    keys: set[str] = set()
    for combo in itertools.product(*choices):
        full = "".join(combo)
        for end in range(len(combo[0]), len(full) + 1):
            keys.add(full[:end])
    return frozenset(keys)


def name_substrings(name: str) -> set[str]:
    """Substrings of a name that are not prefixes (prefixes and the whole name are matched by hash columns)."""
    return {name[i:j] for i in range(1, len(name)) for j in range(i + 1, len(name) + 1)}


def surname_length(name: str) -> int:
    """2 for compound surnames (欧阳, 诸葛 ...), else 1."""
    return 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1


def surname_keys(name: str) -> frozenset[str]:
    """Pinyin forms of the surname, in full and as initials (曾 → zeng, z, ceng, c)."""
    n = surname_length(name)
    return frozenset(k for k in name_pinyin_keys(name[:n]) if len(k) == n or not _is_partial(name[:n], k))


def _is_partial(surname: str, key: str) -> bool:
    # A key is partial when it ends inside a syllable: ouyan (of ouyang). Full or initial forms are whole.
    forms = [{r for r in readings} | {r[0] for r in readings if r} for readings in name_syllables(surname)]
    combos = {"".join(c) for c in itertools.product(*forms)}
    return key not in combos


COMPLETE = "$"


def _given_keys(sylls: tuple[tuple[str, ...], ...]) -> set[str]:
    choices = []
    for readings in sylls:
        forms = {f for r in readings if r and r.isascii() and r.isalpha() for f in (r, r[0])}
        if not forms:
            return set()
        choices.append(sorted(forms))
    keys: set[str] = set()
    for combo in itertools.product(*choices):
        full = "".join(combo)
        keys.update(full[:end] for end in range(1, len(full) + 1))
        keys.add(full + COMPLETE)  # marks a key that spells the whole given name (ranks above a prefix)
    return keys


MAX_POLYPHONIC_GIVEN = 3  # longer given names are indexed by their usual readings only


@lru_cache(maxsize=200_000)
def given_name_key_sets(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """Pinyin keys of the given name (after the surname) with every prefix: 伟 → w, we, wei, w$, wei$.

    Returns (keys of the usual readings, keys only another reading gives): 乐 → ({le, l, ...}, {yue, y, ...}),
    so a search ranks the usual reading above the rarer one.
    """
    given = name[surname_length(name) :]
    sylls = name_syllables(given, False)
    if not given or not sylls or len(given) > 5:
        return frozenset(), frozenset()
    usual = _given_keys(tuple(readings[:1] for readings in sylls))
    if len(given) > MAX_POLYPHONIC_GIVEN or all(len(r) == 1 for r in sylls):
        return frozenset(usual), frozenset()
    every = _given_keys(sylls)
    return frozenset(usual), frozenset(every - usual)


def given_name_keys(name: str) -> frozenset[str]:
    """Every pinyin key of the given name, whatever the reading (see given_name_key_sets)."""
    usual, other = given_name_key_sets(name)
    return usual | other


def stable_hash(text: str) -> int:
    """A 63-bit hash that is the same in every process (Python's hash() is salted); 0 for empty text."""
    if not text:
        return 0
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def phone_digits(value: str | None) -> str:
    """Digits only (0570-3012345 → 05703012345)."""
    return "".join(ch for ch in (value or "") if ch.isdigit())


def phone_tails(value: str | None, shortest: int = 3) -> set[str]:
    """Suffixes of the digits, from `shortest` long up to the full number."""
    digits = phone_digits(value)
    return {digits[-n:] for n in range(shortest, len(digits) + 1)}


def region_short(region: str) -> str:
    """江山市 → 江山, 柯城区 → 柯城; names of two characters stay whole."""
    if len(region) > 2 and region[-1] in "市区县":
        return region[:-1]
    return region


CITY = "衢州市"


def derived_aliases(name: str, region: str = "") -> set[str]:
    """Short names people use for a department when none were given: 江山市应急管理局 → 应急局, 江山应急局."""
    name = normalize(name)
    region = normalize(region)
    out: set[str] = set()
    core, prefix = name, ""
    for candidate in (CITY, region):
        if candidate and candidate != "市级" and name.startswith(candidate) and len(name) > len(candidate) + 1:
            core, prefix = name[len(candidate) :], candidate
            break
    if core.startswith("公安局") and len(core) > 3:  # 衢州市公安局柯城区分局
        core = "公安分局"
    shorts = {core}
    if core.endswith("管理局") and len(core) > 4:
        shorts.add(core[:-3] + "局")
    if core.endswith("委员会") and len(core) > 4:
        shorts.add(core[:-3] + "委")
    shorts.update(COMMON_ALIASES.get(core, ()))
    for short in shorts:
        if short != "府办":
            out.add(short)
        if prefix:
            head = "市" if prefix == CITY else region_short(prefix)
            out.add(head + short)
    out.discard(name)
    return {a for a in out if len(a) >= 2}


_TOKENIZER: jieba.Tokenizer | None = None
_TOKENIZER_LOCK = threading.Lock()
# Directory words added to the shared tokenizer (by any index) → jieba's own frequency before.
_ORIGINAL_FREQ: dict[str, int] = {}
_BASE_TOTAL: list[int] = []


def _shared_tokenizer() -> jieba.Tokenizer:
    # One jieba dictionary per process (loading it takes most of a second and ~100 MB);
    # directory words are added to it, which is harmless for other indexes in the same process.
    global _TOKENIZER
    with _TOKENIZER_LOCK:
        if _TOKENIZER is None:
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _BASE_TOTAL.append(int(tokenizer.total))
            _TOKENIZER = tokenizer
        return _TOKENIZER


class Segmenter:
    """A jieba tokenizer (not jieba's global one) that knows the directory's vocabulary."""

    def __init__(self) -> None:
        self._tokenizer: jieba.Tokenizer | None = None
        self._words: set[str] = set()

    def _ensure(self) -> None:
        if self._tokenizer is None:
            self._tokenizer = _shared_tokenizer()

    def add_words(self, words: Iterable[str]) -> None:
        """Teach the tokenizer department names and aliases so they are never cut apart."""
        self._ensure()
        assert self._tokenizer is not None
        for word in words:
            word = normalize(word)
            if len(word) >= 2 and word not in self._words and not any(c.isspace() for c in word):
                self._words.add(word)
                _ORIGINAL_FREQ.setdefault(word, int(self._tokenizer.FREQ.get(word) or 0))
                # A high frequency keeps the whole name together against dictionary words.
                self._tokenizer.add_word(word, freq=200_000)

    @property
    def words(self) -> set[str]:
        """The user dictionary learnt so far."""
        return set(self._words)

    def cut(self, text: str) -> list[str]:
        """Precise segmentation (queries)."""
        self._ensure()
        assert self._tokenizer is not None
        return [w for w in self._tokenizer.cut(text, HMM=False) if w.strip()]

    def dictionary_cut(self, text: str) -> list[str]:
        """Words of a text by jieba's own dictionary only, the same on every node whatever it learnt."""
        self._ensure()
        assert self._tokenizer is not None
        return DictionaryWords(self._tokenizer.FREQ, _BASE_TOTAL[0], _ORIGINAL_FREQ).cut(text)

    @lru_cache(maxsize=50_000)  # noqa: B019 - one Segmenter per index, kept for the process
    def search_words(self, text: str) -> tuple[str, ...]:
        """Search-mode segmentation (indexing): whole words plus the dictionary words inside them."""
        self._ensure()
        assert self._tokenizer is not None
        words = {w for w in self._tokenizer.cut_for_search(text, HMM=False) if len(w) >= 2}
        words.add(text)
        return tuple(sorted(words))


@dataclass(frozen=True)
class QueryToken:
    """One unit of a query; every token must match (AND).

    `parts`: another reading of a Chinese token as several pieces that must all match (秘书科科长
    as 秘书科 + 科长). `sounds_like`: in the homophone fallback, the directory's words that sound
    like the token, any of which may match in its place.
    """

    text: str
    kind: str  # "han", "latin", "digits", "mixed"
    parts: tuple[str, ...] = ()
    sounds_like: tuple[str, ...] = ()


class QueryError(ValueError):
    """A query that cannot be searched; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def query_chunks(raw: str) -> list[QueryToken]:
    """Split a raw query into tokens: Chinese runs, Latin runs (joined: `zhang wei`), digit runs, mixed `张w`."""
    if raw is None or not raw.strip():
        raise QueryError("query_empty", "请输入查询内容 / The query is empty")
    if len(raw) > MAX_QUERY_CHARS:
        raise QueryError("query_too_long", f"查询内容过长（最多 {MAX_QUERY_CHARS} 字）/ The query is too long")
    text = _DIGIT_DASH.sub("", normalize(raw))
    tokens: list[QueryToken] = []
    latin_run: list[str] = []

    def flush_latin() -> None:
        if latin_run:
            tokens.append(QueryToken("".join(latin_run), "latin"))
            latin_run.clear()

    for part in _SPLIT.split(text):
        if not part:
            continue
        pieces = _CHUNK.findall(part)
        if len(pieces) == 2 and has_han(pieces[0]) and pieces[1].isalpha() and pieces[1].isascii():
            flush_latin()
            tokens.append(QueryToken(part, "mixed"))  # 张w, 张xiaom
            continue
        for piece in pieces:
            if piece.isascii() and piece.isalpha():
                latin_run.append(piece)
                continue
            flush_latin()
            tokens.append(QueryToken(piece, "digits" if piece.isdigit() else "han"))
    flush_latin()
    return tokens
