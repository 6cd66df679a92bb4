"""An ISMG simulator speaking CMPP 2.0 over asyncio TCP, for tests, benchmarks and `serve --demo`.

It authenticates CONNECT like a gateway (Status 3 on a bad authenticator; Version 0x20 and 0x21
accepted), validates and answers SUBMITs, records every part and reassembles long messages from
their concatenation headers, sends DELIVER status reports after a delay, pushes mobile-originated
replies, answers ACTIVE_TEST and injects faults on demand (flow control, error results, latency,
dropped connections, silence). It also watches the SP's window: more than `max_window`
unanswered SUBMITs on one connection count as a violation and are refused with flow control.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.cmpp_pdu import (
    MAX_CONTENT,
    MSG_FMT_UCS2,
    RESULT_FLOW_CONTROL,
    ActiveTest,
    ActiveTestResp,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    MsgIdFactory,
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
    read_frame,
    split_udh,
    ucs2_chunks,
    udh,
)
from channels.sandbox.bounded import BoundedDict

log = logging.getLogger("channels.sandbox.cmpp")


@dataclass(frozen=True)
class ReceivedPart:
    """One SUBMIT as the simulator saw it, with the Msg_Id and Result it answered (None: unanswered)."""

    msg_id: int
    result: int | None
    submit: Submit
    received_at: float


@dataclass(frozen=True)
class ReceivedMessage:
    """An accepted message, long ones reassembled from their parts."""

    msg_ids: list[int]
    dest_terminal_ids: list[str]
    text: str
    parts: int
    src_id: str
    service_id: str


@dataclass
class Faults:
    """Faults to inject; counters count down as SUBMITs consume them."""

    flow_control: int = 0  # answer the next n SUBMITs with Result 8
    error_result: int = 9  # the Result used for `errors`
    errors: int = 0  # answer the next n SUBMITs with `error_result`
    latency: float = 0.0  # seconds before each SUBMIT_RESP
    silent: bool = False  # read everything, answer nothing (not even ACTIVE_TEST)
    drop_after: int | None = None  # close the connection when this many more SUBMITs have arrived
    reject_login: int | None = None  # answer every CONNECT with this Status


class _Session:
    """One SP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.logged_in = False
        self.outstanding = 0
        self.sequence = 0

    def send(self, pdu: Pdu, sequence: int | None = None) -> int:
        if sequence is None:
            self.sequence = self.sequence % 0x7FFFFFFF + 1
            sequence = self.sequence
        if not self.writer.is_closing():
            self.writer.write(encode(pdu, sequence))
        return sequence

    def close(self) -> None:
        self.writer.close()


ReportPolicy = Callable[[Submit, str], str | None]


