"""WeChat official account and WeCom endpoints: tokens, template/app messages, XML events."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from channels.sandbox.faults import apply_fault
from channels.sandbox.state import Fault, SandboxState
from channels.wechat_crypto import WechatCipher, encrypted_push
from channels.wechat_mp import callback_signature, event_xml

OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
ERRMSG = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    47001: "data format error",
    47003: "argument invalid!",
    60020: "not allow to access from your ip",
    81013: "user & party & tag all invalid",
    40056: "invalid agentid",
    41004: "corpsecret missing",
}


def err(code: int, status: int = 200) -> JSONResponse:
    """A WeChat-style answer `{errcode, errmsg}`."""
    return JSONResponse({"errcode": code, "errmsg": ERRMSG.get(code, "error")}, status_code=status)


def fault_error(default: int) -> Any:
    """Provider-shaped error for an injected fault."""

    def build(fault: Fault, status: int) -> Response:
        code = 45009 if status == 429 else int(fault.code if fault.code is not None else default)
        return err(code, status)

    return build


async def json_body(request: Request) -> dict[str, Any] | None:
    """The posted JSON object, or None when it is not one."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def mp_token(request: Request) -> Response:
    """GET /cgi-bin/token?grant_type=client_credential&appid=&secret="""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "wechat_mp", fault_error(-1), target="token")
    if injected is not None:
        return injected
    q = request.query_params
    if q.get("grant_type") != "client_credential":
        return err(40002)
    if q.get("appid") != state.config.wechat_appid:
        return err(40013)
    if not secrets.compare_digest(q.get("secret", "").encode(), state.config.wechat_secret.encode()):
        return err(40125)
    token = state.issue_token("wechat_mp")
    return JSONResponse({"access_token": token.value, "expires_in": state.config.token_ttl})


