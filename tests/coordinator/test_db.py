"""Database.write: which transactions wait for the database's disk flush."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from coordinator.db import Database


def _synchronous_commit(db: Database, *, durable: bool) -> str:
    with db.write(durable=durable) as conn:
        return str(conn.execute(sa.text("SHOW synchronous_commit")).scalar())


def test_write_not_durable_skips_only_its_own_flush_on_postgresql(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite here (WAL, synchronous=NORMAL) waits for no flush at any commit")
    assert _synchronous_commit(db, durable=False) == "off"
    assert _synchronous_commit(db, durable=True) == "on"  # the durable writers' connections are not changed
    assert _synchronous_commit(db, durable=True) == "on"


def test_write_not_durable_commits_what_it_wrote(db: Database) -> None:
    with db.write(durable=False) as conn:
        conn.execute(sa.text("CREATE TABLE fk_probe (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO fk_probe VALUES (7)"))
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT x FROM fk_probe")).scalars().all() == [7]
    with db.write() as conn:
        conn.execute(sa.text("DROP TABLE fk_probe"))
