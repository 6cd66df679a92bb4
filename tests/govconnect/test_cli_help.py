"""CLI help reads right: flags show no value type, and a group's summary names what it holds."""

from __future__ import annotations

from collections.abc import Iterator

from typer.main import get_command
from typer.testing import CliRunner

from govconnect.cli import app


def _command_paths() -> Iterator[list[str]]:
    root = get_command(app)
    pending: list[tuple[list[str], object]] = [([], root)]
    while pending:
        path, command = pending.pop()
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            pending.append(([*path, name], sub))


def test_no_help_shows_a_type_after_a_flag() -> None:
    runner = CliRunner()
    paths = list(_command_paths())
    assert ["serve"] in paths and ["subscribers", "purge"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
    serve = runner.invoke(app, ["serve", "--help"]).output
    demo_line = next(line for line in serve.splitlines() if "--demo" in line)
    assert "<" not in demo_line and "Create demo data" in demo_line
    port_line = next(line for line in serve.splitlines() if "--port" in line)
    assert "<int>" in port_line  # options that take a value still say which kind


def test_subscribers_group_names_all_its_commands() -> None:
    runner = CliRunner()
    group = get_command(app).commands["subscribers"]  # type: ignore[attr-defined]
    summary = runner.invoke(app, ["--help"]).output
    line = next(line for line in summary.splitlines() if " subscribers " in line)
    for name in group.commands:
        assert name in (group.help or ""), name
        assert name in line, (name, line)  # and the top-level list shows it whole, not cut short
