"""Meta-test: every free-text field a client can send (JSON bodies and web forms) goes through text_rules."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel

from govconnect.app import create_app
from govconnect.settings import Settings
from govconnect.text_rules import multiline, no_bidi_controls, no_control_characters
from tests.routes import api_routes

RULES = {no_control_characters, multiline, no_bidi_controls}


def _has_rule(metadata: list[Any]) -> bool:
    return any(isinstance(m, AfterValidator) and m.func in RULES for m in metadata)


def unchecked_text(annotation: Any, metadata: list[Any], where: str, seen: set[type]) -> list[str]:
    """Where a `str` can arrive without passing a text rule."""
    if _has_rule(metadata):
        return []
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return unchecked_text(base, [*metadata, *extra], where, seen)
    if origin in (Union, types.UnionType, list, set, tuple, frozenset):
        return [bad for arg in get_args(annotation) for bad in unchecked_text(arg, [], where, seen)]
    if origin is Literal or annotation in (type(None), int, float, bool) or origin is dict:
        return []
    if annotation is str:
        return [where]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            bad
            for name, info in annotation.model_fields.items()
            for bad in unchecked_text(info.annotation, list(info.metadata), f"{annotation.__name__}.{name}", seen)
        ]
    return []


def test_every_body_and_form_text_field_uses_a_text_rule(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, secret_key="x" * 20))  # noqa: S106
    unchecked: list[str] = []
    checked_fields = 0
    for path, route in api_routes(app):
        if not route.methods & {"POST", "PUT", "PATCH"}:
            continue
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            stack.extend(dependant.dependencies)
            for field in dependant.body_params:
                info = field.field_info
                found = unchecked_text(info.annotation, list(info.metadata), f"{path} {field.alias}", set())
                unchecked.extend(found)
                checked_fields += 1
    assert checked_fields > 20
    assert unchecked == []
