"""Citizen subscriptions: SMS verification codes, subscribing, changing preferences and leaving.

Plain functions over a session; the mobile site and the CLI call them, the caller commits.
Only keyed hashes of numbers, IPs and codes are stored for verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from channels.catalogue import SUBSCRIBER_CHANNELS
from contacts.phones import normalise_mobile
from govconnect.citizens.code_limits import CodeBudget
from govconnect.citizens.models import Subscriber, SubscriberCategory, SubscriberRegion
from govconnect.citizens.publishing_models import PublicRegion, VerificationCode
from govconnect.clock import utcnow
from govconnect.errors import Invalid
from govconnect.notices.models import Category
from govconnect.security import mask_phone, secrets_equal

log = logging.getLogger("govconnect.citizens")

# Codes are pinyin initials, the same the pipeline's demo data uses.
DEFAULT_CATEGORIES = (
    ("zwgk", "政务公开"),
    ("yjyj", "应急预警"),
    ("jtcx", "交通出行"),
    ("sbyl", "社保医疗"),
    ("jy", "教育"),
    ("zcjd", "政策解读"),
)
DEFAULT_REGIONS = ("柯城区", "衢江区", "江山市", "龙游县", "常山县", "开化县")

CODE_TTL = timedelta(minutes=5)
CODE_MAX_ATTEMPTS = 5
# The SMS says what the code is for: a citizen who asked to leave must not read 订阅 (subscribe).
CODE_TEXTS = {
    "subscribe": "您的订阅验证码为{code}，5分钟内有效，请勿告诉他人。",
    "unsubscribe": "您的退订验证码为{code}，5分钟内有效，如非本人操作请忽略。",
}
PHONE_CHANNELS = ("sms", "voice")


@dataclass(frozen=True)
class Preferences:
    """What a subscriber follows and how they want to be reached."""

    categories: list[str]
    regions: list[str]
    channels: list[str]


def ensure_defaults(session: Session) -> None:
    """Seed the six categories and the regions when their tables are empty (admins manage them after)."""
    if session.exec(select(func.count()).select_from(Category)).one() == 0:
        for order, (code, name) in enumerate(DEFAULT_CATEGORIES):
            session.add(Category(code=code, name=name, sort_order=order))
    if session.exec(select(func.count()).select_from(PublicRegion)).one() == 0:
        for order, name in enumerate(DEFAULT_REGIONS):
            session.add(PublicRegion(name=name, sort_order=order))
    session.flush()


def active_categories(session: Session) -> list[Category]:
    """Categories citizens can choose, in display order."""
    return list(session.exec(select(Category).where(col(Category.active)).order_by(col(Category.sort_order))).all())


def active_regions(session: Session) -> list[PublicRegion]:
    """Regions citizens can choose, in display order."""
    return list(
        session.exec(select(PublicRegion).where(col(PublicRegion.active)).order_by(col(PublicRegion.sort_order))).all()
    )


def valid_mobile(phone: str) -> str:
    """The normalised mainland mobile number, or Invalid."""
    number = normalise_mobile(phone)
    if number is None:
        raise Invalid("invalid_phone", "请输入有效的 11 位手机号码 / invalid mobile number")
    return number


def _keyed_hash(secret: str, kind: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def code_text(purpose: str, code: str) -> str:
    """The SMS carrying a code, saying what it is for."""
    return CODE_TEXTS.get(purpose, CODE_TEXTS["subscribe"]).format(code=code)


def request_code(
    session: Session,
    secret: str,
    phone: str,
    ip: str,
    purpose: str = "subscribe",
    now: datetime | None = None,
    budget: CodeBudget | None = None,
) -> tuple[str, str]:
    """Create a 6-digit code for a number; returns (number, code).

    `budget` (the site always passes one) limits codes per number and per client address and
    raises RateLimited when either is spent.
    """
    number = valid_mobile(phone)
    now = now or utcnow()
    phone_hash = _keyed_hash(secret, "phone", number)
    ip_hash = _keyed_hash(secret, "ip", ip or "-")
    if budget is not None:
        budget.take(phone_hash, ip_hash)
    code = f"{secrets.randbelow(1_000_000):06d}"
    record = VerificationCode(
        phone_hash=phone_hash,
        ip_hash=ip_hash,
        code_hash=_keyed_hash(secret, f"code:{phone_hash}", code),
        purpose=purpose,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(record)
    session.flush()
    log.info("verification code %s issued for %s", record.id, purpose)
    return number, code


def check_code(
    session: Session, secret: str, phone: str, code: str, purpose: str = "subscribe", now: datetime | None = None
) -> str:
    """Consume a correct code and return the number; wrong, expired or exhausted codes raise Invalid."""
    number = valid_mobile(phone)
    now = now or utcnow()
    phone_hash = _keyed_hash(secret, "phone", number)
    record = session.exec(
        select(VerificationCode)
        .where(
            VerificationCode.phone_hash == phone_hash,
            VerificationCode.purpose == purpose,
            col(VerificationCode.consumed_at).is_(None),
        )
        .order_by(col(VerificationCode.created_at).desc())
    ).first()
    if record is None:
        raise Invalid("code_missing", "请先获取验证码 / request a code first")
    if record.expires_at <= now:
        raise Invalid("code_expired", "验证码已过期，请重新获取 / code expired")
    if record.attempts >= CODE_MAX_ATTEMPTS:
        raise Invalid("code_attempts", "验证码错误次数过多，请重新获取 / too many wrong tries")
    record.attempts += 1
    expected = _keyed_hash(secret, f"code:{phone_hash}", code.strip())
    if not secrets_equal(expected, record.code_hash):
        session.add(record)
        session.flush()
        left = CODE_MAX_ATTEMPTS - record.attempts
        raise Invalid("code_invalid", f"验证码错误，还可尝试 {left} 次 / wrong code, {left} tries left")
    record.consumed_at = now
    session.add(record)
    session.flush()
    return number


def clean_preferences(
    session: Session,
    categories: Iterable[str],
    regions: Iterable[str],
    channels: Iterable[str],
    allowed_channels: Sequence[str] = SUBSCRIBER_CHANNELS,
) -> Preferences:
    """Check choices against active categories, regions and the channels this subscriber can use."""
    known_categories = {c.code for c in active_categories(session)}
    known_regions = {r.name for r in active_regions(session)}
    cats = sorted(set(categories))
    regs = sorted(set(regions))
    chans = sorted(set(channels))
    if not cats:
        raise Invalid("no_category", "请至少选择一个栏目 / choose at least one category")
    if not chans:
        raise Invalid("no_channel", "请至少选择一种接收方式 / choose at least one channel")
    if unknown := [c for c in cats if c not in known_categories]:
        raise Invalid("unknown_category", f"栏目不存在 / unknown category: {','.join(unknown)}")
    if unknown := [r for r in regs if r not in known_regions]:
        raise Invalid("unknown_region", f"地区不存在 / unknown region: {','.join(unknown)}")
    if unknown := [c for c in chans if c not in allowed_channels]:
        raise Invalid("unknown_channel", f"接收方式无效 / channel not available: {','.join(unknown)}")
    return Preferences(cats, regs, chans)


def preferences_of(session: Session, subscriber: Subscriber) -> Preferences:
    """The subscriber's current choices."""
    cats = session.exec(select(SubscriberCategory.category).where(SubscriberCategory.subscriber_id == subscriber.id))
    regs = session.exec(select(SubscriberRegion.region).where(SubscriberRegion.subscriber_id == subscriber.id))
    return Preferences(sorted(cats.all()), sorted(regs.all()), list(subscriber.channels))


