"""SMS over a CMPP 2.0 carrier link (China Mobile ISMG): the second SMS provider beside the HTTP API.

One long-lived TCP link, logged in with CONNECT, carries SUBMITs through a sliding window of at
most 16 unanswered requests. Long texts go out as 67-character UCS-2 parts with a concatenation
header; a message is accepted only when every part is. The ISMG's Msg_Ids are mapped back to our
reference so DELIVER status reports (and the parts of a long message) become one `Receipt`;
mobile-originated replies become `InboundReply`s. ACTIVE_TEST keeps an idle link honest, a dead
link is replaced with backoff, and requests unanswered when it dies come back as retryable.
Logs carry references and Msg_Ids only, never numbers or texts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.base import (
    Channel,
    InboundReply,
    OutboundMessage,
    PermanentError,
    ProviderError,
    Receipt,
    RetryableError,
    SendResult,
)
from channels.cmpp_pdu import (
    CONNECT_STATUS,
    MAX_CONTENT,
    MSG_FMT_UCS2,
    PDU_TYPES,
    RESPONSE_BIT,
    RESULT_FLOW_CONTROL,
    SUBMIT_RESULT,
    UDH_SIZE,
    ActiveTest,
    ActiveTestResp,
    Command,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    Pdu,
    PduError,
    StatusReport,
    Submit,
    SubmitResp,
    Terminate,
    TerminateResp,
    authenticator_ismg,
    authenticator_source,
    decode,
    decode_text,
    encode,
    format_msg_id,
    read_frame,
    split_udh,
    timestamp,
    ucs2_chunks,
    udh,
)
from channels.cmpp_receipts import ReceiptTracker
from channels.sms_text import PART_LIMIT, SINGLE_LIMIT, compose, split_parts

log = logging.getLogger("channels.cmpp")

__all__ = ["CmppChannel", "CmppConfig", "CmppConnectError", "ReceiptTracker", "encode_parts"]

MAX_PENDING_REPLIES = 1000  # incomplete long replies kept while waiting for their other parts
ReceiptHandler = Callable[[Receipt], Awaitable[None]]
ReplyHandler = Callable[[InboundReply], Awaitable[None]]


@dataclass(frozen=True)
class CmppConfig:
    """Where the ISMG is, who we are on it, and the link timings (seconds)."""

    host: str = "127.0.0.1"
    port: int = 7890
    source_addr: str = ""
    shared_secret: str = ""
    service_id: str = ""
    src_id: str = ""
    sign_name: str = ""  # shown as 【sign_name】; the carrier link, unlike the HTTP API, does not add it
    version: int = 0x20
    connect_timeout: float = 10.0
    response_timeout: float = 60.0
    heartbeat_interval: float = 180.0
    heartbeat_tries: int = 3
    window: int = 16
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    close_timeout: float = 5.0
    flow_control_retry_after: float = 1.0
    tracked_messages: int = 200_000

    def __post_init__(self) -> None:
        for name, width in (("source_addr", 6), ("service_id", 10), ("src_id", 21)):
            value = getattr(self, name)
            if not value.isascii() or len(value) > width:
                raise ValueError(f"CMPP {name} must be ASCII of at most {width} characters")
        if self.window < 1:
            raise ValueError("CMPP window must allow at least one unanswered request")


class CmppConnectError(RetryableError):
    """The ISMG refused the login (or failed to prove it knows the secret).

    Retryable rather than permanent: the messages are fine, the link is not, so the pipeline
    can fail over to the other SMS provider while the link keeps retrying with backoff.
    """


def encode_parts(text: str) -> list[bytes]:
    """UCS-2 payloads of the SMS parts: one of ≤ 70 characters, else 67-character parts (sms_text rules)."""
    pieces = split_parts(text)
    limit = SINGLE_LIMIT if len(pieces) == 1 else PART_LIMIT
    encoded = [piece.encode("utf-16-be") for piece in pieces]
    if all(len(chunk) <= 2 * limit for chunk in encoded):
        return encoded
    # Characters beyond the BMP take two UCS-2 units: cut by units instead, keeping pairs whole.
    units = text.encode("utf-16-be")
    if len(units) <= MAX_CONTENT:
        return [units]
    return ucs2_chunks(units, MAX_CONTENT - UDH_SIZE)


class _Link:
    """One logged-in TCP connection: sequence numbers, the window and the unanswered requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: int) -> None:
        self.reader = reader
        self.writer = writer
        self.window = asyncio.Semaphore(window)
        self.pending: dict[int, asyncio.Future[Pdu]] = {}
        self.on_response: dict[int, Callable[[Pdu], None]] = {}
        self.sequence = 1  # CONNECT used 1
        self.last_rx = asyncio.get_running_loop().time()
        self.lost = asyncio.Event()
        self.probe = asyncio.Event()
        self.reason = ""

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    async def request(self, pdu: Pdu, within: float, on_response: Callable[[Pdu], None] | None = None) -> Pdu:
        """Send a request inside the window and wait for its response.

        `on_response` runs synchronously as the response is read, before any later PDU is handled.
        """
        async with self.window:
            if self.lost.is_set():
                raise RetryableError("cmpp-link-lost", self.reason)
            sequence = self.next_sequence()
            future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
            self.pending[sequence] = future
            if on_response is not None:
                self.on_response[sequence] = on_response
            try:
                self.writer.write(encode(pdu, sequence))
                await self.writer.drain()
                return await asyncio.wait_for(future, within)
            except TimeoutError:
                self.probe.set()  # an unanswered request: check the link now, not at the next idle tick
                raise RetryableError("cmpp-timeout", f"no response to {pdu.command.name}") from None
            except (ConnectionError, OSError) as exc:
                self.drop(f"write failed: {type(exc).__name__}")
                raise RetryableError("cmpp-link-lost", self.reason) from None
            finally:
                self.pending.pop(sequence, None)
                self.on_response.pop(sequence, None)

    def reply(self, pdu: Pdu, sequence: int) -> None:
        """Answer a request from the ISMG with its Sequence_Id."""
        if not self.lost.is_set():
            self.writer.write(encode(pdu, sequence))

    def resolve(self, sequence: int, pdu: Pdu) -> None:
        future = self.pending.get(sequence)
        if future is not None and not future.done():
            callback = self.on_response.pop(sequence, None)
            if callback is not None:
                callback(pdu)
            future.set_result(pdu)

    def drop(self, reason: str) -> None:
        """Mark the link dead; every unanswered request becomes retryable."""
        if self.lost.is_set():
            return
        self.reason = reason
        self.lost.set()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(RetryableError("cmpp-link-lost", reason))
        self.writer.close()


