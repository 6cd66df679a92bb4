"""DingTalk (钉钉 / 浙政钉) work-notice endpoints on DingTalk's own paths, so its SDKs work against them.

`/dingtalk/gettoken`, `/dingtalk/topapi/message/corpconversation/asyncsend_v2`, `getsendprogress`
and `getsendresult` (channels/dingtalk.py cites the documentation). Bodies may be JSON or a form
(DingTalk's Top SDKs post `application/x-www-form-urlencoded` with `msg` as a JSON string).
The documented limits hold per person and Beijing day: the same content once, at most
`dingtalk_daily_per_user` notices; past them the call still succeeds and the person is listed in
`forbidden_user_id_list` (codes 143106 / 143105), as DingTalk does.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from channels.base import CHINA_TZ
from channels.sandbox.faults import apply_fault
from channels.sandbox.state import DingtalkTask, Fault, SandboxState

PROVIDER = "dingtalk"
USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_USERS = 100
MAX_MSG_BYTES = 2048
ERRMSG = {
    -1: "系统繁忙",
    0: "ok",
    88: "ding talk error[subcode=60011,submsg=没有调用该接口的权限]",
    40014: "不合法的access_token",
    40035: "不合法的参数",
    40089: "不合法的corpid或corpsecret",
    42001: "access_token超时",
    143103: "企业单应用消息发送人次QPM超限",
    143104: "企业每分钟发送人次QPM超限",
}
DAILY_CAP = "143105"
SAME_CONTENT = "143106"
MSGTYPES = {"text", "markdown", "action_card", "oa", "link", "image", "voice", "file"}


def err(code: int, status: int = 200, **extra: Any) -> JSONResponse:
    """A DingTalk answer `{errcode, errmsg, request_id}`."""
    body = {"errcode": code, "errmsg": ERRMSG.get(code, "error"), "request_id": secrets.token_hex(6), **extra}
    if code == 88:
        body.update(sub_code="60011", sub_msg="没有调用该接口的权限")
    return JSONResponse(body, status_code=status)


def fault_error(fault: Fault, status: int) -> Response:
    """DingTalk-shaped error for an injected fault (429: the people-a-minute quota)."""
    code = 143103 if status == 429 else int(fault.code if fault.code is not None else -1)
    return err(code, status)


async def _body(request: Request) -> dict[str, Any] | None:
    """The posted parameters, JSON or form; None when neither."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict((await request.form()).items())
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _authorise(state: SandboxState, request: Request) -> Response | None:
    token = request.query_params.get("access_token", "")
    if not token:
        return err(40014)
    code = state.check_token(PROVIDER, token)
    return err(code) if code else None


def _day() -> str:
    return datetime.now(CHINA_TZ).strftime("%Y%m%d")


async def gettoken(request: Request) -> Response:
    """GET /gettoken?appkey=&appsecret= (within its lifetime the same token is given again, renewed)."""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, PROVIDER, fault_error, target="token")
    if injected is not None:
        return injected
    q = request.query_params
    if not q.get("appkey") or not q.get("appsecret"):
        return err(40035)
    if q.get("appkey") != state.config.dingtalk_appkey or not secrets.compare_digest(
        q["appsecret"].encode(), state.config.dingtalk_appsecret.encode()
    ):
        return err(40089)
    now = time.time()
    live = [t for t in state.tokens.values() if t.provider == PROVIDER and t.replaced_at is None and t.expires_at > now]
    if live:
        token = live[-1]
        token.expires_at = now + state.config.token_ttl
    else:
        token = state.issue_token(PROVIDER)
    return JSONResponse(
        {"errcode": 0, "errmsg": "ok", "access_token": token.value, "expires_in": state.config.token_ttl}
    )


