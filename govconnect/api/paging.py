"""One paging style for every list in the API: `limit` (how many) and `offset` (how many to skip).

Every paged answer carries `items`, `total`, `limit` and `offset`. A route takes its page with
`Depends(paging(default=…, maximum=…))`; the three lists that used to page with `page`/`page_size`
(notices, deliveries, audit) take `Depends(paging(…, legacy=True))`, which still reads those two
names (marked deprecated in the OpenAPI description); `limit`/`offset` win when both are given.

This module deliberately has no `from __future__ import annotations`: FastAPI reads the query
bounds from the dependency's annotations, which must be real objects built from the arguments.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from govconnect.api.params import DB_INT_MAX

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
        # The new names win where both are given: every combination the description allows is answered.
        size = limit if limit is not None else (page_size if page_size is not None else default)
        skip = offset if offset is not None else ((page or 1) - 1) * size
        return Page(size, min(skip, max_offset))  # a page past the bound is as empty as the bound

    return legacy_page_of
