"""CMPP 2.0 PDU codec: the 12-byte header and the fixed-width bodies of China Mobile's SP ↔ ISMG protocol.

Every integer is big-endian; octet strings are ASCII, right-padded with NUL bytes to their width.
Used by the client (`channels.cmpp`) and by the ISMG simulator (`channels.sandbox.cmpp_server`).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Self

HEADER = struct.Struct(">III")
HEADER_SIZE = HEADER.size
MAX_PDU_SIZE = 4096  # far above the largest CMPP 2.0 PDU (a SUBMIT to 100 numbers); guards the reader
VERSION_20 = 0x20
MSG_FMT_ASCII = 0
MSG_FMT_UCS2 = 8
MSG_FMT_GBK = 15
MAX_CONTENT = 140  # octets of Msg_Content in one SUBMIT / DELIVER
UDH_SIZE = 6
STATUS_REPORT_SIZE = 60
RESPONSE_BIT = 0x80000000


class Command(IntEnum):
    """Command_Id values; a response is the request's id with the high bit set."""

    CONNECT = 0x00000001
    CONNECT_RESP = 0x80000001
    TERMINATE = 0x00000002
    TERMINATE_RESP = 0x80000002
    SUBMIT = 0x00000004
    SUBMIT_RESP = 0x80000004
    DELIVER = 0x00000005
    DELIVER_RESP = 0x80000005
    ACTIVE_TEST = 0x00000008
    ACTIVE_TEST_RESP = 0x80000008


# CONNECT_RESP Status and SUBMIT_RESP Result values from the CMPP 2.0 specification.
CONNECT_STATUS = {
    0: "ok",
    1: "bad message structure",
    2: "invalid source address",
    3: "authentication failed",
    4: "version too high",
}
SUBMIT_RESULT = {
    0: "ok",
    1: "bad message structure",
    2: "bad command id",
    3: "duplicate sequence id",
    4: "bad message length",
    5: "bad fee code",
    6: "message too long",
    7: "bad service id",
    8: "flow control",
}
RESULT_FLOW_CONTROL = 8


class PduError(ValueError):
    """A PDU that does not follow the CMPP 2.0 layout."""


class _Cursor:
    """Reads fixed-width fields off a PDU body and refuses to run past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise PduError(f"body ends at {len(self.data)} bytes, field needs {end}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def octets(self, size: int) -> str:
        raw = self.take(size).split(b"\x00", 1)[0]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise PduError("non-ASCII octet string") from exc

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise PduError(f"{len(self.data) - self.pos} unexpected trailing bytes")


def octets(value: str, width: int) -> bytes:
    """A fixed-width ASCII field, right-padded with NUL bytes."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise PduError("octet string must be ASCII") from exc
    if len(raw) > width:
        raise PduError(f"field longer than {width} bytes")
    return raw.ljust(width, b"\x00")


class Pdu:
    """Base of every PDU: a command id, a body encoder and a body parser."""

    command: ClassVar[Command]

    def body(self) -> bytes:
        """The encoded body (without the header)."""
        return b""

    @classmethod
    def parse(cls, body: bytes) -> Self:
        """Decode a body of this command."""
        _Cursor(body).finish()
        return cls()


@dataclass(frozen=True)
class Connect(Pdu):
    """SP login: Source_Addr 6, AuthenticatorSource 16, Version 1, Timestamp 4."""

    command: ClassVar[Command] = Command.CONNECT
    source_addr: str
    authenticator: bytes
    version: int
    timestamp: int

    def body(self) -> bytes:
        return octets(self.source_addr, 6) + self.authenticator + struct.pack(">BI", self.version, self.timestamp)

    @classmethod
    def parse(cls, body: bytes) -> Self:
        cur = _Cursor(body)
        pdu = cls(cur.octets(6), cur.take(16), cur.u8(), cur.u32())
        cur.finish()
        return pdu


@dataclass(frozen=True)
class ConnectResp(Pdu):
    """Login answer (2.0): Status 1, AuthenticatorISMG 16, Version 1."""

    command: ClassVar[Command] = Command.CONNECT_RESP
    status: int
    authenticator: bytes
    version: int

    def body(self) -> bytes:
        return bytes([self.status]) + self.authenticator + bytes([self.version])

    @classmethod
    def parse(cls, body: bytes) -> Self:
        cur = _Cursor(body)
        pdu = cls(cur.u8(), cur.take(16), cur.u8())
        cur.finish()
        return pdu


