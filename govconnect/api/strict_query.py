"""Unknown query parameters are an error, not silently ignored.

`?page_size=3` on a list that pages with `limit` used to answer 100 items without a word. Every API
router is included with `Depends(reject_unknown_query)` (see `app.py`): the names a route accepts
are the query parameters its endpoint and all its dependencies declare; anything else is answered
422 `unknown_parameter`, naming the unknown and the accepted names.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from govconnect.api.openapi import may_answer
from govconnect.errors import ApiError

# The answer names what it refused, cut short: a query string is the caller's text.
MAX_NAME_SHOWN = 64
MAX_NAMES_SHOWN = 10


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(f.alias or name for name, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
        pending.extend(current.dependencies)
    return names


def accepted_query_names(route: APIRoute) -> frozenset[str]:
    """Every query parameter name the route (its endpoint and its dependencies) declares."""
    return frozenset(_query_names(route.dependant))


def _accepted_cached(request: Request, route: APIRoute) -> frozenset[str]:
    # Routes are not hashable; each app keeps its own small table by route identity (routes live as long as it).
    table: dict[int, tuple[APIRoute, frozenset[str]]] | None = getattr(request.app.state, "query_names", None)
    if table is None:
        table = request.app.state.query_names = {}
    entry = table.get(id(route))
    if entry is None or entry[0] is not route:
        entry = table[id(route)] = (route, accepted_query_names(route))
    return entry[1]


@may_answer(422)
def reject_unknown_query(request: Request) -> None:
    """Dependency: 422 `unknown_parameter` when the query string carries a name the route does not take."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = _accepted_cached(request, route)
    unknown = sorted(name[:MAX_NAME_SHOWN] for name in set(request.query_params.keys()) - accepted)[:MAX_NAMES_SHOWN]
    if unknown:
        raise ApiError(
            422,
            "unknown_parameter",
            f"未知的查询参数 / Unknown query parameter: {', '.join(unknown)}",
            details={"unknown": unknown, "accepted": sorted(accepted)},
        )
