"""Audiences: subscribers by category and region, an uploaded CSV, staff from the directory.

Every source streams pages of recipients keyed by a cursor, so memory stays constant whatever
the size, and a re-run resumes from the last committed cursor.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, cast, exists, false, func, not_, or_, select
from sqlalchemy.engine import Connection

from channels.catalogue import SUBSCRIBER_CHANNELS
from contacts.like import contains, starts_with
from contacts.phones import normalise_mobile
from govconnect.audiences.reader import FileRefused, read_table
from govconnect.audiences.rows import RowReport, check_row, read_header
from govconnect.citizens.models import Subscriber, SubscriberCategory, SubscriberRegion
from govconnect.errors import Invalid

S = Subscriber.__table__  # type: ignore[attr-defined]
SC = SubscriberCategory.__table__  # type: ignore[attr-defined]
SR = SubscriberRegion.__table__  # type: ignore[attr-defined]

# Placeholders each audience kind can fill.
SUBSCRIBER_FIELDS = {"name"}
STAFF_FIELDS = {"name", "department"}


@dataclass(frozen=True)
class Recipient:
    """One person and the addresses we may use, per channel."""

    addresses: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    subscriber_id: int | None = None


class AudienceError(Invalid):
    """The audience description cannot be used."""


def _subscriber_filter(spec: dict[str, Any], default_category: str) -> Any:
    categories = list(spec.get("categories") or ([default_category] if default_category else []))
    regions = list(spec.get("regions") or [])
    clauses = [S.c.status == "active"]
    if categories:
        clauses.append(exists().where(and_(SC.c.subscriber_id == S.c.id, SC.c.category.in_(categories))))
    if regions:
        # A subscriber without region rows follows the whole city.
        clauses.append(
            or_(
                not_(exists().where(SR.c.subscriber_id == S.c.id)),
                exists().where(and_(SR.c.subscriber_id == S.c.id, SR.c.region.in_(regions))),
            )
        )
    return and_(*clauses)


def _subscriber_reachable(channels: list[str]) -> Any:
    """Subscribers with an address on one of the notice's channels that they accept (as `subscriber_pages`)."""
    # `channels` is a JSON list of fixed names: matching the quoted name works on both databases.
    accepts = {name: contains(cast(S.c.channels, String), f'"{name}"') for name in SUBSCRIBER_CHANNELS}
    clauses = [and_(S.c.phone.is_not(None), S.c.phone != "", accepts[c]) for c in ("sms", "voice") if c in channels]
    if "wechat" in channels:
        clauses.append(and_(S.c.wechat_openid.is_not(None), S.c.wechat_openid != "", accepts["wechat"]))
    return or_(*clauses) if clauses else false()


def count_subscribers(
    conn: Connection, spec: dict[str, Any], default_category: str, channels: list[str] | None = None
) -> int:
    """How many active subscribers the spec reaches (each person once), on `channels` when given."""
    where = _subscriber_filter(spec, default_category)
    if channels is not None:
        where = and_(where, _subscriber_reachable(channels))
    return int(conn.execute(select(func.count()).select_from(S).where(where)).scalar_one())


def subscriber_pages(
    conn: Connection, spec: dict[str, Any], default_category: str, cursor: str, page: int, fields: set[str]
) -> Iterator[tuple[list[Recipient], str]]:
    """Pages of subscribers after `cursor` (a subscriber id), with the cursor after each page."""
    last = int(cursor or 0)
    where = _subscriber_filter(spec, default_category)
    while True:
        rows: Any = conn.execute(
            select(S.c.id, S.c.phone, S.c.wechat_openid, S.c.name, S.c.channels)
            .where(where, S.c.id > last)
            .order_by(S.c.id)
            .limit(page)
        ).all()
        if not rows:
            return
        out = []
        for sid, phone, openid, name, channels in rows:
            addresses: dict[str, str] = {}
            accepted = set(channels or [])
            if phone and "sms" in accepted:
                addresses["sms"] = phone
            if phone and "voice" in accepted:
                addresses["voice"] = phone
            if openid and "wechat" in accepted:
                addresses["wechat"] = openid
            params = {"name": name} if "name" in fields else {}
            out.append(Recipient(addresses, params, sid))
        last = rows[-1][0]
        yield out, str(last)


@dataclass(frozen=True)
class ParsedCsv:
    """An inline CSV audience: placeholder columns, accepted (phone, values) rows, and the row report."""

    columns: list[str]
    rows: list[tuple[str, dict[str, str]]]
    report: RowReport


