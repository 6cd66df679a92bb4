"""DingTalk (钉钉, and 浙政钉 on its own host) work notices to staff: up to 100 user ids a call.

Wire facts, from DingTalk's open-platform documentation (服务端API › 消息通知 › 工作通知):
- `GET gettoken?appkey=&appsecret=` gives `access_token`, `expires_in` 7200; asking again within
  that time returns the same token, so it is cached and shared (channels/tokens.py) like WeChat's.
- `POST topapi/message/corpconversation/asyncsend_v2?access_token=` with `agent_id`,
  `userid_list` (comma-separated, at most 100) and `msg` (`text`, `markdown`, `action_card` ...;
  at most 2048 bytes) answers `errcode`, `task_id`, `request_id`. The send is asynchronous: a
  success only means DingTalk took the task.
- `topapi/message/corpconversation/getsendprogress` (`agent_id`, `task_id`) gives
  `progress.status` (0 not started, 1 sending, 2 done) and `progress_in_percent`;
  `getsendresult` gives `send_result` with `read_user_id_list`, `unread_user_id_list`,
  `failed_user_id_list`, `forbidden_user_id_list` (with `forbidden_list` codes: 143105 the app's
  daily cap for one person, 500 for an internal app; 143106 the same content to the same person
  twice in a day) and `invalid_user_id_list`. Only tasks of the last 24 hours can be queried.
- Errors: `errcode` -1 busy (retry), 88 with `sub_code` (e.g. 60011 no permission), 40014 bad
  token, 42001 token expired, 40089 bad appkey/appsecret, 40035 bad parameter; 143103/143104 the
  app's or the company's people-a-minute quota (retry later).

Each message's result carries the task id as provider id; `receipts` turns a send result into
`Receipt`s (delivered for read and unread people, failed for the others) and the read ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.base import Channel, OutboundMessage, PermanentError, Receipt, RetryableError, SendResult
from channels.tokens import AccessToken, TokenStore
from channels.wechat_common import SYSTEM_BUSY, fetch_token, post_with_token

MAX_USERS = 100
MAX_MSG_BYTES = 2048
AUTH_FAILED = 88  # sub_code says why
BAD_PARAMETER = 40035
QUOTA_PER_MINUTE = frozenset({143103, 143104})
RETRYABLE = frozenset({SYSTEM_BUSY, *QUOTA_PER_MINUTE})
DAILY_CAP = "143105"
SAME_CONTENT = "143106"
PROGRESS_DONE = 2


@dataclass(frozen=True)
class DingtalkConfig:
    """The DingTalk (or 浙政钉) internal application's credentials."""

    base_url: str
    appkey: str
    appsecret: str
    agentid: int


@dataclass(frozen=True)
class SendProgress:
    """`getsendprogress`: how far DingTalk got with a task."""

    status: int  # 0 not started, 1 sending, 2 done
    percent: int

    @property
    def done(self) -> bool:
        """DingTalk finished sending the task."""
        return self.status == PROGRESS_DONE


@dataclass(frozen=True)
class TaskResult:
    """`getsendresult`: who read, who has not, and who was not reached (with DingTalk's reason)."""

    read: frozenset[str] = frozenset()
    unread: frozenset[str] = frozenset()
    failed: dict[str, str] = field(default_factory=dict)  # user id -> code

    def receipts(self, task_id: str) -> list[Receipt]:
        """One receipt per person DingTalk has an answer for, matched by task id and user id."""
        out = [
            Receipt(None, task_id, True, "read" if user in self.read else "unread", provider="dingtalk", recipient=user)
            for user in sorted(self.read | self.unread)
        ]
        out.extend(
            Receipt(None, task_id, False, code, _REASONS.get(code, ""), provider="dingtalk", recipient=user)
            for user, code in sorted(self.failed.items())
        )
        return out


_REASONS = {
    "invalid": "用户不存在或不在应用可见范围 / user id unknown to the app",
    "failed": "钉钉发送失败 / DingTalk could not send",
    "forbidden": "钉钉流控 / refused by DingTalk's limits",
    DAILY_CAP: "超过单应用每人每日上限 / the app's daily cap for this person",
    SAME_CONTENT: "同一内容每人每天一次 / same content to the same person once a day",
}


def _users(value: Any) -> list[str]:
    """A user id list as DingTalk gives it: a JSON array, or a comma-separated string."""
    if isinstance(value, str):
        return [u for u in value.split(",") if u]
    if isinstance(value, list):
        return [str(u) for u in value if u]
    return []


def _task(task_id: str) -> int | str:
    """DingTalk's task ids are numbers."""
    return int(task_id) if task_id.isdigit() else task_id