async def mp_template_send(request: Request) -> Response:
    """POST /cgi-bin/message/template/send?access_token="""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "wechat_mp", fault_error(45009))
    if injected is not None:
        return injected
    token = request.query_params.get("access_token", "")
    if not token:
        return err(41001)
    if code := state.check_token("wechat_mp", token):
        return err(code)
    body = await json_body(request)
    if body is None:
        return err(47001)
    openid = str(body.get("touser") or "")
    template_id = str(body.get("template_id") or "")
    data = body.get("data")
    reference = str(body.get("client_msg_id") or "") or None
    if not OPENID.match(openid):
        state.record(
            "wechat_mp", "template_send", reference=reference, recipient=openid, text="", provider_id="", error="40003"
        )
        return err(40003)
    if not template_id or (state.config.wechat_templates and template_id not in state.config.wechat_templates):
        return err(40037)
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "value" in v for v in data.values()):
        return err(47003)
    if openid in state.unfollowed:
        state.record(
            "wechat_mp", "template_send", reference=reference, recipient=openid, text="", provider_id="", error="43004"
        )
        return err(43004)
    text = "\n".join(str(v["value"]) for v in data.values())
    if reference and (openid, reference) in state.wechat_sent:
        # WeChat sends once per openid + client_msg_id; a repeat is answered, counted, not resent.
        msgid = state.wechat_sent[(openid, reference)]
        state.counts["wechat_mp:repeats"][reference] += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": int(msgid)})
    msgid = state.next_provider_id()
    if reference:
        state.wechat_sent[(openid, reference)] = msgid
    state.record(
        "wechat_mp",
        "template_send",
        reference=reference,
        recipient=openid,
        text=text,
        provider_id=msgid,
        params={"template_id": template_id, "url": body.get("url")},
    )
    failed = state.take_fault("wechat_mp", "send", ("fail_reports",)) is not None
    push_event(
        state,
        openid,
        {"Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid, "Status": "failed:system failed" if failed else "success"},
    )
    if state.take_fault("wechat_mp", "send", ("duplicate_reports",)) is not None:
        push_event(state, openid, {"Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid, "Status": "success"})
    return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": int(msgid)})


def event_message(state: SandboxState, openid: str, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The XML body and the signed query parameters WeChat puts on a push (encrypted with an EncodingAESKey)."""
    xml = event_xml(
        {
            "ToUserName": state.config.wechat_account,
            "FromUserName": openid,
            "CreateTime": str(int(time.time())),
            "MsgType": "event",
            **fields,
        }
    )
    timestamp = str(int(time.time()))
    nonce = str(secrets.randbelow(10**9))
    token = state.config.wechat_callback_token
    query = {"signature": callback_signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    query["openid"] = openid
    if state.config.wechat_encoding_aes_key:
        # Safe mode: the URL adds encrypt_type=aes and msg_signature over the ciphertext.
        cipher = WechatCipher(state.config.wechat_encoding_aes_key, state.config.wechat_appid)
        xml, msg_signature = encrypted_push(cipher, token, xml, state.config.wechat_account, timestamp, nonce)
        query.update({"encrypt_type": "aes", "msg_signature": msg_signature})
    return xml, query


def push_event(state: SandboxState, openid: str, fields: dict[str, str]) -> None:
    """Push an event XML to the gateway after the delay."""
    xml, query = event_message(state, openid, fields)
    state.push_later("wechat_event", xml, xml=True, extra=query)


async def wecom_token(request: Request) -> Response:
    """GET /cgi-bin/gettoken?corpid=&corpsecret="""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "wecom", fault_error(-1), target="token")
    if injected is not None:
        return injected
    q = request.query_params
    if q.get("corpid") != state.config.wecom_corpid:
        return err(40013)
    if not q.get("corpsecret"):
        return err(41004)
    if not secrets.compare_digest(q.get("corpsecret", "").encode(), state.config.wecom_corpsecret.encode()):
        return err(40001)
    token = state.issue_token("wecom")
    return JSONResponse(
        {"errcode": 0, "errmsg": "ok", "access_token": token.value, "expires_in": state.config.token_ttl}
    )


def wecom_text(body: dict[str, Any]) -> str | None:
    """The message text for the supported msgtypes, None when malformed."""
    msgtype = body.get("msgtype")
    if msgtype == "text" and isinstance(body.get("text"), dict) and body["text"].get("content"):
        return str(body["text"]["content"])
    card = body.get("textcard")
    if (
        msgtype == "textcard"
        and isinstance(card, dict)
        and card.get("title")
        and card.get("description")
        and card.get("url")
    ):
        return f"{card['title']}\n{card['description']}"
    if msgtype == "markdown" and isinstance(body.get("markdown"), dict) and body["markdown"].get("content"):
        return str(body["markdown"]["content"])
    return None


async def wecom_send(request: Request) -> Response:
    """POST /cgi-bin/message/send?access_token="""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "wecom", fault_error(-1))
    if injected is not None:
        return injected
    token = request.query_params.get("access_token", "")
    if not token:
        return err(41001)
    if code := state.check_token("wecom", token):
        return err(code)
    body = await json_body(request)
    if body is None:
        return err(47001)
    if body.get("agentid") != state.config.wecom_agentid:
        return err(40056)
    text = wecom_text(body)
    if text is None:
        return err(47003)
    users = [u for u in str(body.get("touser") or "").split("|") if u]
    if not users or len(users) > 1000:
        return err(40031 if users else 81013)
    invalid = [u for u in users if u in state.wecom_invalid or not USERID.match(u)]
    valid = [u for u in users if u not in invalid]
    if not valid:
        return JSONResponse({"errcode": 81013, "errmsg": ERRMSG[81013], "invaliduser": "|".join(invalid)})
    msgid = f"sandbox-{state.next_provider_id()}"
    for user in valid:
        state.record("wecom", str(body.get("msgtype")), reference=msgid, recipient=user, text=text, provider_id=msgid)
    return JSONResponse(
        {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "|".join(invalid),
            "invalidparty": "",
            "invalidtag": "",
            "unlicenseduser": "",
            "msgid": msgid,
            "response_code": "",
        }
    )
