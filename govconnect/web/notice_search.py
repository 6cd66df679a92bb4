"""Full-text search over public notices: a small whoosh index in DATA_DIR with jieba's Chinese analyzer.

The index catches up with the database on each search (notices newer than the last indexed one),
so no pipeline hook is needed; visibility (cancelled, private) is re-checked against the database.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

from jieba.analyse import ChineseAnalyzer
from sqlmodel import Session, col, select
from whoosh import index
from whoosh.fields import ID, TEXT, Schema
from whoosh.qparser import MultifieldParser, OrGroup

from govconnect.notices.models import Notice
from govconnect.notices.publication import PublicNotice, public_text
from govconnect.web.queries import notices_by_ids

RESCAN = timedelta(minutes=10)
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _schema() -> Schema:
    analyzer = ChineseAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, field_boost=2.0),
        body=TEXT(analyzer=analyzer),
    )


class NoticeIndex:
    """The notice index in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.watermark_file = directory / "watermark.txt"
        with _guard:
            self.lock = _locks.setdefault(str(directory.resolve()), threading.Lock())

    def _open(self) -> index.Index:
        if index.exists_in(str(self.directory)):
            return index.open_dir(str(self.directory))
        self.directory.mkdir(parents=True, exist_ok=True)
        return index.create_in(str(self.directory), _schema())

    def sync(self, session: Session) -> int:
        """Index public notices not yet in the index; returns how many were added."""
        with self.lock:
            ix = self._open()
            since = self._watermark()
            query = select(Notice).where(col(Notice.public)).order_by(col(Notice.created_at))
            if since is not None:
                # Look back a little: a notice stamped earlier may commit after the last sync.
                query = query.where(col(Notice.created_at) >= since - RESCAN)
            candidates = session.exec(query).all()
            with ix.searcher() as searcher:
                new = [n for n in candidates if searcher.document(id=n.id) is None]
            if new:
                writer = ix.writer(timeout=10)
                for notice in new:
                    writer.update_document(id=notice.id, title=public_text(notice.title), body=public_text(notice.body))
                writer.commit()
            if candidates:
                self.watermark_file.write_text(candidates[-1].created_at.isoformat())
            return len(new)

    def _watermark(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.watermark_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def search(self, session: Session, text: str, limit: int = 20) -> list[PublicNotice]:
        """Visible notices matching the query, best first."""
        text = text.strip()[:100]
        if not text:
            return []
        self.sync(session)
        ix = self._open()
        parser = MultifieldParser(["title", "body"], ix.schema, group=OrGroup.factory(0.9))  # type: ignore[attr-defined]
        with ix.searcher() as searcher:
            hits = searcher.search(parser.parse(text), limit=limit * 2)
            ids = [hit["id"] for hit in hits]
        return notices_by_ids(session, ids)[:limit]
