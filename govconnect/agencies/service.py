"""Agencies, API keys and staff accounts: the plain functions the CLI and API call."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from govconnect.agencies.models import ROLES, SCOPES, Agency, ApiKey, StaffUser
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.errors import Conflict, Invalid, NotFound
from govconnect.security import (
    generate_api_key,
    hash_api_key,
    hash_password,
    key_prefix,
    normalise_username,
    verify_dummy_password,
    verify_password,
)

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: `key` is shown once and never stored."""

    key: str
    record: ApiKey


def create_agency(session: Session, name: str, code: str, region: str = "") -> Agency:
    """Create an agency; its code is lower-case letters, digits, `-` and `_`."""
    code = code.strip().lower()
    name = name.strip()
    if not CODE_RE.match(code):
        raise Invalid("invalid_code", f"机构代码无效 / invalid agency code: {code!r} (a-z, 0-9, - and _)")
    if not name:
        raise Invalid("invalid_name", "机构名称不能为空 / agency name must not be empty")
    if get_agency_by_code(session, code) is not None:
        raise Conflict("agency_exists", f"机构代码已存在 / agency code already exists: {code}")
    agency = Agency(code=code, name=name, region=region.strip())
    session.add(agency)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("agency_exists", f"机构代码已存在 / agency code already exists: {code}") from exc
    return agency


def get_agency_by_code(session: Session, code: str) -> Agency | None:
    """The agency with this code, if any."""
    return session.exec(select(Agency).where(Agency.code == code.strip().lower())).first()


def require_agency(session: Session, code: str) -> Agency:
    """The agency with this code, or NotFound."""
    agency = get_agency_by_code(session, code)
    if agency is None:
        raise NotFound("agency_not_found", f"机构不存在 / no agency with code {code!r}")
    return agency


def list_agencies(session: Session) -> Sequence[Agency]:
    """All agencies by code."""
    return session.exec(select(Agency).order_by(Agency.code)).all()


def normalise_scopes(scopes: Sequence[str]) -> list[str]:
    """Split comma-separated scopes, check each is known, and sort them."""
    result: set[str] = set()
    for item in scopes:
        for scope in item.split(","):
            scope = scope.strip()
            if not scope:
                continue
            if scope not in SCOPES:
                raise Invalid("invalid_scope", f"未知权限 / unknown scope {scope!r}; known: {', '.join(SCOPES)}")
            result.add(scope)
    if not result:
        raise Invalid("invalid_scope", f"至少需要一个权限 / at least one scope: {', '.join(SCOPES)}")
    return sorted(result)


def create_api_key(
    session: Session, agency: Agency, scopes: Sequence[str], name: str = "", actor: Actor | None = None
) -> IssuedKey:
    """Issue a new key for an agency (audited; the command line unless `actor` says who); only its hash is stored."""
    assert agency.id is not None
    key, prefix, key_hash = generate_api_key()
    record = ApiKey(agency_id=agency.id, prefix=prefix, key_hash=key_hash, scopes=normalise_scopes(scopes), name=name)
    session.add(record)
    session.flush()
    record_audit(
        session, actor or Actor.cli(agency.id), "key_create", "api_key", prefix, {"scopes": record.scopes}, agency.id
    )
    return IssuedKey(key=key, record=record)


def list_api_keys(session: Session, agency: Agency) -> Sequence[ApiKey]:
    """An agency's keys, newest first."""
    return session.exec(
        select(ApiKey).where(ApiKey.agency_id == agency.id).order_by(ApiKey.id.desc())  # type: ignore[union-attr]
    ).all()


def revoke_api_key(session: Session, prefix: str, actor: Actor | None = None) -> ApiKey:
    """Revoke the key with this display prefix (audited; the command line unless `actor` says who)."""
    record = session.exec(select(ApiKey).where(ApiKey.prefix == prefix.strip())).first()
    if record is None:
        raise NotFound("key_not_found", f"密钥不存在 / no key with prefix {prefix!r}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        session.add(record)
        session.flush()
        record_audit(
            session, actor or Actor.cli(record.agency_id), "key_revoke", "api_key", record.prefix, {}, record.agency_id
        )
    return record


def lookup_api_key(session: Session, key: str) -> ApiKey | None:
    """The stored key matching a presented key, revoked or not; None when unknown or malformed."""
    if key_prefix(key) is None:
        return None
    return session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()


def create_staff(
    session: Session,
    username: str,
    agency: Agency,
    role: str,
    password: str,
    display_name: str = "",
    phone: str | None = None,
) -> StaffUser:
    """Create a staff account with an argon2-hashed password (and a mobile number for approval messages)."""
    assert agency.id is not None
    if not USERNAME_RE.match(username):
        raise Invalid("invalid_username", f"用户名无效 / invalid username {username!r}")
    if role not in ROLES:
        raise Invalid("invalid_role", f"角色无效 / role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise Invalid("weak_password", "密码至少 8 位 / password must have at least 8 characters")
    if phone is not None and not PHONE_RE.match(phone):
        raise Invalid("invalid_phone", f"手机号无效 / invalid mobile number {phone!r}")
    if find_staff(session, username) is not None:
        raise Conflict("staff_exists", f"用户名已存在 / username already exists: {username}")
    user = StaffUser(
        username=username,
        agency_id=agency.id,
        role=role,
        password_hash=hash_password(password),
        display_name=display_name,
        phone=phone,
    )
    session.add(user)
    session.flush()
    return user


def find_staff(session: Session, username: str) -> StaffUser | None:
    """The staff account whose name matches after normalisation (NFKC, trimmed, casefolded)."""
    wanted = normalise_username(username)
    if not wanted or not USERNAME_RE.match(wanted):
        return None
    # Names are ASCII ([A-Za-z0-9_.-]), so lower() on both sides is the casefold.
    return session.exec(select(StaffUser).where(func.lower(StaffUser.username) == wanted)).first()


def authenticate_staff(session: Session, username: str, password: str) -> StaffUser | None:
    """The active staff user for these credentials, or None; unknown names cost the same argon2 check."""
    user = find_staff(session, username)
    if user is None:
        verify_dummy_password(password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    return user
