"""The city's Weibo account: `2/statuses/share.json` posts linking back to the mobile site,
`2/statuses/destroy.json` deletes one when its notice is retracted.

The status is cut to the character limit with an ellipsis before the link. Weibo allows 30
posts an hour per authorised user; over that the adapter answers retryable with `retry_after`
(the time until the oldest post leaves the window) so the caller queues the post instead of
dropping it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from channels.base import Channel, OutboundMessage, PermanentError, RetryableError, SendResult
from channels.http import json_body, parse_retry_after, request
from channels.shared_windows import RedisPostWindow, maybe_await

ELLIPSIS = "…"
RATE_LIMITED = frozenset({10022, 10023, 10024, 20016})  # IP / user / per-API request limits, posting too fast
TOKEN_ERRORS = frozenset({21314, 21315, 21316, 21317, 21327, 21332})
POST_GONE = 20101  # "Target weibo does not exist!": deleted already, which is what we wanted
DEFAULT_RATE_RETRY = 300.0


@dataclass(frozen=True)
class WeiboConfig:
    """The authorised account and its posting rules."""

    base_url: str
    access_token: str
    max_chars: int = 140
    posts_per_hour: int = 30


def compose_status(text: str, url: str | None, max_chars: int = 140, title: str = "") -> str:
    """`【title】text url`, the text cut with an ellipsis so the whole fits in `max_chars`."""
    body = f"【{title}】{text.strip()}" if title else text.strip()
    link = f" {url}" if url else ""
    room = max_chars - len(link)
    if len(body) > room:
        body = body[: max(0, room - len(ELLIPSIS))] + ELLIPSIS
    return body + link


class PostWindow:
    """Posts in the last hour, in this process."""

    def __init__(self, per_hour: int, window: float = 3600.0) -> None:
        self.per_hour = per_hour
        self.window = window
        self.posts: deque[float] = deque()

    def wait(self, now: float | None = None) -> float:
        """Seconds until another post is allowed (0 when now)."""
        now = time.monotonic() if now is None else now
        while self.posts and now - self.posts[0] >= self.window:
            self.posts.popleft()
        if len(self.posts) < self.per_hour:
            return 0.0
        return self.window - (now - self.posts[0])

    def record(self, now: float | None = None) -> None:
        """Count a post."""
        self.posts.append(time.monotonic() if now is None else now)


@dataclass(frozen=True)
class DeleteOutcome:
    """What deleting a post came to: done (deleted now or already gone), or an error to retry or not."""

    done: bool
    retryable: bool = False
    code: str = ""
    reason: str = ""
    retry_after: float | None = None


class Weibo(Channel):
    """Posts to the official account's timeline (recipient is ignored)."""

    channel = "weibo"
    provider = "weibo"
    max_batch = 1

    def __init__(
        self, config: WeiboConfig, client: httpx.AsyncClient, window: PostWindow | RedisPostWindow | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.base = config.base_url.rstrip("/") + "/"
        self.window = window or PostWindow(config.posts_per_hour)

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        (message,) = messages
        ref = message.reference
        wait: float = await maybe_await(self.window.wait())
        if wait > 0:
            return [SendResult.retryable(ref, "rate_limit_local", "30 posts an hour", retry_after=wait)]
        status = compose_status(message.text, message.url, self.config.max_chars, message.title)
        response = await request(
            self.client,
            "POST",
            self.base + "2/statuses/share.json",
            data={"access_token": self.config.access_token, "status": status},
        )
        body = json_body(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if "error_code" not in body and body.get("idstr", body.get("id")):
            self.window.record()
            return [SendResult.accepted(ref, str(body.get("idstr") or body.get("id")))]
        code = int(body.get("error_code") or 0)
        reason = str(body.get("error") or "")
        if code in RATE_LIMITED:
            return [SendResult.retryable(ref, str(code), reason, retry_after or DEFAULT_RATE_RETRY)]
        if code in TOKEN_ERRORS:
            raise PermanentError(str(code), reason)
        if code == 10001 or code == 10003:  # system error / remote service error
            return [SendResult.retryable(ref, str(code), reason, retry_after)]
        return [SendResult.permanent(ref, str(code or "unknown"), reason)]

    async def delete_post(self, post_id: str) -> DeleteOutcome:
        """Delete one of the account's posts by its id (`2/statuses/destroy.json`)."""
        try:
            response = await request(
                self.client,
                "POST",
                self.base + "2/statuses/destroy.json",
                data={"access_token": self.config.access_token, "id": post_id},
            )
            body = json_body(response)
        except RetryableError as exc:
            return DeleteOutcome(False, True, exc.code, exc.reason, exc.retry_after)
        if "error_code" not in body and str(body.get("idstr") or body.get("id") or "") == post_id:
            return DeleteOutcome(True)
        code = int(body.get("error_code") or 0)
        reason = str(body.get("error") or "")
        if code == POST_GONE:
            return DeleteOutcome(True, code=str(code), reason=reason)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if code in RATE_LIMITED or code in (10001, 10003):
            return DeleteOutcome(False, True, str(code), reason, retry_after or DEFAULT_RATE_RETRY)
        return DeleteOutcome(False, False, str(code or "unknown"), reason)
