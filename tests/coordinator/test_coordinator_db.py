"""Row locking of the running-sum shards on PostgreSQL: concurrent uploads get different shards."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from coordinator_fixtures import TRAIN_TFLITE, PostgresSchema, initial_weights, manifest_json, postgres_available

from coordinator import Admin, Database
from coordinator.db import SUM_SHARDS, lock_all_shards, lock_free_shard
from wire.protocol import TaskCreate
from wire.update import encode_weights

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL at 127.0.0.1:5432 is not reachable")


@pytest.fixture
def pg_db() -> Iterator[Database]:
    with PostgresSchema() as schema:
        db = Database(schema.url.replace("postgresql://", "postgresql+psycopg://"))
        db.create_schema()
        try:
            yield db
        finally:
            db.dispose()


def _round_id(db: Database) -> int:
    admin = Admin(db, clock=time.time)
    admin.put_blob(TRAIN_TFLITE)
    plan = admin.put_blob(manifest_json()).sha256
    ckpt = admin.put_blob(encode_weights(initial_weights())).sha256
    admin.create_task(TaskCreate(population="p", plan_sha256=plan, checkpoint_sha256=ckpt, goal_count=3))
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT id FROM fk_rounds").scalar_one())


def test_lock_free_shard_skips_shards_held_by_other_transactions(pg_db: Database) -> None:
    round_id = _round_id(pg_db)
    held: list[int] = []
    with pg_db.write() as c1, pg_db.write() as c2, pg_db.write() as c3:
        for conn in (c1, c2, c3):
            held.append(lock_free_shard(conn, round_id, hint=0)["shard"])
    assert held == [0, 1, 2]  # each open transaction got its own shard
    with pg_db.write() as conn:
        assert [s["shard"] for s in lock_all_shards(conn, round_id)] == list(range(SUM_SHARDS))
