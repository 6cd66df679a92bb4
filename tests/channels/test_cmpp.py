"""CMPP 2.0 client against the ISMG simulator over real loopback TCP."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.base import InboundReply, MessageKind, OutboundMessage, Outcome, Receipt
from channels.cmpp import CmppChannel, CmppConfig, CmppConnectError, ReceiptTracker
from channels.cmpp_pdu import ConnectResp, Deliver, StatusReport, encode, read_frame, split_udh
from channels.sandbox.cmpp_server import CmppSimulator

PHONE = "13800000000"
SIGNATURE = "衢州发布"


class Recorder:
    """Collects what the channel hands to its callbacks."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.replies: list[InboundReply] = []

    async def receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    async def reply(self, reply: InboundReply) -> None:
        self.replies.append(reply)


@pytest.fixture
async def sim() -> AsyncIterator[CmppSimulator]:
    async with CmppSimulator(report_delay=0.02) as simulator:
        yield simulator


def make_config(sim: CmppSimulator, **overrides: Any) -> CmppConfig:
    config = CmppConfig(
        host="127.0.0.1",
        port=sim.port,
        source_addr=sim.source_addr,
        shared_secret=sim.shared_secret,
        service_id="GOVSMS",
        src_id="10690001",
        sign_name=SIGNATURE,
        connect_timeout=2.0,
        response_timeout=2.0,  # generous: the machine is shared; the timeout test sets its own
        heartbeat_interval=30.0,
        reconnect_initial=0.05,
        reconnect_max=0.2,
        close_timeout=1.0,
    )
    return dataclasses.replace(config, **overrides)


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def channel(sim: CmppSimulator, recorder: Recorder) -> AsyncIterator[CmppChannel]:
    ch = CmppChannel(make_config(sim), on_receipt=recorder.receipt, on_reply=recorder.reply)
    yield ch
    await ch.aclose()


def msg(reference: str, text: str = "明日有暴雨，请注意防范。", recipient: str = PHONE) -> OutboundMessage:
    return OutboundMessage(reference=reference, recipient=recipient, text=text)


async def test_connect_and_authentication_failure(sim: CmppSimulator) -> None:
    good = CmppChannel(make_config(sim, version=0x21))  # 2.x clients sending 0x21 are accepted
    await good.connect()
    assert good.connected and sim.counters["connects"] == 1
    await good.aclose()

    bad = CmppChannel(make_config(sim, shared_secret="wrong-secret"))
    with pytest.raises(CmppConnectError) as exc:
        await bad.connect()
    assert exc.value.code == "cmpp-connect-3" and sim.counters["auth_failures"] >= 1
    # while the link cannot log in, sends fail fast as retryable so SMS can fail over
    [result] = await bad.send([msg("d-bad")])
    assert result.outcome == Outcome.RETRYABLE and result.code == "cmpp-connect-3"
    assert sim.count() == 0
    await bad.aclose()

    too_new = CmppChannel(make_config(sim, version=0x30))
    with pytest.raises(CmppConnectError) as exc:
        await too_new.connect()
    assert exc.value.code == "cmpp-connect-4"
    await too_new.aclose()


async def test_gateway_must_prove_the_secret() -> None:
    """A gateway answering Status 0 with a wrong AuthenticatorISMG is not trusted."""

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, sequence, _ = await read_frame(reader)
        writer.write(encode(ConnectResp(0, b"\x00" * 16, 0x20), sequence))
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ch = CmppChannel(CmppConfig(port=port, source_addr="901234", shared_secret="x", reconnect_initial=0.05))
    try:
        with pytest.raises(CmppConnectError) as exc:
            await ch.connect()
        assert exc.value.code == "cmpp-ismg-auth"
    finally:
        await ch.aclose()
        server.close()
        await server.wait_closed()


async def test_submit_happy_path_with_receipt(sim: CmppSimulator, channel: CmppChannel, recorder: Recorder) -> None:
    [result] = await channel.send([msg("d-1")])
    assert result.outcome == Outcome.ACCEPTED and result.parts == 1 and result.provider_id
    [message] = sim.messages_to(PHONE)
    assert message.text == "【衢州发布】明日有暴雨，请注意防范。回T退订"
    assert message.src_id == "10690001" and message.service_id == "GOVSMS"
    submit = sim.parts[0].submit
    assert (submit.msg_fmt, submit.registered_delivery, submit.tp_udhi, submit.pk_total) == (8, 1, 0, 1)
    assert submit.msg_src == sim.source_addr
    assert f"{message.msg_ids[0]:016x}" == result.provider_id

    await sim.wait_for(lambda: len(recorder.receipts) == 1)
    [receipt] = recorder.receipts
    assert receipt.reference == "d-1" and receipt.delivered and receipt.code == "DELIVRD"
    assert receipt.provider_id == result.provider_id and receipt.provider == "cmpp"
    await sim.wait_for(lambda: len(sim.deliver_results) == 1)
    assert list(sim.deliver_results.values()) == [0]  # every DELIVER acknowledged


