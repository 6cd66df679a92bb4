"""Provider callbacks: delivery reports, SMS replies, WeChat events.

These routes carry no API key: providers authenticate with the callback token (`?token=`) or,
for WeChat, the account's signature. Each endpoint is marked `public` for the route meta-test.
Unknown references and repeated reports change nothing.

During a broadcast they are most of the gateway's requests (one WeChat event per message), so
`ProviderCallbacks` answers `/callbacks/` before the session, staff and FastAPI routing layers:
a plain Starlette router with the body limit, metrics and the JSON error shape, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from channels.aliyun_sms import parse_sms_report, parse_sms_up
from channels.aliyun_voice import parse_call_reports, parse_voice_report
from channels.base import Receipt
from channels.wechat_crypto import (
    WechatCipher,
    WechatCryptoError,
    encrypted_element,
    message_signature,
    signature_matches,
)
from channels.wechat_mp import check_signature, parse_event
from govconnect.api.replay_guard import NonceGuard
from govconnect.calls.service import settle_calls
from govconnect.citizens.optout import handle_wechat_follow
from govconnect.db import session_scope
from govconnect.errors import ApiError, api_error_handler, error_response, http_error_handler
from govconnect.metrics import MetricsMiddleware
from govconnect.middleware import BodySizeLimitMiddleware
from govconnect.notices.agency_callbacks import emit_status_events
from govconnect.notices.receipts import ReceiptBatcher, ReceiptOutcome, ReceiptsBusy
from govconnect.notices.replies import apply_inbound_sms
from govconnect.notices.sending import enqueue_finish
from govconnect.providers.channel_factory import callback_token
from govconnect.security import secrets_equal
from govconnect.settings import Settings

log = logging.getLogger("govconnect.receipts")
PREFIX = "/callbacks/"
ALIYUN_OK = {"code": 0, "msg": "接收成功"}
F = TypeVar("F", bound=Callable[..., Any])


def public(func: F) -> F:
    """Mark a route as authenticated by the provider rather than an API key."""
    func.public = True  # type: ignore[attr-defined]
    return func


def _check_token(request: Request) -> None:
    settings: Settings = request.app.state.settings
    given = request.query_params.get("token", "")
    if not given or not secrets_equal(callback_token(settings), given):
        raise ApiError(401, "unauthorized", "回调令牌无效 / Invalid callback token")


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise ApiError(400, "malformed_json") from exc


def receipt_batcher(app: Any) -> ReceiptBatcher:
    """The app's receipt batcher: reports from concurrent provider pushes share a transaction."""
    batcher: ReceiptBatcher | None = getattr(app.state, "receipt_batcher", None)
    if batcher is None:
        state = app.state
        ctx = {"engine": state.engine, "queue": state.queue, "settings": state.settings}

        async def after(outcome: ReceiptOutcome) -> None:
            await emit_status_events(ctx, outcome.changed)
            for notice_id in outcome.notices:
                await enqueue_finish(ctx, notice_id)

        batcher = state.receipt_batcher = ReceiptBatcher(state.engine, after)
    return batcher


async def _apply(request: Request, receipts: list[Receipt]) -> None:
    try:
        await receipt_batcher(request.app).apply(receipts)
    except ReceiptsBusy as exc:
        raise ApiError(
            503,
            "busy",
            "回执处理繁忙，请稍后重推 / Too many reports waiting; push again later",
            headers={"Retry-After": "5"},
        ) from exc


def _parsed(parser: Callable[[Any], list[Any]], payload: Any) -> list[Any]:
    try:
        return parser(payload)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"无法解析回调 / Unreadable callback: {exc}") from exc


@public
async def aliyun_sms_report(request: Request) -> JSONResponse:
    """Alibaba Cloud SmsReport: delivery reports for our references."""
    _check_token(request)
    await _apply(request, _parsed(parse_sms_report, await _json_body(request)))
    return JSONResponse(ALIYUN_OK)


@public
async def aliyun_sms_up(request: Request) -> JSONResponse:
    """Alibaba Cloud SmsUp: replies from phones (T/TD/退订 unsubscribe; anything else kept as a reply)."""
    _check_token(request)
    replies = _parsed(parse_sms_up, await _json_body(request))
    state = request.app.state
    await apply_inbound_sms({"engine": state.engine, "queue": state.queue, "settings": state.settings}, replies)
    return JSONResponse(ALIYUN_OK)


@public
async def aliyun_voice_report(request: Request) -> JSONResponse:
    """Alibaba Cloud VoiceReport: call outcomes for our references, and click-to-dial calls' ends."""
    _check_token(request)
    payload = await _json_body(request)
    calls = _parsed(parse_call_reports, payload)
    if calls:
        await asyncio.to_thread(settle_calls, request.app.state.engine, calls)
    await _apply(request, _parsed(parse_voice_report, payload))
    return JSONResponse(ALIYUN_OK)


