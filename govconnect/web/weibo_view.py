"""The official microblog as the site shows it: what we posted (public notices flagged for Weibo)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from govconnect.notices.models import Notice
from govconnect.web.queries import public_notices

WEIBO_LIMIT = 140


@dataclass(frozen=True)
class WeiboPost:
    """One post of the official account."""

    text: str
    url: str
    created_at: datetime


def notice_url(base_url: str, notice_id: str) -> str:
    """The link back to a notice on the mobile site."""
    return f"{base_url.rstrip('/')}/m/notices/{notice_id}"


def weibo_text(notice: Notice, base_url: str) -> str:
    """The post for a notice: 【title】body, cut so that text plus link fit in 140 characters."""
    link = notice_url(base_url, notice.id)
    head = f"【{notice.title}】{notice.body}".replace("\n", " ")
    room = WEIBO_LIMIT - len(link) - 1
    if len(head) > room:
        head = head[: max(room - 1, 0)] + "…"
    return f"{head} {link}"


def recent_posts(session: Session, limit: int = 20) -> list[WeiboPost]:
    """Recent posts: public notices flagged for Weibo, newest first."""
    return [
        WeiboPost(text=f"【{n.title}】{n.body}"[:WEIBO_LIMIT], url=f"/m/notices/{n.id}", created_at=n.created_at)
        for n in public_notices(session, surface="weibo", limit=limit)
    ]
