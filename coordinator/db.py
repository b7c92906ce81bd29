"""The coordinator's state in a real database (SQLAlchemy 2 Core).

One schema serves a SQLite file (zero setup, one host) and PostgreSQL (several
coordinator processes, ``postgresql+psycopg://...``). Everything a round needs
survives a crash: tasks, models (checkpoint blobs, content-addressed), rounds
with their running example-weighted sum (float64 bytes, Bonawitz et al. 2019
§4: aggregate as updates arrive and never persist an individual update) and
sessions (a random id, the sha256 of the upload token and a per-round
pseudonym of the device's credential; nothing that identifies a device).

Concurrency: writers take row locks in one fixed order, task -> sum ->
round -> session (``SELECT ... FOR UPDATE`` on PostgreSQL); on SQLite every
write transaction starts with ``BEGIN IMMEDIATE``, which serializes writers
across processes. Assignment counting and update counting are single
conditional ``UPDATE`` statements that cannot over-count under any
interleaving. An upload locks one free shard of the round's sum (``SKIP
LOCKED``), not the round row, so check-ins are not held up while megabytes of
sum are read, added to and written, and up to ``SUM_SHARDS`` uploads of a
round add at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

blobs = sa.Table(
    "fk_blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("gzip", sa.LargeBinary, nullable=False),  # the bytes, gzip-compressed once at upload
    sa.Column("created_at", sa.Float, nullable=False),
)

tasks = sa.Table(
    "fk_tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("population", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # wire.protocol.TaskCreate JSON
    sa.Column("shapes", sa.Text, nullable=False),  # JSON list of the model's tensor shapes
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("seq_len", sa.Integer, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("finished", sa.Boolean, nullable=False, default=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("current_round", sa.Integer, nullable=True),  # round number, None before the first
    sa.Column("optimizer_state", sa.LargeBinary, nullable=True),  # FedAdam moments
    sa.Column("created_at", sa.Float, nullable=False),
)

models = sa.Table(
    "fk_models",
    metadata,
    sa.Column("task_id", sa.Integer, sa.ForeignKey("fk_tasks.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("round", sa.Integer, nullable=True),  # the round that produced it (None: the initial checkpoint)
    sa.Column("weights_sha256", sa.String(64), sa.ForeignKey("fk_blobs.sha256"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

rounds = sa.Table(
    "fk_rounds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("fk_tasks.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("committed_version", sa.Integer, nullable=True),
    sa.Column("goal", sa.Integer, nullable=False),
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("min_reports", sa.Integer, nullable=False),
    sa.Column("assigned", sa.Integer, nullable=False, default=0),
    sa.Column("received", sa.Integer, nullable=False, default=0),
    sa.Column("aborted", sa.Integer, nullable=False, default=0),
    sa.Column("reports_completed", sa.Integer, nullable=False, default=0),
    sa.Column("reports_failed", sa.Integer, nullable=False, default=0),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("selection_deadline", sa.Float, nullable=False),
    sa.Column("report_deadline", sa.Float, nullable=False),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("weight_sum", sa.Float, nullable=False, default=0.0),  # a copy of fk_sums.weight, for reading
    sa.Column("rejections", sa.Text, nullable=False, default="{}"),  # reason -> count
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),  # name -> [sum, count] of device reports
    sa.UniqueConstraint("task_id", "number"),
)

# A round's running example-weighted sum, in SUM_SHARDS rows of its own: each upload adds to one free shard
# (so uploads of one round proceed in parallel on PostgreSQL) while check-ins, which update the round row, go
# on; the commit adds the shards up. Megabytes each (float64 bytes); dropped when the round closes.
SUM_SHARDS = 4
sums = sa.Table(
    "fk_sums",
    metadata,
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("total", sa.LargeBinary, nullable=True),  # None: nothing added yet (or dropped)
    sa.Column("weight", sa.Float, nullable=False, default=0.0),
    sa.Column("count", sa.Integer, nullable=False, default=0),
)

sessions = sa.Table(
    "fk_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), nullable=False, index=True),
    sa.Column("token_sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # assigned | uploaded | aborted
    sa.Column("reported", sa.Boolean, nullable=False, default=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("deadline", sa.Float, nullable=False),
    # coordinator.credentials.participant: a per-round pseudonym of the device's credential. Unique per round,
    # so one credential never holds two sessions of a round (Sybil resistance, issue 14 point 5).
    sa.Column("participant", sa.String(32), nullable=False),
    sa.Column("max_weight", sa.Float, nullable=False),  # the FedAvg weight bound from what the device declared
    sa.UniqueConstraint("round_id", "participant"),
)

# Coordinator secrets generated once and shared by every worker (the credential HMAC key). A database reader
# can read them: a deployment that must keep credentials unforgeable against one passes a key file instead.
secrets_table = sa.Table(
    "fk_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

# Secure rounds (coordinator.secure_rounds): the protocol's record of a round (secagg.encoding bytes,
# which hold the running ring sum of masked inputs) and each session's device id.
secagg_rounds = sa.Table(
    "fk_secagg",
    metadata,
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), primary_key=True),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("closes_at", sa.Float, nullable=False),
    sa.Column("record", sa.LargeBinary, nullable=False),
)
secagg_devices = sa.Table(
    "fk_secagg_devices",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), nullable=False, index=True),
    sa.Column("device", sa.Integer, nullable=False),
)

ROUND_FIELDS = tuple(rounds.c)


def fetch_bytes(conn: Connection, column: sa.Column[Any], keys: dict[sa.Column[Any], object]) -> bytes | None:
    """One large binary value (``SELECT column WHERE key = value AND ...``), in this connection's transaction.

    On PostgreSQL it is read in binary format: psycopg's default text format sends bytea as hex, and decoding
    megabytes of hex costs 3-4x the binary read (measured).
    """
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection  # the psycopg connection of this transaction
        where = " AND ".join(f"{key.name} = %s" for key in keys)
        sql = f"SELECT {column.name} FROM {column.table.name} WHERE {where}"
        with raw.cursor(binary=True) as cur:  # type: ignore[union-attr]
            cur.execute(sql, tuple(keys.values()))
            row = cur.fetchone()
        return None if row is None or row[0] is None else bytes(row[0])
    found = conn.execute(sa.select(column).where(*(key == value for key, value in keys.items()))).scalar()
    return None if found is None else bytes(found)


_SHARD_FIELDS = (sums.c.round_id, sums.c.shard, sums.c.weight, sums.c.count)


def lock_free_shard(conn: Connection, round_id: int, hint: int) -> sa.RowMapping:
    """Lock one of a round's sum shards (without its megabytes): a free one if any, else wait for shard ``hint``.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite serializes writers anyway.
    """
    query = sa.select(*_SHARD_FIELDS).where(sums.c.round_id == round_id)
    row = conn.execute(query.order_by(sums.c.shard).limit(1).with_for_update(skip_locked=True)).first()
    if row is None:  # every shard busy: queue on one
        row = conn.execute(query.where(sums.c.shard == hint % SUM_SHARDS).with_for_update()).one()
    return row._mapping


def lock_all_shards(conn: Connection, round_id: int) -> list[sa.RowMapping]:
    """Lock every sum shard of a round (waiting for uploads adding to them), in shard order."""
    query = sa.select(*_SHARD_FIELDS).where(sums.c.round_id == round_id).order_by(sums.c.shard)
    return [row._mapping for row in conn.execute(query.with_for_update())]


def fetch_shard(conn: Connection, round_id: int, shard: int) -> bytes | None:
    """One shard of a round's running sum (None before its first update)."""
    return fetch_bytes(conn, sums.c.total, {sums.c.round_id: round_id, sums.c.shard: shard})


