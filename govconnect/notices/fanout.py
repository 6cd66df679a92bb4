"""Fan-out: stream a notice's audience into deliveries (one per recipient and channel), then queue sends."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from channels.catalogue import PEOPLE_CHANNELS
from govconnect.audiences.lists import list_pages
from govconnect.audit.record import Actor
from govconnect.clock import utcnow
from govconnect.jobs import job
from govconnect.message_templates.outbound import template_fields
from govconnect.notices.audience import Recipient, csv_pages, staff_pages, subscriber_pages
from govconnect.notices.gate import change_status
from govconnect.notices.models import Notice, new_id
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.notices.policy import now, placeholders, run_fanout_db
from govconnect.notices.sending import enqueue_finish, enqueue_send
from govconnect.reports import pipeline_hooks as rollup_hooks
from govconnect.suppression.gate import HoldPolicy, forget_days_before, hold_back

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
O = NoticeOutbox.__table__  # type: ignore[attr-defined]  # noqa: E741
FANOUT = Actor.system("fanout")
# A notice in one of these statuses is fanned out (at its send_at); one that ended is not, ever.
READY_STATUSES = ("accepted", "scheduled", "approved", "sending")
ENDED_STATUSES = ("cancelled", "retracted", "expired", "rejected", "completed", "failed")


def insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Insert deliveries; rows that already exist (same notice, channel, recipient) are skipped."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return _insert_unnest(conn, rows)
    # SQLite: executemany with RETURNING ("insertmanyvalues"): one cached statement, batched.
    stmt = (
        sqlite_insert(D)
        .on_conflict_do_nothing(index_elements=["notice_id", "channel", "recipient"])
        .returning(D.c.id, D.c.channel)
    )
    return [(row[0], row[1]) for row in conn.execute(stmt, rows).all()]


# PostgreSQL: one short statement taking an array per varying column and one value for the
# rest, which are the same for every row of a page. A thousand-row VALUES list is a new statement
# text for every page (parsing it cost the worker more than the insert did), and turning every
# column into an array cost psycopg more than the statement did.
_UNNEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "varchar"),
    ("channel", "varchar"),
    ("recipient", "varchar"),
    ("subscriber_id", "integer"),
    ("params", "json"),
)
_PAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("notice_id", "varchar"),
    ("provider", "varchar"),
    ("status", "varchar"),
    ("priority", "integer"),
    ("attempts", "integer"),
    ("parts", "integer"),
    ("uncertain", "boolean"),
    ("receipts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("deadline_at", "timestamptz"),
    ("error_code", "varchar"),
    ("final_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_UNNEST_INSERT = text(
    "INSERT INTO delivery ({names}) SELECT {selected} FROM unnest({arrays}) AS u({varying}) "
    "ON CONFLICT (notice_id, channel, recipient) DO NOTHING RETURNING id, channel".format(
        names=", ".join(name for name, _ in (*_UNNEST_COLUMNS, *_PAGE_COLUMNS)),
        # There is no json[] input from text: params travel as text[] and each is cast.
        selected=", ".join(
            [f"CAST(u.{n} AS json)" if k == "json" else f"u.{n}" for n, k in _UNNEST_COLUMNS]
            + [f"CAST(:{n} AS {k})" for n, k in _PAGE_COLUMNS]
        ),
        arrays=", ".join(f"CAST(:{n} AS {'text' if k == 'json' else k}[])" for n, k in _UNNEST_COLUMNS),
        varying=", ".join(name for name, _ in _UNNEST_COLUMNS),
    )
)


def _insert_unnest(conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    # Rows of a page share these values, except where channels differ in priority or deadline.
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name, _ in _PAGE_COLUMNS), []).append(row)
    inserted: list[tuple[str, str]] = []
    for shared, members in groups.items():
        values: dict[str, Any] = {name: [row[name] for row in members] for name, _ in _UNNEST_COLUMNS}
        values["params"] = [json.dumps(p, ensure_ascii=False) for p in values["params"]]
        values.update(zip((name for name, _ in _PAGE_COLUMNS), shared, strict=True))
        inserted.extend((row[0], row[1]) for row in conn.execute(_UNNEST_INSERT, values).all())
    return inserted


def audience_pages(
    conn: Connection, notice: Any, cursor: str, page: int, fields: set[str] | None = None
) -> Iterator[tuple[list[Recipient], str]]:
    """Every page of every audience source of the notice (cursor prefixed by source)."""
    audience = notice.audience or {}
    if fields is None:
        fields = placeholders(notice.body) | placeholders(notice.title)
    source, _, inner = cursor.partition(":")
    if "subscribers" in audience and source in ("", "s"):
        for recipients, after in subscriber_pages(
            conn, audience["subscribers"] or {}, notice.category, inner if source == "s" else "", page, fields
        ):
            yield recipients, f"s:{after}"
        inner = ""
    if "csv" in audience and source in ("", "s", "c"):
        for recipients, after in csv_pages(audience["csv"], inner if source == "c" else "", page):
            yield recipients, f"c:{after}"
    if "staff" in audience and source in ("", "s", "c", "t"):
        for recipients, after in staff_pages(conn, audience["staff"] or {}, inner if source == "t" else "", page):
            yield recipients, f"t:{after}"
        inner = ""
    if audience.get("lists") and source in ("", "s", "c", "t", "l"):
        # Saved audience lists (uploaded files), one after the other: the cursor is `list id/member id`.
        for recipients, after in list_pages(conn, list(audience["lists"]), inner if source == "l" else "", page):
            yield recipients, f"l:{after}"


def _rows_for(notice: Any, recipients: list[Recipient], moment: datetime, deadline: datetime) -> list[dict[str, Any]]:
    priority = 0 if notice.urgency == "urgent" else 1
    rows = []
    for recipient in recipients:
        for channel in notice.channels:
            address = recipient.addresses.get(channel)
            if channel not in PEOPLE_CHANNELS or not address:
                continue
            rows.append(
                _row(notice.id, channel, address, recipient.params, recipient.subscriber_id, priority, moment, deadline)
            )
    return rows


def _row(
    notice_id: str,
    channel: str,
    recipient: str,
    params: dict[str, Any],
    subscriber_id: int | None,
    priority: int,
    moment: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "notice_id": notice_id,
        "channel": channel,
        "provider": "",
        "recipient": recipient,
        "subscriber_id": subscriber_id,
        "params": params,
        "status": "queued",
        "priority": priority,
        "attempts": 0,
        "parts": 1,
        "uncertain": False,
        "receipts": 0,
        "next_attempt_at": moment,
        "deadline_at": deadline,
        "error_code": None,
        "final_at": None,
        "created_at": moment,
        "updated_at": moment,
    }


@job
async def fanout_notice(ctx: dict[str, Any], notice_id: str) -> dict[str, int]:
    """Write a notice's deliveries page by page and queue their sends; re-runs resume and never double."""
    engine: Engine = ctx["engine"]
    settings = ctx["settings"]
    notice, outbox = await run_fanout_db(_load, engine, notice_id)
    if notice is None or outbox is None or outbox.done_at is not None:
        return {"created": 0}
    moment = now(ctx)
    if notice.status not in READY_STATUSES:
        if notice.status in ENDED_STATUSES:
            await run_fanout_db(_finish_outbox, engine, notice_id, outbox.cursor, None)
        return {"created": 0}
    if notice.send_at is not None and notice.send_at > moment + timedelta(seconds=1):
        await ctx["queue"].enqueue(
            "fanout_notice", notice_id=notice_id, defer_by=(notice.send_at - moment).total_seconds()
        )
        return {"created": 0}
    deadline = moment + timedelta(seconds=settings.notices.deadline_seconds)
    urgent = notice.urgency == "urgent"
    policy = await run_fanout_db(hold_policy, engine, settings, notice)
    created = 0
    cursor = outbox.cursor
    if not cursor:
        created += await _public_deliveries(ctx, engine, notice, moment, deadline)
    # Database work runs in threads so the event loop (the API, in embedded mode) never waits on it.
    with engine.connect() as reader:
        fields = placeholders(notice.body) | placeholders(notice.title) | template_fields(reader, notice_id)
        pages = audience_pages(reader, notice, cursor, settings.notices.fanout_page, fields)
        while (page := await run_fanout_db(next, pages, None)) is not None:
            recipients, after = page
            rows = _rows_for(notice, recipients, moment, deadline)
            inserted = await run_fanout_db(_insert_page, engine, notice_id, rows, after, policy, moment)
            created += len(inserted)
            await _enqueue_inserted(ctx, notice_id, inserted, urgent)
            cursor = after
    await run_fanout_db(_finish_outbox, engine, notice_id, cursor, "sending", moment)
    await enqueue_finish(ctx, notice_id)
    log.info("notice %s fan-out wrote %d deliveries", notice_id, created)
    return {"created": created}


