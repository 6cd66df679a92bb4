"""Notice operations behind the API: accept (validated, idempotent), read, list, cancel, deliveries."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from channels.catalogue import CHANNEL_LIMITS, PEOPLE_CHANNELS, PUBLIC_CHANNELS
from contacts.like import contains
from govconnect.agencies.models import Agency
from govconnect.audiences.lists import saved_lists_of
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import CHINA_TZ, utcnow
from govconnect.errors import Conflict, Invalid, NotFound, RateLimited
from govconnect.governance.policy import dispose, get_policy
from govconnect.message_templates.service import from_template
from govconnect.notices.audience import (
    STAFF_FIELDS,
    SUBSCRIBER_FIELDS,
    AudienceError,
    count_staff,
    count_subscribers,
    parse_csv,
)
from govconnect.notices.escalation import escalation_progress
from govconnect.notices.fanout import people_addressed
from govconnect.notices.gate import change_status
from govconnect.notices.models import CHANNELS, Category, Notice
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.notices.policy import placeholders, template_length
from govconnect.notices.publication import unfit_for_public
from govconnect.notices.reply_models import ATTENDANCE, ATTENDANCE_ASK
from govconnect.notices.schemas import EscalationProgress, NoticeCreate, NoticePublic, progress_from_counts
from govconnect.reports.pipeline_hooks import ROLLUP_RETURNING, count_cancelled
from govconnect.reports.rollup import count_notice
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
# Delivery statuses meaning the message went to a provider (or is on its way there right now).
HANDED_STATUSES = ("sending", "sent", "delivered", "failed", "unknown")
N = Notice.__table__  # type: ignore[attr-defined]
C = Category.__table__  # type: ignore[attr-defined]


def request_hash(data: NoticeCreate) -> str:
    """A stable hash of the request body, to tell a retry from a different request."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _invalid(code: str, message: str, details: Any = None) -> Invalid:
    return Invalid(code, message, details)


def _check_channels(channels: list[str]) -> list[str]:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise _invalid(
            "unknown_channel", "未知的发送渠道 / Unknown channel", {"unknown": unknown, "allowed": list(CHANNELS)}
        )
    return list(dict.fromkeys(channels))


def _check_lengths(data: NoticeCreate, channels: list[str], settings: Settings) -> None:
    for channel in channels:
        limit = CHANNEL_LIMITS.get(channel)
        if limit is None:
            continue
        length = template_length(data.body)
        if channel == "sms":
            length += len(settings.aliyun_sms.sign_name) + 2
        if length > limit:
            raise _invalid(
                "text_too_long",
                f"正文超出 {channel} 渠道长度限制 / Text exceeds the {channel} limit",
                {"channel": channel, "length": length, "limit": limit},
            )


def _normalise_send_at(send_at: datetime | None, moment: datetime) -> datetime | None:
    if send_at is None:
        return None
    if send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=CHINA_TZ)  # operators think in Beijing time
    if send_at < moment - timedelta(seconds=60):
        raise _invalid("send_at_in_past", "定时发送时间已过 / send_at is in the past", {"send_at": send_at.isoformat()})
    return send_at


def _audience_size(
    session: Session, agency: Agency, data: NoticeCreate, channels: list[str]
) -> tuple[int, set[str] | None, dict[str, Any] | None]:
    """People the audience reaches, the placeholders every source can fill (None: no source), the CSV's row report."""
    spec = data.audience
    total = 0
    fields: set[str] | None = None
    report: dict[str, Any] | None = None
    if spec.staff is not None:
        total += count_staff(session.connection(), spec.staff.model_dump(), channels)
        fields = set(STAFF_FIELDS)
    if spec.subscribers is not None:
        categories = spec.subscribers.categories or ([data.category] if data.category else [])
        _check_categories(session, categories)
        total += count_subscribers(session.connection(), spec.subscribers.model_dump(), data.category, channels)
        fields = set(SUBSCRIBER_FIELDS) if fields is None else fields & SUBSCRIBER_FIELDS
    if spec.csv is not None:
        try:
            parsed = parse_csv(spec.csv)
        except AudienceError as exc:
            raise _invalid(exc.code, exc.message) from exc
        if "sms" in channels or "voice" in channels:
            total += len(parsed.rows)
        report = parsed.report.as_dict()
        csv_fields = set(parsed.columns)
        fields = csv_fields if fields is None else fields & csv_fields
    if spec.lists:
        for saved in saved_lists_of(session, agency.id or 0, spec.lists):
            total += saved.accepted
            fields = set(saved.columns) if fields is None else fields & set(saved.columns)
    return total, fields, report


