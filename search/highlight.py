"""Highlights: which parts of a result's visible fields matched the query (HTML-escaped, <em> marks)."""

from __future__ import annotations

import html
from typing import Any

from search.analyzer import QueryToken, name_syllables, normalize, pinyin_full


def _mark(text: str, spans: set[int]) -> str:
    out, inside = [], False
    for i, ch in enumerate(text):
        if (i in spans) != inside:
            out.append("<em>" if not inside else "</em>")
            inside = not inside
        out.append(html.escape(ch))
    if inside:
        out.append("</em>")
    return "".join(out)


def _literal(text: str, needle: str, spans: set[int]) -> None:
    if not needle:
        return
    norm = normalize(text)
    start = norm.find(needle)
    while start >= 0 and len(norm) == len(text):
        spans.update(range(start, start + len(needle)))
        start = norm.find(needle, start + 1)


def _pinyin_walk(name: str, key: str, spans: set[int]) -> None:
    """Mark the name's characters a pinyin / initials / mixed key covers (zw → 张伟, 张w → 张伟)."""
    sylls = name_syllables(normalize(name))
    pos = 0
    covered: set[int] = set()
    for i, ch in enumerate(name):
        if pos >= len(key) or i >= len(sylls):
            break
        if key[pos] == normalize(ch):
            pos += 1
            covered.add(i)
            continue
        readings = sorted(sylls[i], key=len, reverse=True)
        step = next((len(r) for r in readings if r and key.startswith(r, pos)), 0)
        if not step:
            step = next((len(key) - pos for r in readings if r.startswith(key[pos:])), 0)
        if not step and any(r[:1] == key[pos] for r in readings):
            step = 1
        if not step:
            break
        pos += step
        covered.add(i)
    if pos >= len(key):  # only a key the name fully explains is highlighted
        spans.update(covered)


def _phone_tail(text: str, digits: str, spans: set[int]) -> None:
    if not digits:
        return
    pos = len(digits)
    marked = set()
    for i in range(len(text) - 1, -1, -1):
        if pos == 0:
            break
        if text[i].isdigit():
            if text[i] != digits[pos - 1]:
                return
            marked.add(i)
            pos -= 1
    if pos == 0:
        spans.update(marked)


def highlights(item: dict[str, Any], tokens: list[QueryToken]) -> dict[str, str]:
    """Field → HTML-escaped text with <em> around what matched."""
    spans: dict[str, set[int]] = {}
    for token in tokens:
        for fieldname in ("name", "department_path", "position", "region"):
            text = item.get(fieldname) or ""
            marks = spans.setdefault(fieldname, set())
            if token.kind == "han":
                _literal(text, token.text, marks)
            if fieldname == "name" and token.kind in ("latin", "mixed"):
                _pinyin_walk(text, token.text, marks)
            if fieldname == "name" and token.kind == "han" and not marks:
                _pinyin_walk(text, pinyin_full(token.text), marks)
        if token.kind == "digits":
            for fieldname in ("office_phone", "mobile", "short_number"):
                if item.get(fieldname):
                    _phone_tail(item[fieldname], token.text, spans.setdefault(fieldname, set()))
    return {name: _mark(str(item[name]), marks) for name, marks in spans.items() if marks and item.get(name)}