async def _public_deliveries(
    ctx: dict[str, Any], engine: Engine, notice: Any, moment: datetime, deadline: datetime
) -> int:
    """Weibo is one post per notice, not one message per person."""
    if "weibo" not in notice.channels:
        return 0
    row = _row(notice.id, "weibo", "public", {}, None, 0 if notice.urgency == "urgent" else 1, moment, deadline)
    inserted = await run_fanout_db(_insert_page, engine, notice.id, [row], "")
    await _enqueue_inserted(ctx, notice.id, inserted, notice.urgency == "urgent")
    return len(inserted)


def _load(engine: Engine, notice_id: str) -> tuple[Any, Any]:
    with engine.connect() as conn:
        notice = conn.execute(select(N).where(N.c.id == notice_id)).first()
        outbox = conn.execute(select(O).where(O.c.notice_id == notice_id, O.c.kind == "fanout")).first()
    return notice, outbox


def hold_policy(engine: Engine, settings: Any, notice: Any) -> HoldPolicy:
    """The suppression list and daily cap as they apply to this notice (its agency's urgent policy)."""
    from govconnect.message_templates.senders import urgent_ignores_suppression

    with engine.connect() as conn:
        ignores = urgent_ignores_suppression(conn, notice.agency_id)
    if settings.notices.daily_sms_cap > 0:
        with engine.begin() as conn:
            forget_days_before(conn, (utcnow() - timedelta(days=2)).date().isoformat())
    return HoldPolicy(
        secret=settings.secret_key.get_secret_value(),
        urgent=notice.urgency == "urgent",
        urgent_ignores_suppression=ignores,
        daily_sms_cap=settings.notices.daily_sms_cap,
    )