def csv_report(notice: Notice) -> dict[str, Any] | None:
    """The row report of a notice's inline CSV audience (accepted, refused rows with line and reason)."""
    text = (notice.audience or {}).get("csv")
    if not text:
        return None
    try:
        return parse_csv(text).report.as_dict()
    except AudienceError:
        return None


def _check_categories(session: Session, categories: list[str]) -> None:
    if not categories:
        return
    known = set(session.exec(select(C.c.code).where(C.c.code.in_(categories), C.c.active.is_(True))).scalars())  # type: ignore[call-overload]
    missing = [c for c in categories if c not in known]
    if missing:
        raise _invalid("unknown_category", "未知的栏目 / Unknown category", {"unknown": missing})


def _check_daily_limit(session: Session, agency: Agency, requested: int, moment: datetime) -> None:
    local = moment.astimezone(CHINA_TZ)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    today = and_(N.c.agency_id == agency.id, N.c.created_at >= day_start)
    live = session.exec(  # type: ignore[call-overload]
        select(func.coalesce(func.sum(N.c.recipient_count), 0)).where(today, N.c.status != "cancelled")
    ).scalar_one()
    # A cancelled notice keeps using quota for what was handed to a provider (sent, in flight or
    # final); only deliveries it never handed over (queued, then cancelled) are given back.
    cancelled_today = select(N.c.id).where(today, N.c.status == "cancelled")
    handed = people_addressed(cancelled_today, HANDED_STATUSES).subquery()
    used = int(live) + int(session.exec(select(func.count()).select_from(handed)).scalar_one())  # type: ignore[call-overload]
    if used + requested > agency.daily_limit:
        next_day = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        raise RateLimited(
            "daily_limit_exceeded",
            "超出本机构每日发送上限 / Over the agency's daily limit",
            retry_after=max(1, int((next_day - local).total_seconds())),
            details={"limit": agency.daily_limit, "used": int(used), "requested": requested},
        )


def _check_staff_ids(session: Session, data: NoticeCreate, sees_staff_contacts: bool) -> None:
    """Contacts addressed by id must be ones the caller may see in the directory.

    Without `contacts:write` (or a staff session) only public contacts can be named; a staff-only
    contact and a missing id get the same answer, so the answer reveals nothing either.
    Departments and regions stay open to every sender: they address a unit, not a person.
    """
    from contacts.models import Contact

    ids = sorted(set(data.audience.staff.ids)) if data.audience.staff is not None else []
    if not ids:
        return
    contact = Contact.__table__  # type: ignore[attr-defined]
    query = select(contact.c.id).where(contact.c.id.in_(ids))
    if not sees_staff_contacts:
        query = query.where(contact.c.visibility == "public")
    visible = set(session.exec(query).scalars())  # type: ignore[call-overload]
    hidden = [i for i in ids if i not in visible]
    if hidden:
        raise _invalid(
            "unknown_contact",
            "联系人不存在或无权查看 / Unknown contact, or not visible to this key",
            {"ids": hidden[:100]},
        )


@dataclass(frozen=True)
class CheckedNotice:
    """What `validate_notice` makes of a request: the channels to use, when to send, how many people."""

    channels: list[str]
    send_at: datetime | None
    count: int

    @property
    def public(self) -> bool:
        """True when any channel publishes (site, tv, weibo)."""
        return bool(set(self.channels) & set(PUBLIC_CHANNELS))


