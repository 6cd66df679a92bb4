"""Console compose, in steps on one form: content (template or free text) → audience → channels with a
preview per channel → when → submit. "检查并预览" checks everything and counts the recipients without
writing a notice; "提交" accepts it (for sign-off where the agency's policy asks for it).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from channels.base import MessageKind
from channels.catalogue import CHANNEL_NAMES, PUBLIC_CHANNELS
from channels.sms_text import compose as compose_sms
from contacts.models import Contact, Department
from govconnect.agencies.models import Agency, StaffUser
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.api.params import RowId
from govconnect.audiences import lists
from govconnect.audiences.reader import FileRefused
from govconnect.citizens.subscriptions import active_categories, active_regions
from govconnect.console import queries
from govconnect.console.pages import CHANNEL_NAMES as CHANNEL_LABELS
from govconnect.console.pages import Drafter, actor, render, user_agency
from govconnect.errors import DomainError
from govconnect.governance import schedules
from govconnect.message_templates import service as templates
from govconnect.message_templates.senders import sms_identity
from govconnect.notices.intake import accept_and_enqueue, enqueue_fanout
from govconnect.notices.policy import PLACEHOLDER
from govconnect.notices.publication import public_text
from govconnect.notices.schemas import AudienceSpec, NoticeCreate, StaffAudience, SubscriberAudience
from govconnect.notices.service import validate_notice
from govconnect.settings import Settings
from govconnect.text_rules import MultilineText, Text
from govconnect.web.session import verify_csrf

log = logging.getLogger("govconnect.console")
router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
COMPOSE_CHANNELS = CHANNEL_NAMES  # every catalogued channel, in the catalogue's order
REASON_NAMES = {
    "empty_row": "空行",
    "missing_phone": "缺少手机号",
    "invalid_phone": "手机号无效",
    "value_too_long": "内容过长",
}
REPEAT_RULES = {"daily": "每天", "weekly": "每周", "monthly": "每月"}
ListForm = Annotated[list[Text], Form()]
IdsForm = Annotated[list[RowId], Form()]
# Placeholders each recipient fills (the others are asked for on the form).
AUDIENCE_FILLED = ("name", "department", "unsubscribe_url")
# The recipient previews of personal channels are filled for.
SAMPLE_RECIPIENT = {"name": "张三", "department": "办公室"}
PER_PART_YUAN = 0.045  # a typical government SMS price per billed part, for the estimate only


@dataclass
class Draft:
    """What the compose form holds between rounds."""

    mode: str = "text"
    template_id: int | None = None
    values: dict[str, str] = field(default_factory=dict)
    title: str = ""
    body: str = ""
    category: str = ""
    urgent: bool = False
    subscribers: bool = False
    sub_categories: list[str] = field(default_factory=list)
    sub_regions: list[str] = field(default_factory=list)
    departments: list[int] = field(default_factory=list)
    lists: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=lambda: ["sms", "site"])
    when: str = "now"  # now | at | repeat
    send_at: str = ""
    rule: str = "weekly"
    ends_on: str = ""
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def notice(self) -> NoticeCreate:
        """The notice request the form describes (ValidationError when it does not make one)."""
        audience = AudienceSpec(
            subscribers=SubscriberAudience(categories=self.sub_categories, regions=self.sub_regions)
            if self.subscribers
            else None,
            staff=StaffAudience(departments=self.departments) if self.departments else None,
            lists=self.lists,
        )
        if self.when != "now" and not self.send_at:
            raise ValueError("send_at is required for a scheduled or repeating notice")
        common: dict[str, Any] = {
            "category": self.category,
            "urgency": "urgent" if self.urgent else "normal",
            "channels": self.channels,
            "audience": audience,
            "send_at": datetime.fromisoformat(self.send_at) if self.when != "now" and self.send_at else None,
        }
        if self.mode == "template" and self.template_id:
            return NoticeCreate(template_id=self.template_id, template_values=self.values, **common)
        return NoticeCreate(title=self.title.strip(), body=self.body.strip(), **common)


def department_choices(session: Session) -> list[dict[str, Any]]:
    """Every department in tree order with its depth and the contacts in its subtree (the staff picker)."""
    c, d = Contact.__table__, Department.__table__  # type: ignore[attr-defined]
    counted: Any = session.connection().execute(select(c.c.department_id, func.count()).group_by(c.c.department_id))
    own: dict[int, int] = {int(dept): int(n) for dept, n in counted.all()}
    rows = session.connection().execute(select(d.c.id, d.c.name, d.c.path, d.c.parent_id, d.c.sort_order)).all()
    children: dict[int | None, list[Any]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    totals: dict[int, int] = {}

    def subtree(row: Any) -> int:
        total = int(own.get(row.id, 0)) + sum(subtree(child) for child in children.get(row.id, []))
        totals[row.id] = total
        return total

    for root in children.get(None, []):
        subtree(root)
    ordered: list[dict[str, Any]] = []
    stack = [(r, 0) for r in sorted(children.get(None, []), key=lambda r: (r.sort_order, r.id), reverse=True)]
    while stack:
        row, depth = stack.pop()
        ordered.append({"id": row.id, "name": row.name, "depth": min(depth, 4), "count": totals.get(row.id, 0)})
        kids = sorted(children.get(row.id, []), key=lambda r: (r.sort_order, r.id), reverse=True)
        stack.extend((k, depth + 1) for k in kids)
    return ordered


def _sign_name(session: Session, agency: Agency, settings: Settings) -> str:
    return sms_identity(session.connection(), agency.id or 0).sign_name or settings.aliyun_sms.sign_name


async def _create_schedule(
    request: Request,
    session: Session,
    settings: Settings,
    agency: Agency,
    user: StaffUser,
    data: NoticeCreate,
    draft: Draft,
    moment: datetime,
) -> None:
    """A repeating notice: one notice each day, week or month from send_at until ends_on (as the API's)."""
    schedule = schedules.create_schedule(
        session, agency, data, draft.rule, date.fromisoformat(draft.ends_on), actor(request, user), settings, moment
    )
    session.commit()
    log.info("schedule %s created from the console", schedule.id)
    # Occurrences due within the lead time are created now rather than at the next sweep.
    for notice in await run_in_threadpool(schedules.governance_tick, request.app.state.engine, settings, moment):
        await enqueue_fanout(request.app.state.queue, notice, moment)


def fill_text(text: str, values: dict[str, str]) -> str:
    """Placeholders filled from `values`; any other shows as 〔name〕 (each recipient's file fills it)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), f"〔{m.group(1)}〕"), text)


def channel_previews(
    session: Session, agency: Agency, draft: Draft, sign_name: str, count: int | None
) -> dict[str, dict[str, Any]]:
    """How the notice will read on each chosen channel: personal channels for a sample recipient (SMS with
    signature, parts and a cost estimate), public channels as everyone sees them (a name reads 市民)."""
    title, body = draft.title, draft.body
    variants: dict[str, Any] = {}
    if draft.mode == "template" and draft.template_id:
        template = templates.get_template(session, agency.id or 0, draft.template_id)
        version = templates.version_of(session, template)
        variants = templates.fill_variants(dict(version.variants), draft.values)
        title = templates.fill(version.title, draft.values)
        body = next((str(variants[c]["text"]) for c in templates.BODY_TEXT_FROM if c in variants), "")
        if not body and "wechat" in variants:
            body = "\n".join(str(v) for v in variants["wechat"]["fields"].values())
    out: dict[str, dict[str, Any]] = {}
    for channel in draft.channels:
        variant = variants.get(channel) or {}
        text = str(variant.get("text") or body)
        if channel == "wechat" and variant.get("fields"):
            text = "\n".join(str(v) for v in variant["fields"].values())
        item: dict[str, Any] = {"name": CHANNEL_LABELS.get(channel, channel)}
        if channel in PUBLIC_CHANNELS:
            item.update(title=public_text(title), text=public_text(text))
        else:
            item.update(title=fill_text(title, SAMPLE_RECIPIENT), text=fill_text(text, SAMPLE_RECIPIENT))
        if channel == "sms":
            sms = compose_sms(item["text"], sign_name, MessageKind.SUBSCRIPTION)
            item.update(text=sms.text, length=sms.length, parts=sms.parts)
            if count is not None:
                item["billed"] = sms.parts * count
                item["cost"] = round(sms.parts * count * PER_PART_YUAN, 2)
        out[channel] = item
    return out


def _page(
    request: Request,
    session: Session,
    user: StaffUser,
    agency: Agency,
    settings: Settings,
    draft: Draft,
    **extra: Any,
) -> HTMLResponse:
    template_rows, _total = templates.list_templates(session, agency.id or 0, 200, 0)
    saved, _count = lists.agency_lists(session, agency.id or 0, 50, 0)
    chosen = next((t for t in template_rows if t.id == draft.template_id), None)
    sign_name = _sign_name(session, agency, settings)
    context = {
        "draft": draft,
        "template_rows": template_rows,
        "chosen": chosen,
        "fill_names": [
            p for p in (chosen.placeholders if chosen else []) if p not in ("name", "department", "unsubscribe_url")
        ],
        "saved_lists": saved,
        "departments": department_choices(session),
        "categories": active_categories(session),
        "regions": active_regions(session),
        "compose_channels": COMPOSE_CHANNELS,
        "sign_name": sign_name,
        "reason_names": REASON_NAMES,
        "repeat_rules": REPEAT_RULES,
        "count": None,
        "previews": None,
        "upload": None,
        **extra,
    }
    status = 422 if extra.get("message_kind") == "error" else 200
    return render(request, "compose.html", user, "compose", context, status_code=status)


@router.get("/compose", response_class=HTMLResponse)
def compose_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Drafter,
    template: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    audience_list: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """The compose form (a template or a saved list chosen in their rooms comes preselected)."""
    draft = Draft()
    if template:
        draft.mode, draft.template_id = "template", template
    if audience_list:
        draft.lists.append(audience_list)  # only ticks a box among the agency's own lists
    return _page(request, session, user, user_agency(session, user), settings, draft)


@router.post("/compose", response_class=HTMLResponse)
async def compose_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Drafter,
    action: Annotated[Text, Form(max_length=10)] = "check",
    mode: Annotated[Text, Form(max_length=10)] = "text",
    template_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
    title: Annotated[Text, Form(max_length=200)] = "",
    body: Annotated[MultilineText, Form(max_length=5000)] = "",
    category: Annotated[Text, Form(max_length=64)] = "",
    urgent: Annotated[Text, Form(max_length=5)] = "",
    subscribers: Annotated[Text, Form(max_length=5)] = "",
    sub_category: ListForm = [],  # noqa: B006
    sub_region: ListForm = [],  # noqa: B006
    department: IdsForm = [],  # noqa: B006
    audience_list: IdsForm = [],  # noqa: B006
    channel: ListForm = [],  # noqa: B006
    when: Annotated[Text, Form(max_length=6)] = "now",
    send_at: Annotated[Text, Form(max_length=20)] = "",
    rule: Annotated[Text, Form(max_length=8)] = "weekly",
    ends_on: Annotated[Text, Form(max_length=10)] = "",
    nonce: Annotated[Text, Form(max_length=40)] = "",
    audience_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Check and preview (recipient count, per-channel text), or submit the notice."""
    agency = user_agency(session, user)
    form = await request.form()
    values = {
        str(k)[6:]: str(v)[:500] for k, v in form.multi_items() if str(k).startswith("value_") and isinstance(v, str)
    }
    draft = Draft(
        mode="template" if mode == "template" else "text",
        template_id=template_id or None,
        values={k: v for k, v in list(values.items())[:50] if v.strip()},
        title=title,
        body=body,
        category=category,
        urgent=bool(urgent),
        subscribers=bool(subscribers),
        sub_categories=sub_category[:50],
        sub_regions=sub_region[:200],
        departments=list(dict.fromkeys(department))[:200],
        lists=list(dict.fromkeys(audience_list))[:20],
        channels=[c for c in channel if c in COMPOSE_CHANNELS],
        when=when if when in ("at", "repeat") else "now",
        send_at=send_at,
        rule=rule if rule in REPEAT_RULES else "weekly",
        ends_on=ends_on,
        nonce=nonce or secrets.token_urlsafe(12),
    )
    upload = None
    if audience_file is not None and audience_file.filename:
        try:
            saved, report = await run_in_threadpool(
                lists.import_audience_file,
                request.app.state.engine,
                agency.id or 0,
                audience_file.filename,
                audience_file.file,
                audience_file.filename,
            )
        except FileRefused as exc:
            return _page(request, session, user, agency, settings, draft, message=exc.message, message_kind="error")
        finally:
            await audience_file.close()
        draft.lists.append(saved.id or 0)
        upload = {"list": saved, "refused": report.refused[:50], "refused_total": report.refused_total}
    try:
        data = draft.notice()
        moment = queries.now()
        made = templates.from_template(session, agency, data)
        checked = validate_notice(
            session,
            agency,
            made.notice if made else data,
            settings,
            moment,
            made.placeholders if made else frozenset(),
            sees_staff_contacts=True,
        )
        previews = channel_previews(session, agency, draft, _sign_name(session, agency, settings), checked.count)
        if action != "submit":
            return _page(
                request, session, user, agency, settings, draft, count=checked.count, previews=previews, upload=upload
            )
        if draft.when == "repeat":
            await _create_schedule(request, session, settings, agency, user, data, draft, moment)
            return RedirectResponse("/console/notices?done=repeating", status_code=303)
        notice, _created = await accept_and_enqueue(
            request.app.state.queue,
            session,
            agency,
            data,
            f"console-{user.id}-{draft.nonce}",
            settings,
            moment,
            actor(request, user),
            sees_staff_contacts=True,
        )
    except ValidationError as exc:
        session.rollback()
        problem = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:3])
        text = f"请检查：标题、正文（或模板）和至少一个渠道都是必填的（{problem}）"
        return _page(request, session, user, agency, settings, draft, message=text, message_kind="error", upload=upload)
    except (DomainError, ValueError) as exc:
        session.rollback()
        text = exc.message if isinstance(exc, DomainError) else "发送时间或结束日期格式有误"
        return _page(request, session, user, agency, settings, draft, message=text, message_kind="error", upload=upload)
    return RedirectResponse(f"/console/notices/{notice.id}?done=submitted", status_code=303)