def _raise_for(body: dict[str, Any], retry_after: float | None) -> None:
    errcode = int(body.get("errcode") or 0)
    if errcode == 0:
        return
    code = str(errcode)
    if errcode == AUTH_FAILED and body.get("sub_code"):
        code = f"{errcode}:{body['sub_code']}"
    reason = str(body.get("sub_msg") or body.get("errmsg") or "")[:200]
    if errcode in RETRYABLE:
        raise RetryableError(code, reason, retry_after)
    raise PermanentError(code, reason)


class Dingtalk(Channel):
    """Work notices from a DingTalk internal application to staff by user id."""

    channel = "dingtalk"
    provider = "dingtalk"
    max_batch = MAX_USERS

    def __init__(
        self, config: DingtalkConfig, client: httpx.AsyncClient, token_store: TokenStore | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.base = config.base_url.rstrip("/") + "/"
        self.token = AccessToken(f"dingtalk:{config.appkey}", self._fetch_token, token_store)

    async def _fetch_token(self) -> tuple[str, float]:
        return await fetch_token(
            self.client, self.base + "gettoken", {"appkey": self.config.appkey, "appsecret": self.config.appsecret}
        )

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body, retry_after = await post_with_token(self.client, self.token, self.base + path, payload)
        _raise_for(body, retry_after)
        return body

    @staticmethod
    def message(message: OutboundMessage) -> dict[str, Any]:
        """The `msg` object: an action card when there is a link, markdown when titled, else text."""
        title = message.title or message.text[:20]
        if message.url:
            return {
                "msgtype": "action_card",
                "action_card": {
                    "title": title,
                    "markdown": f"### {title}\n{message.text}",
                    "single_title": "查看详情",
                    "single_url": message.url,
                },
            }
        if message.title:
            return {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n{message.text}"}}
        return {"msgtype": "text", "text": {"content": message.text}}

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        # People with the same content share one task; different content goes separately.
        groups: dict[tuple[str, str, str | None], list[OutboundMessage]] = {}
        for m in messages:
            groups.setdefault((m.title, m.text, m.url), []).append(m)
        results: dict[str, SendResult] = {}
        for group in groups.values():
            results.update(await self._send_group(group))
        return [results[m.reference] for m in messages]

    async def _send_group(self, group: list[OutboundMessage]) -> dict[str, SendResult]:
        msg = self.message(group[0])
        if len(httpx.Request("POST", "/", json=msg).content) > MAX_MSG_BYTES:
            return {
                m.reference: SendResult.permanent(
                    m.reference, "too_long", "消息超过 2048 字节 / message over 2048 bytes"
                )
                for m in group
            }
        users = list(dict.fromkeys(m.recipient for m in group))
        payload = {"agent_id": self.config.agentid, "userid_list": ",".join(users), "msg": msg}
        try:
            body = await self._call("topapi/message/corpconversation/asyncsend_v2", payload)
        except RetryableError as exc:
            return {
                m.reference: SendResult.retryable(m.reference, exc.code, exc.reason, exc.retry_after) for m in group
            }
        except PermanentError as exc:
            return {m.reference: SendResult.permanent(m.reference, exc.code, exc.reason) for m in group}
        task_id = str(body.get("task_id") or "")
        if not task_id:
            return {
                m.reference: SendResult.retryable(m.reference, "no_task_id", "answer without task_id") for m in group
            }
        return {m.reference: SendResult.accepted(m.reference, task_id) for m in group}

    async def send_progress(self, task_id: str) -> SendProgress:
        """`getsendprogress` for one task; RetryableError/PermanentError when DingTalk refuses."""
        body = await self._call(
            "topapi/message/corpconversation/getsendprogress",
            {"agent_id": self.config.agentid, "task_id": _task(task_id)},
        )
        progress = body.get("progress") or {}
        return SendProgress(int(progress.get("status") or 0), int(progress.get("progress_in_percent") or 0))

    async def send_result(self, task_id: str) -> TaskResult:
        """`getsendresult` for one task: read / unread / failed, forbidden and invalid people."""
        body = await self._call(
            "topapi/message/corpconversation/getsendresult",
            {"agent_id": self.config.agentid, "task_id": _task(task_id)},
        )
        result = body.get("send_result") or {}
        failed: dict[str, str] = {}
        for user in _users(result.get("invalid_user_id_list")):
            failed[user] = "invalid"
        for user in _users(result.get("failed_user_id_list")):
            failed[user] = "failed"
        forbidden_codes = {
            str(item.get("userid")): str(item.get("code") or "forbidden")
            for item in result.get("forbidden_list") or []
            if isinstance(item, dict)
        }
        for user in _users(result.get("forbidden_user_id_list")):
            failed[user] = forbidden_codes.get(user, "forbidden")
        read = frozenset(_users(result.get("read_user_id_list")))
        unread = frozenset(_users(result.get("unread_user_id_list"))) - read
        return TaskResult(read, unread, failed)
