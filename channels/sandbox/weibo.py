"""Weibo `2/statuses/share.json` (token, length, safe-domain link, repeats, 30 posts an hour) and
`2/statuses/destroy.json` (delete one of the account's posts by id)."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from channels.sandbox.faults import apply_fault
from channels.sandbox.state import Fault, SandboxState

PATH = "/2/statuses/share.json"
DESTROY_PATH = "/2/statuses/destroy.json"
LINK = re.compile(r"https?://[^\s]+")


def weibo_error(code: int, message: str, status: int = 400, path: str = PATH) -> JSONResponse:
    """Weibo's error shape."""
    return JSONResponse({"error": message, "error_code": code, "request": path}, status_code=status)


def fault_error(fault: Fault, status: int) -> Response:
    """Provider-shaped error for an injected fault."""
    if status == 429:
        return weibo_error(10023, "User requests out of rate limit!", 429)
    return weibo_error(int(fault.code if fault.code is not None else 10001), "system error (sandbox)")


def has_safe_link(state: SandboxState, status: str) -> bool:
    """The status links to the registered safe domain (any http(s) link when none is set)."""
    for link in LINK.findall(status):
        host = urlparse(link).hostname or ""
        domain = state.config.weibo_safe_domain
        if not domain or host == domain or host.endswith("." + domain):
            return True
    return False


async def share(request: Request) -> Response:
    """POST /2/statuses/share.json (form: access_token, status, rip)."""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "weibo", fault_error)
    if injected is not None:
        return injected
    form = await request.form()
    token = str(form.get("access_token") or request.query_params.get("access_token") or "")
    status = str(form.get("status") or "")
    if not token:
        return weibo_error(21301, "auth faild!", 401)
    if not secrets.compare_digest(token.encode(), state.config.weibo_access_token.encode()):
        return weibo_error(21332, "invalid_access_token", 401)
    if not status:
        return weibo_error(10016, "miss required parameter (status) , see doc for more info.")
    if len(status) > state.config.weibo_max_chars:
        return weibo_error(
            20012, f"Text too long, please input text less than {state.config.weibo_max_chars} characters!"
        )
    if not has_safe_link(state, status):
        return weibo_error(10017, "parameter (status)'s value invalid,expect (must contain a safe domain url)")
    now = time.time()
    recent = [p for p in state.weibo_posts if now - p["_at"] < 3600]
    if len(recent) >= state.config.weibo_posts_per_hour:
        return weibo_error(10023, "User requests out of rate limit!", 403)
    if any(p["text"] == status for p in recent):
        return weibo_error(20019, "repeat content!")
    post_id = int(state.next_provider_id()) * 1000 + 7
    post: dict[str, Any] = {
        "created_at": datetime.now(UTC).strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "id": post_id,
        "idstr": str(post_id),
        "mid": str(post_id),
        "text": status,
        "source": "GovConnect",
        "user": {"id": 1000001, "screen_name": "衢州发布"},
        "_at": now,
    }
    state.weibo_posts.append(post)
    state.record("weibo", "share", reference=None, recipient=None, text=status, provider_id=str(post_id))
    return JSONResponse({k: v for k, v in post.items() if not k.startswith("_")})


async def destroy(request: Request) -> Response:
    """POST /2/statuses/destroy.json (form: access_token, id): the deleted post, or 20101 when there is none."""
    state: SandboxState = request.app.state.sandbox
    injected = await apply_fault(state, "weibo", fault_error)
    if injected is not None:
        return injected
    form = await request.form()
    token = str(form.get("access_token") or request.query_params.get("access_token") or "")
    post_id = str(form.get("id") or "")
    if not token:
        return weibo_error(21301, "auth faild!", 401, DESTROY_PATH)
    if not secrets.compare_digest(token, state.config.weibo_access_token):
        return weibo_error(21332, "invalid_access_token", 401, DESTROY_PATH)
    if not post_id:
        return weibo_error(10016, "miss required parameter (id) , see doc for more info.", path=DESTROY_PATH)
    if not post_id.isdigit():
        return weibo_error(10017, "parameter (id)'s value invalid,expect (int64)", path=DESTROY_PATH)
    for post in state.weibo_posts:
        if post["idstr"] == post_id:
            state.weibo_posts.remove(post)
            state.record("weibo", "destroy", reference=None, recipient=None, text=post["text"], provider_id=post_id)
            return JSONResponse({k: v for k, v in post.items() if not k.startswith("_")})
    return weibo_error(20101, "Target weibo does not exist!", path=DESTROY_PATH)
