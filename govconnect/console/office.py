"""Console supervision rooms: the audit log (admin; filters, pages, CSV) and the reports (rollups, exports, scorecard).

Both read only the signed-in user's agency, through the same queries as `/api/v1/audit` and `/api/v1/reports`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep
from govconnect.audit.api import _csv_lines as audit_csv_lines
from govconnect.audit.api import _public as audit_public
from govconnect.audit.models import AUDIT_ACTIONS
from govconnect.audit.queries import AuditFilter, audit_page, iter_audit
from govconnect.clock import CHINA_TZ
from govconnect.console.pages import CHANNEL_NAMES, ConsoleUser, drafter_names, render, user_agency
from govconnect.errors import Invalid, NotFound
from govconnect.reports.api import EXPORT_COLUMNS, MAX_RANGE_DAYS, _export_rows
from govconnect.reports.chart import scorecard_svg
from govconnect.reports.export import csv_bytes, xlsx_bytes
from govconnect.reports.queries import agency_reports, scorecard
from govconnect.reports.rollup import beijing_day
from govconnect.text_rules import Text
from govconnect.web.session import require_role, verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
AdminUser = Annotated[StaffUser, Depends(require_role())]  # admin only
AUDIT_PAGE = 50
ACTION_NAMES = {
    "sign_in": "登录",
    "sign_out": "退出",
    "key_create": "创建密钥",
    "key_revoke": "吊销密钥",
    "staff_create": "创建账号",
    "template_change": "模板变更",
    "draft": "起草",
    "submit": "提交审核",
    "approve": "审核通过",
    "reject": "退回",
    "send": "发送",
    "status_change": "状态变更",
    "edit": "编辑",
    "cancel": "取消",
    "retract": "撤回",
    "correct": "更正",
    "review": "事后审核",
    "policy_change": "审核策略变更",
    "schedule_change": "定时计划变更",
    "suppression_change": "屏蔽名单变更",
    "settings_change": "机构设置变更",
    "click_to_dial": "双呼",
}


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, datetime.min.time(), tzinfo=CHINA_TZ) if day else None


def _audit_filter(
    user: StaffUser, action: str, actor: str, target_type: str, since: date | None, until: date | None
) -> AuditFilter:
    return AuditFilter(
        user.agency_id,
        action if action in AUDIT_ACTIONS else None,
        actor.strip() or None,
        target_type.strip() or None,
        None,
        _day_start(since),
        _day_start(until + timedelta(days=1)) if until else None,
    )


AuditQuery = Annotated[str, Query(max_length=80)]


@router.get("/audit", response_class=HTMLResponse)
def audit_room(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    action: Annotated[str, Query(max_length=40)] = "",
    actor: AuditQuery = "",
    target_type: Annotated[str, Query(max_length=40)] = "",
    since: date | None = None,
    until: date | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Who did what in the agency, newest first, 50 a page; the same filters export every match as CSV."""
    filters = _audit_filter(user, action, actor, target_type, since, until)
    rows, total = audit_page(session.connection(), filters, AUDIT_PAGE, (page - 1) * AUDIT_PAGE)
    entries = [audit_public(r) for r in rows]
    names = drafter_names(session, {e.actor for e in entries})
    query = {k: v for k, v in request.query_params.items() if k != "page"}
    context = {
        "entries": entries,
        # Plain text, autoescaped on the page (changes may quote what someone typed).
        "changes": {e.id: json.dumps(e.changes, ensure_ascii=False, sort_keys=True) for e in entries if e.changes},
        "names": names,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // AUDIT_PAGE)),
        "query": query,
        "f": {
            "action": filters.action or "",
            "actor": actor,
            "target_type": target_type,
            "since": since,
            "until": until,
        },
        "actions": AUDIT_ACTIONS,
        "action_names": ACTION_NAMES,
    }
    return render(request, "audit.html", user, "audit", context)


@router.get("/audit.csv")
def audit_csv(
    request: Request,
    user: AdminUser,
    action: Annotated[str, Query(max_length=40)] = "",
    actor: AuditQuery = "",
    target_type: Annotated[str, Query(max_length=40)] = "",
    since: date | None = None,
    until: date | None = None,
) -> Response:
    """Every entry matching the page's filters, oldest first, as CSV (the API's columns)."""
    filters = _audit_filter(user, action, actor, target_type, since, until)
    return StreamingResponse(
        audit_csv_lines(audit_public(r) for r in iter_audit(request.app.state.engine, filters)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def _report_range(start: date | None, end: date | None) -> tuple[date, date] | str:
    """The Beijing days asked for (the last 30 by default), or what is wrong with them (as the API says it)."""
    end = end or beijing_day(datetime.now().astimezone())
    start = start or end - timedelta(days=29)
    if start > end:
        return "开始日期晚于结束日期 / `from` is after `to`"
    if (end - start).days >= MAX_RANGE_DAYS:
        return f"查询范围最长 {MAX_RANGE_DAYS} 天 / At most {MAX_RANGE_DAYS} days per request"
    return start, end


def _month(month: str) -> date:
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        return beijing_day(datetime.now().astimezone()).replace(day=1)


@router.get("/reports", response_class=HTMLResponse)
def reports_room(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    month: Annotated[Text, Query(max_length=7)] = "",
) -> Response:
    """The agency's delivery report for a range of Beijing days (30 by default), exports and the monthly chart."""
    agency = user_agency(session, user)
    span = _report_range(start, end)
    card_month = _month(month)
    context: dict[str, Any] = {"start": start, "end": end, "month": card_month.strftime("%Y-%m"), "report": None}
    if isinstance(span, str):
        context.update(message=span, message_kind="error")
        return render(request, "reports.html", user, "reports", context, status_code=422)
    reports = agency_reports(session.connection(), [agency.id or 0], *span)
    card = scorecard(session.connection(), agency.id or 0, card_month)
    context.update(
        start=span[0],
        end=span[1],
        report=reports[0] if reports else None,
        card=card,
        channel_names=CHANNEL_NAMES,
        export_query=f"from={span[0].isoformat()}&to={span[1].isoformat()}",
    )
    return render(request, "reports.html", user, "reports", context)


@router.get("/reports/export.{fmt}")
def reports_export(
    session: SessionDep,
    user: ConsoleUser,
    fmt: str,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """The page's report as CSV or XLSX (the API's columns; the agency's own rows only)."""
    if fmt not in ("csv", "xlsx"):
        raise NotFound()
    span = _report_range(start, end)
    if isinstance(span, str):
        raise Invalid("invalid_range", span)
    agency = user_agency(session, user)
    rows = _export_rows(agency_reports(session.connection(), [agency.id or 0], *span))
    name = f"govconnect-report-{agency.code}-{span[0].isoformat()}-{span[1].isoformat()}"
    if fmt == "csv":
        body, media = csv_bytes(EXPORT_COLUMNS, rows), "text/csv; charset=utf-8"
    else:
        body = xlsx_bytes("report", EXPORT_COLUMNS, rows)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@router.get("/reports/scorecard.svg")
def reports_scorecard(
    session: SessionDep, user: ConsoleUser, month: Annotated[Text, Query(max_length=7)] = ""
) -> Response:
    """The agency's monthly scorecard chart (drawn by the server, no script)."""
    agency = user_agency(session, user)
    card = scorecard(session.connection(), agency.id or 0, _month(month))
    response = Response(scorecard_svg(agency.name, card), media_type="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-cache"
    return response
