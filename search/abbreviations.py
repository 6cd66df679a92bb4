"""Short names of departments as offices really type them (经济和信息化局 → 经信局), and the irregular ones.

The rule, for a department name after its region prefix (衢州市, 江山市 ...):

1. the unit suffix (局, 委员会, 办公室, 中心 ...) is cut off as the last word;
2. the rest is cut into dictionary words by jieba's own dictionary (never by the directory's
   words, so every node derives the same words whatever it learnt first): 经济/和/信息化;
3. a query is a short name of the department when it is an ordered selection of those words'
   leading characters: each piece starts at a word boundary, pieces keep the words' order, any
   word may be skipped (和 usually is), at least two words take part and the last piece starts
   the unit suffix. 经信局 = 经(济) 信(息化) 局; 文广旅局 = 文(化) 广(电) 旅(游) 局;
   医保局 = 医(疗) 保(障) 局; 自规局 = 自(然资源) 规(划) 局; 应急局 = 应急 (管理) 局.

Names no rule derives (环保局 for 生态环境局) come from `COMMON_ALIASES` and from each
department's own aliases in the database.
"""

from __future__ import annotations

import math
from functools import lru_cache

# Unit suffixes, longest first: the last word of a department name.
UNIT_SUFFIXES = (
    "领导小组办公室",
    "委员会",
    "办公室",
    "指挥部",
    "服务中心",
    "中心",
    "支队",
    "大队",
    "中队",
    "分局",
    "局",
    "委",
    "办",
    "厅",
    "院",
    "处",
    "科",
    "室",
    "所",
    "站",
    "队",
    "部",
    "会",
    "馆",
    "社",
    "组",
)
# Characters that only join words (经济和信息化): a short name never starts a piece with them.
JOINERS = frozenset("和与及暨的之并")

# Short names no rule derives, keyed by the department name without its region (common usage in
# Chinese local government). Departments' own aliases from the database add to these.
COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "生态环境局": ("环保局",),
    "人民政府办公室": ("政府办", "府办"),
    "卫生健康委员会": ("卫健委", "卫健局"),
    "卫生健康局": ("卫健局", "卫健委"),
    "文化广电旅游局": ("文旅局", "文广旅局"),
    "文化和广电旅游体育局": ("文旅局", "文广旅体局"),
    "市场监督管理局": ("市场监管局", "市监局"),
    "自然资源和规划局": ("资规局", "自规局"),
    "综合行政执法局": ("执法局", "城管局", "综合执法局"),
    "大数据发展管理局": ("大数据局", "数据局"),
    "人力资源和社会保障局": ("人社局",),
    "住房和城乡建设局": ("住建局",),
    "发展和改革委员会": ("发改委", "发改局"),
    "经济和信息化局": ("经信局",),
    "农业农村局": ("农业局", "农办"),
    "交通运输局": ("交通局",),
    "退役军人事务局": ("退役军人局",),
    "医疗保障局": ("医保局",),
    "机关事务管理局": ("机关事务局",),
    "社会治理中心": ("矛调中心",),
}


def split_unit(core: str) -> tuple[str, str]:
    """(stem, unit suffix) of a department name without its region: 应急管理局 → (应急管理, 局)."""
    for suffix in UNIT_SUFFIXES:
        if core.endswith(suffix) and len(core) > len(suffix):
            return core[: -len(suffix)], suffix
    return core, ""


class DictionaryWords:
    """jieba's maximum-probability cut over its own dictionary only (no user words, no HMM)."""

    def __init__(self, frequencies: dict[str, int], total: int, original: dict[str, int]) -> None:
        self._freq = frequencies
        self._log_total = math.log(max(total, 1))
        self._original = original  # words the directory added → their frequency before it did

    def cut(self, text: str) -> list[str]:
        """The words of a short text, as jieba's default dictionary cuts it."""
        n = len(text)
        best: list[tuple[float, int]] = [(0.0, n)] * (n + 1)
        for start in range(n - 1, -1, -1):
            options = []
            for end in range(start + 1, min(n, start + 8) + 1):
                word = text[start:end]
                freq = self._original[word] if word in self._original else self._freq.get(word, 0)
                if end - start > 1 and not freq:
                    continue
                options.append((math.log(freq or 1) - self._log_total + best[end][0], end))
            best[start] = max(options)
        words, start = [], 0
        while start < n:
            end = best[start][1]
            words.append(text[start:end])
            start = end
        return words


def department_words(stem_words: list[str], unit: str) -> tuple[str, ...]:
    """The words a short name may take leading characters from, the unit suffix last."""
    return (*stem_words, unit) if unit else tuple(stem_words)


def is_abbreviation(query: str, words: tuple[str, ...]) -> bool:
    """Whether `query` is an ordered selection of the words' leading characters ending on the last word.

    Each piece of the query is a non-empty prefix of a word, words are taken in order (any may be
    skipped), at least two words take part, and the last piece is taken from the last word (the unit).
    """
    unit = words[-1] if words else ""
    if len(words) < 2 or len(query) < 2 or not any(query.endswith(unit[:k]) for k in range(1, len(unit) + 1)):
        return False
    return _match(query, words, 0, 0, 0)


@lru_cache(maxsize=65_536)
def _match(query: str, words: tuple[str, ...], qpos: int, wpos: int, used: int) -> bool:
    if qpos == len(query):
        return used >= 2 and wpos == len(words)
    for wi in range(wpos, len(words)):
        word = words[wi]
        if word[:1] in JOINERS and len(word) == 1:
            continue
        # Take 1..len(word) leading characters of this word, then continue after it.
        for take in range(1, len(word) + 1):
            if query[qpos : qpos + take] != word[:take]:
                break
            if _match(query, words, qpos + take, wi + 1, used + 1):
                return True
        if wi == len(words) - 1:
            break
    return False