def _insert_page(
    engine: Engine,
    notice_id: str,
    rows: list[dict[str, Any]],
    cursor: str,
    policy: HoldPolicy | None = None,
    moment: datetime | None = None,
) -> list[tuple[str, str]]:
    """Insert a page of deliveries (held-back ones final at once); those to send, as (id, channel)."""
    with engine.begin() as conn:
        held = hold_back(conn, policy, rows, moment or utcnow()) if policy is not None else set()
        inserted = insert_ignoring_duplicates(conn, rows)
        if inserted:
            moment = rows[0]["created_at"]  # a page's rows share the moment they were written
            rollup_hooks.count_created(conn, [(notice_id, channel, "", moment) for _, channel in inserted])
            # Held back by suppression or caps: final at once, never sent (reported as cancelled).
            rollup_hooks.count_cancelled(conn, [(notice_id, c, "", moment) for i, c in inserted if i in held])
        if cursor:
            conn.execute(update(O).where(O.c.notice_id == notice_id, O.c.kind == "fanout").values(cursor=cursor))
    return [(delivery_id, channel) for delivery_id, channel in inserted if delivery_id not in held]


async def _enqueue_inserted(ctx: dict[str, Any], notice_id: str, inserted: list[tuple[str, str]], urgent: bool) -> None:
    chunk = ctx["settings"].notices.send_chunk
    by_channel: dict[str, list[str]] = {}
    for delivery_id, channel in inserted:
        by_channel.setdefault(channel, []).append(delivery_id)
    for channel, ids in by_channel.items():
        for i in range(0, len(ids), chunk):
            await enqueue_send(ctx, notice_id, channel, ids[i : i + chunk], urgent)


HELD_BACK = ("suppressed", "capped")


def people_addressed(notice_ids: Any, statuses: tuple[str, ...] | None = None) -> Any:
    """A query of distinct (notice, person) pairs among deliveries: a subscriber once whatever the channel,
    anyone else once per address. `statuses` restricts the deliveries counted."""
    person = func.coalesce("s" + cast(D.c.subscriber_id, String), D.c.recipient)
    query = select(D.c.notice_id, person.label("person")).where(
        D.c.notice_id.in_(notice_ids),
        D.c.channel.in_(PEOPLE_CHANNELS),
        D.c.status.not_in(HELD_BACK),  # suppressed or over the cap: never sent
    )
    if statuses is not None:
        query = query.where(D.c.status.in_(statuses))
    return query.distinct()


def _finish_outbox(
    engine: Engine, notice_id: str, cursor: str, status: str | None, started: datetime | None = None
) -> None:
    """Mark the fan-out done; moving to `status`, the notice records when it went out (`started`)."""
    moment = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(O).where(O.c.notice_id == notice_id, O.c.kind == "fanout").values(cursor=cursor, done_at=moment)
        )
        if status is not None:
            # Now that every delivery is written, the count is what is sent: sources overlapping, a
            # number twice in a CSV, or people without an address for a channel no longer count.
            reached = select(func.count()).select_from(people_addressed([notice_id]).subquery()).scalar_subquery()
            change_status(
                conn,
                notice_id,
                status,
                FANOUT,
                only_from=("accepted", "scheduled", "approved"),
                moment=moment,
                # The public surfaces date a notice by when it went out, not when it was written.
                values={"recipient_count": reached, "published_at": started or moment},
            )
