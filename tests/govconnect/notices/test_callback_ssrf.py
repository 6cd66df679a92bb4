"""Agency callback URLs (issue 11, low): only public unicast addresses, and the connection goes to
the address that was checked (one DNS answer, pinned), keeping Host and the TLS server name."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices import agency_callbacks
from govconnect.notices.agency_callbacks import (
    CallbackUrlError,
    _store,
    address_refusal,
    check_callback_url,
    post_agency_callback,
)
from govconnect.settings import Settings

REFUSED = {
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "255.255.255.255": "broadcast",
    "0.0.0.0": "unspecified",  # noqa: S104
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "private",
    "fc00::1": "private",
}


@pytest.fixture
def strict(pipeline_settings: Settings) -> Settings:
    return pipeline_settings.model_copy(update={"test_mode": False})


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_non_unicast_and_internal_addresses_are_refused(strict: Settings, address: str, reason: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), strict) == reason
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(CallbackUrlError):
        check_callback_url(f"https://{literal}/hook", strict)


def test_public_addresses_pass_and_private_ones_only_when_configured(strict: Settings) -> None:
    for address in ("93.184.216.34", "2606:4700::1111"):
        assert address_refusal(ipaddress.ip_address(address), strict) is None
    allowed = strict.model_copy(update={"callback_allowed_networks": "10.0.0.0/8, fd00::/8"})
    assert address_refusal(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert address_refusal(ipaddress.ip_address("192.168.1.1"), allowed) == "private"
    assert address_refusal(ipaddress.ip_address("224.0.0.1"), allowed) == "multicast"  # never, configured or not


class RecordingQueue:
    async def enqueue(self, name: str, **kwargs: Any) -> bool:
        return True


async def test_the_connection_goes_to_the_checked_address(
    strict: Settings, engine: Any, session: Session, agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency.callback_url = "https://hooks.agency.example/status?x=1"
    session.add(agency)
    session.commit()
    answers = ["93.184.216.34", "127.0.0.1"]  # a rebinding resolver: public first, loopback after
    lookups: list[str] = []

    def rebinding_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        address = answers[min(len(lookups) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(agency_callbacks.socket, "getaddrinfo", rebinding_getaddrinfo)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ctx = {"settings": strict, "engine": engine, "queue": RecordingQueue(), "callback_client": client}
        [(callback_id, _)] = _store(engine, {agency.id or 0: [{"delivery_id": "d1"}]}, utcnow())
        assert await post_agency_callback(ctx, callback_id=callback_id) == "ok"
    [request] = seen
    assert lookups == ["hooks.agency.example"]  # resolved once
    assert request.url.host == "93.184.216.34" and request.url.path == "/status" and request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.agency.example"
    assert request.extensions["sni_hostname"] == "hooks.agency.example"