def parse_csv(text: str) -> ParsedCsv:
    """An inline CSV audience checked row by row (手机号/phone column required; refused rows reported)."""
    lines = iter(read_table(io.BytesIO(text.encode("utf-8")), "audience.csv"))
    try:
        first = next(lines, None)
        if first is None:
            raise FileRefused("no_phone_column", "CSV 为空 / the CSV is empty")
        header = read_header(first[1])
        report = RowReport()
        rows: list[tuple[str, dict[str, str]]] = []
        seen: set[str] = set()
        for line, cells in lines:
            report.rows_read += 1
            checked = check_row(header, cells)
            if isinstance(checked, str):
                report.refuse(line, checked)
            elif checked[0] in seen:
                report.duplicates += 1
            else:
                seen.add(checked[0])
                rows.append(checked)
                report.accepted += 1
    except FileRefused as exc:
        raise AudienceError("csv_invalid", exc.message) from exc
    return ParsedCsv(header.placeholders, rows, report)


def csv_pages(text: str, cursor: str, page: int) -> Iterator[tuple[list[Recipient], str]]:
    """Pages of accepted CSV rows after row index `cursor`."""
    rows = parse_csv(text).rows
    start = int(cursor or 0)
    for offset in range(start, len(rows), page):
        chunk = rows[offset : offset + page]
        recipients = [Recipient({"sms": phone, "voice": phone}, params) for phone, params in chunk]
        yield recipients, str(offset + len(chunk))


def _staff_filter(conn: Connection, spec: dict[str, Any]) -> Any:
    """Contacts in the department subtrees, regions or ids of the spec (a path `A` covers `A/…`)."""
    from contacts.models import Contact, Department, Region

    c, d, r = Contact.__table__, Department.__table__, Region.__table__  # type: ignore[attr-defined]
    clauses = []
    if spec.get("ids"):
        clauses.append(c.c.id.in_(list(spec["ids"])))
    if spec.get("departments"):
        paths = [str(p) for (p,) in conn.execute(select(d.c.path).where(d.c.id.in_(list(spec["departments"])))).all()]
        for path in paths:
            subtree = select(d.c.id).where(or_(d.c.path == path, starts_with(d.c.path, path + "/")))
            clauses.append(c.c.department_id.in_(subtree))
    if spec.get("regions"):
        clauses.append(c.c.region_id.in_(select(r.c.id).where(r.c.name.in_(list(spec["regions"])))))
    if not clauses:
        return None
    return or_(*clauses)


def count_staff(conn: Connection, spec: dict[str, Any], channels: list[str] | None = None) -> int:
    """How many directory contacts the staff spec reaches, on `channels` when given (as `staff_pages`)."""
    from contacts.models import Contact

    where = _staff_filter(conn, spec)
    if where is None:
        return 0
    c = Contact.__table__  # type: ignore[attr-defined]
    if channels is not None:
        reachable = []
        if "sms" in channels or "voice" in channels:
            reachable.append(and_(c.c.mobile.is_not(None), c.c.mobile != ""))
        if "wecom" in channels:
            reachable.append(and_(c.c.external_id.is_not(None), c.c.external_id != ""))
        if "dingtalk" in channels:
            reachable.append(c.c.dingtalk_userid != "")
        where = and_(where, or_(*reachable) if reachable else false())
    return int(conn.execute(select(func.count()).select_from(c).where(where)).scalar_one())


def staff_pages(
    conn: Connection, spec: dict[str, Any], cursor: str, page: int
) -> Iterator[tuple[list[Recipient], str]]:
    """Pages of staff after contact id `cursor`: SMS/voice to the mobile, WeCom to external_id, DingTalk to its id."""
    from contacts.models import Contact, Department

    c, d = Contact.__table__, Department.__table__  # type: ignore[attr-defined]
    where = _staff_filter(conn, spec)
    if where is None:
        return
    last = int(cursor or 0)
    while True:
        rows: Any = conn.execute(
            select(c.c.id, c.c.name, c.c.mobile, c.c.external_id, c.c.dingtalk_userid, d.c.name)
            .join(d, d.c.id == c.c.department_id)
            .where(where, c.c.id > last)
            .order_by(c.c.id)
            .limit(page)
        ).all()
        if not rows:
            return
        out = []
        for _cid, name, mobile, external_id, dingtalk_userid, department in rows:
            addresses: dict[str, str] = {}
            phone = normalise_mobile(mobile)
            if phone is not None:
                addresses["sms"] = addresses["voice"] = phone
            if external_id:
                addresses["wecom"] = external_id
            if dingtalk_userid:
                addresses["dingtalk"] = dingtalk_userid
            out.append(Recipient(addresses, {"name": name, "department": department, "_staff": True}))
        last = rows[-1][0]
        yield out, str(last)