class Database:
    """Engines and transactions for one database URL.

    ``write()`` yields a connection in a transaction that serializes with other
    writers where the backend needs it (SQLite: ``BEGIN IMMEDIATE``); ``read()``
    a plain transaction. ``for_update(select)`` adds a row lock on PostgreSQL.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite's busy handler sleeps with back-off while another writer holds the lock; queue this process's
        # writers on a lock instead, so only one thread per process waits on the file lock.
        self._sqlite_writer = threading.Lock()
        if self.is_sqlite:
            self._write = self._sqlite_engine(url, "BEGIN IMMEDIATE")
            self._read = self._sqlite_engine(url, "BEGIN")
        else:
            self._write = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            self._read = self._write

    @staticmethod
    def _sqlite_engine(url: str, begin: str) -> Engine:
        # Enough connections for the server's thread pool (40 threads): waiting for a pooled connection is the
        # only queue, and the per-process writer lock orders the writers.
        engine = sa.create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=8, max_overflow=40
        )

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def create_schema(self) -> None:
        """Create missing tables (idempotent; run once before starting workers)."""
        metadata.create_all(self._write)
        if not self.is_sqlite:
            with self.write() as conn:  # already compressed (gzip) or incompressible (float64 sums): skip TOAST's pglz
                conn.execute(sa.text("ALTER TABLE fk_sums ALTER COLUMN total SET STORAGE EXTERNAL"))
                conn.execute(sa.text("ALTER TABLE fk_blobs ALTER COLUMN gzip SET STORAGE EXTERNAL"))

    def drop_schema(self) -> None:
        metadata.drop_all(self._write)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        if self.is_sqlite:
            with self._sqlite_writer, self._write.begin() as conn:
                yield conn
        else:
            with self._write.begin() as conn:
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self._write.dispose()
        if self._read is not self._write:
            self._read.dispose()
