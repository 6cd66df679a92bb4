"""What `serve --demo` tells the newcomer: the accounts it made and where to look."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer


@dataclass
class DemoInfo:
    """What the banner prints."""

    agency_code: str
    api_key: str
    operator: str
    operator_password: str
    notes: list[str] = field(default_factory=list)


def print_demo_banner(info: DemoInfo, host: str, port: int) -> None:
    """Tell the newcomer how to try the API."""
    base = f"http://{host}:{port}"
    lines = [
        "",
        "GovConnect demo 演示模式",
        f"  agency 机构:        {info.agency_code}",
        f"  API key 密钥:       {info.api_key}",
        f"  operator 操作员:    {info.operator} / password 密码: {info.operator_password}",
        f"  try:  curl -H 'Authorization: Bearer {info.api_key}' {base}/api/v1/agencies/me",
        f"  docs: {base}/docs",
        *[f"  {note}" for note in info.notes],
        "",
    ]
    typer.echo("\n".join(lines))
