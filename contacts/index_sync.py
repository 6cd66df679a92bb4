"""Several nodes, one database: every node's search index follows the directory's change log.

Each `serve` node keeps its own whoosh index in its DATA_DIR. A write appends `dir_change` rows
in the same transaction as the change (`record_changes`), so a committed change is never lost.
Every node runs an `IndexFollower`: it reads the rows after its cursor a few times a second,
re-reads those contacts (or the department table) from the database and updates its index.
Applying a row is idempotent (it re-reads the current state), so the node that made the change,
which updated its own index at once, applying it again costs one small commit and nothing else;
after a full rebuild the cursor jumps to where the rebuild started reading.

Change ids come from a sequence, so on PostgreSQL a row may commit after a row with a higher id
(two transactions at once): the follower remembers which ids above its cursor it applied and
only moves the cursor over a missing id once it has been missing for GAP_WAIT_S. A node that
starts with an empty index, whose cursor file is gone, or whose cursor lies beyond the log (the
database was restored or the log reset), rebuilds from the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from contacts.models import Contact, DirectoryChange
from search.index import DirectoryIndex

log = logging.getLogger("contacts.index_sync")

POLL_S = 0.25
GAP_WAIT_S = 30.0
BATCH = 5000
REBUILD_FROM_CHANGES = 20_000  # this many contacts changed at once: rebuild rather than update
KEEP_CHANGES = timedelta(days=7)
PRUNE_EVERY_S = 3600.0
KIND_CONTACT, KIND_DEPARTMENTS = "contact", "departments"


def record_changes(session: Session, contact_ids: Iterable[int] = (), departments: bool = False) -> None:
    """Append change rows to the session's transaction (the caller commits them with the change)."""
    rows = [DirectoryChange(kind=KIND_CONTACT, contact_id=int(cid)) for cid in sorted(set(contact_ids))]
    if departments:
        rows.append(DirectoryChange(kind=KIND_DEPARTMENTS))
    session.add_all(rows)


def latest_change_id(session: Session) -> int:
    """The highest change id committed so far (0 for an empty log)."""
    return int(session.exec(select(func.max(DirectoryChange.id))).one() or 0)


class IndexFollower:
    """Applies the change log to one node's index; `catch_up` once, or `start` a background thread."""

    def __init__(self, engine: Engine, ix: DirectoryIndex) -> None:
        self.engine = engine
        self.ix = ix
        self._applied_above: set[int] = set()  # ids above the cursor applied already
        self._missing_since: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at = 0.0
        self._started = False
        self.ready = threading.Event()  # set once the index reflects the database

    # --- the loop ---

    def start(self) -> None:
        """Follow the log in a daemon thread until `stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="directory-index-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (it finishes the batch it is applying)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.catch_up()
                failures = 0
            except Exception:  # noqa: BLE001 - the database may be away for a while; searches go on
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("directory index follower: catch-up failed (%d in a row)", failures, exc_info=True)
            self._stop.wait(POLL_S if failures == 0 else min(5.0, POLL_S * 2**failures))

    # --- one pass ---

    def catch_up(self) -> int:
        """Apply every committed change this node has not applied; returns how many rows were read."""
        with self._lock, Session(self.engine) as session:
            cursor = self.ix.applied_change()
            latest = latest_change_id(session)
            if cursor is None or latest < cursor or self._needs_rebuild(session, cursor, latest):
                self._rebuild(session)
                return 0
            rows = session.exec(
                select(DirectoryChange)
                .where(col(DirectoryChange.id) > cursor)
                .order_by(col(DirectoryChange.id))
                .limit(BATCH)
            ).all()
            self._applied_above = {i for i in self._applied_above if i > cursor}  # a rebuild may have moved it
            fresh = [r for r in rows if int(r.id or 0) not in self._applied_above]
            self._apply(session, fresh)
            self._applied_above.update(int(r.id or 0) for r in fresh)
            # A full batch may end before `latest`: ids beyond it are unread, not missing.
            reach = latest if len(rows) < BATCH else int(rows[-1].id or 0)
            self.ix.set_applied_change(self._advance(cursor, reach))
            self._maybe_prune(session)
            self.ready.set()
            return len(fresh)

    def _needs_rebuild(self, session: Session, cursor: int, latest: int) -> bool:
        """On the first pass: an empty index with contacts in the database, or a cursor the pruned log
        no longer reaches. On every pass: so many changes from elsewhere that a fresh build is quicker."""
        if latest - cursor >= REBUILD_FROM_CHANGES:
            pending = session.exec(select(func.count()).where(col(DirectoryChange.id) > cursor)).one()
            if int(pending) >= REBUILD_FROM_CHANGES:
                return True
        if self._started:
            return False
        self._started = True
        if self.ix.doc_count() == 0 and session.exec(select(Contact.id).limit(1)).first() is not None:
            return True
        oldest = session.exec(select(func.min(DirectoryChange.id))).one()
        return oldest is not None and int(oldest) > cursor + 1

    def _rebuild(self, session: Session) -> None:
        from contacts.service import rebuild_index

        started = time.monotonic()
        count = rebuild_index(session, self.ix)  # records the change id it started from
        self._started = True
        self._applied_above.clear()
        self._missing_since.clear()
        self.ready.set()
        log.info("directory index rebuilt from the database: %d contacts in %.1fs", count, time.monotonic() - started)

    def _apply(self, session: Session, rows: list[DirectoryChange]) -> None:
        from contacts.service import reindex, sync_departments

        if not rows:
            return
        contact_ids = {int(r.contact_id) for r in rows if r.kind == KIND_CONTACT and r.contact_id is not None}
        if any(r.kind == KIND_DEPARTMENTS for r in rows):
            sync_departments(session, self.ix)
        reindex(session, self.ix, contact_ids)

    def _advance(self, cursor: int, latest: int) -> int:
        """Move the cursor over applied ids, and over ids missing longer than GAP_WAIT_S."""
        now = time.monotonic()
        while cursor < latest:
            following = cursor + 1
            if following in self._applied_above:
                self._applied_above.discard(following)
                self._missing_since.pop(following, None)
            elif now - self._missing_since.setdefault(following, now) >= GAP_WAIT_S:
                self._missing_since.pop(following)  # rolled back, or a transaction still open very long
            else:
                break
            cursor = following
        return cursor

    def _maybe_prune(self, session: Session) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        cutoff = datetime.now(UTC) - KEEP_CHANGES
        newest = latest_change_id(session)  # always kept: a node's cursor must stay within the log
        session.execute(
            delete(DirectoryChange).where(col(DirectoryChange.created_at) < cutoff, col(DirectoryChange.id) < newest)
        )
        session.commit()


_FOLLOWERS: dict[str, IndexFollower] = {}
_FOLLOWERS_LOCK = threading.Lock()


def follower_for(engine: Engine, ix: DirectoryIndex) -> IndexFollower:
    """The process's follower for this index (one per index folder)."""
    key = str(ix.path.resolve())
    with _FOLLOWERS_LOCK:
        found = _FOLLOWERS.get(key)
        if found is None or found.engine is not engine:
            found = _FOLLOWERS[key] = IndexFollower(engine, ix)
        return found
