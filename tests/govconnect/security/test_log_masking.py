"""The one log filter: mobiles in every written form and secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from govconnect.db import make_engine
from govconnect.logging import LogMaskingFilter, configure_logging, install_log_masking
from govconnect.security import mask_for_log

MOBILE = "13905701234"


@pytest.mark.parametrize(
    "written",
    [
        MOBILE,
        f"+86{MOBILE}",
        f"0086{MOBILE}",
        f"86{MOBILE}",
        f"+86 {MOBILE}",
        "139-0570-1234",
        "139 0570 1234",
        f"phone=%2B86{MOBILE}",
        f"tel:{MOBILE}.",
    ],
)
def test_every_form_of_a_mobile_is_masked(written: str) -> None:
    masked = mask_for_log(f"to {written} done")
    assert MOBILE not in masked.replace("-", "").replace(" ", "")
    assert "1234" in masked  # the last four stay, so an operator can still tell numbers apart


def test_other_numbers_are_left_alone() -> None:
    for text_ in ("order 2139057012345", "id 12905701234", "0570-3012345", "took 1234 ms"):
        assert mask_for_log(text_) == text_


@pytest.mark.parametrize(
    "line",
    [
        'POST /callbacks/aliyun_sms/report?token=s3cr3tTOKEN HTTP/1.1" 200',
        "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s3cr3tTOKEN",
        "POST /x?access_token=s3cr3tTOKEN&foo=1",
        "GET /?Signature=s3cr3tTOKEN&SignatureMethod=HMAC-SHA1",
        "callback?msg_signature=s3cr3tTOKEN&timestamp=1",
        "Authorization: Bearer s3cr3tTOKEN",
        "key gck_0a1b2c3d_s3cr3tTOKEN used",
        "token%3Ds3cr3tTOKEN",
    ],
)
def test_secrets_in_query_strings_and_headers_are_masked(line: str) -> None:
    masked = mask_for_log(line)
    assert "s3cr3tTOKEN" not in masked and "***" in masked


def test_filter_masks_args_exceptions_and_stack(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    log = logging.getLogger("govconnect.test")
    with caplog.at_level(logging.INFO):
        log.info("sent to %s via %s", f"0086{MOBILE}", "sms")
        log.info("number %d", int(MOBILE))
        log.info("dict %(phone)s", {"phone": MOBILE})
        try:
            raise ValueError(f"bad phone {MOBILE} token=abc123secret")
        except ValueError:
            log.exception("failed")
        log.warning("where", stack_info=True, extra={"who": MOBILE})
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    rendered = "\n".join(handler.format(r) for r in caplog.records)
    assert MOBILE not in rendered and "abc123secret" not in rendered and MOBILE not in caplog.text
    assert "sent to 0086139****1234 via sms" in rendered
    assert "ValueError: bad phone 139****1234 token=***" in rendered


def test_filter_on_a_handler_masks_records_made_elsewhere() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", (f"+86{MOBILE}",), None)
    assert LogMaskingFilter().filter(record) is True
    assert MOBILE not in record.getMessage()


def test_uvicorn_access_record_keeps_its_shape() -> None:
    """uvicorn's AccessFormatter reads the five arguments: masking keeps them a 5-tuple."""
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/callbacks/aliyun_sms/report?token=s3cr3tTOKEN", "1.1", 200),
        None,
    )
    LogMaskingFilter().filter(record)
    assert isinstance(record.args, tuple) and len(record.args) == 5
    line = AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert "s3cr3tTOKEN" not in line and "token=***" in line and "200" in line


def test_sql_errors_carry_no_parameters(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    configure_logging()
    value = "-".join(["secret", "param", "42"])  # not in the source lines a traceback quotes
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT no_such_column FROM agency WHERE code = :code"), {"code": value})
    except SQLAlchemyError as exc:
        assert value not in str(exc)
        logging.getLogger("govconnect.test").exception("query failed")
    else:  # pragma: no cover
        pytest.fail("the query should fail")
    finally:
        engine.dispose()
    assert value not in caplog.text and "query failed" in caplog.text
