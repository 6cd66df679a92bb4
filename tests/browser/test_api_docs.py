"""/docs and /redoc render in Chromium from the app's own files, under the app's Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def _watch(page: Any, live_url: str) -> tuple[list[str], list[str]]:
    """Collect CSP complaints from the console and every request that reached another origin."""
    complaints: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None)
    page.on(
        "requestfinished",
        lambda r: foreign.append(r.url) if not r.url.startswith((live_url, "data:", "blob:")) else None,
    )
    return complaints, foreign


def test_swagger_ui_and_redoc_render_offline_without_csp_violations(
    browser: Any, live_server: Any, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    complaints, foreign = _watch(page, live_server.url)
    try:
        page.goto(f"{live_server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "GovConnect" in page.locator(".swagger-ui .info .title").inner_text()
        page.wait_for_selector(".opblock-tag", timeout=20_000)
        assert page.locator(".opblock").count() > 5  # the operations were drawn from /openapi.json
        page.screenshot(path=str(artifacts / "1-swagger.png"))
        page.goto(f"{live_server.url}/redoc")
        page.wait_for_selector("h1", timeout=20_000)
        assert "GovConnect" in page.locator("h1").first.inner_text()
        page.wait_for_selector("[data-section-id]", timeout=20_000)
        page.screenshot(path=str(artifacts / "2-redoc.png"))
    finally:
        page.close()
    # ReDoc's footer asks for its logo from its vendor's host: the policy refuses it, and that is all it refuses.
    refused_other = [c for c in complaints if not ("Loading the image 'https://" in c and "img-src" in c)]
    assert refused_other == []
    assert foreign == []
