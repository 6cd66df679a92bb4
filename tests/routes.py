"""Every route of an app, whether FastAPI keeps included routers flat (older) or lazily (`_IncludedRouter`, 0.16x)."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute


def api_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """(full path, route) for every APIRoute the app serves, included routers' routes too."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # FastAPI that keeps app.routes flat
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            found.append((str(context.path), route))
    return found