def _nonce_guard(app: Any) -> NonceGuard:
    guard: NonceGuard | None = getattr(app.state, "nonce_guard", None)
    if guard is None:
        settings: Settings = app.state.settings
        guard = app.state.nonce_guard = NonceGuard(getattr(app.state, "redis", None), settings.queue_name)
    return guard


def _unauthorized_wechat(reason: str) -> ApiError:
    return ApiError(401, "unauthorized", f"微信回调校验失败 / WeChat callback refused: {reason}")


async def _verified_wechat(request: Request, body: bytes | None) -> tuple[str, str]:
    """Check a WeChat callback's signature, timestamp window and nonce; the pushed XML (decrypted) and the nonce.

    With an EncodingAESKey configured only encrypted pushes are accepted: `msg_signature` covers
    the ciphertext, so the body cannot be swapped under a captured signature.
    """
    settings: Settings = request.app.state.settings
    q = request.query_params
    token = settings.wechat_mp.callback_token.get_secret_value()
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not token:
        raise _unauthorized_wechat("no callback token configured")
    aes_key = settings.wechat_mp.encoding_aes_key.get_secret_value()
    message = ""
    if body is not None and aes_key:
        if q.get("encrypt_type") != "aes":
            raise _unauthorized_wechat("encrypted mode required")
        try:
            encrypted = encrypted_element(body)
        except WechatCryptoError as exc:
            raise ApiError(400, "bad_request", f"无法解析微信事件 / Unreadable WeChat event: {exc}") from exc
        expected = message_signature(token, timestamp, nonce, encrypted)
        if not signature_matches(expected, q.get("msg_signature", "")):
            raise _unauthorized_wechat("bad msg_signature")
        try:
            message = WechatCipher(aes_key, settings.wechat_mp.appid).decrypt(encrypted)
        except WechatCryptoError as exc:
            raise _unauthorized_wechat(str(exc)) from exc
    else:
        if not check_signature(token, q.get("signature", ""), timestamp, nonce):
            raise _unauthorized_wechat("bad signature")
        message = (body or b"").decode("utf-8", "replace")
    if not NonceGuard.fresh(timestamp):
        raise _unauthorized_wechat("timestamp outside ±5 minutes")
    if not nonce or len(nonce) > 64 or not await _nonce_guard(request.app).first_use("wechat_mp", timestamp, nonce):
        raise _unauthorized_wechat("nonce already used")
    return message, nonce


@public
async def wechat_verify(request: Request) -> PlainTextResponse:
    """WeChat server verification: echo `echostr` when the signature is right."""
    await _verified_wechat(request, None)
    return PlainTextResponse(request.query_params.get("echostr", ""))


@public
async def wechat_event(request: Request) -> Response:
    """WeChat pushes: TEMPLATESENDJOBFINISH → delivery status; subscribe/unsubscribe → follow state."""
    message, nonce = await _verified_wechat(request, await request.body())
    try:
        return await _handle_wechat_event(request, message)
    except BaseException:
        # Not handled: WeChat's retry of this push must not be taken for a replay.
        await _nonce_guard(request.app).release("wechat_mp", request.query_params.get("timestamp", ""), nonce)
        raise


async def _handle_wechat_event(request: Request, message: str) -> Response:
    try:
        event = parse_event(message)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"无法解析微信事件 / Unreadable WeChat event: {exc}") from exc
    receipt = event.receipt()
    if receipt is not None:
        await _apply(request, [receipt])
    elif event.is_subscribe or event.is_unsubscribe:
        engine: Engine = request.app.state.engine

        def follow() -> None:
            with session_scope(engine) as session:
                handle_wechat_follow(session, event.openid, event.is_subscribe)

        await asyncio.to_thread(follow)
    return PlainTextResponse("success")


ROUTES = [
    Route("/callbacks/aliyun_sms/report", aliyun_sms_report, methods=["POST"]),
    Route("/callbacks/aliyun_sms/up", aliyun_sms_up, methods=["POST"]),
    Route("/callbacks/aliyun_voice/report", aliyun_voice_report, methods=["POST"]),
    Route("/callbacks/wechat_mp", wechat_verify, methods=["GET"]),
    Route("/callbacks/wechat_mp", wechat_event, methods=["POST"]),
]


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(404, "not_found")(scope, receive, send)


class ProviderCallbacks:
    """ASGI middleware: `/callbacks/` requests go straight to the callback routes, the rest on to `app`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        router = Router(routes=ROUTES, default=_not_found)
        handlers = {ApiError: api_error_handler, HTTPException: http_error_handler}
        self.callbacks = BodySizeLimitMiddleware(MetricsMiddleware(ExceptionMiddleware(router, handlers)), max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.callbacks(scope, receive, send)
            return
        await self.app(scope, receive, send)
