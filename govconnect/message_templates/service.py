"""Templates: versioned CRUD scoped by agency, rendering with values, preview, and filling a notice.

Editing never changes a version: it writes the next one, so a notice keeps exactly the wording
it was sent with (`notice_template_use` names the version and keeps the variants it sent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from channels.base import MessageKind
from channels.catalogue import TEXT_CHANNELS
from channels.sms_text import compose
from govconnect.clock import utcnow
from govconnect.errors import NotFound
from govconnect.message_templates.models import MessageTemplate, MessageTemplateVersion, NoticeTemplateUse
from govconnect.message_templates.schemas import (
    TemplateCreate,
    TemplatePreview,
    TemplatePublic,
    TemplateUpdate,
    VariantPreview,
    Variants,
)
from govconnect.notices.policy import PLACEHOLDER, placeholders

# A notice made from a template takes its body from the fullest text: the site's, then the others.
BODY_TEXT_FROM = ("site", *(c for c in TEXT_CHANNELS if c != "site"))

log = logging.getLogger("govconnect.templates")
T = MessageTemplate.__table__  # type: ignore[attr-defined]
V = MessageTemplateVersion.__table__  # type: ignore[attr-defined]
ALIYUN_PARAM_MAX = 35  # characters in one variable of an Alibaba notification template


def variant_texts(variants: dict[str, Any]) -> list[str]:
    """Every text of the variants that placeholders may appear in."""
    texts: list[str] = []
    for channel, variant in variants.items():
        if channel in TEXT_CHANNELS:
            texts.append(str(variant.get("text", "")))
        texts.extend(str(v) for v in (variant.get("aliyun_params") or {}).values())
        texts.extend(str(v) for v in (variant.get("tts_params") or {}).values())
        texts.extend(str(v) for v in (variant.get("fields") or {}).values())
    return texts


def template_placeholders(title: str, variants: dict[str, Any]) -> list[str]:
    """The `((name))` placeholders the template uses, sorted."""
    found = placeholders(title)
    for text in variant_texts(variants):
        found |= placeholders(text)
    return sorted(found)


def fill(text: str, values: dict[str, str]) -> str:
    """Fill the placeholders that have values; the others stay for per-recipient filling."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_variants(variants: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Every text of the variants filled with the values given (dicts of texts too)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fill(value, values)
        if isinstance(value, dict):
            return {
                k: (v if k in ("template_id", "aliyun_template_code", "tts_code") else walk(v))
                for k, v in value.items()
            }
        return value

    return {channel: walk(variant) for channel, variant in variants.items()}


def _current(session: Session, template: MessageTemplate, version: int | None = None) -> MessageTemplateVersion:
    row = (
        session.exec(  # type: ignore[call-overload]
            select(MessageTemplateVersion).where(
                V.c.template_id == template.id, V.c.version == (version or template.version)
            )
        )
        .scalars()
        .first()
    )
    if row is None:
        raise NotFound()
    return row


def public(template: MessageTemplate, version: MessageTemplateVersion) -> TemplatePublic:
    """The template at a version as the API shows it."""
    return TemplatePublic(
        id=template.id or 0,
        name=template.name,
        version=version.version,
        title=version.title,
        variants=Variants.model_validate(version.variants),
        placeholders=template_placeholders(version.title, version.variants),
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def get_template(session: Session, agency_id: int, template_id: int) -> MessageTemplate:
    """The agency's live template, or 404 (another agency's template is not found either)."""
    template = session.get(MessageTemplate, template_id)
    if template is None or template.agency_id != agency_id or template.deleted_at is not None:
        raise NotFound()
    return template


def version_of(session: Session, template: MessageTemplate, version: int | None = None) -> MessageTemplateVersion:
    """One version of the template (the current one by default), or 404."""
    return _current(session, template, version)


def create_template(
    session: Session, agency_id: int, data: TemplateCreate
) -> tuple[MessageTemplate, MessageTemplateVersion]:
    """Write a template and its version 1 (the caller commits)."""
    moment = utcnow()
    template = MessageTemplate(agency_id=agency_id, name=data.name, version=1, created_at=moment, updated_at=moment)
    session.add(template)
    session.flush()
    version = MessageTemplateVersion(
        template_id=template.id or 0,
        version=1,
        title=data.title,
        variants=data.variants.model_dump(exclude_none=True),
        created_at=moment,
    )
    session.add(version)
    session.flush()
    log.info("template %s created for agency %s", template.id, agency_id)
    return template, version


def update_template(
    session: Session, template: MessageTemplate, data: TemplateUpdate
) -> tuple[MessageTemplateVersion, MessageTemplateVersion]:
    """Write the next version from the current one and the changes; (before, after). The caller commits."""
    before = _current(session, template)
    moment = utcnow()
    after = MessageTemplateVersion(
        template_id=template.id or 0,
        version=template.version + 1,
        title=data.title if data.title is not None else before.title,
        variants=data.variants.model_dump(exclude_none=True) if data.variants is not None else dict(before.variants),
        created_at=moment,
    )
    if data.name is not None:
        template.name = data.name
    template.version = after.version
    template.updated_at = moment
    session.add(after)
    session.add(template)
    session.flush()
    log.info("template %s now at version %d", template.id, after.version)
    return before, after


def delete_template(session: Session, template: MessageTemplate) -> None:
    """Hide the template; its versions stay for the notices that used them."""
    template.deleted_at = utcnow()
    session.add(template)
    session.flush()


def list_templates(session: Session, agency_id: int, limit: int, offset: int) -> tuple[list[TemplatePublic], int]:
    """The agency's live templates by name, each at its current version."""
    where = (T.c.agency_id == agency_id, T.c.deleted_at.is_(None))
    rows = (
        session.exec(  # type: ignore[call-overload]
            select(MessageTemplate).where(*where).order_by(T.c.name, T.c.id).limit(limit).offset(offset)
        )
        .scalars()
        .all()
    )
    total = session.exec(select(func.count()).select_from(T).where(*where)).scalar_one()  # type: ignore[call-overload]
    return [public(t, _current(session, t)) for t in rows], int(total)


def _sample(text: str, values: dict[str, str]) -> tuple[str, list[str]]:
    missing = sorted(name for name in placeholders(text) if name not in values)
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), f"【{m.group(1)}】"), text), missing


