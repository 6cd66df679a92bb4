from datetime import timedelta

import pytest
from sqlmodel import Session, select

from govconnect.citizens.code_limits import CodeBudget
from govconnect.citizens.models import Subscriber, SubscriberCategory
from govconnect.citizens.optout import handle_sms_reply, handle_wechat_follow, leave
from govconnect.citizens.publishing_models import VerificationCode
from govconnect.citizens.subscriptions import (
    check_code,
    clean_preferences,
    code_text,
    ensure_defaults,
    masked_rows,
    preferences_of,
    purge_inactive,
    request_code,
    subscribe_phone,
    subscriber_from_token,
    subscriber_token,
)
from govconnect.clock import utcnow
from govconnect.errors import DomainError

SECRET = "secret-for-tests-0123456789"


@pytest.fixture
def seeded(session: Session) -> Session:
    ensure_defaults(session)
    session.commit()
    return session


def test_defaults_seed_six_categories_once(seeded: Session) -> None:
    from govconnect.notices.models import Category

    names = [c.name for c in seeded.exec(select(Category).order_by(Category.sort_order)).all()]
    assert names == ["政务公开", "应急预警", "交通出行", "社保医疗", "教育", "政策解读"]
    ensure_defaults(seeded)
    assert len(seeded.exec(select(Category)).all()) == 6


def test_code_is_stored_hashed_and_checked_once(seeded: Session) -> None:
    number, code = request_code(seeded, SECRET, "+86 138-0000-1111", "10.0.0.1")
    assert number == "13800001111" and len(code) == 6 and code.isdigit()
    stored = seeded.exec(select(VerificationCode)).one()
    assert code not in stored.code_hash and number not in stored.phone_hash and "10.0.0.1" not in stored.ip_hash
    assert check_code(seeded, SECRET, "13800001111", code) == "13800001111"
    with pytest.raises(DomainError) as err:
        check_code(seeded, SECRET, "13800001111", code)
    assert err.value.code == "code_missing"