def validate_notice(
    session: Session,
    agency: Agency,
    data: NoticeCreate,
    settings: Settings,
    moment: datetime,
    extra_placeholders: frozenset[str] = frozenset(),
    sees_staff_contacts: bool = False,
) -> CheckedNotice:
    """Check a notice request; the normalised fields, or an Invalid error."""
    channels = _check_channels(data.channels)
    _check_staff_ids(session, data, sees_staff_contacts)
    if data.category:
        _check_categories(session, [data.category])
    send_at = _normalise_send_at(data.send_at, moment)
    _check_lengths(data, channels, settings)
    people = [c for c in channels if c in PEOPLE_CHANNELS]
    count, fields, report = _audience_size(session, agency, data, channels)
    if "wecom" in people and data.audience.staff is None:
        raise _invalid("empty_audience", "企业微信只能发给工作人员 / WeCom reaches staff only", {"channel": "wecom"})
    if "dingtalk" in people and data.audience.staff is None:
        raise _invalid(
            "empty_audience", "浙政钉只能发给工作人员 / DingTalk reaches staff only", {"channel": "dingtalk"}
        )
    if people and count == 0:
        details: dict[str, Any] = {"channels": people}
        if report is not None:
            details["csv"] = report  # which rows were refused, and why
        raise _invalid("empty_audience", "受众为空 / The audience is empty", details)
    used = placeholders(data.body) | placeholders(data.title) | set(extra_placeholders)
    unknown = sorted(used - (fields or set()))
    if unknown:
        raise _invalid(
            "unknown_placeholder",
            "模板占位符无法填充 / Template placeholders the audience cannot fill",
            {"unknown": unknown, "available": sorted(fields or set())},
        )
    public = [c for c in channels if c in PUBLIC_CHANNELS]
    unfit = unfit_for_public(data.title, data.body) if public else []
    if unfit:
        raise _invalid(
            "placeholder_on_public_channel",
            "公开渠道（网站、电视、微博）没有收件人，只能使用姓名占位符（显示为“市民”） / "
            "Public channels (site, tv, weibo) have no recipient: only a name placeholder is allowed (shown as 市民)",
            {"placeholders": unfit, "channels": public},
        )
    _check_daily_limit(session, agency, count, moment)
    return CheckedNotice(channels=channels, send_at=send_at, count=count)


# SQLite has one writer: concurrent accepts that read then write would only trade lock errors,
# so within a process they take turns (PostgreSQL relies on the unique index instead).
_SQLITE_ACCEPT_LOCK = threading.Lock()


def accept_notice(
    session: Session,
    agency: Agency,
    data: NoticeCreate,
    idempotency_key: str | None,
    settings: Settings,
    moment: datetime,
    actor: Actor,
    *,
    sees_staff_contacts: bool = False,
    apply_policy: bool = True,
    corrects: Notice | None = None,
    schedule_id: int | None = None,
) -> tuple[Notice, bool]:
    """Write the notice, its audit row and (unless it awaits sign-off) its outbox entry in one transaction.

    `sees_staff_contacts`: the caller may see staff-only contacts (`contacts:write` or a staff session);
    `apply_policy=False` is for the application's own messages to staff (they need no sign-off);
    `corrects` links a correction to the notice it corrects; `schedule_id` an occurrence to its schedule.
    """
    origin = _Origin(apply_policy, corrects.id if corrects is not None else None, schedule_id)
    if session.get_bind().dialect.name == "sqlite":
        session.rollback()  # hand the connection back while waiting for our turn
        with _SQLITE_ACCEPT_LOCK:
            return _accept(session, agency, data, idempotency_key, settings, moment, actor, origin, sees_staff_contacts)
    return _accept(session, agency, data, idempotency_key, settings, moment, actor, origin, sees_staff_contacts)


@dataclass(frozen=True)
class _Origin:
    apply_policy: bool
    corrects_id: str | None
    schedule_id: int | None


