"""`/_sandbox/...`: inspect what arrived, inject faults, and act as phones and followers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from channels.sandbox.aliyun import china_now
from channels.sandbox.state import SandboxState
from channels.sandbox.wechat import event_message


def bad_request(message: str) -> JSONResponse:
    """The sandbox's own error shape (the gateway's bilingual shape)."""
    return JSONResponse({"error": {"code": "bad_request", "message": message, "details": {}}}, status_code=400)


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def messages(request: Request) -> Response:
    """GET /_sandbox/messages?provider=&reference=&recipient=&limit="""
    q = request.query_params
    found = _state(request).messages(q.get("provider"), q.get("reference"), q.get("recipient"))
    limit = int(q["limit"]) if q.get("limit", "").isdigit() else 1000
    return JSONResponse({"count": len(found), "messages": [r.public() for r in found[-limit:]]})


async def counts(request: Request) -> Response:
    """GET /_sandbox/counts: accepted per provider and per reference, duplicates, tokens, requests.

    Counts cover everything since the last reset; `kept` says how many messages of each provider
    are still in the window `/_sandbox/messages` shows (`received`: all of them).
    """
    state = _state(request)
    return JSONResponse(
        {
            "accepted": {p: sum(c.values()) for p, c in state.counts.items() if ":" not in p},
            "by_reference": {p: dict(c) for p, c in state.counts.items() if ":" not in p},
            "duplicates": {
                p: {ref: n for ref, n in c.items() if n > 1 and ref} for p, c in state.counts.items() if ":" not in p
            },
            "wechat_repeats": dict(state.counts.get("wechat_mp:repeats", {})),
            "requests": dict(state.requests),
            "tokens_issued": dict(state.tokens_issued),
            "pushes": state.pushes_total,
            "received": dict(state.received_total),
            "kept": {p: len(r) for p, r in state.received.items()},
            "cmpp": state.cmpp.count() if state.cmpp is not None else None,
        }
    )


async def faults(request: Request) -> Response:
    """GET lists faults; POST adds one; DELETE (?provider=) clears."""
    state = _state(request)
    if request.method == "GET":
        return JSONResponse({"faults": [asdict(f) for f in state.faults]})
    if request.method == "DELETE":
        provider = request.query_params.get("provider")
        if state.cmpp is not None and provider in (None, "cmpp"):
            state.cmpp.faults = type(state.cmpp.faults)()
        return JSONResponse({"removed": state.clear_faults(provider)})
    body = await _json(request)
    if body is None or "provider" not in body or "kind" not in body:
        return bad_request("JSON object with provider and kind required")
    options = {k: v for k, v in body.items() if k not in ("provider", "kind")}
    if body["provider"] == "cmpp":
        return cmpp_fault(state, str(body["kind"]), options)
    try:
        fault = state.add_fault(str(body["provider"]), str(body["kind"]), **options)
    except (TypeError, ValueError) as exc:
        return bad_request(str(exc))
    return JSONResponse(asdict(fault), status_code=201)


def cmpp_fault(state: SandboxState, kind: str, options: dict[str, Any]) -> Response:
    """Faults on the CMPP link, applied to the ISMG simulator (`count` SUBMITs, default 1)."""
    sim = state.cmpp
    if sim is None:
        return bad_request("no CMPP simulator running")
    count = int(options.get("count") or 1)
    if kind == "error":
        sim.faults.error_result = int(options.get("code") or 9)
        sim.faults.errors = count
    elif kind == "rate_limit":
        sim.faults.flow_control = count  # SUBMIT_RESP Result 8
    elif kind == "latency":
        sim.faults.latency = float(options.get("latency_ms") or 0) / 1000
    elif kind == "timeout":
        sim.faults.silent = True  # answer nothing, not even ACTIVE_TEST
    elif kind == "drop_connections":
        return JSONResponse({"provider": "cmpp", "kind": kind, "dropped": sim.drop_connections()}, status_code=201)
    else:
        return bad_request(f"CMPP faults: error, rate_limit, latency, timeout, drop_connections (not {kind!r})")
    return JSONResponse({"provider": "cmpp", "kind": kind, "count": count}, status_code=201)


async def reset(request: Request) -> Response:
    """POST /_sandbox/reset: forget everything."""
    _state(request).reset()
    return JSONResponse({"reset": True})


async def sms_inbox(request: Request) -> Response:
    """GET /_sandbox/sms/inbox?phone=: texts the phone received (SMS API and CMPP), oldest first."""
    phone = request.query_params.get("phone", "")
    if not phone:
        return bad_request("phone required")
    state = _state(request)
    texts = [
        {"text": r.text, "provider": r.provider, "reference": r.reference, "at": r.at}
        for r in state.recent()
        if r.recipient == phone and not r.error and r.provider in ("aliyun_sms", "cmpp")
    ]
    if state.cmpp is not None:  # the CMPP simulator keeps its own, reassembled, record
        texts += [
            {"text": m.text, "provider": "cmpp", "reference": f"{m.msg_ids[0]:016x}", "at": None}
            for m in state.cmpp.messages_to(phone)
        ]
    return JSONResponse({"phone": phone, "messages": texts})


async def sms_reply(request: Request) -> Response:
    """POST /_sandbox/sms/reply {phone, content, via?, wait?}: a phone replies (SmsUp push, or CMPP DELIVER)."""
    body = await _json(request)
    if body is None or not body.get("phone") or "content" not in body:
        return bad_request("JSON object with phone and content required")
    state = _state(request)
    if body.get("via") == "cmpp":
        if state.cmpp is None:
            return bad_request("no CMPP simulator running")
        msg_ids = await state.cmpp.send_mo(str(body["phone"]), str(body["content"]))
        return JSONResponse({"via": "cmpp", "msg_ids": [f"{m:016x}" for m in msg_ids]})
    item = {
        "phone_number": str(body["phone"]),
        "send_time": china_now(),
        "content": str(body["content"]),
        "sign_name": str(body.get("sign_name") or ""),
        "dest_code": str(body.get("dest_code") or "1234"),
        "sequence_id": int(state.next_provider_id()),
    }
    if state.callback_url("sms_up") is None:
        return bad_request("no callback_base_url configured")
    if body.get("wait"):
        return JSONResponse({"pushed": item, "status": await state.push("sms_up", [item], retry=False)})
    state.push_later("sms_up", [item])
    return JSONResponse({"pushed": item, "status": None}, status_code=202)


async def wechat_follow(request: Request) -> Response:
    """POST /_sandbox/wechat/follow {openid, event: subscribe|unsubscribe, wait?}: a follower acts."""
    body = await _json(request)
    if body is None or not body.get("openid") or body.get("event") not in ("subscribe", "unsubscribe"):
        return bad_request("JSON object with openid and event (subscribe|unsubscribe) required")
    state = _state(request)
    openid = str(body["openid"])
    if body["event"] == "subscribe":
        state.unfollowed.discard(openid)
    else:
        state.unfollowed.add(openid)
    if state.callback_url("wechat_event") is None:
        return JSONResponse({"openid": openid, "event": body["event"], "status": None})
    xml, query = event_message(state, openid, {"Event": str(body["event"]), "EventKey": ""})
    if body.get("wait"):
        status = await state.push("wechat_event", xml, xml=True, extra=query, retry=False)
        return JSONResponse({"openid": openid, "event": body["event"], "status": status})
    state.push_later("wechat_event", xml, xml=True, extra=query)
    return JSONResponse({"openid": openid, "event": body["event"], "status": None}, status_code=202)


async def wecom_invalid_users(request: Request) -> Response:
    """POST /_sandbox/wecom/invalid_users {users: [...]} marks members unknown; GET lists them."""
    state = _state(request)
    if request.method == "POST":
        body = await _json(request)
        if body is None or not isinstance(body.get("users"), list):
            return bad_request("JSON object with users (list) required")
        state.wecom_invalid.update(str(u) for u in body["users"])
    return JSONResponse({"users": sorted(state.wecom_invalid)})


async def dingtalk_invalid_users(request: Request) -> Response:
    """POST /_sandbox/dingtalk/invalid_users {users: [...]} makes user ids unknown to the app; GET lists them."""
    state = _state(request)
    if request.method == "POST":
        body = await _json(request)
        if body is None or not isinstance(body.get("users"), list):
            return bad_request("JSON object with users (list) required")
        state.dingtalk.invalid.update(str(u) for u in body["users"])
    return JSONResponse({"users": sorted(state.dingtalk.invalid)})


async def dingtalk_read(request: Request) -> Response:
    """POST /_sandbox/dingtalk/read {users: [...], task_id?}: these people open the notice (of every task)."""
    state = _state(request)
    body = await _json(request)
    if body is None or not isinstance(body.get("users"), list):
        return bad_request("JSON object with users (list) required")
    users = {str(u) for u in body["users"]}
    task_id = body.get("task_id")
    marked = 0
    for task in state.dingtalk.tasks.values():
        if task_id is not None and str(task.task_id) != str(task_id):
            continue
        reached = {u for u in users if task.outcome.get(u) == "sent"} - task.read
        task.read.update(reached)
        marked += len(reached)
    return JSONResponse({"read": marked})


async def weibo_timeline(request: Request) -> Response:
    """GET /_sandbox/weibo/timeline: the account's posts, newest first."""
    posts = [{k: v for k, v in p.items() if not k.startswith("_")} for p in reversed(_state(request).weibo_posts)]
    return JSONResponse({"statuses": posts, "total_number": len(posts)})


async def pushes(request: Request) -> Response:
    """GET /_sandbox/pushes: callbacks the sandbox made (kind, path, attempts, final status)."""
    return JSONResponse({"pushes": list(_state(request).pushes)})


async def drain(request: Request) -> Response:
    """POST /_sandbox/drain: wait for scheduled pushes to finish (tests)."""
    await _state(request).drain()
    return JSONResponse({"pending": _state(request).pending_pushes})
