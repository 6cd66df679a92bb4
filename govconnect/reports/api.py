"""Reports API: per-agency rollups over Beijing days (JSON, CSV, XLSX) and monthly scorecards (JSON, SVG).

Admin keys see every agency; other keys (with `notices:read`) see their own agency only, and
another agency's scorecard is a 404.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from sqlmodel import select

from govconnect.agencies.models import Agency
from govconnect.api.deps import Principal, SessionDep, require_scope
from govconnect.api.openapi import media_responses
from govconnect.errors import ApiError
from govconnect.reports.chart import scorecard_svg
from govconnect.reports.export import csv_bytes, xlsx_bytes
from govconnect.reports.queries import agency_reports, scorecard
from govconnect.reports.rollup import beijing_day

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]
MAX_RANGE_DAYS = 366
EXPORT_COLUMNS = (
    "agency_code",
    "agency_name",
    "channel",
    "provider",
    "notices",
    "deliveries",
    "sent",
    "delivered",
    "failed",
    "unknown",
    "cancelled",
    "sms_parts",
    "optouts",
    "approvals",
    "time_to_deliver_p50_seconds",
    "time_to_deliver_p95_seconds",
    "failures_by_reason",
)


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    today = beijing_day(datetime.now().astimezone())
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise ApiError(422, "invalid_range", "开始日期晚于结束日期 / `from` is after `to`", {"from": str(start)})
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ApiError(
            422, "range_too_long", f"查询范围最长 {MAX_RANGE_DAYS} 天 / At most {MAX_RANGE_DAYS} days per request"
        )
    return start, end


def _export_rows(reports: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for report in reports:
        agency = report["agency"]
        for line in [{"channel": "(all)", "provider": None, **report["totals"]}, *report["channels"]]:
            reasons = "; ".join(f"{reason}={count}" for reason, count in line["failures_by_reason"].items())
            rows.append(
                [agency["code"], agency["name"]] + [line.get(column) for column in EXPORT_COLUMNS[2:-1]] + [reasons]
            )
    return rows


@router.get(
    "/agencies", responses=media_responses("csv", "xlsx"), summary="Delivery reports per agency over Beijing days"
)
def agencies_report(
    principal: Reader,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from", description="first Beijing day, YYYY-MM-DD")] = None,
    end: Annotated[date | None, Query(alias="to", description="last Beijing day, inclusive")] = None,
    format: Literal["json", "csv", "xlsx"] = "json",  # noqa: A002 - the query parameter's name
) -> Response:
    """Rollups per agency (admin: all agencies; others: their own), as JSON, CSV or XLSX."""
    first, last = _range(start, end)
    agency_ids = None if principal.has("admin") else [principal.agency.id or 0]
    reports = agency_reports(session.connection(), agency_ids, first, last)
    if format == "json":
        return JSONResponse({"from": first.isoformat(), "to": last.isoformat(), "agencies": reports})
    name = f"govconnect-report-{first.isoformat()}-{last.isoformat()}"
    if format == "csv":
        return Response(
            csv_bytes(EXPORT_COLUMNS, _export_rows(reports)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        xlsx_bytes("report", EXPORT_COLUMNS, _export_rows(reports)),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def _visible_agency(session: SessionDep, principal: Principal, code: str) -> Agency:
    agency = session.exec(select(Agency).where(Agency.code == code)).first()
    if agency is None or (not principal.has("admin") and agency.id != principal.agency.id):
        raise ApiError(404, "not_found")
    return agency


def _month(month: str | None) -> date:
    if month is None:
        return beijing_day(datetime.now().astimezone()).replace(day=1)
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ApiError(422, "invalid_month", "月份格式应为 YYYY-MM / month must be YYYY-MM", {"month": month}) from None


MonthQuery = Annotated[str | None, Query(max_length=7, description="YYYY-MM (Beijing); default this month")]


@router.get("/agencies/{code}/scorecard", summary="An agency's monthly scorecard")
def agency_scorecard(principal: Reader, session: SessionDep, code: str, month: MonthQuery = None) -> JSONResponse:
    """Delivery rate, timeliness, opt-out rate and failures by reason for one month, with daily figures."""
    agency = _visible_agency(session, principal, code)
    card = scorecard(session.connection(), agency.id or 0, _month(month))
    return JSONResponse({"agency": {"id": agency.id, "code": agency.code, "name": agency.name}, **card})


@router.get(
    "/agencies/{code}/scorecard.svg",
    response_class=Response,
    responses=media_responses("svg", with_json=False),
    summary="The monthly scorecard as an SVG chart",
)
def agency_scorecard_svg(principal: Reader, session: SessionDep, code: str, month: MonthQuery = None) -> Response:
    """Daily delivered / failed bars for the month, rendered by the server (no script)."""
    agency = _visible_agency(session, principal, code)
    card = scorecard(session.connection(), agency.id or 0, _month(month))
    return Response(scorecard_svg(agency.name, card), media_type="image/svg+xml")
