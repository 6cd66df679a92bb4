"""The `govconnect` command line: the entry point that gathers one module per area.

Area modules (`agencies`, `citizens`, `directory`, `sandbox`, `server`) take their shared helpers
from `govconnect.cli.common` and never import this entry point.
"""

from __future__ import annotations

import os

import typer

from govconnect.cli import agencies, citizens, directory, operations, sandbox, server
from govconnect.cli.help_format import hide_flag_types

hide_flag_types()  # `--demo`, not `--demo <bool>`

app = typer.Typer(
    help="GovConnect 政务消息网关: government notification gateway (SMS, voice, WeChat, WeCom, Weibo).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
agencies.register(app)
citizens.register(app)
directory.register(app)
sandbox.register(app)
operations.register(app)


def main() -> None:
    """Entry point of the console script."""
    from govconnect.logging import install_log_masking

    # Everything this process creates (data dir, SQLite files, indexes, exports) is private to its user.
    os.umask(0o077)
    install_log_masking()  # every command: no mobile or secret in a log line, whoever configures handlers
    app()