def _accept(
    session: Session,
    agency: Agency,
    data: NoticeCreate,
    idempotency_key: str | None,
    settings: Settings,
    moment: datetime,
    actor: Actor,
    origin: _Origin,
    sees_staff_contacts: bool,
) -> tuple[Notice, bool]:
    digest = request_hash(data)
    if idempotency_key:
        existing = _by_key(session, agency, idempotency_key)
        if existing is not None:
            return _replay(existing, digest), False
    made_from = from_template(session, agency, data)
    replies = data.replies or ""
    escalate_after = max(1, round(data.escalation.after_minutes * 60)) if data.escalation else None
    voice_minutes = data.escalation.voice_after_minutes if data.escalation else None
    escalate_voice_after = max(1, round(voice_minutes * 60)) if voice_minutes else None
    if made_from is not None:
        data = made_from.notice
    checked = validate_notice(
        session,
        agency,
        data,
        settings,
        moment,
        made_from.placeholders if made_from else frozenset(),
        sees_staff_contacts,
    )
    disposition = dispose(
        get_policy(session, agency.id or 0), checked.channels, checked.count, data.urgency == "urgent", moment
    )
    if disposition.needs_approval and origin.apply_policy:
        status = "pending_approval"
    else:
        status = "scheduled" if checked.send_at and checked.send_at > moment else "accepted"
    notice = Notice(
        agency_id=agency.id or 0,
        title=data.title,
        body=data.body + (ATTENDANCE_ASK if replies == ATTENDANCE else ""),
        category=data.category,
        regions=data.regions,
        urgency=data.urgency,
        channels=checked.channels,
        replies=replies,
        escalate_after_seconds=escalate_after,
        escalate_voice_after_seconds=escalate_voice_after,
        audience=data.audience.model_dump(exclude_none=True),
        status=status,
        public=checked.public,
        idempotency_key=idempotency_key,
        request_hash=digest,
        send_at=checked.send_at,
        recipient_count=checked.count,
        created_at=moment,
        created_by=actor.label,
        status_changed_at=moment,
        status_changed_by=actor.label,
        review_due_at=disposition.review_due_at if origin.apply_policy else None,
        corrects_id=origin.corrects_id,
        schedule_id=origin.schedule_id,
    )
    session.add(notice)
    if status != "pending_approval":
        # A notice awaiting sign-off gets its outbox entry when it is approved.
        session.add(NoticeOutbox(notice_id=notice.id, kind="fanout", created_at=moment, enqueued_at=moment))
    try:
        session.flush()  # a concurrent retry with the same key fails here, before the audit row
        if made_from is not None:
            made_from.record(session, notice.id)  # the template use refers to the notice row
        count_notice(session.connection(), notice.agency_id, moment)
        record_audit(
            session,
            actor,
            "correct" if origin.corrects_id else "submit" if status == "pending_approval" else "send",
            "notice",
            notice.id,
            {
                "status": status,
                "title": notice.title,
                "recipients": notice.recipient_count,
                **({"corrects": origin.corrects_id} if origin.corrects_id else {}),
                **({"schedule": origin.schedule_id} if origin.schedule_id else {}),
            },
            agency_id=agency.id,
            moment=moment,
        )
        session.commit()
    except IntegrityError:
        # A concurrent retry with the same key won the race.
        session.rollback()
        existing = _by_key(session, agency, idempotency_key or "")
        if existing is None:
            raise
        return _replay(existing, digest), False
    log.info("notice %s accepted for agency %s (%d recipients)", notice.id, agency.id, checked.count)
    return notice, True


def _by_key(session: Session, agency: Agency, key: str) -> Notice | None:
    return (
        session.exec(  # type: ignore[call-overload]
            select(Notice).where(Notice.agency_id == agency.id, Notice.idempotency_key == key)  # type: ignore[arg-type]
        )
        .scalars()
        .first()
    )


def _replay(existing: Notice, digest: str) -> Notice:
    if existing.request_hash != digest:
        raise Conflict(
            "idempotency_conflict",
            "该 Idempotency-Key 已用于不同的请求 / Idempotency-Key was used with a different body",
            {"notice_id": existing.id},
        )
    return existing


