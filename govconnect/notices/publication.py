"""What the public channels (site, TV page and feeds, Weibo) show of a notice, decided once.

A notice may be personalised for the people it reaches (`((name))您好：…`), but a public channel
has no recipient: `public_text` fills a name with the neutral 市民 and drops any other
placeholder, and `accept` refuses placeholders other than a name on public channels (422
`placeholder_on_public_channel`), so only old rows ever lose one. `publishing_regions` makes the
regions a notice was sent to its publishing regions when the sender gave none, and
`published_time` is when it went out (a scheduled notice: its send time, not its creation).
Every public surface reads a notice through `public_view`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govconnect.notices.policy import PLACEHOLDER, placeholders

# Placeholders a public channel can fill: the recipient's name becomes the neutral 市民.
PUBLIC_FILL: dict[str, str] = {"name": "市民", "姓名": "市民", "称呼": "市民"}


def public_text(text: str) -> str:
    """The text as a public channel shows it: a name placeholder reads 市民, any other is left out."""
    return PLACEHOLDER.sub(lambda m: PUBLIC_FILL.get(m.group(1), ""), text)


def unfit_for_public(*texts: str) -> list[str]:
    """Placeholders in these texts that a public channel cannot fill (sorted)."""
    used: set[str] = set()
    for text in texts:
        used |= placeholders(text)
    return sorted(used - PUBLIC_FILL.keys())


def publishing_regions(regions: Iterable[str], audience: Mapping[str, Any]) -> list[str]:
    """The notice's own regions or, when it names none, the regions of the audience it was sent to.

    Subscribers chosen without a region are everyone: the notice is then for the whole city ([]).
    """
    own = [r for r in regions if r]
    if own:
        return own
    subscribers = audience.get("subscribers")
    if isinstance(subscribers, Mapping) and not subscribers.get("regions"):
        return []
    found: list[str] = []
    for source in ("subscribers", "staff"):
        spec = audience.get(source)
        if isinstance(spec, Mapping):
            found.extend(str(r) for r in spec.get("regions") or [] if r)
    return list(dict.fromkeys(found))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def published_time(notice: Any) -> datetime:
    """When the notice went out: recorded at fan-out; before that its send time, else its creation."""
    if notice.published_at is not None:
        return _aware(notice.published_at)
    created = _aware(notice.created_at)
    if notice.send_at is not None and _aware(notice.send_at) > created:
        return _aware(notice.send_at)
    return created


@dataclass(frozen=True)
class PublicNotice:
    """A notice as the public sees it: public title and text, publishing regions, time it went out."""

    id: str
    agency_id: int
    title: str
    body: str
    category: str
    regions: list[str]
    urgency: str
    channels: list[str]
    status: str
    published: datetime


def public_view(notice: Any) -> PublicNotice:
    """The public face of a stored notice."""
    return PublicNotice(
        id=notice.id,
        agency_id=notice.agency_id,
        title=public_text(notice.title),
        body=public_text(notice.body),
        category=notice.category,
        regions=publishing_regions(notice.regions or [], notice.audience or {}),
        urgency=notice.urgency,
        channels=list(notice.channels or []),
        status=notice.status,
        published=published_time(notice),
    )
