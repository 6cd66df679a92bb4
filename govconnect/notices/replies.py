"""Inbound SMS replies: opt-outs leave; any other reply is kept, linked to the notice it answers, owed to its agency.

A reply is linked to the last SMS delivery sent to that number within `REPLY_WINDOW` (a person
answers the message they just got), and through it to the notice and its agency. For a meeting
notice (`replies == "attendance"`, 回执) a reply of `1` counts as will attend and `2` as will not.
The agency's callback gets a `reply` event, written in the same transaction as the reply (like
status events, a row the sweeper re-enqueues until the agency answers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from channels.base import InboundReply
from channels.catalogue import MEETING_ANSWER_CHANNELS
from contacts.models import Contact
from contacts.phones import normalise_mobile
from govconnect.agencies.models import Agency
from govconnect.citizens.optout import handle_sms_reply
from govconnect.clock import utcnow
from govconnect.db import session_scope
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import AgencyCallback, Delivery
from govconnect.notices.reply_models import ATTENDANCE, ATTENDANCE_ANSWERS, NoticeReply

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
A = Agency.__table__  # type: ignore[attr-defined]
R = NoticeReply.__table__  # type: ignore[attr-defined]
C = AgencyCallback.__table__  # type: ignore[attr-defined]
K = Contact.__table__  # type: ignore[attr-defined]
REPLY_WINDOW = timedelta(days=7)
# Sent-but-not-reported SMS count as sent to that number; queued or failed ones were not seen.
SEEN_STATUSES = ("sent", "delivered", "unknown")


@dataclass(frozen=True)
class StoredReply:
    """What recording one inbound SMS did: the reply id (None for an opt-out) and an owed callback id."""

    reply_id: int | None
    callback_id: int | None = None


def attendance_answer(text: str) -> str:
    """`attend` for "1", `decline` for "2" (full-width digits too), else ""."""
    return ATTENDANCE_ANSWERS.get(unicodedata.normalize("NFKC", text).strip().rstrip("。.!！"), "")


def _last_delivery(conn: Connection, number: str, moment: datetime) -> Any:
    return conn.execute(
        select(D.c.id, D.c.notice_id, N.c.agency_id, N.c.replies, A.c.callback_url)
        .join(N, N.c.id == D.c.notice_id)
        .join(A, A.c.id == N.c.agency_id)
        .where(
            D.c.recipient == number,
            D.c.channel == "sms",
            D.c.status.in_(SEEN_STATUSES),
            D.c.sent_at >= moment - REPLY_WINDOW,
        )
        .order_by(D.c.sent_at.desc())
        .limit(1)
    ).first()


def record_inbound_sms(session: Session, reply: InboundReply, *, secret: str, moment: datetime) -> StoredReply:
    """Apply one inbound SMS in the caller's transaction: an opt-out leaves, anything else is stored."""
    if handle_sms_reply(session, reply.sender, reply.text, reply.provider, secret=secret):
        return StoredReply(None)
    conn = session.connection()
    number = normalise_mobile(reply.sender) or reply.sender.strip()[:20]
    linked = _last_delivery(conn, number, moment)
    text = reply.text.strip()[:500]
    answer = attendance_answer(text) if linked is not None and linked.replies == ATTENDANCE else ""
    reply_id = int(
        conn.execute(
            insert(R)
            .values(
                notice_id=linked.notice_id if linked else None,
                agency_id=linked.agency_id if linked else None,
                delivery_id=linked.id if linked else None,
                sender=number,
                text=text,
                provider=reply.provider[:32],
                answer=answer,
                received_at=reply.received_at or moment,
            )
            .returning(R.c.id)
        ).scalar_one()
    )
    callback_id = None
    if linked is not None and linked.callback_url:
        callback_id = _owe_reply_event(
            conn, linked.agency_id, reply_id, linked.notice_id, linked.id, text, answer, reply.received_at or moment
        )
    log.info("reply %s stored (notice %s)", reply_id, linked.notice_id if linked else None)
    return StoredReply(reply_id, callback_id)


def _owe_reply_event(
    conn: Connection,
    agency_id: int,
    reply_id: int,
    notice_id: str,
    delivery_id: str,
    text: str,
    answer: str,
    at: datetime,
) -> int:
    """Owe the agency its `reply` event (a callback row the sweeper retries); the row's id."""
    from govconnect.notices.agency_callbacks import owe_events

    # The event names the delivery, not the number: the agency reads the text by reply id.
    event = {
        "type": "reply",
        "reply_id": reply_id,
        "notice_id": notice_id,
        "delivery_id": delivery_id,
        "text": text,
        "answer": answer or None,
        "at": at.isoformat(),
    }
    return owe_events(conn, agency_id, [event], at)


