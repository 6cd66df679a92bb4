"""Security headers for every response, in one place: a Content-Security-Policy with a fresh nonce per response.

The nonce is put on `request.state.csp_nonce` before the app runs; templates read it as `csp_nonce`
(see `rendering.py`) and put it on every `<script>` and `<style>` element. A script without the nonce,
an inline event handler (`onclick=`), a `style=""` attribute or a `javascript:` link does not run.
How to add a page safely: docs/security-web.md.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_STATE_KEY = "csp_nonce"
# A vendored page whose bundled script injects unlabelled <style> elements and starts a blob: worker (ReDoc).
VENDORED_PAGE_STATE_KEY = "csp_vendored_page"
HSTS_VALUE = "max-age=31536000"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
REFERRER_POLICY = "same-origin"


def content_security_policy(nonce: str, vendored_page: bool = False) -> str:
    """The policy: same-origin scripts and styles, inline ones only with this response's nonce."""
    style_src = "'self' 'unsafe-inline'" if vendored_page else f"'self' 'nonce-{nonce}'"
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src {style_src}",
            "worker-src 'self' blob:" if vendored_page else "worker-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


def csp_nonce(request: Request) -> str:
    """This response's nonce (set by SecurityHeadersMiddleware, which wraps the whole app)."""
    nonce: str = request.state.csp_nonce
    return nonce


def relax_for_vendored_page(request: Request) -> None:
    """Let this one response use unlabelled inline styles and blob: workers (scripts stay nonce-only).

    Only for a vendored page we cannot change (ReDoc); never for a page that shows request data.
    """
    setattr(request.state, VENDORED_PAGE_STATE_KEY, True)


class SecurityHeadersMiddleware:
    """Sets CSP (with a per-response nonce), nosniff, Referrer-Policy, Permissions-Policy, framing and HSTS."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        state = scope.setdefault("state", {})
        state[NONCE_STATE_KEY] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                vendored_page = bool(state.get(VENDORED_PAGE_STATE_KEY))
                headers["Content-Security-Policy"] = content_security_policy(nonce, vendored_page)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = REFERRER_POLICY
                headers["Permissions-Policy"] = PERMISSIONS_POLICY
                headers["X-Frame-Options"] = "DENY"
                if self.hsts:
                    headers["Strict-Transport-Security"] = HSTS_VALUE
            await send(message)

        await self.app(scope, receive, send_with_headers)