def set_preferences(session: Session, subscriber: Subscriber, prefs: Preferences) -> Subscriber:
    """Replace the subscriber's categories, regions and channels, and mark them active."""
    assert subscriber.id is not None
    session.exec(delete(SubscriberCategory).where(col(SubscriberCategory.subscriber_id) == subscriber.id))
    session.exec(delete(SubscriberRegion).where(col(SubscriberRegion.subscriber_id) == subscriber.id))
    for category in prefs.categories:
        session.add(SubscriberCategory(subscriber_id=subscriber.id, category=category))
    for region in prefs.regions:
        session.add(SubscriberRegion(subscriber_id=subscriber.id, region=region))
    now = utcnow()
    subscriber.channels = list(prefs.channels)
    subscriber.status = "active"
    subscriber.unsubscribed_at = None
    subscriber.updated_at = now
    subscriber.last_active_at = now
    session.add(subscriber)
    session.flush()
    return subscriber


def subscribe_phone(session: Session, phone: str, prefs: Preferences, source: str = "web") -> Subscriber:
    """Subscribe (or re-subscribe) a verified number with these preferences."""
    number = valid_mobile(phone)
    subscriber = session.exec(select(Subscriber).where(Subscriber.phone == number)).first()
    if subscriber is None:
        subscriber = Subscriber(phone=number, source=source, channels=[])
        session.add(subscriber)
        session.flush()
    set_preferences(session, subscriber, prefs)
    log.info("subscriber %s subscribed via %s", subscriber.id, source)
    return subscriber


