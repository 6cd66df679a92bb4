"""Help text that reads right: a flag is shown without a value type.

Typer's rich help prints each option's type after it, flags included: `--demo <bool>` reads as if
the flag needed a value (`--demo true`). Typer's own plain help leaves the type out for flags and
counters (`TyperOption.get_help_record`); `hide_flag_types` applies the same rule to the rich help.
`tests/govconnect/test_cli_help.py` renders every command's help and fails if a `<bool>` is back.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_installed = False


def hide_flag_types() -> None:
    """Rich help: no type after a flag or a counter (idempotent)."""
    global _installed
    if _installed:
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> Any:
        if self.is_flag or self.count:
            return None
        return shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    _installed = True
