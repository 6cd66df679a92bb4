"""Each agency's approval policy: reading it, changing it (audited) and applying it to a new notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from channels.catalogue import PUBLIC_CHANNELS
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.errors import Invalid
from govconnect.governance.models import APPROVAL_MODES, AgencyPolicy

POLICY_FIELDS = ("require_approval", "large_audience", "approvers", "urgent_at_once", "review_hours")


class PolicyError(Invalid):
    """A policy value out of range (422 with its machine-readable `code`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Disposition:
    """What the policy makes of a new notice: wait for sign-off, or go (urgent: reviewed later by)."""

    needs_approval: bool
    review_due_at: datetime | None = None


def get_policy(session: Session, agency_id: int) -> AgencyPolicy:
    """The agency's policy; an agency that never set one needs no approval."""
    policy = session.get(AgencyPolicy, agency_id)
    return policy if policy is not None else AgencyPolicy(agency_id=agency_id)


def set_policy(session: Session, agency_id: int, actor: Actor, **values: object) -> AgencyPolicy:
    """Change the given fields of the agency's policy and audit the change (the caller commits)."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise PolicyError("unknown_field", f"未知的策略字段 / unknown policy fields: {sorted(unknown)}")
    policy = session.get(AgencyPolicy, agency_id) or AgencyPolicy(agency_id=agency_id)
    mode = values.get("require_approval", policy.require_approval)
    if mode not in APPROVAL_MODES:
        raise PolicyError("invalid_mode", f"审核模式须为 {'|'.join(APPROVAL_MODES)} / require_approval: {mode!r}")
    for name, low, high in (("large_audience", 1, 100_000_000), ("approvers", 1, 5), ("review_hours", 1, 720)):
        value = values.get(name, getattr(policy, name))
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise PolicyError("out_of_range", f"{name} 须在 {low}–{high} 之间 / {name} must be {low}..{high}")
    before = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name, value in values.items():
        setattr(policy, name, value)
    policy.updated_at = utcnow()
    session.add(policy)
    after = {name: getattr(policy, name) for name in POLICY_FIELDS}
    changed = {k: {"from": before[k], "to": after[k]} for k in POLICY_FIELDS if before[k] != after[k]}
    record_audit(session, actor, "policy_change", "agency", agency_id, changed, agency_id=agency_id)
    return policy


def dispose(policy: AgencyPolicy, channels: list[str], audience: int, urgent: bool, moment: datetime) -> Disposition:
    """Whether a notice with these channels, audience size and urgency needs sign-off under the policy."""
    public = bool(set(channels) & set(PUBLIC_CHANNELS))
    mode = policy.require_approval
    needed = mode == "all" or (mode == "public" and public) or (mode == "large" and audience > policy.large_audience)
    if needed and urgent and policy.urgent_at_once:
        return Disposition(False, moment + timedelta(hours=policy.review_hours))
    return Disposition(needed)
