"""What `serve --demo` tells the newcomer: the accounts it made and where to look."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from govconnect.demo.credentials import DemoCredentials


@dataclass
class DemoInfo:
    """What the banner prints."""

    agency_code: str
    api_key: str
    operator: str
    operator_password: str
    notes: list[str] = field(default_factory=list)
    credentials: DemoCredentials | None = None


def print_demo_banner(info: DemoInfo, host: str, port: int) -> None:
    """Tell the newcomer how to try the API."""
    base = f"http://{host}:{port}"
    lines = ["", "GovConnect demo 演示模式", *_what_changed(info)]
    lines += [
        f"  agency 机构:        {info.agency_code}",
        f"  API key 密钥:       {info.api_key}",
        f"  operator 操作员:    {info.operator} / password 密码: {info.operator_password}",
        f"  try:  curl -H 'Authorization: Bearer {info.api_key}' {base}/api/v1/agencies/me",
        f"  docs: {base}/docs",
        *[f"  {note}" for note in info.notes],
        "",
    ]
    typer.echo("\n".join(lines))


def _what_changed(info: DemoInfo) -> list[str]:
    """Loud when a credential printed at an earlier start no longer works; quiet reassurance when all still do."""
    credentials = info.credentials
    if credentials is None:
        return []
    if not credentials.changed:
        if not credentials.existed:
            return []
        return [f"  (same credentials as the last start 与上次启动相同; kept in {credentials.path})"]
    bar = "  " + "!" * 72
    return [
        bar,
        "  !! CHANGED 已更换: " + ", ".join(credentials.changed),
        "  !! the old ones no longer work; use the ones below 旧的已失效，请使用下面的新凭据",
        bar,
    ]
