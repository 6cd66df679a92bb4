"""Templates API (CRUD, versioned, preview) and the agency's SMS sender settings."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from govconnect.api.deps import Principal, SessionDep, SettingsDep, audit_call, require_scope
from govconnect.message_templates import senders, service
from govconnect.message_templates.schemas import (
    PreviewRequest,
    SenderSettings,
    TemplateCreate,
    TemplatePage,
    TemplatePreview,
    TemplatePublic,
    TemplateUpdate,
)

log = logging.getLogger("govconnect.templates")
router = APIRouter(prefix="/api/v1", tags=["templates"])
Writer = Annotated[Principal, Depends(require_scope("notices:send"))]
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]
TemplateId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/templates", status_code=201, response_model=TemplatePublic, summary="Create a template")
def template_create(request: Request, body: TemplateCreate, principal: Writer, session: SessionDep) -> TemplatePublic:
    """A new template at version 1."""
    template, version = service.create_template(session, principal.agency.id or 0, body)
    audit_call(
        session,
        principal,
        request,
        "template_change",
        f"template:{template.id}",
        {"op": "create", "version": 1, "name": body.name},
    )
    session.commit()
    return service.public(template, version)


@router.get("/templates", response_model=TemplatePage, summary="This agency's templates")
def template_list(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TemplatePage:
    """Live templates by name, each at its current version."""
    items, total = service.list_templates(session, principal.agency.id or 0, limit, offset)
    return TemplatePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/templates/{template_id}", response_model=TemplatePublic, summary="A template")
def template_detail(
    template_id: TemplateId,
    principal: Reader,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> TemplatePublic:
    """The template at its current version, or at `version` (older versions stay readable)."""
    template = service.get_template(session, principal.agency.id or 0, template_id)
    return service.public(template, service.version_of(session, template, version))


@router.patch("/templates/{template_id}", response_model=TemplatePublic, summary="Edit a template (new version)")
def template_update(
    request: Request, template_id: TemplateId, body: TemplateUpdate, principal: Writer, session: SessionDep
) -> TemplatePublic:
    """Write the next version; notices already made keep the version they used."""
    template = service.get_template(session, principal.agency.id or 0, template_id)
    before, after = service.update_template(session, template, body)
    audit_call(
        session,
        principal,
        request,
        "template_change",
        f"template:{template_id}",
        {
            "op": "update",
            "version": [before.version, after.version],
            "fields": sorted(body.model_dump(exclude_none=True)),
        },
    )
    session.commit()
    return service.public(template, after)


@router.delete("/templates/{template_id}", status_code=204, summary="Delete a template")
def template_delete(request: Request, template_id: TemplateId, principal: Writer, session: SessionDep) -> Response:
    """Hide the template; notices made from it keep their version."""
    template = service.get_template(session, principal.agency.id or 0, template_id)
    service.delete_template(session, template)
    audit_call(
        session,
        principal,
        request,
        "template_change",
        f"template:{template_id}",
        {"op": "delete", "version": template.version},
    )
    session.commit()
    return Response(status_code=204)


@router.post("/templates/{template_id}/preview", response_model=TemplatePreview, summary="Preview every variant")
def template_preview(
    template_id: TemplateId, body: PreviewRequest, principal: Reader, session: SessionDep, settings: SettingsDep
) -> TemplatePreview:
    """Each variant rendered with sample values; SMS with the agency's signature and its part count."""
    template = service.get_template(session, principal.agency.id or 0, template_id)
    sign = senders.sms_identity(session.connection(), principal.agency.id or 0).sign_name
    return service.preview(
        service.version_of(session, template), template_id, body.values, sign or settings.aliyun_sms.sign_name
    )


@router.get("/agencies/me/sender", response_model=SenderSettings, summary="The agency's SMS sender")
def sender_get(principal: Admin, session: SessionDep) -> SenderSettings:
    """Signature, free-text template code and urgent-warning policy ('' = the settings' default)."""
    row = senders.sender_of(session, principal.agency.id or 0)
    return SenderSettings(
        sms_sign_name=row.sms_sign_name,
        sms_template_code=row.sms_template_code,
        urgent_ignores_suppression=row.urgent_ignores_suppression,
    )


@router.put("/agencies/me/sender", response_model=SenderSettings, summary="Set the agency's SMS sender")
def sender_put(request: Request, body: SenderSettings, principal: Admin, session: SessionDep) -> SenderSettings:
    """Set the agency's own signature (e.g. 衢州市应急管理局) and Alibaba template code."""
    row = senders.save_sender(
        session,
        principal.agency.id or 0,
        body.sms_sign_name,
        body.sms_template_code,
        body.urgent_ignores_suppression,
    )
    audit_call(
        session, principal, request, "settings_change", f"agency:{principal.agency.id}", {"sender": body.model_dump()}
    )
    session.commit()
    return SenderSettings(
        sms_sign_name=row.sms_sign_name,
        sms_template_code=row.sms_template_code,
        urgent_ignores_suppression=row.urgent_ignores_suppression,
    )
