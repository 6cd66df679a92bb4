from sqlmodel import Session, select

from contacts.phones import normalise_mobile
from govconnect.citizens.models import Subscriber
from govconnect.citizens.optout import handle_sms_reply, handle_wechat_follow


def test_sms_reply_unsubscribes(session: Session) -> None:
    session.add(Subscriber(phone="13800001111", channels=["sms"]))
    session.add(Subscriber(phone="13800002222", channels=["sms"]))
    session.commit()
    assert handle_sms_reply(session, "+8613800001111", "TD", "aliyun_sms", secret="k")
    assert not handle_sms_reply(session, "13800002222", "谢谢", "cmpp", secret="k")
    # An unknown number: still an opt-out request.
    assert handle_sms_reply(session, "13900000000", "退订", "cmpp", secret="k")
    session.commit()
    by_phone = {s.phone: s for s in session.exec(select(Subscriber)).all()}
    assert by_phone["13800001111"].status == "unsubscribed"
    assert by_phone["13800001111"].unsubscribed_at is not None
    assert by_phone["13800002222"].status == "active"


def test_wechat_unfollow_and_refollow(session: Session) -> None:
    session.add(Subscriber(wechat_openid="oABC", channels=["wechat"]))
    session.commit()
    assert handle_wechat_follow(session, "oABC", followed=False).status == "unsubscribed"  # type: ignore[union-attr]
    assert handle_wechat_follow(session, "oABC", followed=True).status == "active"  # type: ignore[union-attr]
    assert handle_wechat_follow(session, "nobody", followed=False) is None


def test_normalise_mobile() -> None:
    assert normalise_mobile("+86 138-0000-1111") == "13800001111"
    assert normalise_mobile("008613800001111") == "13800001111"
