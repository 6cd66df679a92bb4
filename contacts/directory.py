"""The directory search entry point used by the API and the mobile pages."""

from __future__ import annotations

from pathlib import Path

from search.engine import SearchResult
from search.engine import search as _search
from search.index import DirectoryIndex, open_index


def index_dir(data_dir: Path) -> Path:
    """Where the directory index lives inside DATA_DIR."""
    return Path(data_dir) / "index" / "directory"


def directory_index(data_dir: Path) -> DirectoryIndex:
    """The process-wide index for this DATA_DIR (searcher cached, reopened only on change)."""
    return open_index(index_dir(data_dir))


def search_directory(
    data_dir: Path,
    q: str | None,
    *,
    privileged: bool,
    department: int | str | None = None,
    region: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    """Search the directory as a viewer: `privileged` (staff, contacts:write keys) also sees mobile,
    short number, email and staff-only contacts. Raises search.analyzer.QueryError for a bad query."""
    return _search(
        directory_index(data_dir),
        q,
        privileged=privileged,
        department=department,
        region=region,
        limit=limit,
        offset=offset,
    )
