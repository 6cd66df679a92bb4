"""Digital-TV feeds: RSS 2.0, Atom (feedgen) and JSON Feed 1.1, cut to TV limits, with ETag/Last-Modified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from feedgen.feed import FeedGenerator

from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.escaping import xml_text
from govconnect.notices.publication import PublicNotice
from govconnect.web.queries import category_names, last_changed, public_notices
from govconnect.web.rendering import CHINA_TZ, SITE_NAME, localtime, public_page

router = APIRouter(prefix="/feeds", include_in_schema=False)

# Set-top boxes show one line of title and a few lines of text.
TV_TITLE_LIMIT = 28
TV_TEXT_LIMIT = 120
FEED_SIZE = 30
MEDIA_TYPES = {
    "xml": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


def cut(text: str, limit: int) -> str:
    """Text on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class TvItem:
    """One notice as the TV channel shows it."""

    id: str
    url: str
    title: str
    text: str
    urgent: bool
    category: str
    category_name: str
    regions: list[str]
    published: datetime

    @property
    def published_local(self) -> str:
        """When it went out, in Beijing time, as the TV page shows it."""
        return localtime(self.published)

    def tv_json(self) -> dict[str, Any]:
        """The item in the JSON Feed (and the TV page's first paint): times in Beijing time."""
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "content_text": self.text,
            "date_published": self.published.astimezone(CHINA_TZ).isoformat(),
            "tags": [t for t in [self.category_name, *self.regions] if t],
            "_govconnect": {
                "urgent": self.urgent,
                "category": self.category,
                "regions": self.regions,
                "published_local": self.published_local,
            },
        }


def tv_items(notices: Sequence[PublicNotice], base_url: str, names: dict[str, str]) -> list[TvItem]:
    """Notices cut to TV limits, with characters XML cannot carry dropped (stored text never breaks a feed)."""
    return [
        TvItem(
            id=n.id,
            url=f"{base_url}/m/notices/{n.id}",
            title=cut(xml_text(n.title), TV_TITLE_LIMIT),
            text=cut(xml_text(n.body), TV_TEXT_LIMIT),
            urgent=n.urgency == "urgent",
            category=xml_text(n.category),
            category_name=xml_text(names.get(n.category, n.category)),
            regions=[xml_text(r) for r in n.regions],
            published=n.published,
        )
        for n in notices
    ]


def _feed_url(base_url: str, ext: str, category: str | None, region: str | None) -> str:
    params = {k: v for k, v in (("category", category), ("region", region)) if v}
    return f"{base_url}/feeds/tv.{ext}" + (f"?{urlencode(params)}" if params else "")


def render_rss_or_atom(items: Sequence[TvItem], base_url: str, feed_url: str, atom: bool) -> bytes:
    """RSS 2.0 or Atom 1.0 bytes from feedgen."""
    fg = FeedGenerator()
    fg.id(feed_url)
    fg.title(f"{SITE_NAME} · 电视政务频道")
    fg.subtitle("衢州市政府公开通知 / public government notices")
    # feedgen's RSS <link> is the last link given: the site (/m/), as Atom's alternate; the feed is rel=self.
    fg.link(href=feed_url, rel="self")
    fg.link(href=f"{base_url}/m/", rel="alternate")
    fg.language("zh-CN")
    if items:
        fg.updated(max(i.published for i in items))
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(item.url)
        fe.guid(item.url, permalink=True)
        fe.title(("【紧急】" if item.urgent else "") + item.title)
        fe.link(href=item.url)
        fe.summary(item.text) if atom else fe.description(item.text)
        fe.published(item.published)
        fe.updated(item.published)
        if item.category:
            fe.category(term=item.category, label=item.category_name)
        for region in item.regions:
            fe.category(term=region, label=region)
    out: bytes = fg.atom_str(pretty=False) if atom else fg.rss_str(pretty=False)
    return out


def render_json_feed(items: Sequence[TvItem], base_url: str, feed_url: str) -> bytes:
    """JSON Feed 1.1; `_govconnect` carries urgency, category and regions for TV systems."""
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{SITE_NAME} · 电视政务频道",
        "home_page_url": f"{base_url}/m/",
        "feed_url": feed_url,
        "language": "zh-CN",
        "items": [item.tv_json() for item in items],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def etag_for(kind: str, notices: Sequence[PublicNotice], category: str | None, region: str | None) -> str:
    """A strong ETag over the format, filters and each notice's id, status, urgency and publication time."""
    digest = hashlib.sha256(f"{kind}|{category}|{region}".encode())
    for n in notices:
        digest.update(f"|{n.id}:{n.status}:{n.urgency}:{n.published.isoformat()}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    """True when the client's validators still match (If-None-Match wins over If-Modified-Since)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        return etag in {t.strip().removeprefix("W/") for t in inm.split(",")} or inm.strip() == "*"
    ims = request.headers.get("if-modified-since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and last_modified.replace(microsecond=0) <= since
    return False


def _feed_response(
    request: Request, session: Any, base_url: str, kind: str, category: str | None, region: str | None
) -> Response:
    notices = public_notices(session, category=category, region=region, limit=FEED_SIZE, surface="tv")
    etag = etag_for(kind, notices, category, region)
    modified = last_changed(notices)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=30", "Vary": "Accept-Encoding"}
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    if not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    items = tv_items(notices, base_url, category_names(session))
    url = _feed_url(base_url, kind, category, region)
    body = (
        render_json_feed(items, base_url, url)
        if kind == "json"
        else render_rss_or_atom(items, base_url, url, atom=kind == "atom")
    )
    return Response(body, media_type=MEDIA_TYPES[kind], headers=headers)


Filter = Annotated[str | None, Query(max_length=64)]


@router.get("/tv.xml")
@public_page
def tv_rss(
    request: Request, session: SessionDep, settings: SettingsDep, category: Filter = None, region: Filter = None
) -> Response:
    """RSS 2.0 feed of public TV notices."""
    return _feed_response(request, session, settings.public_base_url.rstrip("/"), "xml", category, region)


@router.get("/tv.atom")
@public_page
def tv_atom(
    request: Request, session: SessionDep, settings: SettingsDep, category: Filter = None, region: Filter = None
) -> Response:
    """Atom feed of public TV notices."""
    return _feed_response(request, session, settings.public_base_url.rstrip("/"), "atom", category, region)


@router.get("/tv.json")
@public_page
def tv_json(
    request: Request, session: SessionDep, settings: SettingsDep, category: Filter = None, region: Filter = None
) -> Response:
    """JSON Feed 1.1 of public TV notices."""
    return _feed_response(request, session, settings.public_base_url.rstrip("/"), "json", category, region)
