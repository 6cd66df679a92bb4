"""Operators compose and send a notice from the phone, then watch its progress."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from govconnect.agencies.models import Agency, StaffUser
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.audit.record import Actor
from govconnect.citizens.subscriptions import active_categories, active_regions
from govconnect.clock import utcnow
from govconnect.errors import DomainError
from govconnect.notices import service
from govconnect.notices.intake import accept_and_enqueue
from govconnect.notices.models import NOTICE_STATUS_NAMES, Notice
from govconnect.notices.schemas import AudienceSpec, NoticeCreate, SubscriberAudience
from govconnect.text_rules import MultilineText, Text
from govconnect.web.rendering import error_page, render
from govconnect.web.session import client_ip, require_role, verify_csrf
from govconnect.web.weibo_view import agency_posts, requeue_failed_post

router = APIRouter(prefix="/m/staff", include_in_schema=False, dependencies=[Depends(verify_csrf)])
OperatorDep = Annotated[StaffUser, Depends(require_role("operator"))]
# Approvers follow the sign-in link in their SMS to the notice's page.
ReaderDep = Annotated[StaffUser, Depends(require_role("operator", "approver"))]
ListForm = Annotated[list[Text], Form()]
CHANNEL_CHOICES = (
    ("sms", "短信"),
    ("wechat", "微信"),
    ("voice", "语音"),
    ("site", "网站"),
    ("tv", "电视"),
    ("weibo", "微博"),
)
STATUS_NAMES = NOTICE_STATUS_NAMES


def _form_context(session: Session, **extra: Any) -> dict[str, Any]:
    return {
        "category_list": active_categories(session),
        "region_list": active_regions(session),
        "channel_choices": CHANNEL_CHOICES,
        "nonce": secrets.token_urlsafe(12),
        "form": {
            "title": "",
            "body": "",
            "category": "",
            "regions": [],
            "channels": ["sms", "site", "tv"],
            "urgent": False,
        },
        **extra,
    }


@router.get("/compose", response_class=HTMLResponse)
def compose_page(request: Request, session: SessionDep, operator: OperatorDep) -> Response:
    """The compose form."""
    return render(request, "compose.html", _form_context(session), session=session)


@router.post("/compose", response_class=HTMLResponse)
async def compose_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    operator: OperatorDep,
    title: Annotated[Text, Form(max_length=200)] = "",
    body: Annotated[MultilineText, Form(max_length=5000)] = "",
    category: Annotated[Text, Form(max_length=64)] = "",
    urgent: Annotated[Text, Form(max_length=10)] = "",
    nonce: Annotated[Text, Form(max_length=50)] = "",
    region: ListForm = [],  # noqa: B006
    channel: ListForm = [],  # noqa: B006
) -> Response:
    """Accept the notice through the pipeline (the nonce makes a double tap idempotent) and show its progress."""
    form = {
        "title": title,
        "body": body,
        "category": category,
        "regions": region,
        "channels": channel,
        "urgent": bool(urgent),
    }
    agency = session.get(Agency, operator.agency_id)
    if agency is None:
        return error_page(request, 403, "账号未关联机构")
    try:
        data = NoticeCreate(
            title=title.strip(),
            body=body.strip(),
            category=category,
            regions=region,
            urgency="urgent" if urgent else "normal",
            channels=channel,
            audience=AudienceSpec(
                subscribers=SubscriberAudience(categories=[category] if category else [], regions=region)
            ),
        )
        notice, _created = await accept_and_enqueue(
            request.app.state.queue,
            session,
            agency,
            data,
            f"m-compose-{operator.id}-{nonce}",
            settings,
            utcnow(),
            Actor.staff(operator, client_ip(request)),
            sees_staff_contacts=True,  # a signed-in operator sees the whole directory
        )
    except (ValidationError, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else "请填写标题、正文并至少选择一个渠道"
        ctx = _form_context(session, form=form, message=message, message_kind="error")
        return render(request, "compose.html", ctx, session=session, status_code=400)
    return RedirectResponse(f"/m/staff/notices/{notice.id}", status_code=303)


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_progress(request: Request, session: SessionDep, operator: ReaderDep, notice_id: str) -> Response:
    """A notice of the operator's agency with per-channel progress (refreshes itself while sending)."""
    notice = session.get(Notice, notice_id) if len(notice_id) <= 32 else None
    if notice is None or notice.agency_id != operator.agency_id:
        return error_page(request, 404, "通知不存在")
    progress = service.notice_public(session, notice)
    done = notice.status not in ("accepted", "scheduled", "approved", "sending")
    headers = {} if done else {"Refresh": "3"}
    return render(
        request,
        "progress.html",
        {
            "notice": progress,
            "status_name": STATUS_NAMES.get(notice.status, notice.status),
            "done": done,
            "channel_names": dict(CHANNEL_CHOICES),
        },
        session=session,
        headers=headers,
    )


@router.get("/weibo", response_class=HTMLResponse)
def weibo_status(request: Request, session: SessionDep, settings: SettingsDep, operator: OperatorDep) -> Response:
    """The agency's Weibo posts: posted, being retried (with the last error) or failed."""
    posts = agency_posts(session, operator.agency_id, settings.public_base_url)
    return render(request, "weibo_status.html", {"posts": posts}, session=session)


@router.post("/weibo/{delivery_id}/retry")
async def weibo_retry(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    operator: OperatorDep,
    delivery_id: str,
) -> Response:
    """Post a failed Weibo post again."""
    notice_id = await run_in_threadpool(
        requeue_failed_post, session, operator.agency_id, delivery_id[:32], settings.notices.deadline_seconds
    )
    if notice_id is None:
        return error_page(request, 404, "没有可重发的微博")
    await request.app.state.queue.enqueue("send_deliveries", notice_id=notice_id, channel="weibo", ids=[delivery_id])
    return RedirectResponse("/m/staff/weibo", status_code=303)