async def test_staff_message_has_no_opt_out_hint(sim: CmppSimulator, channel: CmppChannel) -> None:
    staff = OutboundMessage(reference="s-1", recipient="+8613900000000", text="请于9:00到会。", kind=MessageKind.STAFF)
    [result] = await channel.send([staff])
    assert result.outcome == Outcome.ACCEPTED
    assert sim.messages_to("8613900000000")[0].text == "【衢州发布】请于9:00到会。"


async def test_long_message_reassembled_and_receipt_matched(
    sim: CmppSimulator, channel: CmppChannel, recorder: Recorder
) -> None:
    body = "".join("衢州市政府发布防汛通知请注意安全"[i % 15] for i in range(150))
    [result] = await channel.send([msg("d-long", body)])
    full = f"【{SIGNATURE}】{body}回T退订"
    assert len(full) == 160
    assert result.outcome == Outcome.ACCEPTED and result.parts == 3
    [message] = sim.messages
    assert message.text == full and message.parts == 3
    refs = set()
    for number, part in enumerate(sorted(sim.parts, key=lambda p: p.submit.pk_number), start=1):
        ref, total, seq, payload = split_udh(part.submit.msg_content)
        refs.add(ref)
        assert (total, seq, part.submit.pk_total, part.submit.tp_udhi) == (3, number, 3, 1)
        assert len(payload) == (134 if number < 3 else 52)
    assert len(refs) == 1

    await sim.wait_for(lambda: len(sim.deliver_results) == 3)  # one report per part
    await asyncio.sleep(0.05)
    [receipt] = recorder.receipts  # ... but one receipt for the message
    assert receipt.reference == "d-long" and receipt.delivered and receipt.provider_id == result.provider_id


async def test_long_message_fails_when_one_part_fails(
    sim: CmppSimulator, channel: CmppChannel, recorder: Recorder
) -> None:
    sim.report_policy = lambda part, dest: "UNDELIV" if part.pk_number == 2 else "DELIVRD"
    [result] = await channel.send([msg("d-lost", "通" * 100)])
    assert result.outcome == Outcome.ACCEPTED and result.parts == 2
    await sim.wait_for(lambda: len(sim.deliver_results) == 2)
    await asyncio.sleep(0.05)
    [receipt] = recorder.receipts
    assert receipt.reference == "d-lost" and not receipt.delivered and receipt.code == "UNDELIV"


async def test_window_of_sixteen(sim: CmppSimulator, channel: CmppChannel) -> None:
    sim.faults.latency = 0.03
    results = await channel.send([msg(f"w-{i}", recipient=f"138000000{i:02d}") for i in range(48)])
    assert all(r.outcome == Outcome.ACCEPTED for r in results)
    assert sim.max_outstanding == 16 and sim.counters["window_violations"] == 0
    assert sim.count() == 48


async def test_simulator_catches_a_window_too_wide(sim: CmppSimulator) -> None:
    """The window check can fail: a client allowing 20 unanswered SUBMITs gets flow-controlled."""
    sim.faults.latency = 0.03
    wide = CmppChannel(make_config(sim, window=20))
    try:
        results = await wide.send([msg(f"x-{i}", recipient=f"138000000{i:02d}") for i in range(40)])
    finally:
        await wide.aclose()
    assert sim.counters["window_violations"] > 0
    assert {r.code for r in results if r.outcome == Outcome.RETRYABLE} == {"8"}


async def test_flow_control_is_retryable_and_errors_permanent(sim: CmppSimulator, channel: CmppChannel) -> None:
    sim.faults.flow_control = 1
    [flow] = await channel.send([msg("f-1")])
    assert flow.outcome == Outcome.RETRYABLE and flow.code == "8" and flow.retry_after == 1.0
    sim.faults.errors, sim.faults.error_result = 1, 9
    [error] = await channel.send([msg("f-2")])
    assert error.outcome == Outcome.PERMANENT and error.code == "9"
    [again] = await channel.send([msg("f-1")])
    assert again.outcome == Outcome.ACCEPTED
    # a long message is accepted only when every part is
    sim.faults.flow_control = 1
    [long] = await channel.send([msg("f-3", "字" * 120)])
    assert long.outcome == Outcome.RETRYABLE and long.code == "8"
    [bad] = await channel.send([msg("f-4", recipient="not-a-number")])
    assert bad.outcome == Outcome.PERMANENT and bad.code == "invalid-recipient"