class Clock:
    """Time for the `limits` memory storage and the budget's waits, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import limits.storage.memory

    from govconnect.citizens import code_limits

    fake = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(code_limits, "time", fake)
    return fake


def test_code_budget_per_number_and_per_address(seeded: Session, clock: Clock) -> None:
    budget = CodeBudget("1/minute;5/hour;10/day", "20/10 minutes")

    def ask(phone: str, ip: str) -> None:
        request_code(seeded, SECRET, phone, ip, budget=budget)

    def refused(phone: str, ip: str) -> DomainError:
        with pytest.raises(DomainError) as err:
            ask(phone, ip)
        return err.value

    start = clock.now
    ask("13800001111", "10.0.0.1")
    clock.now += 30
    too_soon = refused("13800001111", "10.0.0.2")  # one a minute per number, whatever the address
    assert (too_soon.code, too_soon.retry_after) == ("code_too_soon", 30)
    # Citizens behind one carrier NAT share an address: 20 codes in 10 minutes, one per person.
    for i in range(19):
        ask(f"1390000{i:04d}", "10.0.0.1")
    crowded = refused("13700000000", "10.0.0.1")
    assert crowded.code == "code_address_limit" and "网络" in crowded.message
    ask("13700000000", "10.0.0.9")  # a refusal counts nothing: the number still has its budget
    # Five an hour per number.
    for k in range(1, 5):
        clock.now = start + 120 * k
        ask("13800001111", f"10.0.1.{k}")
    clock.now = start + 600
    hourly = refused("13800001111", "10.0.2.1")
    assert hourly.code == "code_number_limit" and hourly.retry_after == 3000
    clock.now = start + 3600.5
    ask("13800001111", "10.0.2.1")
    # Ten a day per number.
    for k in range(1, 5):
        clock.now = start + 3600.5 + 120 * k
        ask("13800001111", f"10.0.3.{k}")
    clock.now = start + 7300
    assert refused("13800001111", "10.0.4.1").code == "code_number_limit"


def test_code_budget_is_shared_by_every_process_through_redis(redis_url: str) -> None:
    import uuid

    prefix = f"gc-test:codes:{uuid.uuid4().hex}"
    nodes = [CodeBudget("1/minute", "2/10 minutes", redis_url, key_prefix=prefix) for _ in range(2)]
    nodes[0].take("number-a", "address-1")
    with pytest.raises(DomainError) as err:  # the other `serve` process knows the number asked
        nodes[1].take("number-a", "address-2")
    assert err.value.code == "code_too_soon"
    nodes[1].take("number-b", "address-1")
    with pytest.raises(DomainError) as err:
        nodes[0].take("number-c", "address-1")
    assert err.value.code == "code_address_limit"


def test_unsubscribe_code_sms_says_what_it_is_for() -> None:
    assert "订阅验证码为123456" in code_text("subscribe", "123456")
    assert "退订验证码为123456" in code_text("unsubscribe", "123456")


def test_code_expires_and_allows_five_tries(seeded: Session) -> None:
    t0 = utcnow()
    _, code = request_code(seeded, SECRET, "13800001111", "ip", now=t0)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(DomainError) as err:
            check_code(seeded, SECRET, "13800001111", wrong, now=t0)
        assert err.value.code == "code_invalid"
    with pytest.raises(DomainError) as err:
        check_code(seeded, SECRET, "13800001111", code, now=t0)
    assert err.value.code == "code_attempts"
    _, code = request_code(seeded, SECRET, "13800001111", "ip", now=t0 + timedelta(minutes=2))
    with pytest.raises(DomainError) as err:
        check_code(seeded, SECRET, "13800001111", code, now=t0 + timedelta(minutes=7, seconds=1))
    assert err.value.code == "code_expired"


def test_invalid_numbers_are_refused(seeded: Session) -> None:
    for bad in ("12345", "23800001111", "1380000111a1"):
        with pytest.raises(DomainError) as err:
            request_code(seeded, SECRET, bad, "ip")
        assert err.value.code == "invalid_phone"


def test_subscribe_change_leave_and_resubscribe(seeded: Session) -> None:
    prefs = clean_preferences(seeded, ["yjyj", "jtcx"], ["江山市"], ["sms"])
    sub = subscribe_phone(seeded, "13800001111", prefs)
    seeded.commit()
    assert preferences_of(seeded, sub).categories == ["jtcx", "yjyj"]
    assert preferences_of(seeded, sub).regions == ["江山市"]
    assert handle_sms_reply(seeded, "13800001111", " td ", "cmpp", secret="k")
    seeded.commit()
    seeded.refresh(sub)
    assert sub.status == "unsubscribed"
    again = subscribe_phone(seeded, "13800001111", clean_preferences(seeded, ["jy"], [], ["sms", "voice"]))
    assert again.id == sub.id and again.status == "active" and again.unsubscribed_at is None
    assert preferences_of(seeded, again).categories == ["jy"]
    assert preferences_of(seeded, again).regions == []


def test_preferences_are_validated(seeded: Session) -> None:
    cases = [
        (([], [], ["sms"]), "no_category"),
        ((["yjyj"], [], []), "no_channel"),
        ((["nope"], [], ["sms"]), "unknown_category"),
        ((["yjyj"], ["火星"], ["sms"]), "unknown_region"),
    ]
    for (cats, regs, chans), code in cases:
        with pytest.raises(DomainError) as err:
            clean_preferences(seeded, cats, regs, chans)
        assert err.value.code == code
    with pytest.raises(DomainError) as err:
        clean_preferences(seeded, ["yjyj"], [], ["wechat"], allowed_channels=["sms", "voice"])
    assert err.value.code == "unknown_channel"


def test_wechat_follow_subscribes_unknown_openid(seeded: Session) -> None:
    sub = handle_wechat_follow(seeded, "oFOLLOWER123", followed=True)
    seeded.commit()
    assert sub is not None and sub.status == "active" and sub.channels == ["wechat"] and sub.source == "wechat"
    cats = seeded.exec(select(SubscriberCategory.category).where(SubscriberCategory.subscriber_id == sub.id)).all()
    assert len(cats) == 6
    assert handle_wechat_follow(seeded, "oFOLLOWER123", followed=False).status == "unsubscribed"  # type: ignore[union-attr]


def test_tokens_name_subscribers_and_reject_tampering(seeded: Session) -> None:
    sub = subscribe_phone(seeded, "13800001111", clean_preferences(seeded, ["yjyj"], [], ["sms"]))
    seeded.commit()
    token = subscriber_token(SECRET, sub.id)  # type: ignore[arg-type]
    assert subscriber_from_token(seeded, SECRET, token).id == sub.id  # type: ignore[union-attr]
    assert subscriber_from_token(seeded, "other-secret", token) is None
    assert subscriber_from_token(seeded, SECRET, token[:-2] + "xx") is None


def test_purge_removes_only_long_gone_subscribers(seeded: Session) -> None:
    prefs = clean_preferences(seeded, ["yjyj"], ["柯城区"], ["sms"])
    gone = subscribe_phone(seeded, "13800001111", prefs)
    recent = subscribe_phone(seeded, "13800002222", prefs)
    active = subscribe_phone(seeded, "13800003333", prefs)
    leave(seeded, gone, "web")
    leave(seeded, recent, "web")
    gone.unsubscribed_at = utcnow() - timedelta(days=40)
    seeded.add(gone)
    request_code(seeded, SECRET, "13800004444", "ip", now=utcnow() - timedelta(days=3))
    seeded.commit()
    assert purge_inactive(seeded, 30, secret="k") == (1, 1)
    seeded.commit()
    left = {s.phone for s in seeded.exec(select(Subscriber)).all()}
    assert left == {"13800002222", "13800003333"}
    assert active.status == "active"
    with pytest.raises(DomainError):
        purge_inactive(seeded, 0, secret="k")


def test_masked_rows_hide_numbers(seeded: Session) -> None:
    subscribe_phone(seeded, "13812345678", clean_preferences(seeded, ["yjyj"], [], ["sms"]))
    handle_wechat_follow(seeded, "oABCDEFGHIJK", followed=True)
    seeded.commit()
    rows = list(masked_rows(seeded))
    assert rows[0]["phone"] == "138****5678"
    assert rows[1]["wechat_openid"] == "oAB****IJK"
    assert all("13812345678" not in str(r) and "oABCDEFGHIJK" not in str(r) for r in rows)


def test_code_budgets_are_configured_and_checked_at_start() -> None:
    from pydantic import ValidationError

    from govconnect.settings import Settings

    defaults = Settings(secret_key=SECRET)
    assert (defaults.code_limit_per_number, defaults.code_limit_per_address) == (
        "1/minute;5/hour;10/day",
        "20/10 minutes",
    )
    with pytest.raises(ValidationError, match="not a rate limit"):
        Settings(secret_key=SECRET, code_limit_per_address="lots")
