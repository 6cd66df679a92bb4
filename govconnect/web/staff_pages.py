"""Staff pages of the mobile site: the directory (search, tree, contact cards) and notice compose."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from govconnect.api.deps import SessionDep
from govconnect.web.rendering import render
from govconnect.web.session import StaffDep

router = APIRouter(prefix="/m/staff", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def staff_home(request: Request, session: SessionDep, staff: StaffDep) -> Response:
    """The directory start page for signed-in staff."""
    return render(request, "staff_home.html", {"q": "", "results": []}, session=session)
