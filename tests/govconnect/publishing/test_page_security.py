"""Security headers, the script-data helper, templates without unsafe markup, and the offline API docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from govconnect.app import create_app
from govconnect.escaping import script_json
from govconnect.settings import Settings

TEMPLATES = Path(__file__).resolve().parents[3] / "govconnect" / "web" / "templates"
NONCE = re.compile(r"script-src 'self' 'nonce-([^']+)'")


def test_script_json_cannot_end_a_script_or_break_a_line() -> None:
    value = {"region": "</script><script>alert(1)</script>", "x": "a&b'c\u2028d\u2029e<!--"}
    out = str(script_json(value))
    for raw in ("<", ">", "&", "'", "\u2028", "\u2029"):
        assert raw not in out
    assert json.loads(out) == value  # still the same data for the script that reads it


def test_templates_have_no_safe_filter_and_every_script_carries_the_nonce() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "{% autoescape false" not in text, template.name
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert 'nonce="{{ csp_nonce }}"' in tag, f"{template.name}: {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name}: inline event handler"
        assert "style=" not in text and "javascript:" not in text, template.name


def test_every_response_has_the_headers_and_a_fresh_nonce(client: TestClient) -> None:
    first, second = client.get("/m/"), client.get("/m/")
    nonces = []
    for page in (first, second):
        policy = page.headers["content-security-policy"]
        match = NONCE.search(policy)
        assert match is not None, policy
        nonces.append(match.group(1))
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy and "base-uri 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert "camera=()" in page.headers["permissions-policy"]
        assert "strict-transport-security" not in page.headers  # plain http: no HSTS
    assert len(nonces[0]) >= 22 and nonces[0] != nonces[1]
    # JSON answers and errors carry them too.
    for response in (client.get("/healthz"), client.get("/api/v1/notices"), client.get("/no-such-page")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_tv_page_script_runs_only_with_the_response_nonce(client: TestClient) -> None:
    page = client.get("/tv/")
    nonce = NONCE.search(page.headers["content-security-policy"])
    assert nonce is not None
    scripts = re.findall(r"<script\b[^>]*>", page.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in s for s in scripts)
    assert "<style" not in page.text  # styles come from /static/tv.css


def test_hsts_when_the_public_url_is_https(settings: Settings, engine: Engine) -> None:
    app = create_app(settings.model_copy(update={"public_base_url": "https://gov.example.cn"}), engine=engine)
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def _same_origin_assets(html: str) -> list[str]:
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    return urls


def test_api_docs_and_favicon_are_served_by_the_app(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = _same_origin_assets(page.text)
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            answer: Any = client.get(asset)
            assert answer.status_code == 200, asset
            assert len(answer.content) > 1000, asset
        nonce = NONCE.search(page.headers["content-security-policy"])
        assert nonce and page.text.count(f'nonce="{nonce.group(1)}"') == page.text.count("<script")
    assert "'unsafe-inline'" not in client.get("/docs").headers["content-security-policy"]
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
