"""Channels are listed once (channels/catalogue.py); everything else reads that table."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from channels.catalogue import CATALOGUE, CHANNEL_NAMES, PROVIDER_NAMES
from channels.registry import PROVIDERS
from govconnect.notices.providers import channel_providers
from govconnect.notices.schemas import Channel
from govconnect.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_schema_offers_exactly_the_catalogued_channels() -> None:
    assert typing.get_args(Channel) == CHANNEL_NAMES


def test_every_catalogued_provider_has_an_adapter_and_a_route(tmp_path: Path) -> None:
    assert set(PROVIDERS) == set(PROVIDER_NAMES)
    routes = channel_providers(Settings(data_dir=tmp_path))
    assert {c for c, providers in routes.items() if providers} == {i.name for i in CATALOGUE if i.providers}


def _names_channels(node: ast.AST, names: set[str]) -> bool:
    """A tuple/list/set/dict literal of three or more channel names (and nothing else)."""
    if isinstance(node, ast.Dict):
        elements = [key for key in node.keys if key is not None]
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        elements = list(node.elts)
    else:
        return False
    values = {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return len(values) >= 3 and values <= names and len(values) == len(elements)


def test_no_module_keeps_its_own_list_of_channels() -> None:
    """A module-level constant (or an inline loop) over three or more channel names is a second catalogue.

    Demo data and form defaults choose channels; only these kinds of lists describe them.
    """
    names = set(CHANNEL_NAMES)
    found = []
    for package in ("govconnect", "channels", "search", "contacts"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "catalogue.py" or "migrations" in path.parts or "demo" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            constants = [n.value for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign) and n.value]
            loops = [n.iter for n in ast.walk(tree) if isinstance(n, ast.For | ast.comprehension)]
            for node in constants + loops:
                if _names_channels(node, names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