def _message(raw: Any) -> tuple[str, str, str] | None:
    """(msgtype, shown text, action card link or "") of a `msg` object or JSON string; None when malformed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict) or raw.get("msgtype") not in MSGTYPES:
        return None
    msgtype = str(raw["msgtype"])
    content = raw.get(msgtype)
    if not isinstance(content, dict):
        return None
    if msgtype == "text":
        text = content.get("content")
    elif msgtype == "markdown":
        text = content.get("text") if content.get("title") else None
    elif msgtype == "action_card":
        linked = content.get("single_url") or content.get("btn_json_list")
        text = f"{content.get('title')}\n{content.get('markdown')}" if content.get("markdown") and linked else None
    else:
        text = json.dumps(content, ensure_ascii=False)
    link = content.get("single_url") if msgtype == "action_card" else ""
    return (msgtype, str(text), link if isinstance(link, str) else "") if text else None


def _users(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(u) for u in raw if str(u)]
    return [u for u in str(raw or "").split(",") if u]


async def asyncsend_v2(request: Request) -> Response:
    """POST /topapi/message/corpconversation/asyncsend_v2?access_token="""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, PROVIDER, fault_error)
    if injected is not None:
        return injected
    if (refused := _authorise(state, request)) is not None:
        return refused
    body = await _body(request)
    if body is None:
        return err(40035)
    if str(body.get("agent_id")) != str(state.config.dingtalk_agentid):
        return err(88)
    users = list(dict.fromkeys(_users(body.get("userid_list"))))
    message = _message(body.get("msg"))
    raw_msg = body.get("msg") if isinstance(body.get("msg"), str) else json.dumps(body.get("msg"), ensure_ascii=False)
    if not users or len(users) > MAX_USERS or message is None or len(str(raw_msg).encode()) > MAX_MSG_BYTES:
        return err(40035)
    msgtype, text, link = message
    task = DingtalkTask(state.dingtalk_task_id(), time.time(), users, {})
    failing = state.take_fault(PROVIDER, "send", ("fail_reports",)) is not None
    day, digest = _day(), hashlib.sha256(str(raw_msg).encode()).hexdigest()
    book = state.dingtalk
    book.start_day(day)
    for user in users:
        seen = hash((user, digest))  # one int a person and content: the day's record stays small
        if user in book.invalid or not USERID.match(user):
            task.outcome[user] = "invalid"
        elif seen in book.contents:
            task.outcome[user] = SAME_CONTENT
        elif book.daily[user] >= state.config.dingtalk_daily_per_user:
            task.outcome[user] = DAILY_CAP
        else:
            book.contents.add(seen)
            book.daily[user] += 1
            task.outcome[user] = "failed" if failing else "sent"
        error = "" if task.outcome[user] == "sent" else task.outcome[user]
        state.record(
            PROVIDER,
            msgtype,
            reference=str(task.task_id),
            recipient=user,
            text=text,
            provider_id=str(task.task_id),
            error=error,
            params={"url": link} if link else None,  # what the person's "查看详情" opens
        )
    book.tasks[task.task_id] = task
    book.tasks_total += 1
    # Tasks of up to 100 people each: a tenth of the message window keeps about as many people as it.
    keep_tasks = max(10, state.config.keep_messages // 10)
    if book.tasks_total % 64 == 0 or len(book.tasks) > keep_tasks:
        book.forget(task.created, keep_tasks)
    return JSONResponse({"errcode": 0, "errmsg": "ok", "task_id": task.task_id, "request_id": secrets.token_hex(6)})


async def _task(request: Request) -> tuple[SandboxState, DingtalkTask | None, Response | None]:
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, PROVIDER, fault_error, target="status")
    if injected is not None:
        return state, None, injected
    if (refused := _authorise(state, request)) is not None:
        return state, None, refused
    body = await _body(request)
    if body is None:
        return state, None, err(40035)
    if str(body.get("agent_id")) != str(state.config.dingtalk_agentid):
        return state, None, err(88)
    task_id = str(body.get("task_id") or "")
    task = state.dingtalk.tasks.get(int(task_id)) if task_id.isdigit() else None
    if task is None or time.time() - task.created > 24 * 3600:  # only tasks of the last 24 hours
        return state, None, err(40035)
    return state, task, None


def _done(state: SandboxState, task: DingtalkTask) -> bool:
    return time.time() - task.created >= state.config.report_delay


async def getsendprogress(request: Request) -> Response:
    """POST /topapi/message/corpconversation/getsendprogress: status 1 while sending, 2 when done."""
    state, task, refused = await _task(request)
    if task is None:
        return refused or err(40035)
    done = _done(state, task)
    progress = {"progress_in_percent": 100 if done else 50, "status": 2 if done else 1}
    return JSONResponse({"errcode": 0, "errmsg": "ok", "progress": progress, "request_id": secrets.token_hex(6)})


async def getsendresult(request: Request) -> Response:
    """POST /topapi/message/corpconversation/getsendresult: read / unread / failed / forbidden / invalid."""
    state, task, refused = await _task(request)
    if task is None:
        return refused or err(40035)
    read_after = state.config.dingtalk_read_after
    if read_after is not None and time.time() - task.created >= read_after:
        task.read.update(u for u, o in task.outcome.items() if o == "sent")
    by_outcome: dict[str, list[str]] = {}
    for user, outcome in task.outcome.items():
        by_outcome.setdefault(outcome, []).append(user)
    forbidden = [u for u, o in task.outcome.items() if o in (DAILY_CAP, SAME_CONTENT)]
    result: dict[str, Any] = {
        "invalid_user_id_list": by_outcome.get("invalid", []),
        "forbidden_user_id_list": forbidden,
        "forbidden_list": [
            {
                "code": task.outcome[u],
                "count": 1 if task.outcome[u] == SAME_CONTENT else state.config.dingtalk_daily_per_user,
                "userid": u,
            }
            for u in forbidden
        ],
        "failed_user_id_list": [],
        "read_user_id_list": [],
        "unread_user_id_list": [],
        "invalid_dept_id_list": [],
    }
    if _done(state, task):  # while DingTalk is still sending, nobody is listed as reached yet
        result["failed_user_id_list"] = by_outcome.get("failed", [])
        sent = by_outcome.get("sent", [])
        result["read_user_id_list"] = [u for u in sent if u in task.read]
        result["unread_user_id_list"] = [u for u in sent if u not in task.read]
    return JSONResponse({"errcode": 0, "errmsg": "ok", "send_result": result, "request_id": secrets.token_hex(6)})