@dataclass(frozen=True)
class Submit(Pdu):
    """One short message (or one part of a long one) from the SP to the ISMG."""

    command: ClassVar[Command] = Command.SUBMIT
    dest_terminal_ids: list[str]
    msg_content: bytes
    service_id: str = ""
    msg_src: str = ""
    src_id: str = ""
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 1
    msg_level: int = 0
    fee_user_type: int = 2
    fee_terminal_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MSG_FMT_UCS2
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    msg_id: int = 0
    reserve: bytes = bytes(8)

    def body(self) -> bytes:
        if not 1 <= len(self.dest_terminal_ids) <= 100:
            raise PduError("DestUsr_tl must be 1..100")
        if len(self.msg_content) > 255:
            raise PduError("Msg_Content longer than 255 bytes")
        head = struct.pack(
            ">QBBBB", self.msg_id, self.pk_total, self.pk_number, self.registered_delivery, self.msg_level
        )
        return b"".join(
            [
                head,
                octets(self.service_id, 10),
                bytes([self.fee_user_type]),
                octets(self.fee_terminal_id, 21),
                bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]),
                octets(self.msg_src, 6),
                octets(self.fee_type, 2),
                octets(self.fee_code, 6),
                octets(self.valid_time, 17),
                octets(self.at_time, 17),
                octets(self.src_id, 21),
                bytes([len(self.dest_terminal_ids)]),
                *(octets(dest, 21) for dest in self.dest_terminal_ids),
                bytes([len(self.msg_content)]),
                self.msg_content,
                self.reserve.ljust(8, b"\x00")[:8],
            ]
        )

    @classmethod
    def parse(cls, body: bytes) -> Self:
        cur = _Cursor(body)
        msg_id, pk_total, pk_number, registered, level = cur.u64(), cur.u8(), cur.u8(), cur.u8(), cur.u8()
        service_id, fee_user_type, fee_terminal_id = cur.octets(10), cur.u8(), cur.octets(21)
        tp_pid, tp_udhi, msg_fmt = cur.u8(), cur.u8(), cur.u8()
        msg_src, fee_type, fee_code = cur.octets(6), cur.octets(2), cur.octets(6)
        valid_time, at_time, src_id = cur.octets(17), cur.octets(17), cur.octets(21)
        dests = [cur.octets(21) for _ in range(cur.u8())]
        content = cur.take(cur.u8())
        reserve = cur.take(8)
        cur.finish()
        return cls(
            dest_terminal_ids=dests,
            msg_content=content,
            service_id=service_id,
            msg_src=msg_src,
            src_id=src_id,
            pk_total=pk_total,
            pk_number=pk_number,
            registered_delivery=registered,
            msg_level=level,
            fee_user_type=fee_user_type,
            fee_terminal_id=fee_terminal_id,
            tp_pid=tp_pid,
            tp_udhi=tp_udhi,
            msg_fmt=msg_fmt,
            fee_type=fee_type,
            fee_code=fee_code,
            valid_time=valid_time,
            at_time=at_time,
            msg_id=msg_id,
            reserve=reserve,
        )


class _MsgIdResult(Pdu):
    """The shape both answers share: Msg_Id 8, Result 1 (subclasses declare the two fields)."""

    msg_id: int
    result: int

    def body(self) -> bytes:
        return struct.pack(">QB", self.msg_id, self.result)

    @classmethod
    def parse(cls, body: bytes) -> Self:
        cur = _Cursor(body)
        pdu = cls(cur.u64(), cur.u8())  # type: ignore[call-arg]
        cur.finish()
        return pdu


@dataclass(frozen=True)
class SubmitResp(_MsgIdResult):
    """SUBMIT answer (2.0): Msg_Id 8, Result 1."""

    command: ClassVar[Command] = Command.SUBMIT_RESP
    msg_id: int
    result: int


