"""The shared store of check-in counts behind pace steering's population-wide arrival rate.

Each coordinator process (``coordinator.pace.PopulationArrivals``) hands its
check-ins of the last second or so to :meth:`DbArrivalStore.exchange`, which
in one short write transaction adds them to this process's rows of
``fk_arrivals`` (one per whole second), drops this process's rows that left
the window and returns the sum over the window of every process's rows. One
write a second per process, whatever the check-in rate; the rows of a killed
process age out of the window by themselves.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from coordinator.db import Database, arrivals

logger = logging.getLogger(__name__)


def process_name() -> str:
    """A name for this process among every coordinator process on every host (host, pid and a random tag)."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"


class DbArrivalStore:
    """``coordinator.pace.ArrivalStore`` in the coordinator's database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, process: str) -> None:
        if not 0 < len(process) <= 64:
            raise ValueError(f"process name must be 1-64 characters, got {process!r}")
        self._db = db
        self.process = process
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    def exchange(self, task_id: int, counts: Mapping[int, int], since: int) -> int | None:
        mine = (arrivals.c.task_id == task_id) & (arrivals.c.process == self.process)
        try:
            with self._db.write(changes_state=False) as conn:
                if counts:
                    rows = [{"task_id": task_id, "process": self.process, "second": s, "count": n}
                            for s, n in sorted(counts.items())]  # fmt: skip
                    insert = self._insert(arrivals).values(rows)
                    conn.execute(
                        insert.on_conflict_do_update(
                            index_elements=[arrivals.c.task_id, arrivals.c.process, arrivals.c.second],
                            set_={"count": arrivals.c.count + insert.excluded.count},
                        )
                    )
                conn.execute(sa.delete(arrivals).where(mine, arrivals.c.second < since))
                total = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(arrivals.c.count), 0)).where(
                        arrivals.c.task_id == task_id, arrivals.c.second >= since
                    )
                ).scalar_one()
        except sa.exc.SQLAlchemyError as err:  # pace steering must never fail a check-in: keep the counts, go on
            logger.warning("sharing check-in counts failed: %s", err)
            return None
        return int(total)
