"""WeCom (企业微信) application messages to staff: one request for up to 1000 members.

Members are joined as `touser=a|b|c`. The answer lists members that could not be reached in
`invaliduser` (`a|b`); errcode 81013 means nobody could be. Each of our messages gets its own
result: invalid members a permanent failure, the rest accepted under the answer's msgid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from channels.base import Channel, OutboundMessage, SendResult
from channels.tokens import AccessToken, TokenStore
from channels.wechat_common import SYSTEM_BUSY, TOKEN_INVALID, fetch_token, post_with_token

MAX_USERS = 1000
ALL_INVALID = 81013
INVALID_USER = "invaliduser"
RETRYABLE = frozenset({SYSTEM_BUSY, 45009, 45033, 45047, *TOKEN_INVALID})  # busy, API/frequency limits


@dataclass(frozen=True)
class WecomConfig:
    """The WeCom application's credentials."""

    base_url: str
    corpid: str
    corpsecret: str
    agentid: int
    duplicate_check_interval: int = 1800


class Wecom(Channel):
    """Text or text-card messages from a WeCom application to members."""

    channel = "wecom"
    provider = "wecom"
    max_batch = MAX_USERS

    def __init__(self, config: WecomConfig, client: httpx.AsyncClient, token_store: TokenStore | None = None) -> None:
        self.config = config
        self.client = client
        self.base = config.base_url.rstrip("/") + "/"
        self.token = AccessToken(f"wecom:{config.corpid}:{config.agentid}", self._fetch_token, token_store)

    async def _fetch_token(self) -> tuple[str, float]:
        return await fetch_token(
            self.client,
            self.base + "cgi-bin/gettoken",
            {"corpid": self.config.corpid, "corpsecret": self.config.corpsecret},
        )

    def _payload(self, message: OutboundMessage, users: list[str]) -> dict[str, object]:
        payload: dict[str, object] = {
            "touser": "|".join(users),
            "agentid": self.config.agentid,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": self.config.duplicate_check_interval,
        }
        if message.url:
            payload["msgtype"] = "textcard"
            payload["textcard"] = {
                "title": message.title or message.text[:30],
                "description": message.text,
                "url": message.url,
                "btntxt": "详情",
            }
        else:
            text = f"{message.title}\n{message.text}" if message.title else message.text
            payload["msgtype"] = "text"
            payload["text"] = {"content": text}
        return payload

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        # Members with the same content share one request; different content goes separately.
        groups: dict[tuple[str, str, str | None], list[OutboundMessage]] = {}
        for m in messages:
            groups.setdefault((m.title, m.text, m.url), []).append(m)
        results: dict[str, SendResult] = {}
        for group in groups.values():
            results.update(await self._send_group(group))
        return [results[m.reference] for m in messages]

    async def _send_group(self, group: list[OutboundMessage]) -> dict[str, SendResult]:
        users = list(dict.fromkeys(m.recipient for m in group))
        body, retry_after = await post_with_token(
            self.client, self.token, self.base + "cgi-bin/message/send", self._payload(group[0], users)
        )
        errcode = int(body.get("errcode") or 0)
        reason = str(body.get("errmsg") or "")
        if errcode == ALL_INVALID:
            return {m.reference: SendResult.permanent(m.reference, str(errcode), reason) for m in group}
        if errcode in RETRYABLE:
            return {m.reference: SendResult.retryable(m.reference, str(errcode), reason, retry_after) for m in group}
        if errcode != 0:
            return {m.reference: SendResult.permanent(m.reference, str(errcode), reason) for m in group}
        invalid = {u for u in str(body.get("invaliduser") or "").split("|") if u}
        msgid = str(body.get("msgid") or "")
        return {
            m.reference: (
                SendResult.permanent(m.reference, INVALID_USER, "member not found or not in the app's scope")
                if m.recipient in invalid
                else SendResult.accepted(m.reference, msgid)
            )
            for m in group
        }
