"""The monthly scorecard as a server-rendered SVG bar chart (no script, no external resources)."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 44, 40
COLOURS = {"delivered": "#2e7d32", "failed": "#c62828", "other": "#9e9e9e"}


def _text(x: float, y: float, content: str, size: int = 12, anchor: str = "start") -> str:
    # Every label goes through markupsafe's escape: agency names come from an admin's input.
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-family="sans-serif">{escape(content)}</text>'
    )


def scorecard_svg(agency_name: str, card: dict[str, Any]) -> str:
    """Daily delivered / failed / other stacked bars for the month, with the headline rates in the title."""
    days = card["days"]
    peak = max([d["deliveries"] for d in days] + [d["delivered"] + d["failed"] for d in days] + [1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    rate = card["delivery_rate"]
    timely = card["timeliness"]
    title = (
        f"{agency_name} {card['month']} 送达率 {'—' if rate is None else f'{rate:.1%}'}"
        f" · 及时率 {'—' if timely is None else f'{timely:.1%}'} · 退订 {card['optouts']}"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        _text(LEFT, 24, title, 14),
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#333"/>',
        _text(LEFT - 6, TOP + 4, str(peak), 10, "end"),
        _text(LEFT - 6, TOP + plot_h, "0", 10, "end"),
    ]
    for i, day in enumerate(days):
        other = max(0, day["deliveries"] - day["delivered"] - day["failed"])
        x = LEFT + i * slot + slot * 0.15
        y = TOP + plot_h
        for name, value in (("delivered", day["delivered"]), ("failed", day["failed"]), ("other", other)):
            if value <= 0:
                continue
            height = plot_h * value / peak
            y -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
                f'fill="{COLOURS[name]}"><title>{escape(day["day"])} {name} {value}</title></rect>'
            )
        if i % 5 == 0:
            parts.append(_text(x, TOP + plot_h + 14, day["day"][5:], 10))
    legend_y = HEIGHT - 10
    for j, (name, label) in enumerate((("delivered", "已送达"), ("failed", "失败"), ("other", "未知/进行中"))):
        lx = LEFT + j * 120
        parts.append(f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS[name]}"/>')
        parts.append(_text(lx + 14, legend_y, label, 11))
    parts.append("</svg>")
    return "\n".join(parts)
