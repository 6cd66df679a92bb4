"""One paging style for every list in the API: `limit` (how many) and `offset` (how many to skip).

Every paged answer carries `items`, `total`, `limit` and `offset`. A route takes its page with
`Depends(paging(default=…, maximum=…))`; the three lists that used to page with `page`/`page_size`
(notices, deliveries, audit) take `Depends(paging(…, legacy=True))`, which still reads those two
names (marked deprecated in the OpenAPI description) when `limit`/`offset` are not given.

This module deliberately has no `from __future__ import annotations`: FastAPI reads the query
bounds from the dependency's annotations, which must be real objects built from the arguments.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from govconnect.api.params import DB_INT_MAX
from govconnect.errors import ApiError

LEGACY_MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    """Which slice of a list a request asked for."""

    limit: int
    offset: int


def paging(default: int, maximum: int, max_offset: int = DB_INT_MAX, legacy: bool = False) -> Callable[..., Page]:
    """A dependency reading `limit` (1..maximum, default `default`) and `offset` (0..max_offset)."""
    limit_help = f"How many items to return (1–{maximum}) / 每页条数"
    offset_help = "How many items to skip / 跳过条数"

    if not legacy:

        def page_of(
            limit: Annotated[int, Query(ge=1, le=maximum, description=limit_help)] = default,
            offset: Annotated[int, Query(ge=0, le=max_offset, description=offset_help)] = 0,
        ) -> Page:
            return Page(limit, offset)

        return page_of

    def legacy_page_of(
        limit: Annotated[int | None, Query(ge=1, le=maximum, description=limit_help)] = None,
        offset: Annotated[int | None, Query(ge=0, le=max_offset, description=offset_help)] = None,
        page: Annotated[
            int | None, Query(ge=1, le=LEGACY_MAX_PAGE, deprecated=True, description="Old name: use offset")
        ] = None,
        page_size: Annotated[
            int | None, Query(ge=1, le=maximum, deprecated=True, description="Old name: use limit")
        ] = None,
    ) -> Page:
        if (page is not None or page_size is not None) and (limit is not None or offset is not None):
            raise ApiError(
                422,
                "conflicting_parameters",
                "不能同时使用 limit/offset 与 page/page_size / Use limit/offset or the old page/page_size, not both",
                details={"use": ["limit", "offset"]},
            )
        size = limit if limit is not None else (page_size if page_size is not None else default)
        skip = offset if offset is not None else ((page or 1) - 1) * size
        if skip > max_offset:
            raise ApiError(422, "validation_error", details={"offset": skip, "maximum": max_offset})
        return Page(size, skip)

    return legacy_page_of