def subscriber_by_phone(session: Session, phone: str) -> Subscriber | None:
    """The subscriber with this number, if any."""
    number = normalise_mobile(phone)
    if number is None:
        return None
    return session.exec(select(Subscriber).where(Subscriber.phone == number)).first()


def allowed_channels(subscriber: Subscriber) -> list[str]:
    """Channels this subscriber can be reached on: SMS/voice need a number, WeChat an openid."""
    out = list(PHONE_CHANNELS) if subscriber.phone else []
    if subscriber.wechat_openid:
        out.append("wechat")
    return out


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="govconnect.subscriber")


SHORT_TOKEN = re.compile(r"^([0-9a-z]{1,13})\.([A-Za-z0-9_-]{16})$")


def _short_signature(secret: str, subscriber_id: int) -> str:
    digest = hmac.new(secret.encode(), f"subscriber-link:{subscriber_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def subscriber_token(secret: str, subscriber_id: int) -> str:
    """A short signed token naming a subscriber (id in base 36 + 96-bit HMAC), for links in SMS.

    It does not expire, so leaving always works.
    """
    return f"{_base36(subscriber_id)}.{_short_signature(secret, subscriber_id)}"


def subscriber_from_token(session: Session, secret: str, token: str) -> Subscriber | None:
    """The subscriber a token names (short form, or the older itsdangerous form), or None."""
    short = SHORT_TOKEN.match(token)
    if short is not None:
        subscriber_id = int(short.group(1), 36)
        if not hmac.compare_digest(short.group(2), _short_signature(secret, subscriber_id)):
            return None
        return session.get(Subscriber, subscriber_id)
    try:
        legacy_id = _serializer(secret).loads(token)
    except BadSignature:
        return None
    if not isinstance(legacy_id, int):
        return None
    return session.get(Subscriber, legacy_id)


def purge_inactive(
    session: Session, inactive_days: int, now: datetime | None = None, *, secret: str
) -> tuple[int, int]:
    """Delete subscribers who left more than N days ago and spent verification codes; returns (subscribers, codes).

    Each purged number stays on the suppression list as a keyed hash (`secret`), so a later
    upload or import of it still gets no normal notice.
    """
    from govconnect.suppression.service import phone_key, suppress_keys

    if inactive_days < 1:
        raise Invalid("invalid_days", "天数必须为正整数 / days must be a positive integer")
    now = now or utcnow()
    cutoff = now - timedelta(days=inactive_days)
    purged = session.exec(
        select(Subscriber.id, Subscriber.phone).where(
            Subscriber.status == "unsubscribed",
            col(Subscriber.unsubscribed_at).is_not(None),
            col(Subscriber.unsubscribed_at) < cutoff,
        )
    ).all()
    ids = [subscriber_id for subscriber_id, _phone in purged]
    suppress_keys(session, [phone_key(secret, phone) for _id, phone in purged if phone], "purge")
    if ids:
        session.exec(delete(SubscriberCategory).where(col(SubscriberCategory.subscriber_id).in_(ids)))
        session.exec(delete(SubscriberRegion).where(col(SubscriberRegion.subscriber_id).in_(ids)))
        session.exec(delete(Subscriber).where(col(Subscriber.id).in_(ids)))
    # Codes live five minutes; a day later nothing needs them (the code budgets live in `limits`).
    codes = session.exec(delete(VerificationCode).where(col(VerificationCode.created_at) < now - timedelta(days=1)))
    session.flush()
    return len(ids), int(codes.rowcount or 0)


def mask_openid(openid: str | None) -> str:
    """First and last 3 characters of an openid."""
    if not openid:
        return ""
    return openid[:3] + "****" + openid[-3:] if len(openid) > 6 else "****"


def masked_rows(
    session: Session, offset: int = 0, limit: int | None = None, page: int = 1000
) -> Iterator[dict[str, str]]:
    """Subscribers in id order as masked export rows (no full number or openid), from `offset`, at most `limit`.

    Read a page at a time with the page's categories and regions in two more queries: three
    statements per page whatever its size (one query per subscriber took 5 s for `limit=1` at 20,000).
    """
    after: int | None = None
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = select(Subscriber).order_by(col(Subscriber.id)).limit(size)
        if after is None:
            query = query.offset(offset)
        else:
            query = query.where(col(Subscriber.id) > after)
        subscribers = session.exec(query).all()
        if not subscribers:
            return
        categories, regions = _choices_of(session, [s.id or 0 for s in subscribers])
        for sub in subscribers:
            yield _masked_row(sub, sorted(categories.get(sub.id or 0, [])), sorted(regions.get(sub.id or 0, [])))
        after = subscribers[-1].id
        if left is not None:
            left -= len(subscribers)
        if len(subscribers) < size:
            return


def _choices_of(session: Session, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Categories and regions of these subscribers, by subscriber id."""
    categories: dict[int, list[str]] = {}
    for subscriber_id, category in session.exec(
        select(SubscriberCategory.subscriber_id, SubscriberCategory.category).where(
            col(SubscriberCategory.subscriber_id).in_(ids)
        )
    ).all():
        categories.setdefault(subscriber_id, []).append(category)
    regions: dict[int, list[str]] = {}
    for subscriber_id, region in session.exec(
        select(SubscriberRegion.subscriber_id, SubscriberRegion.region).where(
            col(SubscriberRegion.subscriber_id).in_(ids)
        )
    ).all():
        regions.setdefault(subscriber_id, []).append(region)
    return categories, regions


def _masked_row(sub: Subscriber, categories: list[str], regions: list[str]) -> dict[str, str]:
    return {
        "id": str(sub.id),
        "phone": mask_phone(sub.phone) if sub.phone else "",
        "wechat_openid": mask_openid(sub.wechat_openid),
        "status": sub.status,
        "channels": ",".join(sub.channels),
        "categories": ",".join(categories),
        "regions": ",".join(regions),
        "source": sub.source,
        "created_at": sub.created_at.isoformat(),
        "unsubscribed_at": sub.unsubscribed_at.isoformat() if sub.unsubscribed_at else "",
    }


def unsubscribe_url(base_url: str, secret: str, subscriber_id: int) -> str:
    """The personal one-click unsubscribe link for a subscriber (a confirm page, then POST)."""
    return f"{base_url.rstrip('/')}/m/u/{subscriber_token(secret, subscriber_id)}"


def manage_url(base_url: str, secret: str, subscriber_id: int) -> str:
    """The personal link to a subscriber's preferences (sent to new WeChat followers)."""
    return f"{base_url.rstrip('/')}/m/s/{subscriber_token(secret, subscriber_id)}"