def get_notice(session: Session, agency: Agency, notice_id: str) -> Notice:
    """The agency's notice, or 404 (another agency's notice is not found either)."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.agency_id != agency.id:
        raise NotFound()
    return notice


def _count_progress(conn: Connection, notice_id: str) -> tuple[dict[str, Any], datetime]:
    moment = datetime.now(UTC)
    rows: Any = conn.execute(
        select(D.c.channel, D.c.status, func.count(), func.sum(D.c.parts), func.count(D.c.read_at))
        .where(D.c.notice_id == notice_id)
        .group_by(D.c.channel, D.c.status)
    ).all()
    # Held work is pending work (the partial index): a few rows read, whatever the notice's size.
    held: Any = conn.execute(
        select(D.c.channel, D.c.held_reason, func.count(), func.max(D.c.next_attempt_at))
        .where(
            D.c.notice_id == notice_id,
            D.c.next_attempt_at.is_not(None),
            D.c.next_attempt_at > moment,
            D.c.held_reason.is_not(None),
            D.c.status == "queued",
        )
        .group_by(D.c.channel, D.c.held_reason)
    ).all()
    return progress_from_counts([tuple(r) for r in rows], [tuple(r) for r in held]), moment


class ProgressCache:
    """Progress of large notices, counted at most about once a second and never while a reader waits.

    Counting 200,000 deliveries takes PostgreSQL over 100 ms while they are being updated, and
    agencies poll progress during exactly that time. A notice whose count took longer than
    `slow_seconds` is answered from its last count; a count older than `max_age`, and older than
    `spacing` times the count's own duration, is refreshed in the background (so counting one
    notice keeps at most a `1/spacing` share of a database core busy), and never waits longer than
    `max_interval`: the duration is wall time, which a busy process (the embedded worker shares
    the API's) stretches beyond the database's own work. Notices whose count is quick are counted
    on the spot.
    """

    def __init__(
        self,
        slow_seconds: float = 0.05,
        max_age: float = 1.0,
        size: int = 1000,
        spacing: float = 20.0,
        max_interval: float = 5.0,
    ) -> None:
        self.slow_seconds = slow_seconds
        self.max_age = max_age
        self.size = size
        self.spacing = spacing
        self.max_interval = max_interval
        # notice id -> (counted at, progress, as of, seconds the count took)
        self._entries: dict[str, tuple[float, dict[str, Any], datetime, float]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notice-progress")

    def get(self, session: Session, notice_id: str) -> tuple[dict[str, Any], datetime]:
        """The notice's progress and when it was counted (on the session's own connection)."""
        engine = session.get_bind()
        with self._lock:
            entry = self._entries.get(notice_id)
            if entry is not None:
                due = min(self.max_interval, max(self.max_age, self.spacing * entry[3]))
                if time.monotonic() - entry[0] > due and notice_id not in self._refreshing:
                    self._refreshing.add(notice_id)
                    self._pool.submit(self._refresh, engine, notice_id)
                return entry[1], entry[2]
        return self._count(session.connection(), notice_id)

    def _count(self, conn: Connection, notice_id: str) -> tuple[dict[str, Any], datetime]:
        started = time.monotonic()
        progress, moment = _count_progress(conn, notice_id)
        took = time.monotonic() - started
        with self._lock:
            if took < self.slow_seconds:
                # Quick again (the broadcast is over, or the database idle): count on the spot from
                # now on, rather than keep answering the last slow count.
                self._entries.pop(notice_id, None)
            else:
                if len(self._entries) >= self.size:
                    self._entries.clear()
                self._entries[notice_id] = (time.monotonic(), progress, moment, took)
        return progress, moment

    def _refresh(self, engine: Any, notice_id: str) -> None:
        try:
            with engine.connect() as conn:
                self._count(conn, notice_id)
        except Exception:  # noqa: BLE001 - the next reader asks again
            log.warning("counting progress of notice %s failed", notice_id, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(notice_id)


PROGRESS = ProgressCache()


def notice_public(session: Session, notice: Notice, with_progress: bool = True) -> NoticePublic:
    """The notice with its per-channel progress."""
    progress: dict[str, Any] = {}
    as_of = None
    if with_progress:
        progress, as_of = PROGRESS.get(session, notice.id)
    return NoticePublic(
        id=notice.id,
        status=notice.status,
        title=notice.title,
        body=notice.body,
        category=notice.category,
        regions=notice.regions,
        urgency=notice.urgency,
        channels=notice.channels,
        recipient_count=notice.recipient_count,
        send_at=notice.send_at,
        created_at=notice.created_at,
        completed_at=notice.completed_at,
        cancelled_at=notice.cancelled_at,
        created_by=notice.created_by,
        rejected_reason=notice.rejected_reason or None,
        retracted_at=notice.retracted_at,
        retracted_reason=notice.retracted_reason or None,
        corrects_id=notice.corrects_id,
        review_due_at=notice.review_due_at,
        reviewed_at=notice.reviewed_at,
        schedule_id=notice.schedule_id,
        replies="attendance" if notice.replies == ATTENDANCE else None,
        escalate_after_seconds=notice.escalate_after_seconds,
        escalate_voice_after_seconds=notice.escalate_voice_after_seconds,
        escalation=EscalationProgress(**escalation_progress(session.connection(), notice.id))
        if with_progress and notice.escalate_after_seconds
        else None,
        progress=progress,
        progress_as_of=as_of,
    )


def list_notices(
    session: Session, agency: Agency, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[Notice], int]:
    """The agency's notices, newest first, filtered by status, category, urgency, channel or date."""
    query = select(Notice).where(Notice.agency_id == agency.id)  # type: ignore[arg-type]
    for name in ("status", "category", "urgency"):
        if filters.get(name):
            query = query.where(getattr(Notice, name) == filters[name])
    review = filters.get("review")
    if review:
        query = query.where(col(Notice.review_due_at).is_not(None))
        if review == "done":
            query = query.where(col(Notice.reviewed_at).is_not(None))
        else:
            query = query.where(col(Notice.reviewed_at).is_(None))
        if review == "overdue":
            query = query.where(col(Notice.review_due_at) < utcnow())
    if filters.get("created_after"):
        query = query.where(Notice.created_at >= filters["created_after"])
    if filters.get("created_before"):
        query = query.where(Notice.created_at < filters["created_before"])
    if filters.get("channel"):
        channel = filters["channel"]
        if channel not in CHANNELS:
            raise _invalid(
                "validation_error", "未知渠道 / Unknown channel", {"channel": channel, "allowed": list(CHANNELS)}
            )
        # Channels are a JSON list of fixed names: matching the quoted name works on both databases,
        # and filtering in the query keeps `total` and the pages right.
        query = query.where(contains(cast(Notice.channels, String), f'"{channel}"'))
    total = session.exec(select(func.count()).select_from(query.subquery())).scalar_one()  # type: ignore[call-overload]
    rows = (
        session.exec(  # type: ignore[call-overload]
            query.order_by(Notice.created_at.desc(), Notice.id).offset(offset).limit(limit)  # type: ignore[attr-defined]
        )
        .scalars()
        .all()
    )
    return list(rows), int(total)


