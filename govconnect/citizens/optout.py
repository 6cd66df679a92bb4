"""Leaving must always work: SMS replies (T/TD/退订/取消) and WeChat unfollow stop further sends.

Called by the provider callback routes (Alibaba Cloud SmsUp, CMPP mobile-originated replies,
WeChat events); honoured before the next send because fan-out only reads active subscribers.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from channels.sms_text import is_unsubscribe
from contacts.phones import normalise_mobile
from govconnect.citizens.models import Subscriber, SubscriberCategory
from govconnect.clock import utcnow
from govconnect.notices.models import Category
from govconnect.reports.pipeline_hooks import count_optout

log = logging.getLogger("govconnect.citizens")


def normalise_phone(phone: str) -> str:
    """The mainland mobile as 11 ASCII digits, or '' (a thin wrapper over `contacts.phones.normalise_mobile`)."""
    return normalise_mobile(phone) or ""


def unsubscribe_phone(session: Session, phone: str, source: str) -> Subscriber | None:
    """Mark the subscriber with this number as unsubscribed; None when nobody has it."""
    number = normalise_mobile(phone)
    if number is None:
        return None
    subscriber = session.exec(select(Subscriber).where(Subscriber.phone == number)).first()
    if subscriber is None:
        return None
    return leave(session, subscriber, source)


def leave(session: Session, subscriber: Subscriber, source: str) -> Subscriber:
    """Unsubscribe from everything; honoured by the next fan-out, which reads only active subscribers."""
    if subscriber.status != "unsubscribed":
        subscriber.status = "unsubscribed"
        subscriber.unsubscribed_at = utcnow()
        subscriber.updated_at = subscriber.unsubscribed_at
        session.add(subscriber)
        session.flush()
        addresses = [subscriber.phone or "", subscriber.wechat_openid or ""]
        count_optout(session.connection(), addresses, subscriber.unsubscribed_at)
        log.info("subscriber %s unsubscribed via %s", subscriber.id, source)
    return subscriber


def handle_sms_reply(session: Session, sender: str, text: str, provider: str, *, secret: str) -> bool:
    """Apply an inbound SMS reply; True when it was an unsubscribe request.

    The subscriber (if any) leaves, and the number goes on the suppression list, so no agency's
    normal notice reaches it again, whatever audience it comes from (`secret` keys the hash).
    """
    if not is_unsubscribe(text):
        return False
    from govconnect.suppression.service import suppress  # suppression imports this module

    unsubscribe_phone(session, sender, f"sms-reply:{provider}")
    suppress(session, secret, sender, f"sms-reply:{provider}", reason=text.strip()[:20])
    return True


def handle_wechat_follow(session: Session, openid: str, followed: bool) -> Subscriber | None:
    """A WeChat follow/unfollow event: following subscribes the openid, unfollowing stops WeChat sends to it."""
    subscriber = session.exec(select(Subscriber).where(Subscriber.wechat_openid == openid)).first()
    if subscriber is None:
        if not followed:
            return None
        return _subscribe_openid(session, openid)
    now = utcnow()
    if followed:
        subscriber.status = "active"
        subscriber.unsubscribed_at = None
    elif subscriber.status != "unsubscribed":
        subscriber.status = "unsubscribed"
        subscriber.unsubscribed_at = now
        count_optout(session.connection(), [openid], now)
        log.info("subscriber %s unsubscribed via wechat unfollow", subscriber.id)
    subscriber.updated_at = now
    session.add(subscriber)
    session.flush()
    return subscriber


def _subscribe_openid(session: Session, openid: str) -> Subscriber:
    """A new follower gets WeChat notices of every active category until they choose otherwise on the site."""
    subscriber = Subscriber(wechat_openid=openid, channels=["wechat"], source="wechat", last_active_at=utcnow())
    session.add(subscriber)
    session.flush()
    assert subscriber.id is not None
    for code in session.exec(select(Category.code).where(Category.active == True)).all():  # noqa: E712
        session.add(SubscriberCategory(subscriber_id=subscriber.id, category=code))
    session.flush()
    log.info("subscriber %s subscribed via wechat follow", subscriber.id)
    return subscriber
