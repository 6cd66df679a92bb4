"""ASGI middleware: request body size limit; no control characters in URLs."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govconnect.errors import error_response
from govconnect.text_rules import CONTROL_MESSAGE, control_characters


class BodySizeLimitMiddleware:
    """Answers 413 for bodies over `max_bytes`, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths with their own, larger limit (file uploads, streamed to disk by the route).
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.larger:
            await BodySizeLimitMiddleware(self.app, self.larger[scope["path"]])(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): buffer up to the limit, then replay.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", details={"max_bytes": self.max_bytes}, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


class ControlCharacterGuard:
    """Answers 422 when the path or query string holds a control character (text_rules), for every route at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote(scope.get("query_string", b"").decode("utf-8", "replace"), errors="replace")
            for where, text in (("path", scope["path"]), ("query", query)):
                found = control_characters(text)
                if found:
                    details = [{"loc": [where], "msg": CONTROL_MESSAGE, "type": "control_character", "chars": found}]
                    response = error_response(422, "validation_error", details=details)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
