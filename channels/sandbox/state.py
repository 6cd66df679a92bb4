"""The sandbox's memory: configuration, what it received, injected faults, pushes to the gateway."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from channels.catalogue import PROVIDER_NAMES
from channels.sandbox.bounded import BoundedDict

log = logging.getLogger("channels.sandbox")

FAULT_KINDS = (
    "error",  # answer with a provider error code (`code`), as the real API does
    "http_5xx",  # answer HTTP `status` (default 503)
    "rate_limit",  # HTTP 429 with Retry-After: `retry_after`
    "latency",  # answer normally after `latency_ms`
    "timeout",  # hold the request `seconds` (default 10) and then answer 504
    "expire_tokens",  # every token issued so far stops working at once (errcode 42001)
    "duplicate_reports",  # push each status report twice, as providers sometimes do
    "fail_reports",  # status reports say the message was not delivered
    "drop_reports",  # no status report is pushed (QuerySendDetails still knows the outcome)
    "drop_connections",  # CMPP only: close every SP connection at once
)
PUSH_SLOTS = 1024  # pushes in flight at once, each on a kept-alive connection (providers push from many servers)
CALLBACK_PATHS = {
    "sms_report": "/callbacks/aliyun_sms/report",
    "sms_up": "/callbacks/aliyun_sms/up",
    "voice_report": "/callbacks/aliyun_voice/report",
    "wechat_event": "/callbacks/wechat_mp",
}


@dataclass
class SandboxConfig:
    """Credentials the sandbox accepts, where it pushes callbacks, and its timing."""

    callback_base_url: str = ""  # the gateway; empty means nothing is pushed
    callback_token: str = ""  # appended as ?token= to every callback URL
    report_delay: float = 1.0
    push_retry_delays: tuple[float, ...] = (1.0, 5.0, 10.0)  # the real providers wait 1, 5, 10 minutes
    push_timeout: float = 5.0
    aliyun_access_key_id: str = "sandbox-access-key"
    aliyun_access_key_secret: str = "sandbox-access-secret"  # noqa: S105 - sandbox credential
    sms_sign_names: tuple[str, ...] = ()  # empty: any signature is approved
    sms_templates: dict[str, str] = field(default_factory=lambda: {"SMS_000000": "${content}"})
    timestamp_skew: float = 900.0
    undeliverable_suffix: str = "0000"  # numbers ending so get a failed report
    busy_suffix: str = "1111"  # click-to-dial: a leg to a number ending so is busy
    wechat_appid: str = "wxsandbox0000000001"
    wechat_secret: str = "sandbox-wechat-secret"  # noqa: S105
    wechat_callback_token: str = "sandbox-wechat-token"  # noqa: S105
    wechat_account: str = "gh_sandbox000001"
    wechat_encoding_aes_key: str = ""  # 43 characters: pushes go out in encrypted (安全) mode
    wechat_templates: tuple[str, ...] = ()  # empty: any template id is approved
    wecom_corpid: str = "wwsandbox00000001"
    wecom_corpsecret: str = "sandbox-wecom-secret"  # noqa: S105
    wecom_agentid: int = 1000002
    dingtalk_appkey: str = "dingsandbox0000001"
    dingtalk_appsecret: str = "sandbox-dingtalk-secret"  # noqa: S105
    dingtalk_agentid: int = 2000001
    dingtalk_daily_per_user: int = 500  # work notices one app may send one person a day (internal app)
    dingtalk_read_after: float | None = None  # seconds after sending that every recipient reads; None: never
    weibo_access_token: str = "sandbox-weibo-token"  # noqa: S105
    weibo_safe_domain: str = ""  # empty: any http(s) link will do
    weibo_max_chars: int = 140
    weibo_posts_per_hour: int = 30
    token_ttl: int = 7200
    token_overlap: float = 300.0  # an old token keeps working this long after a new one is issued
    voice_limits: tuple[tuple[float, int], ...] = ((60.0, 1), (3600.0, 5), (86400.0, 20))
    cmpp_port: int | None = None  # run the CMPP ISMG simulator beside the app on this port (0: ephemeral)
    cmpp_source_addr: str = "901234"
    cmpp_shared_secret: str = "sandbox-secret"  # noqa: S105
    cmpp_service_number: str = "1069012345"  # the SP's number (Src_Id): phones reply to it, DELIVER's Dest_Id
    cmpp_service_id: str = "GOVSMS"  # the SP's Service_Id, carried by a reply's DELIVER
    # Memory: the last `keep_messages` messages of each provider (and as many pushes, SMS send
    # details, WeChat msgids, DingTalk tasks ...) are kept for /_sandbox/messages and the tests;
    # totals are counted beyond the window.
    keep_messages: int = 10_000


@dataclass
class DingtalkTask:
    """One asyncsend_v2 task: who it went to and what became of each person."""

    task_id: int
    created: float
    users: list[str]
    outcome: dict[str, str]  # user -> "sent", "failed", "invalid", or a forbidden code (143105, 143106)
    read: set[str] = field(default_factory=set)


@dataclass
class DingtalkBook:
    """What the DingTalk sandbox remembers: tasks, per person per Beijing day counts and contents."""

    tasks: dict[int, DingtalkTask] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    day: str = ""  # the Beijing day `daily` and `contents` count
    daily: Counter[str] = field(default_factory=Counter)  # user -> notices today
    contents: set[int] = field(default_factory=set)  # hash((user, content hash)) sent today
    tasks_total: int = 0

    def start_day(self, day: str) -> None:
        """Forget yesterday's per-person counts when the Beijing day changes (the limits are per day)."""
        if day != self.day:
            self.day, self.daily, self.contents = day, Counter(), set()

    def forget(self, now: float, keep: int) -> None:
        """Drop tasks DingTalk no longer answers for (24 h), then the oldest past `keep`."""
        stale = [t for t, task in self.tasks.items() if now - task.created > 24 * 3600]
        for task_id in stale:
            del self.tasks[task_id]
        while len(self.tasks) > keep:  # `keep` tasks: the caller passes a tenth of the message window
            del self.tasks[next(iter(self.tasks))]


