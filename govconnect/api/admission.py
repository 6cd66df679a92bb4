"""Admission control: under overload, answer 503 with Retry-After within about a second, and keep
one caller's burst from starving everyone else.

Each caller may have `per_caller` requests in progress; more wait up to `queue_seconds` for a
turn, then get 503. A caller is an agency once one of its keys has authenticated (the token is
recognised by its hash, so a forged token naming another agency's key prefix is not counted as
that agency), else the client address for a request with an unknown token. Requests without a
token (pages, feeds, public search) share one gate of half the total, so they can never take
all of it. All callers together may have `total` in progress (below the worker threads and
database connections the requests need), beyond which the answer is 503 at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict, deque

from starlette.types import ASGIApp, Receive, Scope, Send

from govconnect.errors import error_response

RETRY_AFTER_SECONDS = 1
UNMETERED_PATHS = ("/healthz", "/readyz", "/metrics")
KNOWN_TOKENS = 10_000
ANONYMOUS = "anonymous"


class _Gate:
    """At most `limit` holders; waiters are served in arrival order."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.active = 0
        self.waiters: deque[asyncio.Future[bool]] = deque()

    async def enter(self, wait_seconds: float) -> bool:
        """Take a place, waiting up to `wait_seconds`; False when none came."""
        if self.active < self.limit and not self.waiters:
            self.active += 1
            return True
        if len(self.waiters) >= self.max_waiting:
            return False
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiters.append(turn)
        try:
            async with asyncio.timeout(wait_seconds):
                return await asyncio.shield(turn)
        except TimeoutError:
            return turn.done()  # handed over just as the wait ran out: the place is ours
        except asyncio.CancelledError:
            if turn.done():
                self.leave()  # the client went away holding a place: pass it on
            raise
        finally:
            if not turn.done():
                turn.cancel()
                self.waiters.remove(turn)

    def leave(self) -> None:
        """Hand the place to the next waiter, or free it."""
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.active -= 1

    @property
    def idle(self) -> bool:
        """Nobody holds or waits for a place."""
        return self.active == 0 and not self.waiters


class KnownTokens:
    """Which agency each recently authenticated token belongs to (by the token's hash)."""

    def __init__(self, size: int = KNOWN_TOKENS) -> None:
        self.size = size
        self.agencies: OrderedDict[str, int] = OrderedDict()

    def learn(self, token: str, agency_id: int) -> None:
        """Remember that this token belongs to the agency (called after it authenticated)."""
        digest = _token_digest(token)
        self.agencies[digest] = agency_id
        self.agencies.move_to_end(digest)
        while len(self.agencies) > self.size:
            self.agencies.popitem(last=False)

    def caller_of(self, scope: Scope) -> str:
        """The caller a request is counted against: its token's agency, its address, or `anonymous`."""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                _scheme, _, token = value.decode("latin-1").partition(" ")
                agency_id = self.agencies.get(_token_digest(token.strip()))
                if agency_id is not None:
                    return f"agency:{agency_id}"
                client = scope.get("client")
                return f"address:{client[0] if client else '-'}"
        return ANONYMOUS


class AdmissionControl:
    """ASGI middleware applying per-caller and total limits on requests in progress."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: KnownTokens,
        per_caller: int,
        total: int,
        queue_seconds: float,
        unmetered: tuple[str, ...] = UNMETERED_PATHS,
    ) -> None:
        self.app = app
        self.unmetered = unmetered
        self.tokens = tokens
        self.per_caller = per_caller
        self.total = total
        self.queue_seconds = queue_seconds
        self.in_progress = 0
        self.gates: dict[str, _Gate] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.unmetered):
            await self.app(scope, receive, send)
            return
        caller = self.tokens.caller_of(scope)
        gate = self.gates.get(caller)
        if gate is None:
            limit = max(1, self.total // 2) if caller == ANONYMOUS else self.per_caller
            gate = self.gates[caller] = _Gate(limit, max_waiting=limit * 8)
        if not await gate.enter(self.queue_seconds):
            self._forget_if_idle(caller, gate)
            await _overloaded(scope, receive, send)
            return
        try:
            if self.in_progress >= self.total:
                await _overloaded(scope, receive, send)
                return
            self.in_progress += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_progress -= 1
        finally:
            gate.leave()
            self._forget_if_idle(caller, gate)

    def _forget_if_idle(self, caller: str, gate: _Gate) -> None:
        if gate.idle and self.gates.get(caller) is gate:
            del self.gates[caller]


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


# Built once: under overload the refusal itself must cost next to nothing.
_OVERLOADED = error_response(503, "overloaded", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    await _OVERLOADED(scope, receive, send)
