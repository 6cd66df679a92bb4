"""Demo credentials that survive a restart: `serve --demo` twice on one data dir prints the same ones.

Only a hash of an API key or a password is in the database, so the plaintexts the banner printed
are kept beside the demo secret, in `DATA_DIR/demo-credentials.json` (created 0600, demo mode only).
On the next start a stored key that still works and a stored password that still signs in are
reused; anything else (the file is gone, a key was revoked, the password was changed) is issued
afresh, and whatever stops working by that is listed in `changed`, so the banner can say so loudly.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from govconnect.agencies.models import Agency, ApiKey, StaffUser
from govconnect.agencies.service import create_api_key, lookup_api_key
from govconnect.clock import utcnow
from govconnect.security import hash_password, verify_password

FILE_NAME = "demo-credentials.json"


class DemoCredentials:
    """The demo's keys (by agency code) and operator passwords (by username), read from and saved to DATA_DIR."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self.existed = self.path.exists()
        stored: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8")) if self.existed else {}
        self.keys: dict[str, str] = dict(stored.get("keys", {}))
        self.passwords: dict[str, str] = dict(stored.get("passwords", {}))
        self.changed: list[str] = []

    def api_key(self, session: Session, agency: Agency, scopes: list[str], name: str = "demo") -> str:
        """The stored key for this agency while it works with these scopes, else a new one (old demo keys revoked)."""
        stored = self.keys.get(agency.code)
        record = lookup_api_key(session, stored) if stored else None
        if (
            stored is not None
            and record is not None
            and record.agency_id == agency.id
            and record.revoked_at is None
            and sorted(record.scopes) == sorted(scopes)
        ):
            return stored
        revoked = 0
        for old in session.exec(select(ApiKey).where(ApiKey.agency_id == agency.id, ApiKey.name == name)).all():
            if old.revoked_at is None:
                old.revoked_at = utcnow()
                session.add(old)
                revoked += 1
        key = create_api_key(session, agency, scopes, name=name).key
        if revoked or stored is not None:
            self.changed.append(f"the key of {agency.code}")
        self.keys[agency.code] = key
        return key

    def password(self, user: StaffUser) -> str:
        """The stored password if it still signs this user in, else a new one set on the user."""
        stored = self.passwords.get(user.username)
        if stored is not None and verify_password(user.password_hash, stored):
            return stored
        password = secrets.token_urlsafe(9)
        user.password_hash = hash_password(password)
        self.changed.append(f"the password of {user.username}")
        self.passwords[user.username] = password
        return password

    def new_password(self, username: str) -> str:
        """A password for an account about to be created (remembered for the next start)."""
        password = secrets.token_urlsafe(9)
        self.passwords[username] = password
        return password

    def save(self) -> None:
        """Write the file, readable by this user only."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps({"keys": self.keys, "passwords": self.passwords}, ensure_ascii=False, indent=2)
        fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(data)