class CmppSimulator:
    """A CMPP 2.0 ISMG on a loopback port; see the module docstring for what it does."""

    def __init__(
        self,
        *,
        source_addr: str = "901234",
        shared_secret: str = "sandbox-secret",  # noqa: S107 - the sandbox's published demo secret
        host: str = "127.0.0.1",
        port: int = 0,
        report_delay: float = 0.05,
        report_stat: str = "DELIVRD",
        max_window: int = 16,
        accept_versions: tuple[int, ...] = (0x20, 0x21),
        gateway_id: int = 0x1A2B3,
        service_number: str = "1069012345",
        service_id: str = "GOVSMS",
        keep: int = 10_000,
    ) -> None:
        self.source_addr = source_addr
        # The SP's number (its Src_Id) and service: a phone's reply is addressed to them (Dest_Id, Service_Id).
        self.service_number = service_number
        self.service_id = service_id
        self.shared_secret = shared_secret
        self.host = host
        self.requested_port = port
        self.report_delay = report_delay
        self.report_stat = report_stat
        self.report_stats: dict[str, str] = {}  # destination → Stat, overriding report_stat
        self.report_policy: ReportPolicy | None = None  # (part, destination) → Stat, or None: no report
        self.max_window = max_window
        self.accept_versions = accept_versions
        self.faults = Faults()
        # The last `keep` parts and messages (memory stays bounded on long runs); `accepted` counts all.
        self.parts: deque[ReceivedPart] = deque(maxlen=keep)
        self.messages: deque[ReceivedMessage] = deque(maxlen=keep)
        self.accepted = 0
        self._mo_refs = 0
        self.counters = {
            "connects": 0,
            "auth_failures": 0,
            "active_tests": 0,
            "active_test_resps": 0,
            "terminate_resps": 0,
            "terminates": 0,
            "window_violations": 0,
            "drops": 0,
        }
        self.max_outstanding = 0
        self.deliver_results: BoundedDict[int, int] = BoundedDict(keep)  # our DELIVER Msg_Id → the SP's Result
        self._msg_ids = MsgIdFactory(gateway_id)
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._held: list[Deliver] = []  # DELIVERs waiting for a logged-in connection
        self._assembly: dict[tuple[tuple[str, ...], int, int], dict[int, tuple[int, bytes]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._deliver_seq: dict[tuple[int, int], int] = {}  # (session id, sequence) → Msg_Id
        self._changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> CmppSimulator:
        """Listen (an ephemeral port unless one was given)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        for session in list(self._sessions):
            session.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> CmppSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connections(self) -> int:
        """Open SP connections that have logged in."""
        return sum(1 for s in self._sessions if s.logged_in)

    # -- inspection ------------------------------------------------------------------------

    def messages_to(self, dest: str) -> list[ReceivedMessage]:
        """Accepted messages addressed to `dest` (duplicates show up as several)."""
        return [m for m in self.messages if dest in m.dest_terminal_ids]

    def count(self, dest: str | None = None) -> int:
        """How many accepted messages (all of them; to `dest`: within the kept window)."""
        return self.accepted if dest is None else len(self.messages_to(dest))

    def by_msg_id(self, msg_id: int) -> ReceivedMessage | None:
        """The message one of whose parts got this Msg_Id."""
        return next((m for m in self.messages if msg_id in m.msg_ids), None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate()` holds (tests use this instead of sleeping)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    # -- faults and pushes -----------------------------------------------------------------

    def drop_connections(self) -> int:
        """Close every SP connection abruptly (no TERMINATE); returns how many."""
        sessions = list(self._sessions)
        for session in sessions:
            session.close()
        self.counters["drops"] += len(sessions)
        return len(sessions)

    async def send_mo(self, sender: str, text: str, *, dest_id: str = "", service_id: str = "") -> list[int]:
        """Push a mobile-originated reply (split with concatenation headers when long).

        The phone replies to the number it got the text from: `Dest_Id` is the SP's service number
        (with any extension the SP appended: pass it as `dest_id`), `Service_Id` its service.
        """
        units = text.encode("utf-16-be")
        chunks = [units] if len(units) <= MAX_CONTENT else ucs2_chunks(units, MAX_CONTENT - 6)
        self._mo_refs += 1
        ref = self._mo_refs % 256
        ids = []
        for number, chunk in enumerate(chunks, start=1):
            msg_id = self._msg_ids.next()
            content = udh(ref, len(chunks), number) + chunk if len(chunks) > 1 else chunk
            pdu = Deliver(
                msg_id=msg_id,
                dest_id=dest_id or self.service_number,
                src_terminal_id=sender,
                msg_content=content,
                registered_delivery=0,
                service_id=service_id or self.service_id,
                tp_udhi=1 if len(chunks) > 1 else 0,
                msg_fmt=MSG_FMT_UCS2,
            )
            self.push_deliver(pdu)
            ids.append(msg_id)
        return ids

    async def send_active_test(self) -> int:
        """Send ACTIVE_TEST to every logged-in SP connection; returns how many were probed."""
        sessions = [s for s in self._sessions if s.logged_in]
        for session in sessions:
            session.send(ActiveTest())
        return len(sessions)

    async def terminate_connections(self) -> int:
        """Send TERMINATE to every logged-in SP connection (a gateway-initiated teardown)."""
        sessions = [s for s in self._sessions if s.logged_in]
        for session in sessions:
            session.send(Terminate())
        return len(sessions)

    def push_deliver(self, pdu: Deliver) -> None:
        """Send a DELIVER on a logged-in connection, or hold it until one logs in."""
        session = next((s for s in self._sessions if s.logged_in and not s.writer.is_closing()), None)
        if session is None:
            self._held.append(pdu)
            return
        sequence = session.send(pdu)
        self._deliver_seq[(id(session), sequence)] = pdu.msg_id

    # -- protocol --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(reader, writer)
        self._sessions.add(session)
        try:
            while True:
                command_id, sequence, body = await read_frame(reader)
                if not self._dispatch(session, command_id, sequence, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except PduError as exc:
            log.warning("cmpp sandbox closing connection on malformed PDU: %s", exc)
        finally:
            self._sessions.discard(session)
            session.close()
            self._notify()

    def _dispatch(self, session: _Session, command_id: int, sequence: int, body: bytes) -> bool:
        """Handle one PDU; False closes the connection."""
        pdu = decode(command_id, body)
        if isinstance(pdu, Connect):
            return self._login(session, sequence, pdu)
        if not session.logged_in:
            return False  # anything before a successful CONNECT ends the connection
        if isinstance(pdu, Submit):
            return self._submit(session, sequence, pdu)
        if isinstance(pdu, ActiveTest):
            self.counters["active_tests"] += 1
            if not self.faults.silent:
                session.send(ActiveTestResp(), sequence)
        elif isinstance(pdu, Terminate):
            self.counters["terminates"] += 1
            session.send(TerminateResp(), sequence)
            self._notify()
            return False
        elif isinstance(pdu, DeliverResp):
            msg_id = self._deliver_seq.pop((id(session), sequence), pdu.msg_id)
            self.deliver_results[msg_id] = pdu.result
        elif isinstance(pdu, ActiveTestResp):
            self.counters["active_test_resps"] += 1
        elif isinstance(pdu, TerminateResp):
            self.counters["terminate_resps"] += 1
        self._notify()
        return True

    def _login(self, session: _Session, sequence: int, pdu: Connect) -> bool:
        stamp = f"{pdu.timestamp:010d}"
        expected = authenticator_source(self.source_addr, self.shared_secret, stamp)
        if self.faults.reject_login is not None:
            status = self.faults.reject_login
        elif pdu.source_addr != self.source_addr:
            status = 2
        elif pdu.authenticator != expected:
            status = 3
        elif pdu.version not in self.accept_versions:
            status = 4 if pdu.version > max(self.accept_versions) else 1
        else:
            status = 0
        auth = authenticator_ismg(status, pdu.authenticator, self.shared_secret)
        session.send(ConnectResp(status, auth, 0x20), sequence)
        self._notify()
        if status != 0:
            self.counters["auth_failures"] += 1
            return False
        session.logged_in = True
        self.counters["connects"] += 1
        held, self._held = self._held, []
        for deliver in held:
            self.push_deliver(deliver)
        return True

    def _submit(self, session: _Session, sequence: int, pdu: Submit) -> bool:
        faults = self.faults
        msg_id = self._msg_ids.next()
        session.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, session.outstanding)
        if faults.drop_after is not None:
            faults.drop_after -= 1
            if faults.drop_after <= 0:
                faults.drop_after = None
                self.parts.append(ReceivedPart(msg_id, None, pdu, time.monotonic()))
                self.counters["drops"] += 1
                return False
        if faults.silent:
            session.outstanding -= 1  # the SP gives up on it after its timeout, so it no longer counts
            self.parts.append(ReceivedPart(msg_id, None, pdu, time.monotonic()))
            self._notify()
            return True
        result = self._check(pdu)
        if session.outstanding > self.max_window:
            self.counters["window_violations"] += 1
            result = RESULT_FLOW_CONTROL
        elif result == 0 and faults.flow_control > 0:
            faults.flow_control -= 1
            result = RESULT_FLOW_CONTROL
        elif result == 0 and faults.errors > 0:
            faults.errors -= 1
            result = faults.error_result
        self.parts.append(ReceivedPart(msg_id, result, pdu, time.monotonic()))
        if result == 0:
            self._accept(msg_id, pdu)
        if faults.latency > 0:
            self._spawn(self._answer_later(session, sequence, SubmitResp(msg_id, result), faults.latency))
        else:
            session.outstanding -= 1
            session.send(SubmitResp(msg_id, result), sequence)
        self._notify()
        return True

    def _check(self, pdu: Submit) -> int:
        """SUBMIT validation with the specification's Result codes."""
        if not pdu.service_id:
            return 7
        if not pdu.dest_terminal_ids or not all(d.isdigit() for d in pdu.dest_terminal_ids):
            return 1
        if len(pdu.msg_content) > MAX_CONTENT:
            return 6
        if pdu.msg_fmt == MSG_FMT_UCS2 and len(pdu.msg_content) % 2:
            return 4
        if not 1 <= pdu.pk_number <= pdu.pk_total:
            return 1
        if pdu.tp_udhi:
            try:
                _, total, number, _ = split_udh(pdu.msg_content)
            except PduError:
                return 1
            if (total, number) != (pdu.pk_total, pdu.pk_number):
                return 1
        return 0

    async def _answer_later(self, session: _Session, sequence: int, resp: SubmitResp, delay: float) -> None:
        await asyncio.sleep(delay)
        session.outstanding -= 1
        session.send(resp, sequence)

    def _accept(self, msg_id: int, pdu: Submit) -> None:
        if pdu.tp_udhi:
            ref, total, number, payload = split_udh(pdu.msg_content)
            key = (tuple(pdu.dest_terminal_ids), ref, total)
            parts = self._assembly.setdefault(key, {})
            parts[number] = (msg_id, payload)
            if len(parts) == total:
                del self._assembly[key]
                ordered = [parts[i] for i in range(1, total + 1)]
                text = decode_text(pdu.msg_fmt, b"".join(p for _, p in ordered))
                self._record(pdu, [m for m, _ in ordered], text, total)
        else:
            self._record(pdu, [msg_id], decode_text(pdu.msg_fmt, pdu.msg_content), 1)
        if pdu.registered_delivery:
            self._spawn(self._report_later(msg_id, pdu))

    def _record(self, pdu: Submit, msg_ids: list[int], text: str, parts: int) -> None:
        self.accepted += 1
        self.messages.append(
            ReceivedMessage(msg_ids, list(pdu.dest_terminal_ids), text, parts, pdu.src_id, pdu.service_id)
        )

    async def _report_later(self, msg_id: int, pdu: Submit) -> None:
        await asyncio.sleep(self.report_delay)
        now = datetime.now().strftime("%y%m%d%H%M")
        for dest in pdu.dest_terminal_ids:
            if self.report_policy is not None:
                stat = self.report_policy(pdu, dest)
            else:
                stat = self.report_stats.get(dest, self.report_stat)
            if stat is None:
                continue
            report = StatusReport(msg_id, stat, now, now, dest, msg_id & 0xFFFF)
            deliver = Deliver(
                msg_id=self._msg_ids.next(),
                dest_id=pdu.src_id,
                src_terminal_id=dest,
                msg_content=report.encode(),
                registered_delivery=1,
                service_id=pdu.service_id,
                msg_fmt=0,
            )
            self.push_deliver(deliver)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        self._changed.set()


async def _serve(args: argparse.Namespace) -> None:
    sim = CmppSimulator(
        source_addr=args.source_addr,
        shared_secret=args.secret,
        host=args.host,
        port=args.port,
        report_delay=args.report_delay,
    )
    await sim.start()
    print(json.dumps({"cmpp_simulator": {"host": args.host, "port": sim.port}}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the simulator alone: `python -m channels.sandbox.cmpp_server --port 7890`."""
    parser = argparse.ArgumentParser(description="CMPP 2.0 ISMG simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7890)
    parser.add_argument("--source-addr", default="901234")
    parser.add_argument("--secret", default="sandbox-secret")
    parser.add_argument("--report-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
