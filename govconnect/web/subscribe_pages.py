"""Subscription pages: subscribe with an SMS code, change preferences, leave (form, signed link or code)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from channels.catalogue import BY_NAME, SUBSCRIBER_CHANNELS
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.citizens.models import Subscriber
from govconnect.citizens.optout import leave
from govconnect.citizens.subscriptions import (
    Preferences,
    active_categories,
    active_regions,
    allowed_channels,
    check_code,
    clean_preferences,
    code_text,
    preferences_of,
    request_code,
    set_preferences,
    subscribe_phone,
    subscriber_by_phone,
    subscriber_from_token,
)
from govconnect.db import session_scope
from govconnect.errors import DomainError
from govconnect.security import mask_phone
from govconnect.settings import Settings
from govconnect.suppression.service import lift as lift_suppression
from govconnect.text_rules import Text
from govconnect.web.rendering import error_page, public_page, render
from govconnect.web.session import client_ip, verify_csrf

log = logging.getLogger("govconnect.web")
router = APIRouter(prefix="/m", include_in_schema=False, dependencies=[Depends(verify_csrf)])

CHANNEL_NAMES = {name: BY_NAME[name].label for name in SUBSCRIBER_CHANNELS}
ListForm = Annotated[list[Text], Form()]


def _options(channels: list[str]) -> list[tuple[str, str]]:
    return [(c, CHANNEL_NAMES[c]) for c in channels]


def _subscribe_context(request: Request, session: Session, **extra: Any) -> dict[str, Any]:
    pending = request.session.get("sub_phone")
    return {
        "pending_phone": pending,
        "pending_phone_masked": mask_phone(pending) if pending else "",
        "category_list": active_categories(session),
        "region_list": active_regions(session),
        "chosen": Preferences([c.code for c in active_categories(session)], [], ["sms"]),
        "channel_options": _options(["sms", "voice"]),
        **extra,
    }


async def _send_code(request: Request, settings: Settings, phone: str, purpose: str) -> str | None:
    """Issue a code and hand it to the SMS sender; returns an error message or None."""
    secret = settings.secret_key.get_secret_value()

    budget = request.app.state.code_budget

    def issue() -> tuple[str, str]:
        with session_scope(request.app.state.engine) as db:
            return request_code(db, secret, phone, client_ip(request), purpose, budget=budget)

    try:
        number, code = await run_in_threadpool(issue)
    except DomainError as exc:
        return exc.message
    sender = getattr(request.app.state, "code_sender", None)
    if sender is None:
        return "短信服务暂不可用，请稍后再试"
    try:
        await sender(request.app, number, code_text(purpose, code))
    except Exception:  # noqa: BLE001 - any provider failure becomes a message, never a 500
        log.exception("verification code could not be sent")
        return "验证码发送失败，请稍后再试"
    request.session["sub_phone" if purpose == "subscribe" else "unsub_phone"] = number
    return None


@router.get("/subscribe", response_class=HTMLResponse)
@public_page
def subscribe_page(request: Request, session: SessionDep) -> Response:
    """Step 1 (number) or step 2 (code and choices) of subscribing."""
    return render(request, "subscribe.html", _subscribe_context(request, session))


@router.post("/subscribe/code", response_class=HTMLResponse)
@public_page
async def subscribe_code(
    request: Request, settings: SettingsDep, phone: Annotated[Text, Form(max_length=20)] = ""
) -> Response:
    """Send a 6-digit code to the number (limited per number, and more loosely per client address)."""
    error = await _send_code(request, settings, phone, "subscribe")
    if error:
        return await run_in_threadpool(_render_subscribe_error, request, error, phone)
    return RedirectResponse("/m/subscribe", status_code=303)


def _render_subscribe_error(request: Request, message: str, phone: str = "") -> Response:
    with Session(request.app.state.engine) as db:
        ctx = _subscribe_context(request, db, message=message, message_kind="error", phone=phone)
        return render(request, "subscribe.html", ctx, status_code=400)


@router.post("/subscribe/restart")
@public_page
def subscribe_restart(request: Request) -> Response:
    """Forget the pending number."""
    request.session.pop("sub_phone", None)
    return RedirectResponse("/m/subscribe", status_code=303)


@router.post("/subscribe/confirm", response_class=HTMLResponse)
@public_page
def subscribe_confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[Text, Form(max_length=10)] = "",
    category: ListForm = [],  # noqa: B006 - FastAPI copies defaults
    region: ListForm = [],  # noqa: B006
    channel: ListForm = [],  # noqa: B006
) -> Response:
    """Check the code, then subscribe with the chosen categories, regions and channels."""
    phone = request.session.get("sub_phone")
    if not isinstance(phone, str):
        return error_page(request, 400, "页面已过期，请重新获取验证码")
    try:
        prefs = clean_preferences(session, category, region, channel, allowed_channels=["sms", "voice"])
        check_code(session, settings.secret_key.get_secret_value(), phone, code)
    except DomainError as exc:
        session.commit()  # a wrong try counts even though the request failed
        ctx = _subscribe_context(request, session, message=exc.message, message_kind="error")
        ctx["chosen"] = Preferences(category, region, channel)
        return render(request, "subscribe.html", ctx, session=session, status_code=400)
    subscriber = subscribe_phone(session, phone, prefs)
    # Subscribing with a verified code is new consent: an earlier opt-out no longer holds.
    lift_suppression(session, settings.secret_key.get_secret_value(), phone)
    session.commit()
    request.session.pop("sub_phone", None)
    request.session["subscriber_id"] = subscriber.id
    return RedirectResponse("/m/subscription?ok=1", status_code=303)


def _own_subscriber(request: Request, session: Session) -> Subscriber | None:
    subscriber_id = request.session.get("subscriber_id")
    return session.get(Subscriber, subscriber_id) if isinstance(subscriber_id, int) else None


def _manage_context(request: Request, session: Session, subscriber: Subscriber, **extra: Any) -> dict[str, Any]:
    return {
        "subscriber": subscriber,
        "who": mask_phone(subscriber.phone) if subscriber.phone else "微信用户",
        "category_list": active_categories(session),
        "region_list": active_regions(session),
        "chosen": preferences_of(session, subscriber),
        "channel_options": _options(allowed_channels(subscriber)),
        **extra,
    }


@router.get("/subscription", response_class=HTMLResponse)
@public_page
def manage_page(request: Request, session: SessionDep, ok: str = "") -> Response:
    """The verified subscriber's preferences."""
    subscriber = _own_subscriber(request, session)
    if subscriber is None:
        return RedirectResponse("/m/subscribe", status_code=303)
    message = "订阅成功" if ok == "1" else ("已退订，您将不再收到通知" if ok == "left" else None)
    return render(request, "manage.html", _manage_context(request, session, subscriber, message=message))


