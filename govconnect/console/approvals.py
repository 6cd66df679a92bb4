"""Console sign-off: the dashboard, the queue of notices waiting for approval, approve / reject, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from govconnect.api.deps import SessionDep
from govconnect.console import queries
from govconnect.console.notices import _notice, notice_page
from govconnect.console.pages import (
    APPROVE_ROLES,
    Approver,
    ConsoleUser,
    actor,
    drafter_names,
    may,
    render,
    staff_label,
    user_agency,
)
from govconnect.errors import DomainError
from govconnect.governance import signoff
from govconnect.governance.policy import get_policy
from govconnect.notices.intake import enqueue_fanout
from govconnect.notices.models import Notice
from govconnect.notices.providers import channel_providers
from govconnect.notices.service import csv_report
from govconnect.text_rules import MultilineText
from govconnect.web.session import verify_csrf
from govconnect.web.status import app_health

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
HISTORY_PAGE = 30


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, user: ConsoleUser) -> Response:
    """Today's and scheduled notices, what waits for my approval, failures, today's delivery rate, holds."""
    label = staff_label(user) if may(user, APPROVE_ROLES) else None
    data = await run_in_threadpool(queries.dashboard, session, user.agency_id, label, queries.now())
    providers = sorted({p for names in channel_providers(request.app.state.settings).values() for p in names})
    snapshot = await app_health(request).snapshot(providers)
    circuits = [provider for provider, state in snapshot.items() if state["circuit"] == "open"]
    return render(request, "dashboard.html", user, "dashboard", {"d": data, "circuits": circuits})


@router.get("/approvals", response_class=HTMLResponse)
def approval_queue(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Notices waiting for sign-off (with their full text) and the history of decisions."""
    waiting = list(
        session.exec(
            select(Notice)
            .where(Notice.agency_id == user.agency_id, Notice.status == "pending_approval")
            .order_by(col(Notice.status_changed_at))
            .limit(100)
        ).all()
    )
    history, total = queries.approval_history(session, user.agency_id, HISTORY_PAGE, (page - 1) * HISTORY_PAGE)
    labels = {n.created_by for n in waiting} | {n.status_changed_by for n in waiting} | {h.actor for h in history}
    policy = get_policy(session, user.agency_id)
    return render(
        request,
        "approvals.html",
        user,
        "approvals",
        {
            "waiting": waiting,
            "reports": {n.id: csv_report(n) for n in waiting},
            "history": history,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // HISTORY_PAGE)),
            "names": drafter_names(session, labels),
            "me": staff_label(user),
            "policy": policy,
        },
    )


@router.post("/notices/{notice_id}/approve")
async def approve(request: Request, session: SessionDep, user: Approver, notice_id: str) -> Response:
    """One approver's sign-off (never the drafter's); with enough of them the notice goes."""
    notice = _notice(session, user, notice_id)
    agency = user_agency(session, user)
    try:
        approved, missing = await run_in_threadpool(
            signoff.approve, session, agency, notice.id, actor(request, user), queries.now()
        )
    except DomainError as exc:
        session.rollback()
        return notice_page(request, session, user, notice, exc.message, exc.status)
    if missing == 0:
        await enqueue_fanout(request.app.state.queue, approved, queries.now())
    return RedirectResponse(f"/console/notices/{notice.id}?done=approved", status_code=303)


@router.post("/notices/{notice_id}/reject")
def reject(
    request: Request,
    session: SessionDep,
    user: Approver,
    notice_id: str,
    reason: Annotated[MultilineText, Form(max_length=500)] = "",
) -> Response:
    """Send the notice back to its drafter with a reason."""
    notice = _notice(session, user, notice_id)
    if not reason.strip():
        return notice_page(request, session, user, notice, "请填写退回原因", 422)
    try:
        signoff.reject(
            session, user_agency(session, user), notice.id, actor(request, user), reason.strip(), queries.now()
        )
    except DomainError as exc:
        session.rollback()
        return notice_page(request, session, user, notice, exc.message, exc.status)
    return RedirectResponse(f"/console/notices/{notice.id}?done=rejected", status_code=303)