class CmppChannel(Channel):
    """CMPP 2.0 SP client: SMS through a carrier ISMG."""

    channel = "sms"
    provider = "cmpp"
    max_batch = 100

    def __init__(
        self,
        config: CmppConfig,
        on_receipt: ReceiptHandler | None = None,
        on_reply: ReplyHandler | None = None,
    ) -> None:
        self.config = config
        self.on_receipt = on_receipt
        self.on_reply = on_reply
        self.tracker = ReceiptTracker(config.tracked_messages)
        self.stats = {"connects": 0, "link_losses": 0, "active_tests": 0}
        self._link: _Link | None = None
        self._ready = asyncio.Event()
        self._attempt = asyncio.Event()
        self._last_error: ProviderError | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._udh_ref = random.randrange(256)
        self._tasks: set[asyncio.Task[None]] = set()
        self._mo_parts: dict[tuple[str, int, int], dict[int, bytes]] = {}

    @property
    def connected(self) -> bool:
        """True while a logged-in link is up."""
        return self._link is not None and not self._link.lost.is_set()

    async def connect(self) -> None:
        """Bring the link up (starting the reconnecting supervisor); raise when the login fails."""
        if self._closing:
            raise RetryableError("cmpp-closing")
        if self.connected:
            return
        if self._supervisor is not None and self._last_error is not None:
            raise self._last_error
        attempt = self._attempt
        self._start()
        await asyncio.wait_for(attempt.wait(), self.config.connect_timeout + self.config.response_timeout)
        if not self.connected:
            raise self._last_error or RetryableError("cmpp-link-down")

    def _start(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name="cmpp-link")

    async def _supervise(self) -> None:
        delay = self.config.reconnect_initial
        while not self._closing:
            try:
                link = await self._open()
            except ProviderError as exc:
                self._last_error = exc
                self._signal_attempt()
                log.warning("cmpp login failed (%s); retrying in %.1fs", exc.code, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            if self._closing:
                # Python 3.11's wait_for can swallow a cancel that races a finished connect.
                link.drop("closed")
                break
            delay = self.config.reconnect_initial
            self._last_error = None
            self._link = link
            self.stats["connects"] += 1
            self._ready.set()
            self._signal_attempt()
            log.info("cmpp link up to %s:%d", self.config.host, self.config.port)
            await self._serve(link)
            self._ready.clear()
            if self._closing:
                break
            self.stats["link_losses"] += 1
            log.warning("cmpp link lost (%s); reconnecting", link.reason)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _signal_attempt(self) -> None:
        self._attempt.set()
        self._attempt = asyncio.Event()

    async def _open(self) -> _Link:
        """TCP connect and CONNECT/CONNECT_RESP with mutual authentication."""
        cfg = self.config
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise RetryableError("cmpp-connect-failed", type(exc).__name__) from None
        stamp, stamp_int = timestamp()
        auth = authenticator_source(cfg.source_addr, cfg.shared_secret, stamp)
        try:
            writer.write(encode(Connect(cfg.source_addr, auth, cfg.version, stamp_int), 1))
            await writer.drain()
            command_id, _, body = await asyncio.wait_for(read_frame(reader), cfg.response_timeout)
            if command_id != Command.CONNECT_RESP:
                raise RetryableError("cmpp-connect-protocol", f"unexpected command 0x{command_id:08x}")
            resp = ConnectResp.parse(body)
            if resp.status != 0:
                raise CmppConnectError(f"cmpp-connect-{resp.status}", CONNECT_STATUS.get(resp.status, "refused"))
            if resp.authenticator != authenticator_ismg(resp.status, auth, cfg.shared_secret):
                raise CmppConnectError("cmpp-ismg-auth", "gateway authenticator does not match")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, PduError) as exc:
            writer.close()
            raise RetryableError("cmpp-connect-failed", type(exc).__name__) from None
        except ProviderError:
            writer.close()
            raise
        return _Link(reader, writer, cfg.window)

    async def _serve(self, link: _Link) -> None:
        """Read and heartbeat until the link is lost."""
        tasks = [
            asyncio.create_task(self._read_loop(link), name="cmpp-read"),
            asyncio.create_task(self._heartbeat(link), name="cmpp-heartbeat"),
        ]
        try:
            await link.lost.wait()
        finally:
            link.drop("stopped")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._link is link:
                self._link = None

    async def _read_loop(self, link: _Link) -> None:
        try:
            while True:
                command_id, sequence, body = await read_frame(link.reader)
                link.last_rx = asyncio.get_running_loop().time()
                if command_id & RESPONSE_BIT and command_id in PDU_TYPES:
                    link.resolve(sequence, decode(command_id, body))
                elif command_id == Command.DELIVER:
                    try:
                        deliver = Deliver.parse(body)
                    except PduError:
                        # Framing is intact (Total_Length), so refuse this one DELIVER rather than the link.
                        log.warning("cmpp malformed DELIVER refused")
                        link.reply(DeliverResp(int.from_bytes(body[:8].rjust(8, b"\x00"), "big"), 1), sequence)
                        continue
                    self._spawn(self._handle_deliver(link, sequence, deliver))
                elif command_id == Command.ACTIVE_TEST:
                    link.reply(ActiveTestResp(), sequence)
                elif command_id == Command.TERMINATE:
                    link.reply(TerminateResp(), sequence)
                    link.drop("terminated by the gateway")
                    return
                else:
                    log.warning("cmpp ignoring command 0x%08x", command_id)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            link.drop("connection closed")
        except PduError as exc:
            link.drop(f"malformed PDU: {exc}")

    async def _heartbeat(self, link: _Link) -> None:
        """ACTIVE_TEST after `heartbeat_interval` of silence; `heartbeat_tries` unanswered drop the link."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        while not link.lost.is_set():
            wait = cfg.heartbeat_interval - (loop.time() - link.last_rx)
            if wait > 0 and not link.probe.is_set():
                try:
                    await asyncio.wait_for(link.probe.wait(), wait)
                except TimeoutError:
                    pass
                continue
            link.probe.clear()
            for attempt in range(1, cfg.heartbeat_tries + 1):
                self.stats["active_tests"] += 1
                try:
                    await link.request(ActiveTest(), cfg.response_timeout)
                    break
                except RetryableError:
                    if link.lost.is_set():
                        return
                    log.warning("cmpp ACTIVE_TEST unanswered (%d/%d)", attempt, cfg.heartbeat_tries)
            else:
                link.drop("heartbeat unanswered")
                return

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_deliver(self, link: _Link, sequence: int, pdu: Deliver) -> None:
        """Hand a report or reply to its callback, then acknowledge (an error asks the ISMG to resend)."""
        result = 0
        try:
            if pdu.registered_delivery == 1:
                receipt = self.tracker.report(StatusReport.parse(pdu.msg_content))
                if receipt is not None and self.on_receipt is not None:
                    await self.on_receipt(receipt)
            else:
                await self._handle_reply(pdu)
        except PduError:
            log.warning("cmpp malformed DELIVER %s", format_msg_id(pdu.msg_id))
            result = 1
        except Exception as exc:
            # The type only: a database error's message can carry the phone number it was saving.
            log.error("cmpp DELIVER %s handler failed: %s", format_msg_id(pdu.msg_id), type(exc).__name__)
            result = 9
        link.reply(DeliverResp(pdu.msg_id, result), sequence)

    async def _handle_reply(self, pdu: Deliver) -> None:
        content = pdu.msg_content
        if pdu.tp_udhi:
            ref, total, seq, payload = split_udh(content)
            key = (pdu.src_terminal_id, ref, total)
            if key not in self._mo_parts and len(self._mo_parts) >= MAX_PENDING_REPLIES:
                self._mo_parts.pop(next(iter(self._mo_parts)))  # a part that never completed
            parts = self._mo_parts.setdefault(key, {})
            parts[seq] = payload
            if len(parts) < total:
                return
            del self._mo_parts[key]
            content = b"".join(parts[i] for i in range(1, total + 1))
        reply = InboundReply(
            sender=pdu.src_terminal_id,
            text=decode_text(pdu.msg_fmt, content),
            provider=self.provider,
            received_at=datetime.now(UTC),
            extra={"dest_id": pdu.dest_id, "service_id": pdu.service_id, "msg_id": format_msg_id(pdu.msg_id)},
        )
        log.info("cmpp reply %s received", format_msg_id(pdu.msg_id))
        if self.on_reply is not None:
            await self.on_reply(reply)

    async def _link_ready(self) -> _Link:
        if self._closing:
            raise RetryableError("cmpp-closing")
        link = self._link
        if link is not None and not link.lost.is_set():
            return link
        self._start()
        if self._last_error is not None:
            # In backoff after a failed login: fail fast so the pipeline can use the other provider.
            raise RetryableError(self._last_error.code, self._last_error.reason, self.config.reconnect_initial)
        try:
            await asyncio.wait_for(self._ready.wait(), self.config.connect_timeout)
        except TimeoutError:
            raise RetryableError("cmpp-link-down", "no link to the gateway") from None
        if self._link is None:
            raise RetryableError("cmpp-link-down", "no link to the gateway")
        return self._link

    async def _submit(self, pdu: Submit, reference: str) -> SubmitResp:
        def track(resp: Pdu) -> None:
            if isinstance(resp, SubmitResp) and resp.result == 0:
                self.tracker.add_part(reference, pdu.pk_number, resp.msg_id)

        link = await self._link_ready()
        resp = await link.request(pdu, self.config.response_timeout, track)
        if not isinstance(resp, SubmitResp):
            raise RetryableError("cmpp-protocol", "unexpected response to SUBMIT")
        return resp

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if self._closing:
            raise RetryableError("cmpp-closing")
        return list(await asyncio.gather(*(self._send_one(message) for message in messages)))

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        cfg = self.config
        recipient = message.recipient.strip().lstrip("+")
        if not recipient.isdigit() or len(recipient) > 21:
            return SendResult.permanent(message.reference, "invalid-recipient", "not a terminal number")
        payloads = encode_parts(compose(message.text, message.sign_name or cfg.sign_name, message.kind).text)
        total = len(payloads)
        if total > 255:
            return SendResult.permanent(message.reference, "too-long", "more than 255 parts")
        ref = self._next_udh_ref() if total > 1 else 0
        pdus = [
            Submit(
                dest_terminal_ids=[recipient],
                msg_content=(udh(ref, total, number) + payload) if total > 1 else payload,
                service_id=cfg.service_id,
                msg_src=cfg.source_addr,
                src_id=cfg.src_id,
                pk_total=total,
                pk_number=number,
                tp_udhi=1 if total > 1 else 0,
                msg_fmt=MSG_FMT_UCS2,
                registered_delivery=1,
            )
            for number, payload in enumerate(payloads, start=1)
        ]
        self.tracker.expect(message.reference, total)
        outcomes = await asyncio.gather(*(self._submit(pdu, message.reference) for pdu in pdus), return_exceptions=True)
        msg_ids: list[int] = []
        permanent: ProviderError | None = None
        retryable: ProviderError | None = None
        for outcome in outcomes:
            if isinstance(outcome, PermanentError):
                permanent = outcome
            elif isinstance(outcome, ProviderError):
                retryable = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome.result == 0:
                msg_ids.append(outcome.msg_id)
            elif outcome.result == RESULT_FLOW_CONTROL:
                retryable = RetryableError(str(outcome.result), "flow control", cfg.flow_control_retry_after)
            else:
                permanent = PermanentError(str(outcome.result), SUBMIT_RESULT.get(outcome.result, "rejected"))
        if permanent is not None or retryable is not None:
            self.tracker.discard(message.reference)
        if permanent is not None:
            return SendResult.permanent(message.reference, permanent.code, permanent.reason)
        if retryable is not None:
            return SendResult.retryable(message.reference, retryable.code, retryable.reason, retryable.retry_after)
        return SendResult.accepted(message.reference, format_msg_id(msg_ids[0]), parts=total)

    def _next_udh_ref(self) -> int:
        self._udh_ref = (self._udh_ref + 1) % 256
        return self._udh_ref

    async def aclose(self) -> None:
        """TERMINATE the link (after unanswered requests settle) and stop reconnecting."""
        self._closing = True
        link = self._link
        if link is not None and not link.lost.is_set():
            try:
                timeout = self.config.close_timeout
                await asyncio.wait_for(link.request(Terminate(), timeout), timeout)
            except (ProviderError, TimeoutError):
                pass
            link.drop("closed")
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor}, timeout=self.config.close_timeout)
            if self._link is not None:  # logged in while we were closing
                self._link.drop("closed")
                await asyncio.wait({self._supervisor}, timeout=self.config.close_timeout)
            if self._supervisor.done() and not self._supervisor.cancelled() and self._supervisor.exception():
                log.error("cmpp link supervisor failed: %s", type(self._supervisor.exception()).__name__)
            self._supervisor = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.config.close_timeout)