@router.get("/s/{token}")
@public_page
def manage_link(request: Request, session: SessionDep, settings: SettingsDep, token: str) -> Response:
    """A signed manage link (sent to WeChat followers): opens their preferences."""
    subscriber = subscriber_from_token(session, settings.secret_key.get_secret_value(), token)
    if subscriber is None:
        return error_page(request, 404, "链接无效", "This link is not valid.")
    request.session["subscriber_id"] = subscriber.id
    return RedirectResponse("/m/subscription", status_code=303)


@router.post("/subscription", response_class=HTMLResponse)
@public_page
def manage_submit(
    request: Request,
    session: SessionDep,
    category: ListForm = [],  # noqa: B006
    region: ListForm = [],  # noqa: B006
    channel: ListForm = [],  # noqa: B006
) -> Response:
    """Change categories, regions and channels (re-subscribes someone who had left)."""
    subscriber = _own_subscriber(request, session)
    if subscriber is None:
        return error_page(request, 400, "页面已过期，请重新验证")
    try:
        prefs = clean_preferences(session, category, region, channel, allowed_channels=allowed_channels(subscriber))
    except DomainError as exc:
        ctx = _manage_context(request, session, subscriber, message=exc.message, message_kind="error")
        return render(request, "manage.html", ctx, status_code=400)
    set_preferences(session, subscriber, prefs)
    session.commit()
    return render(request, "manage.html", _manage_context(request, session, subscriber, message="已保存"))