async def test_unanswered_submit_times_out_and_link_is_replaced(sim: CmppSimulator) -> None:
    channel = CmppChannel(make_config(sim, response_timeout=0.25))
    try:
        await channel.connect()
        sim.faults.silent = True
        [result] = await channel.send([msg("t-1")])
        assert result.outcome == Outcome.RETRYABLE and result.code == "cmpp-timeout"
        # the timeout triggers ACTIVE_TEST probes; three unanswered ones replace the link
        await sim.wait_for(lambda: channel.stats["link_losses"] >= 1, timeout=5)
        sim.faults.silent = False
        await sim.wait_for(lambda: channel.connected and sim.counters["connects"] >= 2)
        [ok] = await channel.send([msg("t-1")])
        assert ok.outcome == Outcome.ACCEPTED
    finally:
        await channel.aclose()


async def test_heartbeat_when_idle(sim: CmppSimulator, recorder: Recorder) -> None:
    ch = CmppChannel(make_config(sim, heartbeat_interval=0.05))
    try:
        await ch.connect()
        await sim.wait_for(lambda: sim.counters["active_tests"] >= 3)
        assert ch.connected and ch.stats["link_losses"] == 0
        assert await sim.send_active_test() == 1  # and the client answers the gateway's probes
        await sim.wait_for(lambda: sim.counters["active_test_resps"] == 1)
    finally:
        await ch.aclose()


async def test_reconnect_after_drop_and_in_flight_become_retryable(sim: CmppSimulator, channel: CmppChannel) -> None:
    [first] = await channel.send([msg("r-1")])
    assert first.outcome == Outcome.ACCEPTED
    assert sim.drop_connections() == 1
    await sim.wait_for(lambda: channel.stats["link_losses"] == 1 and channel.connected)
    [second] = await channel.send([msg("r-2")])
    assert second.outcome == Outcome.ACCEPTED and sim.counters["connects"] == 2

    # the gateway drops the link while five submits wait for answers: none is silently lost
    sim.faults.latency = 0.3
    sending = asyncio.create_task(channel.send([msg(f"r-{i}", recipient=f"1380000000{i}") for i in range(3, 8)]))
    await sim.wait_for(lambda: len(sim.parts) == 7)
    sim.drop_connections()
    results = await sending
    assert [r.outcome for r in results] == [Outcome.RETRYABLE] * 5
    assert {r.code for r in results} == {"cmpp-link-lost"}
    sim.faults.latency = 0
    await sim.wait_for(lambda: channel.connected and sim.counters["connects"] == 3)
    assert all(r.outcome == Outcome.ACCEPTED for r in await channel.send([msg("r-3", recipient="13800000003")]))


async def test_drop_on_submit_then_resend(sim: CmppSimulator, channel: CmppChannel) -> None:
    sim.faults.drop_after = 1
    [lost] = await channel.send([msg("k-1")])
    assert lost.outcome == Outcome.RETRYABLE and lost.code == "cmpp-link-lost"
    assert sim.parts[0].result is None and sim.count() == 0
    [resent] = await channel.send([msg("k-1")])
    assert resent.outcome == Outcome.ACCEPTED and sim.count(PHONE) == 1


async def test_mobile_originated_replies(sim: CmppSimulator, channel: CmppChannel, recorder: Recorder) -> None:
    await channel.connect()
    [msg_id] = await sim.send_mo(PHONE, "TD", dest_id="10690001")
    await sim.wait_for(lambda: len(recorder.replies) == 1)
    [reply] = recorder.replies
    assert (reply.sender, reply.text, reply.provider) == (PHONE, "TD", "cmpp")
    assert reply.extra["dest_id"] == "10690001"
    await sim.wait_for(lambda: msg_id in sim.deliver_results)
    assert sim.deliver_results[msg_id] == 0

    long_reply = "我想咨询一下" * 15  # 90 characters, two parts
    ids = await sim.send_mo(PHONE, long_reply)
    assert len(ids) == 2
    await sim.wait_for(lambda: len(recorder.replies) == 2)
    assert recorder.replies[1].text == long_reply
    # Without an extension the phone replies to the SP's own service number, never a fixed 1069.
    assert (recorder.replies[1].extra["dest_id"], recorder.replies[1].extra["service_id"]) == (
        sim.service_number,
        sim.service_id,
    )