@dataclass(slots=True)
class Received:
    """One message the sandbox accepted (or refused, with `error`)."""

    id: int
    provider: str
    action: str
    reference: str | None
    recipient: str | None
    text: str
    provider_id: str
    at: float
    error: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """JSON view."""
        return asdict(self)


@dataclass
class Fault:
    """An injected failure for one provider, for the next `count` requests (or until cleared)."""

    id: int
    provider: str
    kind: str
    rate: float = 1.0
    count: int | None = None
    code: str | int | None = None
    status: int = 503
    retry_after: float = 1.0
    latency_ms: float = 0.0
    seconds: float = 10.0
    target: str = "send"  # "send" or "token"
    hits: int = 0


@dataclass
class Token:
    """An access token the sandbox issued."""

    value: str
    provider: str
    expires_at: float
    replaced_at: float | None = None
    revoked: bool = False


class SandboxState:
    """Everything one sandbox remembers; shared by its HTTP app (and a CMPP server, if any)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._ids = itertools.count(1)
        self._provider_ids = itertools.count(10_000_001)
        self._dingtalk_tasks = itertools.count(256_271_667_001)
        self.reset()
        self._client: aiohttp.ClientSession | None = None
        self._push_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.cmpp: Any = None  # a running channels.sandbox.cmpp_server.CmppSimulator, when there is one

    def reset(self) -> None:
        """Forget every message, fault, token and push."""
        keep = self.config.keep_messages
        self.received: dict[str, deque[Received]] = defaultdict(lambda: deque(maxlen=keep))
        self.received_total: Counter[str] = Counter()  # every message ever recorded, per provider
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.requests: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.tokens: dict[str, Token] = {}
        self.tokens_issued: Counter[str] = Counter()
        self.nonces: dict[str, float] = {}
        self.pushes: deque[dict[str, Any]] = deque(maxlen=keep)
        self.pushes_total = 0
        self.unfollowed: set[str] = set()
        self.wecom_invalid: set[str] = set()
        self.voice_calls: BoundedDict[str, list[float]] = BoundedDict(keep)
        # click-to-dial CallId -> (when its report goes out, the report); CancelCall changes it before then
        self.dial_calls: BoundedDict[str, tuple[float, dict[str, Any]]] = BoundedDict(keep)
        self.weibo_posts: list[dict[str, Any]] = []
        self.wechat_sent: BoundedDict[tuple[str, str], str] = BoundedDict(keep)
        # Alibaba SMS send details for QuerySendDetails: (BizId, phone, n) -> detail, the last `keep`.
        self.sms_details: BoundedDict[tuple[str, str, str], dict[str, Any]] = BoundedDict(keep)
        self.dingtalk = DingtalkBook()

    # -- records -------------------------------------------------------------------------------
    def next_provider_id(self) -> str:
        """A fresh provider-side id."""
        return str(next(self._provider_ids))

    def dingtalk_task_id(self) -> int:
        """A fresh DingTalk task id (a number, as DingTalk's are)."""
        return next(self._dingtalk_tasks)

    def record(
        self,
        provider: str,
        action: str,
        *,
        reference: str | None,
        recipient: str | None,
        text: str,
        provider_id: str,
        error: str = "",
        params: dict[str, Any] | None = None,
    ) -> Received:
        """Remember one message; accepted ones are counted per reference so duplicates show."""
        item = Received(
            next(self._ids), provider, action, reference, recipient, text, provider_id, time.time(), error, params or {}
        )
        self.received[provider].append(item)
        self.received_total[provider] += 1
        if not error:
            self.counts[provider][reference or ""] += 1
        return item

    def recent(self, provider: str | None = None) -> Iterator[Received]:
        """The kept window of messages (of one provider, or all), oldest first."""
        if provider is not None:
            return iter(self.received.get(provider, ()))
        return heapq.merge(*self.received.values(), key=lambda r: r.id)

    def messages(
        self, provider: str | None = None, reference: str | None = None, recipient: str | None = None
    ) -> list[Received]:
        """Accepted and refused messages of the kept window, oldest first, filtered."""
        return [
            r
            for r in self.recent(provider)
            if (reference is None or r.reference == reference) and (recipient is None or r.recipient == recipient)
        ]

    # -- faults --------------------------------------------------------------------------------
    def add_fault(self, provider: str, kind: str, **options: Any) -> Fault:
        """Inject a fault; ValueError for an unknown provider, kind or option."""
        if provider not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {provider!r}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        allowed = {"rate", "count", "code", "status", "retry_after", "latency_ms", "seconds", "target"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown fault options {sorted(unknown)}")
        fault = Fault(next(self._ids), provider, kind, **options)
        if kind == "expire_tokens":
            for token in self.tokens.values():
                if token.provider == provider:
                    token.expires_at = time.time() - 1
            return fault
        self.faults.append(fault)
        return fault

    def clear_faults(self, provider: str | None = None) -> int:
        """Remove faults (of one provider, or all); how many were removed."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if provider is not None and f.provider != provider]
        return before - len(self.faults)

    def take_fault(self, provider: str, target: str = "send", kinds: tuple[str, ...] = FAULT_KINDS) -> Fault | None:
        """The fault that applies to this request, if any (counting it)."""
        for fault in self.faults:
            if fault.provider != provider or fault.kind not in kinds or fault.target != target:
                continue
            if fault.count is not None and fault.hits >= fault.count:
                continue
            if random.random() >= fault.rate:
                continue
            fault.hits += 1
            return fault
        return None

    # -- tokens --------------------------------------------------------------------------------
    def issue_token(self, provider: str) -> Token:
        """A new token; the provider's previous ones stop working after the overlap."""
        now = time.time()
        for token in self.tokens.values():
            if token.provider == provider and token.replaced_at is None:
                token.replaced_at = now
        token = Token(f"{provider}-{uuid.uuid4().hex}", provider, now + self.config.token_ttl)
        self.tokens[token.value] = token
        self.tokens_issued[provider] += 1
        return token

    def check_token(self, provider: str, value: str) -> int:
        """0 when valid; 42001 expired; 40001 unknown, replaced or for another provider."""
        token = self.tokens.get(value)
        now = time.time()
        if token is None or token.provider != provider or token.revoked:
            return 40001 if provider == "wechat_mp" else 40014
        if token.replaced_at is not None and now - token.replaced_at > self.config.token_overlap:
            return 40001 if provider == "wechat_mp" else 40014
        if now >= token.expires_at:
            return 42001
        return 0

    # -- pushes to the gateway -----------------------------------------------------------------
    def callback_url(self, kind: str, extra: dict[str, str] | None = None) -> str | None:
        """Where a push of this kind goes, or None when no gateway is configured."""
        if not self.config.callback_base_url:
            return None
        query = dict(extra or {})
        if self.config.callback_token:
            query["token"] = self.config.callback_token
        url = self.config.callback_base_url.rstrip("/") + CALLBACK_PATHS[kind]
        return f"{url}?{urlencode(query)}" if query else url

    def _http(self) -> aiohttp.ClientSession:
        # The pushes use aiohttp rather than httpx: at thousands of pushes a second, httpcore's pool
        # (which scans every pooled connection on each request) cost the sandbox most of a core,
        # and the sandbox shares the machine with the gateway it is measuring.
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.push_timeout, connect=2.0),
                connector=aiohttp.TCPConnector(limit=PUSH_SLOTS),
            )
        return self._client

    def _slots(self) -> asyncio.Semaphore:
        # Bounds pushes in flight, so a burst of thousands of receipts queues here instead of
        # timing out inside the HTTP client (which lost WeChat receipts at 100,000 recipients).
        if self._push_slots is None:
            self._push_slots = asyncio.Semaphore(PUSH_SLOTS)
        return self._push_slots

    async def push(
        self, kind: str, body: Any, *, xml: bool = False, extra: dict[str, str] | None = None, retry: bool = True
    ) -> int | None:
        """POST one push now (retrying on failure unless `retry` is False); the final HTTP status."""
        url = self.callback_url(kind, extra)
        if url is None:
            return None
        entry: dict[str, Any] = {"kind": kind, "path": CALLBACK_PATHS[kind], "attempts": 0, "status": None}
        self.pushes.append(entry)
        self.pushes_total += 1
        delays = (0.0, *self.config.push_retry_delays) if retry else (0.0,)
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            entry["attempts"] += 1
            try:
                async with self._slots():
                    status = await self._post(url, body, xml)
            except (aiohttp.ClientError, TimeoutError) as exc:
                entry["error"] = type(exc).__name__
                continue
            entry["status"] = status
            if status == 200:
                return 200
        log.warning("sandbox push %s failed after %d attempts", kind, entry["attempts"])
        return entry["status"]

    async def _post(self, url: str, body: Any, xml: bool) -> int:
        if xml:
            data, content_type = str(body).encode(), "text/xml"
        else:
            data, content_type = json.dumps(body, ensure_ascii=False).encode(), "application/json"
        async with self._http().post(url, data=data, headers={"Content-Type": content_type}) as response:
            await response.read()
            return response.status

    def push_later(self, kind: str, body: Any, *, xml: bool = False, extra: dict[str, str] | None = None) -> None:
        """Push after the configured delay, in the background."""
        if not self.config.callback_base_url:
            return

        async def run() -> None:
            await asyncio.sleep(self.config.report_delay)
            await self.push(kind, body, xml=xml, extra=extra)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending_pushes(self) -> int:
        """Pushes scheduled and not finished yet."""
        return len(self._tasks)

    async def drain(self, wait_s: float = 10.0) -> None:
        """Wait until scheduled pushes are done (for tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)

    async def aclose(self) -> None:
        """Cancel pending pushes and close the push client."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
