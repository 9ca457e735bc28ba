"""One big INSERT … SELECT run as several statements at once, each on its own connection.

PostgreSQL runs one INSERT on one core, and for a big campaign audience the insert is the start's
whole cost (index upkeep for each row, not reading). Cut into shares by a contiguous range of
ids, the insert uses PARTS connections at once. Contiguous, not interleaved: indexes that lead
with that id then take each share's rows on their own pages, where an interleaved split has
the connections queue for the same pages.

The first share runs in the caller's transaction; the others run in threads and commit only
once every share has inserted, and roll back if any failed. So the whole stays all or nothing
but for a crash between those commits and the caller's; the caller's retry must then find the
rows and insert the rest (the campaign start does, with ON CONFLICT).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, and_, text

from shopify_app.extensions import db

log = logging.getLogger(__name__)

PARTS = 2
# Below this many rows a second connection is not worth it.
PARALLEL_FROM = 50_000
# A share's connection waits on no one (the shares' rows are disjoint); should it ever wait
# on a lock, it gives up and the caller's job is retried rather than hang.
SHARE_LOCK_TIMEOUT = "30s"


def worth_it(rows: int) -> bool:
    """Big enough, and the caller's transaction has written nothing yet: another connection
    could not see such writes (rows would be lost) and might wait on them. PostgreSQL only."""
    if PARTS < 2 or rows < PARALLEL_FROM:
        return False
    return db.session.scalar(text("SELECT pg_current_xact_id_if_assigned() IS NULL")) is True


def id_ranges(column: Any, low: int, high: int) -> list[ColumnElement[bool]]:
    """PARTS contiguous ranges over [low, high] of `column`, the outer ones open-ended (a row
    beyond the bounds read earlier still lands in a share)."""
    step = max(1, (high - low + 1) // PARTS)
    cuts = [low + step * k for k in range(1, PARTS)]
    ranges: list[ColumnElement[bool]] = [column < cuts[0]]
    ranges += [and_(column >= a, column < b) for a, b in pairwise(cuts)]
    return [*ranges, column >= cuts[-1]]


@dataclass
class _Share:
    statement: Any
    inserted: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    error: BaseException | None = None


def insert_in_shares(statements: Sequence[Any]) -> int:
    """Run the first statement in the caller's transaction (the caller commits) and the others
    each on a connection of its own, committed once all have inserted. Returns the rows
    inserted; raises the first share's error, with nothing of theirs committed."""
    engine = db.session.get_bind().engine
    decided = threading.Event()
    go = False

    def on_own_connection(share: _Share) -> None:
        with engine.connect() as conn:
            try:
                conn.execute(text(f"SET LOCAL lock_timeout = '{SHARE_LOCK_TIMEOUT}'"))
                result = conn.execute(
                    share.statement, execution_options={"preserve_rowcount": True}
                )
                share.count = int(result.rowcount)
            except BaseException as exc:
                share.error = exc
                log.warning("a share of the insert failed (%s)", type(exc).__name__)
                return
            finally:
                share.inserted.set()
            decided.wait()
            if go:
                conn.commit()  # leaving the block without it rolls back

    first, *rest = statements
    shares = [_Share(stmt) for stmt in rest]
    with ThreadPoolExecutor(max_workers=max(1, len(shares))) as pool:
        commits = [pool.submit(on_own_connection, share) for share in shares]
        try:
            mine = db.session.execute(first, execution_options={"preserve_rowcount": True})
            for share in shares:
                share.inserted.wait()
            failed = next((share.error for share in shares if share.error is not None), None)
            if failed is not None:
                raise failed
            go = True
        finally:
            decided.set()
        for commit in commits:
            commit.result()  # a commit that failed fails the caller (its retry completes it)
    return int(mine.rowcount) + sum(share.count for share in shares)
