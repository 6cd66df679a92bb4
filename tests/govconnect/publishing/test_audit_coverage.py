"""Every audited action outside the notice gate leaves its row: sign-in and sign-out, keys, templates,
the sender settings and the suppression list (issue 12's list of what the audit log must hold)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_api_key, revoke_api_key
from govconnect.audit.models import AuditEntry
from tests.govconnect.publishing.helpers import csrf_from
from tests.govconnect.publishing.test_staff_directory import sign_in

A = AuditEntry.__table__  # type: ignore[attr-defined]


def _rows(session: Session) -> list[tuple[str, str, str, str, dict[str, object]]]:
    session.expire_all()
    result = session.connection().execute(
        select(A.c.action, A.c.actor, A.c.target_type, A.c.target_id, A.c.changes).order_by(A.c.id)
    )
    return [tuple(r) for r in result]  # type: ignore[misc]


def test_sign_in_keys_templates_sender_and_suppression_are_audited(
    client: TestClient, session: Session, agency: Agency, operator: str
) -> None:
    issued = create_api_key(session, agency, ["admin"])
    session.commit()
    auth = {"Authorization": f"Bearer {issued.key}"}
    key_actor = f"key:{issued.record.prefix}"

    template = {"name": "停水通知", "title": "停水通知", "variants": {"site": {"text": "明日停水。"}}}
    made = client.post("/api/v1/templates", json=template, headers=auth)
    assert made.status_code == 201, made.text
    assert (
        client.patch(f"/api/v1/templates/{made.json()['id']}", json={"title": "停水"}, headers=auth).status_code == 200
    )
    sender = {"sms_sign_name": "衢州市应急管理局", "sms_template_code": "", "urgent_ignores_suppression": False}
    assert client.put("/api/v1/agencies/me/sender", json=sender, headers=auth).status_code == 200
    added = client.post("/api/v1/suppressions", json={"phone": "13905705555", "reason": "来电要求"}, headers=auth)
    assert added.status_code == 201, added.text
    assert client.delete(f"/api/v1/suppressions/{added.json()['id']}", headers=auth).status_code == 204

    sign_in(client, operator)
    token = csrf_from(client.get("/m/staff/").text)
    assert client.post("/m/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    revoke_api_key(session, issued.record.prefix)
    session.commit()

    rows = _rows(session)
    actions = [(action, actor) for action, actor, *_ in rows]
    assert actions[0] == ("key_create", "cli")
    assert ("template_change", key_actor) in actions and ("settings_change", key_actor) in actions
    assert [c["op"] for a, _, _, _, c in rows if a == "template_change"] == ["create", "update"]
    assert [c["op"] for a, _, _, _, c in rows if a == "suppression_change"] == ["add", "remove"]
    staff = [(a, t) for a, _, t, _, _ in rows if a in ("sign_in", "sign_out")]
    assert staff == [("sign_in", "staff_user"), ("sign_out", "staff_user")]
    assert actions[-1] == ("key_revoke", "cli")
    # No number is written into the log: the suppression rows carry only the masked hint.
    assert all("13905705555" not in str(c) for *_, c in rows)