@dataclass(frozen=True)
class Deliver(Pdu):
    """ISMG → SP: a mobile-originated message, or a status report when Registered_Delivery is 1."""

    command: ClassVar[Command] = Command.DELIVER
    msg_id: int
    dest_id: str
    src_terminal_id: str
    msg_content: bytes
    registered_delivery: int = 0
    service_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MSG_FMT_UCS2
    reserve: bytes = bytes(8)

    def body(self) -> bytes:
        if len(self.msg_content) > 255:
            raise PduError("Msg_Content longer than 255 bytes")
        return b"".join(
            [
                struct.pack(">Q", self.msg_id),
                octets(self.dest_id, 21),
                octets(self.service_id, 10),
                bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]),
                octets(self.src_terminal_id, 21),
                bytes([self.registered_delivery, len(self.msg_content)]),
                self.msg_content,
                self.reserve.ljust(8, b"\x00")[:8],
            ]
        )

    @classmethod
    def parse(cls, body: bytes) -> Self:
        cur = _Cursor(body)
        msg_id, dest_id, service_id = cur.u64(), cur.octets(21), cur.octets(10)
        tp_pid, tp_udhi, msg_fmt = cur.u8(), cur.u8(), cur.u8()
        src, registered = cur.octets(21), cur.u8()
        content = cur.take(cur.u8())
        reserve = cur.take(8)
        cur.finish()
        return cls(msg_id, dest_id, src, content, registered, service_id, tp_pid, tp_udhi, msg_fmt, reserve)


@dataclass(frozen=True)
class StatusReport:
    """The Msg_Content of a status-report DELIVER: Msg_Id 8, Stat 7, times 10+10, Dest 21, SMSC_sequence 4."""

    msg_id: int
    stat: str
    submit_time: str
    done_time: str
    dest_terminal_id: str
    smsc_sequence: int = 0

    def encode(self) -> bytes:
        """The 60-byte report content."""
        return (
            struct.pack(">Q", self.msg_id)
            + octets(self.stat, 7)
            + octets(self.submit_time, 10)
            + octets(self.done_time, 10)
            + octets(self.dest_terminal_id, 21)
            + struct.pack(">I", self.smsc_sequence)
        )

    @classmethod
    def parse(cls, content: bytes) -> Self:
        """Decode a report content."""
        cur = _Cursor(content)
        report = cls(cur.u64(), cur.octets(7), cur.octets(10), cur.octets(10), cur.octets(21), cur.u32())
        cur.finish()
        return report


@dataclass(frozen=True)
class DeliverResp(_MsgIdResult):
    """DELIVER answer (2.0): Msg_Id 8, Result 1."""

    command: ClassVar[Command] = Command.DELIVER_RESP
    msg_id: int
    result: int = 0


@dataclass(frozen=True)
class ActiveTest(Pdu):
    """Link check; empty body."""

    command: ClassVar[Command] = Command.ACTIVE_TEST


@dataclass(frozen=True)
class ActiveTestResp(Pdu):
    """Link check answer: Reserved 1."""

    command: ClassVar[Command] = Command.ACTIVE_TEST_RESP
    reserved: int = 0

    def body(self) -> bytes:
        return bytes([self.reserved])

    @classmethod
    def parse(cls, body: bytes) -> Self:
        # Some gateways omit the Reserved byte; an empty answer still proves the link is alive.
        if not body:
            return cls()
        cur = _Cursor(body)
        pdu = cls(cur.u8())
        cur.finish()
        return pdu


@dataclass(frozen=True)
class Terminate(Pdu):
    """Orderly link teardown; empty body."""

    command: ClassVar[Command] = Command.TERMINATE


@dataclass(frozen=True)
class TerminateResp(Pdu):
    """Teardown answer; empty body."""

    command: ClassVar[Command] = Command.TERMINATE_RESP


PDU_TYPES: dict[int, type[Pdu]] = {
    cls.command: cls
    for cls in (
        Connect,
        ConnectResp,
        Submit,
        SubmitResp,
        Deliver,
        DeliverResp,
        ActiveTest,
        ActiveTestResp,
        Terminate,
        TerminateResp,
    )
}


def encode(pdu: Pdu, sequence_id: int) -> bytes:
    """Header + body, ready for the socket."""
    body = pdu.body()
    return HEADER.pack(HEADER_SIZE + len(body), pdu.command, sequence_id) + body