@router.post("/subscription/leave")
@public_page
def manage_leave(request: Request, session: SessionDep) -> Response:
    """Leave from the preferences page."""
    subscriber = _own_subscriber(request, session)
    if subscriber is None:
        return error_page(request, 400, "页面已过期，请重新验证")
    leave(session, subscriber, "web")
    session.commit()
    return RedirectResponse("/m/subscription?ok=left", status_code=303)


@router.get("/unsubscribe", response_class=HTMLResponse)
@public_page
def unsubscribe_page(request: Request) -> Response:
    """How to leave: reply TD, or verify the number here."""
    pending = request.session.get("unsub_phone")
    return render(
        request,
        "unsubscribe.html",
        {"pending_phone": pending, "pending_phone_masked": mask_phone(pending) if pending else ""},
    )


@router.post("/unsubscribe/code", response_class=HTMLResponse)
@public_page
async def unsubscribe_code(
    request: Request, settings: SettingsDep, phone: Annotated[Text, Form(max_length=20)] = ""
) -> Response:
    """Send a code to prove the number before leaving."""
    error = await _send_code(request, settings, phone, "unsubscribe")
    if error:
        return render(request, "unsubscribe.html", {"message": error, "message_kind": "error"}, status_code=400)
    return RedirectResponse("/m/unsubscribe", status_code=303)


@router.post("/unsubscribe/confirm", response_class=HTMLResponse)
@public_page
def unsubscribe_confirm(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[Text, Form(max_length=10)] = "",
) -> Response:
    """Check the code and leave."""
    phone = request.session.get("unsub_phone")
    if not isinstance(phone, str):
        return error_page(request, 400, "页面已过期，请重新获取验证码")
    try:
        check_code(session, settings.secret_key.get_secret_value(), phone, code, purpose="unsubscribe")
    except DomainError as exc:
        session.commit()
        ctx = {"pending_phone": phone, "pending_phone_masked": mask_phone(phone), "message": exc.message}
        return render(request, "unsubscribe.html", {**ctx, "message_kind": "error"}, status_code=400)
    subscriber = subscriber_by_phone(session, phone)
    if subscriber is not None:
        leave(session, subscriber, "web")
    session.commit()
    request.session.pop("unsub_phone", None)
    return render(request, "unsubscribe.html", {"message": "已退订，您将不再收到通知", "pending_phone": None})


@router.get("/u/{token}", response_class=HTMLResponse)
@public_page
def unsubscribe_link(request: Request, session: SessionDep, settings: SettingsDep, token: str) -> Response:
    """The unsubscribe link: a confirm button (GET never changes anything, link previewers follow GETs)."""
    subscriber = subscriber_from_token(session, settings.secret_key.get_secret_value(), token)
    if subscriber is None:
        return error_page(request, 404, "链接无效", "This link is not valid.")
    who = mask_phone(subscriber.phone) if subscriber.phone else "微信用户"
    return render(request, "unsubscribe.html", {"token": token, "who": who})


@router.post("/u/{token}", response_class=HTMLResponse)
@public_page
def unsubscribe_link_confirm(request: Request, session: SessionDep, settings: SettingsDep, token: str) -> Response:
    """Leave through the signed link."""
    subscriber = subscriber_from_token(session, settings.secret_key.get_secret_value(), token)
    if subscriber is None:
        return error_page(request, 404, "链接无效", "This link is not valid.")
    leave(session, subscriber, "link")
    session.commit()
    return render(request, "unsubscribe.html", {"message": "已退订，您将不再收到通知"})