def cancel_notice(session: Session, agency: Agency, notice_id: str, moment: datetime, actor: Actor) -> Notice:
    """Stop what has not been sent: queued deliveries become `cancelled`; sends in flight finish."""
    notice = get_notice(session, agency, notice_id)
    change_status(session, notice_id, "cancelled", actor, values={"cancelled_at": moment}, moment=moment)
    cancel_queued_deliveries(session, notice_id, moment)
    session.commit()
    session.refresh(notice)
    log.info("notice %s cancelled", notice_id)
    return notice


def cancel_queued_deliveries(session: Session, notice_id: str, moment: datetime) -> int:
    """Deliveries not yet handed to a provider become `cancelled` (in the caller's transaction, counted in rollups)."""
    changed = (
        session.connection()
        .execute(
            update(D)
            .where(D.c.notice_id == notice_id, D.c.next_attempt_at.is_not(None), D.c.status == "queued")
            .values(status="cancelled", final_at=moment, next_attempt_at=None, updated_at=moment)
            .returning(*ROLLUP_RETURNING)
        )
        .all()
    )
    count_cancelled(session.connection(), changed)
    return len(changed)


def list_deliveries(
    session: Session, notice: Notice, status: str | None, channel: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    """One page of a notice's deliveries, filtered, with the total."""
    query = _deliveries_query(notice.id, status, channel)
    total = session.exec(select(func.count()).select_from(query.subquery())).scalar_one()  # type: ignore[call-overload]
    query = query.order_by(D.c.channel, D.c.id).offset(offset).limit(limit)
    return list(session.exec(query).all()), int(total)


def _deliveries_query(notice_id: str, status: str | None, channel: str | None) -> Any:
    query = select(D).where(D.c.notice_id == notice_id)
    if status:
        query = query.where(D.c.status == status)
    if channel:
        query = query.where(D.c.channel == channel)
    return query


def iter_deliveries(
    engine: Engine, notice_id: str, status: str | None, channel: str | None, batch: int = 1000
) -> Iterator[Any]:
    """Every matching delivery, read in keyset pages: a million-row export holds one page at a time."""
    after: tuple[str, str] = ("", "")
    while True:
        query = (
            _deliveries_query(notice_id, status, channel)
            .where(tuple_(D.c.channel, D.c.id) > tuple_(*after))
            .order_by(D.c.channel, D.c.id)
            .limit(batch)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        yield from rows
        if len(rows) < batch:
            return
        after = (rows[-1].channel, rows[-1].id)
