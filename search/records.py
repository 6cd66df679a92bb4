"""The plain record the directory indexes, and the terms each field gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.analyzer import (
    Segmenter,
    derived_aliases,
    given_name_key_sets,
    has_han,
    name_substrings,
    normalize,
    phone_digits,
    region_short,
    stable_hash,
    surname_keys,
)

# Fields only privileged viewers (staff, keys with contacts:write) may see or match on.
PRIVATE_FIELDS = ("mobile", "short_number", "email")
PUBLIC_VISIBILITY = "public"


@dataclass
class DirectoryRecord:
    """One contact as the index sees it: display values plus what ranking and privacy need."""

    id: int
    name: str
    department: str = ""
    department_path: str = ""
    department_id: int = 0
    position: str = ""
    office_phone: str = ""
    mobile: str = ""
    short_number: str = ""
    email: str = ""
    region: str = ""
    visibility: str = PUBLIC_VISIBILITY
    sort_order: int = 0

    def display(self) -> dict[str, Any]:
        """The values shown to a (privileged) viewer."""
        return dict(self.__dict__)


@dataclass
class DepartmentInfo:
    """A department as the index needs it: for matching by name/alias, filtering by subtree, ordering."""

    id: int
    name: str
    path: str
    parent_id: int | None = None
    aliases: list[str] = field(default_factory=list)
    region: str = ""
    rank: int = 0


def department_words(dept: DepartmentInfo, segmenter: Segmenter) -> set[str]:
    """Words that find a department: its name, aliases, the dictionary words inside them, its region."""
    words: set[str] = set()
    for term in (dept.name, *dept.aliases, *derived_aliases(dept.name, dept.region)):
        term = normalize(term)
        if term:
            words.update(segmenter.search_words(term) if has_han(term) else (term,))
    region = normalize(dept.region)
    if region:
        words.update({region, region_short(region)})
    return {w for w in words if w}


def record_terms(record: DirectoryRecord, segmenter: Segmenter) -> dict[str, list[str]]:
    """Field → terms for one record (the index stores them as given; no whoosh analysis).

    Only name, position and region words go into posting lists. Department words live in a small
    per-department table and phone numbers in numeric columns: indexing them per contact would
    multiply the index size (and the build time) for no gain in speed.
    """
    name = normalize(record.name).replace(" ", "")
    region = normalize(record.region)
    position = normalize(record.position)
    usual, other = given_name_key_sets(name) if len(name) >= 2 else (frozenset(), frozenset())
    return {
        "name_part": sorted(name_substrings(name)) if len(name) <= 8 else [],
        "sur_py": sorted(surname_keys(name)) if name else [],
        "given_py": sorted(usual),
        "given_alt": sorted(other),
        "pos": [t for t in segmenter.search_words(position) if " " not in t] if position else [],
        "area": sorted({region, region_short(region)}) if region else [],
    }


# How senior a position is, for ordering people of equal relevance (0 = heads an agency).
HEAD_TITLES = ("局长", "书记", "主任", "市长", "区长", "县长", "厅长", "院长", "主席", "部长", "委员长", "秘书长")
SENIOR_TITLES = ("党组成员", "总工程师", "总经济师", "总会计师", "总师")
STAFF_ENDINGS = ("科员", "办事员", "调研员", "值班员", "秘书", "文书", "干部", "工作人员")
LEAD_STAFF, LEAD_NONE = 4, 5


def leadership_rank(position: str) -> int:
    """0 agency head (局长, 主任), 1 deputy head or senior (副局长, 党组成员), 2 head of a section
    (科长, 办公室主任), 3 its deputy (副科长), 4 staff (科员), 5 no position given."""
    title = normalize(position).replace(" ", "")
    if not title:
        return LEAD_NONE
    if title.endswith(STAFF_ENDINGS):
        return LEAD_STAFF
    deputy = "副" in title
    if title in HEAD_TITLES or title in ("党组书记", "党委书记"):
        return 0
    if title.replace("副", "", 1) in HEAD_TITLES or title in SENIOR_TITLES:
        return 1
    if title.endswith(("长", "主任", "书记")):
        return 3 if deputy else 2
    return LEAD_STAFF


def name_hashes(name: str) -> dict[str, int]:
    """Hash columns for the whole name and its 1-3 character prefixes (exact and prefix matches)."""
    name = normalize(name).replace(" ", "")
    out = {"name_h0": stable_hash(name)}
    for n in (1, 2, 3):
        out[f"name_h{n}"] = stable_hash(name[:n]) if len(name) > n else 0
    return out


def phone_number(value: str | None) -> int:
    """The phone's digits as an integer column value (-1 when empty); tails compare by modulo."""
    digits = phone_digits(value)
    return int(digits[-18:]) if digits else -1