# -- 回执 buttons: a signed per-recipient link ----------------------------------------------------------

ATTENDANCE_TOKEN = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9_-]{16})$")
BUTTON_TEXT = {"attend": "参加", "decline": "不参加"}
ANSWERING = ("sent", "delivered", "unknown")  # the message went out; a queued one cannot have been seen
FIRST_CHANNELS = ("dingtalk", "wecom")


def _token_signature(secret: str, delivery_id: str) -> str:
    mac = hmac.new(secret.encode(), f"attendance:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:12]).decode()


def attendance_token(secret: str, delivery_id: str) -> str:
    """The signed token of one delivery's 回执 page (delivery id + 96-bit HMAC); it does not expire."""
    return f"{delivery_id}.{_token_signature(secret, delivery_id)}"


def attendance_url(base_url: str, secret: str, delivery_id: str) -> str:
    """The per-recipient 回执 page a meeting notice's WeCom/DingTalk message links to."""
    return f"{base_url.rstrip('/')}/m/attend/{attendance_token(secret, delivery_id)}"


@dataclass(frozen=True)
class AttendanceInvite:
    """What a valid 回执 token opens: the delivery and its notice, and the person's latest answer."""

    delivery_id: str
    notice_id: str
    agency_id: int
    title: str
    body: str
    person: str
    answer: str


def _person(conn: Connection, channel: str, recipient: str) -> str:
    """The key a person's answers are counted under: their mobile when the directory knows it (SMS replies
    come from it), else the address the message went to."""
    if channel in FIRST_CHANNELS:
        column = K.c.dingtalk_userid if channel == "dingtalk" else K.c.external_id
        mobile = conn.execute(select(K.c.mobile).where(column == recipient, K.c.mobile != "").limit(1)).scalar()
        number = normalise_mobile(str(mobile or ""))
        if number:
            return number
    return normalise_mobile(recipient) or recipient[:20]


def attendance_invite(conn: Connection, secret: str, token: str) -> AttendanceInvite | None:
    """The 回执 a token opens, or None (bad signature, not a meeting notice, withdrawn, or never sent)."""
    match = ATTENDANCE_TOKEN.match(token)
    if match is None or not hmac.compare_digest(match.group(2), _token_signature(secret, match.group(1))):
        return None
    row = conn.execute(
        select(D.c.id, D.c.channel, D.c.recipient, N.c.id, N.c.agency_id, N.c.title, N.c.body, N.c.replies, N.c.status)
        .join(N, N.c.id == D.c.notice_id)
        .where(D.c.id == match.group(1), D.c.status.in_(ANSWERING))
    ).first()
    if row is None or row[7] != ATTENDANCE or row[8] in ("cancelled", "retracted", "rejected"):
        return None
    person = _person(conn, row[1], row[2])
    answer = conn.execute(
        select(R.c.answer)
        .where(R.c.notice_id == row[3], R.c.sender == person, R.c.answer != "")
        .order_by(R.c.received_at.desc(), R.c.id.desc())
        .limit(1)
    ).scalar()
    return AttendanceInvite(row[0], row[3], int(row[4]), row[5], row[6], person, str(answer or ""))


def record_attendance(session: Session, invite: AttendanceInvite, answer: str, moment: datetime) -> StoredReply:
    """Record a tapped 参加 / 不参加 like an SMS reply of 1 / 2 (latest answer counts); the tap also marks the
    delivery read, so an escalating notice stops there."""
    if answer not in BUTTON_TEXT:
        raise ValueError(answer)
    conn = session.connection()
    reply_id = int(
        conn.execute(
            insert(R)
            .values(
                notice_id=invite.notice_id,
                agency_id=invite.agency_id,
                delivery_id=invite.delivery_id,
                sender=invite.person,
                text=BUTTON_TEXT[answer],
                provider="link",
                answer=answer,
                received_at=moment,
            )
            .returning(R.c.id)
        ).scalar_one()
    )
    conn.execute(
        update(D)
        .where(D.c.id == invite.delivery_id, D.c.read_at.is_(None), D.c.channel.in_(FIRST_CHANNELS))
        .values(read_at=moment, updated_at=moment)
    )
    callback_url = conn.execute(select(A.c.callback_url).where(A.c.id == invite.agency_id)).scalar()
    callback_id = None
    if callback_url:
        callback_id = _owe_reply_event(
            conn, invite.agency_id, reply_id, invite.notice_id, invite.delivery_id, BUTTON_TEXT[answer], answer, moment
        )
    log.info("reply %s stored from a 回执 button (notice %s)", reply_id, invite.notice_id)
    return StoredReply(reply_id, callback_id)


def store_replies(engine: Engine, replies: list[InboundReply], secret: str) -> list[StoredReply]:
    """Record a batch of inbound SMS in one transaction."""
    moment = utcnow()
    with session_scope(engine) as session:
        return [record_inbound_sms(session, reply, secret=secret, moment=moment) for reply in replies]


async def apply_inbound_sms(ctx: dict[str, Any], replies: list[InboundReply]) -> list[StoredReply]:
    """Record inbound SMS and queue the first try of each owed reply callback (the sweeper retries the rest)."""
    secret = ctx["settings"].secret_key.get_secret_value()
    stored = await asyncio.to_thread(store_replies, ctx["engine"], replies, secret)
    queue = ctx.get("queue")
    if queue is not None:
        from govconnect.notices.agency_callbacks import job_id

        for item in stored:
            if item.callback_id is not None:
                await queue.enqueue(
                    "post_agency_callback", job_id=job_id(item.callback_id, 0), callback_id=item.callback_id
                )
    return stored


# -- reading ------------------------------------------------------------------------------------


def replies_page(conn: Connection, notice_id: str, limit: int, offset: int) -> tuple[list[Any], int]:
    """A notice's replies, oldest first, with the params of the delivery each answers (for masking)."""
    total = int(conn.execute(select(func.count()).select_from(R).where(R.c.notice_id == notice_id)).scalar_one())
    rows = conn.execute(
        select(R, D.c.params)
        .outerjoin(D, D.c.id == R.c.delivery_id)
        .where(R.c.notice_id == notice_id)
        .order_by(R.c.received_at, R.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def attendance_tally(conn: Connection, notice_id: str) -> tuple[dict[str, int], list[Any]]:
    """Counts of attend / decline / other replies and unanswered people; and the unanswered deliveries.

    A person's latest 1/2 reply counts (someone who first said 1 and then 2 will not come).
    """
    latest: dict[str, str] = {}
    others: set[str] = set()
    rows = conn.execute(
        select(R.c.sender, R.c.answer).where(R.c.notice_id == notice_id).order_by(R.c.received_at, R.c.id)
    ).all()
    for row in rows:
        sender, answer = str(row[0]), str(row[1] or "")
        if answer:
            latest[sender] = answer
        else:
            others.add(sender)
    # Everyone the notice reached, once, keyed by the mobile their answers come from: an SMS goes to
    # it; a DingTalk or WeCom message to a directory contact whose mobile a button tap is stored under.
    reached = conn.execute(
        select(D.c.id, D.c.recipient, D.c.params, D.c.channel, K.c.mobile)
        .outerjoin(
            K,
            ((D.c.channel == "dingtalk") & (K.c.dingtalk_userid == D.c.recipient))
            | ((D.c.channel == "wecom") & (K.c.external_id == D.c.recipient)),
        )
        .where(
            D.c.notice_id == notice_id,
            D.c.channel.in_(MEETING_ANSWER_CHANNELS),
            D.c.status.in_(SEEN_STATUSES),
        )
        .order_by(D.c.id)
    ).all()
    people: dict[str, Any] = {}
    for row in reached:
        person = row.recipient if row.channel == "sms" else (normalise_mobile(row.mobile or "") or row.recipient)
        if person not in people or row.channel == "sms":
            people[person] = row
    unanswered = [row for person, row in people.items() if person not in latest]
    counts = {
        "attend": sum(1 for a in latest.values() if a == "attend"),
        "decline": sum(1 for a in latest.values() if a == "decline"),
        "other": len(others - set(latest)),
        "unanswered": len(unanswered),
    }
    return counts, unanswered


def iter_replies(engine: Engine, notice_id: str) -> Iterator[Any]:
    """Every reply of a notice, for the CSV export."""
    with engine.connect() as conn:
        yield from conn.execute(
            select(R, D.c.params)
            .outerjoin(D, D.c.id == R.c.delivery_id)
            .where(R.c.notice_id == notice_id)
            .order_by(R.c.received_at, R.c.id)
        )
