"""Pages draw with the fonts a phone has: no pictographs that need an emoji font (a CJK-only phone shows a box)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import govconnect.web

WEB = Path(govconnect.web.__file__).parent


def test_templates_and_scripts_use_text_not_pictographs() -> None:
    found = {}
    for path in sorted([*WEB.glob("templates/*.html"), *WEB.glob("static/*.js"), *WEB.glob("static/*.css")]):
        symbols = sorted({ch for ch in path.read_text(encoding="utf-8") if unicodedata.category(ch) == "So"})
        if symbols:
            found[path.name] = symbols
    assert found == {}
