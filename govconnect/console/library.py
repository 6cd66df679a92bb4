"""Console template editing: create a template, edit it (each save is a new version), read its versions.

Drafters (operators, approvers, admins) write templates, as keys with `notices:send` do through the API;
every change is audited as `template_change`. Another agency's template is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from channels.catalogue import TEXT_CHANNELS
from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep
from govconnect.api.params import RowId
from govconnect.audit.record import record_audit
from govconnect.console.pages import Drafter, actor, render
from govconnect.message_templates import service as templates
from govconnect.message_templates.models import MessageTemplate, MessageTemplateVersion
from govconnect.message_templates.schemas import TemplateCreate, TemplateUpdate
from govconnect.text_rules import MultilineText, Text
from govconnect.web.session import verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
FormText = Annotated[MultilineText, Form(max_length=2000)]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"] if part != "variants")
    return f"输入有误（{field}）/ Invalid input: {error['msg']}"


def _variants(before: dict[str, Any], texts: dict[str, str], sms_code: str) -> dict[str, Any]:
    """The variants the form describes: a blank text drops the channel; other fields of a variant are kept."""
    variants: dict[str, Any] = {c: v for c, v in before.items() if c not in TEXT_CHANNELS}
    for channel in TEXT_CHANNELS:
        text = texts[channel].strip()
        if text:
            variants[channel] = {**before.get(channel, {}), "text": text}
    if "sms" in variants:
        variants["sms"]["aliyun_template_code"] = sms_code.strip()
    return variants


def _editor(
    request: Request,
    user: StaffUser,
    form: dict[str, Any],
    template: MessageTemplate | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "form": form,
        "template": template,
        "text_channels": TEXT_CHANNELS,
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "template_edit.html", user, "templates", context, status_code=status_code)


def _form(name: str, title: str, variants: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "texts": {c: (variants.get(c) or {}).get("text", "") for c in TEXT_CHANNELS},
        "sms_code": (variants.get("sms") or {}).get("aliyun_template_code", ""),
        "kept": sorted(c for c in variants if c not in TEXT_CHANNELS),
    }


@router.get("/templates/new", response_class=HTMLResponse)
def template_new(request: Request, user: Drafter) -> Response:
    """An empty template form."""
    return _editor(request, user, _form("", "", {}))


@router.post("/templates/new", response_class=HTMLResponse)
def template_create(
    request: Request,
    session: SessionDep,
    user: Drafter,
    name: Annotated[Text, Form(max_length=100)] = "",
    title: Annotated[Text, Form(max_length=200)] = "",
    sms_code: Annotated[Text, Form(max_length=64)] = "",
    sms: FormText = "",
    voice: FormText = "",
    wecom: FormText = "",
    dingtalk: FormText = "",
    weibo: FormText = "",
    site: FormText = "",
) -> Response:
    """Write the template at version 1 (audited), then open its page."""
    texts = {"sms": sms, "voice": voice, "wecom": wecom, "dingtalk": dingtalk, "weibo": weibo, "site": site}
    variants = _variants({}, texts, sms_code)
    try:
        data = TemplateCreate.model_validate({"name": name.strip(), "title": title.strip(), "variants": variants})
    except ValidationError as exc:
        return _editor(request, user, _form(name, title, variants), None, _first_error(exc), 422)
    template, _version = templates.create_template(session, user.agency_id, data)
    record_audit(
        session,
        actor(request, user),
        "template_change",
        "template",
        template.id or 0,
        {"op": "create", "version": 1, "name": data.name},
        user.agency_id,
    )
    session.commit()
    return RedirectResponse(f"/console/templates/{template.id}?done=saved", status_code=303)


@router.get("/templates/{template_id}/edit", response_class=HTMLResponse)
def template_edit(request: Request, session: SessionDep, user: Drafter, template_id: RowId) -> Response:
    """The template's current version in the form; saving writes the next version."""
    template = templates.get_template(session, user.agency_id, template_id)
    current = templates.version_of(session, template)
    return _editor(request, user, _form(template.name, current.title, current.variants), template)


@router.post("/templates/{template_id}/edit", response_class=HTMLResponse)
def template_update(
    request: Request,
    session: SessionDep,
    user: Drafter,
    template_id: RowId,
    name: Annotated[Text, Form(max_length=100)] = "",
    title: Annotated[Text, Form(max_length=200)] = "",
    sms_code: Annotated[Text, Form(max_length=64)] = "",
    sms: FormText = "",
    voice: FormText = "",
    wecom: FormText = "",
    dingtalk: FormText = "",
    weibo: FormText = "",
    site: FormText = "",
) -> Response:
    """Write the next version (notices already made keep theirs); audited with the versions and fields."""
    template = templates.get_template(session, user.agency_id, template_id)
    current = templates.version_of(session, template)
    texts = {"sms": sms, "voice": voice, "wecom": wecom, "dingtalk": dingtalk, "weibo": weibo, "site": site}
    variants = _variants(current.variants, texts, sms_code)
    try:
        data = TemplateUpdate.model_validate({"name": name.strip(), "title": title.strip(), "variants": variants})
    except ValidationError as exc:
        return _editor(request, user, _form(name, title, variants), template, _first_error(exc), 422)
    changed = [
        field
        for field, old, new in (
            ("name", template.name, data.name),
            ("title", current.title, data.title),
            ("variants", current.variants, data.variants.model_dump(exclude_none=True) if data.variants else None),
        )
        if old != new
    ]
    if not changed:
        return RedirectResponse(f"/console/templates/{template.id}?done=unchanged", status_code=303)
    before, after = templates.update_template(session, template, data)
    record_audit(
        session,
        actor(request, user),
        "template_change",
        "template",
        template.id or 0,
        {"op": "update", "version": [before.version, after.version], "fields": changed},
        user.agency_id,
    )
    session.commit()
    return RedirectResponse(f"/console/templates/{template.id}?done=saved", status_code=303)


def versions(session: Session, template: MessageTemplate) -> list[MessageTemplateVersion]:
    """Every version of the template, newest first."""
    return list(
        session.exec(
            select(MessageTemplateVersion)
            .where(MessageTemplateVersion.template_id == template.id)
            .order_by(col(MessageTemplateVersion.version).desc())
        ).all()
    )