async def test_reports_held_while_link_is_down_arrive_after_reconnect(
    sim: CmppSimulator, channel: CmppChannel, recorder: Recorder
) -> None:
    sim.report_delay = 0.2
    [result] = await channel.send([msg("h-1")])
    sim.drop_connections()
    await sim.wait_for(lambda: len(recorder.receipts) == 1, timeout=3)
    assert recorder.receipts[0].reference == "h-1" and recorder.receipts[0].provider_id == result.provider_id


async def test_gateway_terminate_and_malformed_deliver(sim: CmppSimulator, channel: CmppChannel) -> None:
    await channel.connect()
    sim.push_deliver(
        Deliver(msg_id=77, dest_id="1069", src_terminal_id=PHONE, msg_content=b"short", registered_delivery=1)
    )
    await sim.wait_for(lambda: 77 in sim.deliver_results)
    assert sim.deliver_results[77] == 1 and channel.connected  # refused, link kept
    assert await sim.terminate_connections() == 1
    await sim.wait_for(lambda: sim.counters["terminate_resps"] == 1)
    await sim.wait_for(lambda: channel.stats["link_losses"] == 1 and channel.connected)
    [result] = await channel.send([msg("g-1")])
    assert result.outcome == Outcome.ACCEPTED


async def test_failing_receipt_handler_asks_for_resend(sim: CmppSimulator) -> None:
    async def broken(receipt: Receipt) -> None:
        raise RuntimeError("database down")

    ch = CmppChannel(make_config(sim), on_receipt=broken)
    try:
        await ch.send([msg("e-1")])
        await sim.wait_for(lambda: len(sim.deliver_results) == 1)
        assert list(sim.deliver_results.values()) == [9]
    finally:
        await ch.aclose()


async def test_terminate_on_close(sim: CmppSimulator) -> None:
    ch = CmppChannel(make_config(sim))
    await ch.connect()
    await ch.aclose()
    assert sim.counters["terminates"] == 1
    await sim.wait_for(lambda: sim.connections == 0)
    [result] = await ch.send([msg("c-1")])
    assert result.outcome == Outcome.RETRYABLE and result.code == "cmpp-closing"


def _report(msg_id: int, stat: str) -> StatusReport:
    return StatusReport(msg_id, stat, "2611250905", "2611250906", PHONE)


def test_receipt_tracker_resends_unknown_ids_and_bound() -> None:
    tracker = ReceiptTracker(limit=2)
    tracker.expect("a", 2)
    tracker.add_part("a", 1, 11)
    tracker.add_part("a", 2, 12)
    assert tracker.report(_report(12, "DELIVRD")) is None  # waits for the other part
    done = tracker.report(_report(11, "DELIVRD"))
    assert done is not None and done.reference == "a" and done.delivered and done.provider_id == f"{11:016x}"
    assert done.occurred_at is not None and done.occurred_at.hour == 1  # 09:06 China time is 01:06 UTC
    assert tracker.report(_report(11, "DELIVRD")) == done  # a resent report repeats the receipt

    unknown = tracker.report(_report(99, "EXPIRED"))
    assert unknown is not None and unknown.reference is None and not unknown.delivered
    assert unknown.provider_id == f"{99:016x}" and unknown.code == "EXPIRED"

    tracker.expect("b", 2)
    tracker.add_part("b", 1, 21)
    tracker.add_part("b", 2, 22)
    failed = tracker.report(_report(22, "REJECTD"))
    assert failed is not None and not failed.delivered and failed.code == "REJECTD"
    assert failed.provider_id == f"{21:016x}"  # the message is known by its first part's Msg_Id
    assert tracker.report(_report(21, "DELIVRD")) is None
    assert tracker.report(_report(21, "DELIVRD")) == failed

    for i in range(5):
        tracker.expect(f"c{i}", 1)
    assert len(tracker) == 2


async def test_logs_carry_no_numbers_or_texts(sim: CmppSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def broken(receipt: Receipt) -> None:
        raise RuntimeError(f"could not save receipt for {PHONE}")

    ch = CmppChannel(make_config(sim), on_receipt=broken)
    try:
        await ch.send([msg("p-1", "暴雨预警" * 30)])
        await sim.send_mo(PHONE, "退订")
        await sim.wait_for(lambda: len(sim.deliver_results) == 3)
        sim.drop_connections()
        await sim.wait_for(lambda: ch.stats["link_losses"] == 1)
    finally:
        await ch.aclose()
    assert "p-1" in caplog.text and "handler failed" in caplog.text  # logging happened ...
    for secret in (PHONE, "暴雨预警", "退订", SIGNATURE):
        assert secret not in caplog.text  # ... without people or bodies
