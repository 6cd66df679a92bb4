"""CMPP 2.0 codec: field widths and offsets as the specification lays them out."""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime

import pytest

from channels.cmpp import CmppConfig, encode_parts
from channels.cmpp_pdu import (
    HEADER_SIZE,
    ActiveTestResp,
    Command,
    Connect,
    ConnectResp,
    Deliver,
    MsgIdFactory,
    PduError,
    StatusReport,
    Submit,
    SubmitResp,
    Terminate,
    authenticator_ismg,
    authenticator_source,
    decode,
    encode,
    split_udh,
    timestamp,
    udh,
)


def _header(frame: bytes) -> tuple[int, int, int]:
    return struct.unpack(">III", frame[:12])


def test_connect_layout_and_authenticators() -> None:
    stamp, stamp_int = timestamp(datetime(2026, 11, 25, 9, 5, 7))
    assert (stamp, stamp_int) == ("1125090507", 1125090507)
    auth = authenticator_source("901234", "s3cret", stamp)
    assert auth == hashlib.md5(b"901234" + bytes(9) + b"s3cret" + b"1125090507").digest()
    frame = encode(Connect("901234", auth, 0x20, stamp_int), 7)
    assert _header(frame) == (39, 0x00000001, 7)  # 12 + 6 + 16 + 1 + 4
    assert frame[12:18] == b"901234" and frame[18:34] == auth and frame[34] == 0x20
    assert int.from_bytes(frame[35:39], "big") == 1125090507
    assert decode(Command.CONNECT, frame[12:]) == Connect("901234", auth, 0x20, 1125090507)

    ismg = authenticator_ismg(0, auth, "s3cret")
    assert ismg == hashlib.md5(b"\x00" + auth + b"s3cret").digest()
    resp = encode(ConnectResp(0, ismg, 0x20), 7)
    assert _header(resp) == (30, 0x80000001, 7)  # CMPP 2.0: Status is one byte


def test_submit_layout_round_trip() -> None:
    content = udh(0x42, 3, 2) + "长短信".encode("utf-16-be")
    pdu = Submit(
        dest_terminal_ids=["13800000000"],
        msg_content=content,
        service_id="GOVSMS",
        msg_src="901234",
        src_id="10690001",
        pk_total=3,
        pk_number=2,
        tp_udhi=1,
    )
    frame = encode(pdu, 9)
    body = frame[HEADER_SIZE:]
    assert _header(frame)[0] == 12 + 117 + 21 + 1 + len(content) + 8
    assert body[8:12] == bytes([3, 2, 1, 0])  # Pk_total, Pk_number, Registered_Delivery, Msg_level
    assert body[12:22] == b"GOVSMS\x00\x00\x00\x00"
    assert body[44:47] == bytes([0, 1, 8])  # TP_pId, TP_udhi, Msg_Fmt (UCS-2)
    assert body[47:53] == b"901234" and body[53:61] == b"01000000"
    assert body[95:116].rstrip(b"\x00") == b"10690001"
    assert body[116] == 1 and body[117:138].rstrip(b"\x00") == b"13800000000"
    assert body[138] == len(content)
    assert decode(Command.SUBMIT, body) == pdu
    assert split_udh(content) == (0x42, 3, 2, "长短信".encode("utf-16-be"))


def test_deliver_status_report_and_responses() -> None:
    report = StatusReport(0x0123456789ABCDEF, "DELIVRD", "2611250905", "2611250906", "13800000000", 77)
    assert len(report.encode()) == 60
    deliver = Deliver(1, "10690001", "13800000000", report.encode(), registered_delivery=1, msg_fmt=0)
    frame = encode(deliver, 3)
    assert _header(frame)[0] == 12 + 73 + 60
    parsed = decode(Command.DELIVER, frame[12:])
    assert isinstance(parsed, Deliver) and StatusReport.parse(parsed.msg_content) == report
    assert encode(SubmitResp(5, 8), 1)[12:] == struct.pack(">QB", 5, 8)
    assert encode(ActiveTestResp(), 1)[12:] == b"\x00"
    assert _header(encode(Terminate(), 4)) == (12, 2, 4)


def test_malformed_bodies_are_refused() -> None:
    with pytest.raises(PduError):
        decode(Command.SUBMIT_RESP, b"\x00" * 8)
    with pytest.raises(PduError):
        decode(Command.ACTIVE_TEST_RESP, b"\x00\x00")
    with pytest.raises(PduError):
        decode(0x00000099, b"")
    with pytest.raises(PduError):
        split_udh(b"\x05\x00\x03\x01\x02\x03")  # part 3 of 2


def test_parts_follow_sms_rules() -> None:
    assert [len(p) for p in encode_parts("字" * 70)] == [140]
    assert [len(p) // 2 for p in encode_parts("字" * 150)] == [67, 67, 16]
    # characters beyond the BMP take two UCS-2 units; no part may exceed 134 bytes or split a pair
    parts = encode_parts("😀" * 40)
    assert all(len(p) <= 134 for p in parts)
    assert "".join(p.decode("utf-16-be") for p in parts) == "😀" * 40


def test_msg_id_layout() -> None:
    msg_id = MsgIdFactory(gateway=0x2ABCD).next(datetime(2026, 11, 25, 9, 5, 7))
    assert msg_id >> 60 == 11 and (msg_id >> 55) & 0x1F == 25 and (msg_id >> 50) & 0x1F == 9
    assert (msg_id >> 16) & 0x3FFFFF == 0x2ABCD and msg_id & 0xFFFF == 1


def test_config_refuses_fields_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="service_id"):
        CmppConfig(service_id="MUCH-TOO-LONG-ID")
    with pytest.raises(ValueError, match="source_addr"):
        CmppConfig(source_addr="企业代码")
