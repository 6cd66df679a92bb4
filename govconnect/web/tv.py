"""The TV page `/tv/`: large type, rotating headlines, urgent takeover, driven by a remote control."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.citizens.subscriptions import active_categories
from govconnect.web.feeds import FEED_SIZE, tv_items
from govconnect.web.queries import category_names, public_notices
from govconnect.web.rendering import SITE_NAME, TEMPLATES, public_page

router = APIRouter(include_in_schema=False)


@router.get("/tv/", response_class=HTMLResponse)
@public_page
def tv_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    region: Annotated[str | None, Query(max_length=64)] = None,
    poll: Annotated[int, Query(ge=2, le=600)] = 30,
    rotate: Annotated[int, Query(ge=2, le=120)] = 8,
) -> Response:
    """Headlines rendered on the server (readable at once), refreshed from /feeds/tv.json."""
    names = category_names(session)
    notices = public_notices(session, region=region or None, limit=FEED_SIZE, surface="tv")
    items = tv_items(notices, "", names)
    initial = [i.tv_json() for i in items]
    tabs = [{"code": "", "name": "全部"}] + [{"code": c.code, "name": c.name} for c in active_categories(session)]
    config = {"poll": poll, "rotate": rotate, "region": region or "", "feed": "/feeds/tv.json"}
    return TEMPLATES.TemplateResponse(
        request,
        "tv.html",
        {
            "site_name": SITE_NAME,
            "items": items,
            "tabs": tabs,
            "tv_data": {"config": config, "items": initial},
        },
        headers={"Cache-Control": "no-cache"},
    )