def decode(command_id: int, body: bytes) -> Pdu:
    """Parse a body by its Command_Id."""
    cls = PDU_TYPES.get(command_id)
    if cls is None:
        raise PduError(f"unknown Command_Id 0x{command_id:08x}")
    return cls.parse(body)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Read one PDU off the stream: (Command_Id, Sequence_Id, body)."""
    total, command_id, sequence_id = HEADER.unpack(await reader.readexactly(HEADER_SIZE))
    if not HEADER_SIZE <= total <= MAX_PDU_SIZE:
        raise PduError(f"Total_Length {total} out of range")
    body = await reader.readexactly(total - HEADER_SIZE) if total > HEADER_SIZE else b""
    return command_id, sequence_id, body


def timestamp(now: datetime | None = None) -> tuple[str, int]:
    """The CONNECT timestamp as the MMDDHHMMSS string (for the authenticator) and its integer."""
    text = (now or datetime.now()).strftime("%m%d%H%M%S")
    return text, int(text)


def authenticator_source(source_addr: str, secret: str, stamp: str) -> bytes:
    """AuthenticatorSource = MD5(Source_Addr + 9 zero bytes + shared secret + MMDDHHMMSS)."""
    material = source_addr.encode("ascii") + b"\x00" * 9 + secret.encode("utf-8") + stamp.encode("ascii")
    return hashlib.md5(material, usedforsecurity=False).digest()


def authenticator_ismg(status: int, source_auth: bytes, secret: str) -> bytes:
    """AuthenticatorISMG = MD5(Status + AuthenticatorSource + shared secret)."""
    material = bytes([status]) + source_auth + secret.encode("utf-8")
    return hashlib.md5(material, usedforsecurity=False).digest()


def udh(ref: int, total: int, seq: int) -> bytes:
    """Concatenation user data header `05 00 03 <ref> <total> <seq>`."""
    return bytes([0x05, 0x00, 0x03, ref & 0xFF, total, seq])


def split_udh(content: bytes) -> tuple[int, int, int, bytes]:
    """(ref, total, seq, payload) of a part carrying a concatenation header."""
    if len(content) < UDH_SIZE or content[:3] != b"\x05\x00\x03":
        raise PduError("missing concatenation header")
    ref, total, seq = content[3], content[4], content[5]
    if not 1 <= seq <= total:
        raise PduError("concatenation header sequence out of range")
    return ref, total, seq, content[UDH_SIZE:]


def decode_text(msg_fmt: int, content: bytes) -> str:
    """Message text by Msg_Fmt (0 ASCII, 8 UCS-2, 15 GBK); other formats are decoded leniently."""
    if msg_fmt == MSG_FMT_UCS2:
        return content.decode("utf-16-be", errors="replace")
    if msg_fmt == MSG_FMT_GBK:
        return content.decode("gb18030", errors="replace")
    return content.decode("ascii", errors="replace")


def ucs2_chunks(units: bytes, size: int) -> list[bytes]:
    """Cut UTF-16-BE bytes into chunks of at most `size` bytes without splitting a surrogate pair."""
    chunks: list[bytes] = []
    start = 0
    while start < len(units):
        end = min(start + size, len(units))
        if end < len(units) and 0xD8 <= units[end - 2] <= 0xDB:
            end -= 2  # the chunk would end on a high surrogate: keep the pair together
        chunks.append(units[start:end])
        start = end
    return chunks


@dataclass
class MsgIdFactory:
    """Msg_Id as the ISMG builds it: month 4 | day 5 | hour 5 | minute 6 | second 6 | gateway 22 | seq 16 bits."""

    gateway: int = 0x12345
    counter: int = field(default=0)

    def next(self, now: datetime | None = None) -> int:
        """A fresh Msg_Id."""
        now = now or datetime.now()
        self.counter = (self.counter + 1) & 0xFFFF
        value = now.month
        for part, bits in ((now.day, 5), (now.hour, 5), (now.minute, 6), (now.second, 6)):
            value = (value << bits) | part
        return (value << 38) | ((self.gateway & 0x3FFFFF) << 16) | self.counter


def format_msg_id(msg_id: int) -> str:
    """Msg_Id as the provider id we store and show (16 hex digits)."""
    return f"{msg_id:016x}"