def preview(
    version: MessageTemplateVersion, template_id: int, values: dict[str, str], sign_name: str
) -> TemplatePreview:
    """Each variant rendered with the sample values; SMS with signature, opt-out hint and part count."""
    out: dict[str, VariantPreview] = {}
    for channel, variant in version.variants.items():
        if channel == "wechat":
            fields = {k: _sample(v, values)[0] for k, v in variant["fields"].items()}
            missing = sorted({m for v in variant["fields"].values() for m in _sample(v, values)[1]})
            text = "\n".join(fields.values())
            out[channel] = VariantPreview(text=text, length=len(text), fields=fields, missing=missing)
            continue
        text, missing = _sample(variant["text"], values)
        preview_item = VariantPreview(text=text, length=len(text), missing=missing)
        if channel == "sms":
            sms = compose(text, sign_name, MessageKind.SUBSCRIPTION)
            preview_item = VariantPreview(text=sms.text, length=sms.length, parts=sms.parts, missing=missing)
            params = {k: _sample(v, values)[0] for k, v in (variant.get("aliyun_params") or {}).items()}
            if params:
                preview_item.provider_params = params
                preview_item.warnings = [
                    f"aliyun_param_too_long:{k}" for k, v in params.items() if len(v) > ALIYUN_PARAM_MAX
                ]
        out[channel] = preview_item
    title, _missing = _sample(version.title, values)
    return TemplatePreview(template_id=template_id, version=version.version, title=title, variants=out)


def resolve_for_notice(
    session: Session, agency_id: int, template_id: int, values: dict[str, str]
) -> tuple[MessageTemplate, MessageTemplateVersion, dict[str, Any], str, str]:
    """(template, version, filled variants, title, body) for a notice made from the agency's template."""
    template = get_template(session, agency_id, template_id)
    version = _current(session, template)
    variants = fill_variants(dict(version.variants), values)
    text_source = next((variants[c] for c in BODY_TEXT_FROM if c in variants), None)
    if text_source is not None:
        body = str(text_source["text"])
    else:
        body = "\n".join(str(v) for v in variants["wechat"]["fields"].values())
    return template, version, variants, fill(version.title, values), body


def record_use(
    session: Session,
    notice_id: str,
    template: MessageTemplate,
    version: MessageTemplateVersion,
    values: dict[str, str],
    variants: dict[str, Any],
) -> None:
    """Keep which version a notice was made from and what it sends (in the notice's transaction)."""
    session.add(
        NoticeTemplateUse(
            notice_id=notice_id,
            template_id=template.id or 0,
            template_version=version.version,
            values=dict(values),
            variants=variants,
        )
    )


def drop_text_variants(session: Session, notice_id: str) -> bool:
    """The drafter rewrote the text of a notice made from a template: its text channels now send that text.

    The record of the template and version stays; only the variants that carry text (SMS with its
    Alibaba code and parameters, voice, WeCom, Weibo, the site) are dropped, so each message is built
    from the notice's own body. True when the notice was made from a template. The caller commits.
    """
    use = session.get(NoticeTemplateUse, notice_id)
    if use is None:
        return False
    use.variants = {channel: v for channel, v in use.variants.items() if channel not in TEXT_CHANNELS}
    session.add(use)
    session.flush()
    return True


@dataclass(frozen=True)
class FromTemplate:
    """A notice request filled from a template, and what to record with the notice."""

    notice: Any  # NoticeCreate with title and body from the template
    template: MessageTemplate
    version: MessageTemplateVersion
    values: dict[str, str]
    variants: dict[str, Any]

    @property
    def placeholders(self) -> frozenset[str]:
        """Placeholders left for the audience to fill, in any variant."""
        left = template_placeholders(str(self.notice.title), self.variants)
        return frozenset(name for name in left if name != "unsubscribe_url")  # filled per subscriber

    def record(self, session: Session, notice_id: str) -> None:
        """Keep the version and variants with the notice (same transaction)."""
        record_use(session, notice_id, self.template, self.version, self.values, self.variants)


def from_template(session: Session, agency: Any, data: Any) -> FromTemplate | None:
    """The request filled from the agency's template when it names one (another agency's: 404)."""
    if data.template_id is None:
        return None
    template, version, variants, title, body = resolve_for_notice(
        session, agency.id or 0, data.template_id, dict(data.template_values)
    )
    filled = data.model_copy(update={"title": title[:200], "body": body[:5000]})
    return FromTemplate(filled, template, version, dict(data.template_values), variants)
