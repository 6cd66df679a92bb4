"""Accept, then enqueue: the one path by which the API and the staff compose page submit a notice.

The notice and its outbox entry are committed first; handing the fan-out to the queue comes
after and may fail (Redis down): the notice is accepted all the same, and the sweeper enqueues
its outbox entry later. So no caller ever reports a failure for a notice that was accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor
from govconnect.clock import utcnow
from govconnect.governance.notify import notify_approvers
from govconnect.notices import service
from govconnect.notices.models import Notice
from govconnect.notices.schemas import NoticeCreate
from govconnect.notices.sending import URGENT_HEAD_START
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")
# Statuses whose fan-out may be queued (the job itself waits for send_at).
FANOUT_STATUSES = ("accepted", "scheduled", "approved")


async def enqueue_fanout(queue: Any, notice: Notice, moment: datetime) -> bool:
    """Queue the notice's fan-out (deferred to send_at); False when the queue refused (the sweeper retries)."""
    if notice.status not in FANOUT_STATUSES:
        return False
    delay = (notice.send_at - moment).total_seconds() if notice.send_at and notice.send_at > moment else None
    if delay is None and notice.urgency == "urgent":
        delay = URGENT_HEAD_START
    try:
        await queue.enqueue("fanout_notice", notice_id=notice.id, defer_by=delay)
    except Exception:  # noqa: BLE001 - the outbox row is committed: the sweeper enqueues it later
        log.warning("notice %s: enqueue failed, left to the sweeper", notice.id, exc_info=True)
        return False
    return True


async def accept_and_enqueue(
    queue: Any,
    session: Session,
    agency: Agency,
    data: NoticeCreate,
    idempotency_key: str | None,
    settings: Settings,
    moment: datetime,
    actor: Actor,
    corrects: Notice | None = None,
    *,
    sees_staff_contacts: bool = False,
) -> tuple[Notice, bool]:
    """Accept the notice (validated, idempotent, audited), then queue its fan-out or tell its approvers."""
    # The database work runs in a thread so concurrent retries really race (and the loop stays free).
    notice, created = await run_in_threadpool(
        partial(service.accept_notice, corrects=corrects, sees_staff_contacts=sees_staff_contacts),
        session,
        agency,
        data,
        idempotency_key,
        settings,
        moment,
        actor,
    )
    if created:
        await dispatch(queue, session, agency, notice, settings)
    return notice, created


async def dispatch(queue: Any, session: Session, agency: Agency, notice: Notice, settings: Settings) -> None:
    """After a commit: queue the notice's fan-out, or, when it awaits sign-off, a message to its approvers."""
    moment = utcnow()
    if notice.status != "pending_approval":
        await enqueue_fanout(queue, notice, moment)
        return
    try:
        message = await run_in_threadpool(notify_approvers, session, agency, notice, settings, moment)
    except Exception:  # noqa: BLE001 - the notice is accepted; telling approvers must not undo that
        log.warning("notice %s: telling the approvers failed", notice.id, exc_info=True)
        return
    if message is not None:
        await enqueue_fanout(queue, message, moment)
