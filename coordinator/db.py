"""The coordinator's state in a real database (SQLAlchemy 2 Core).

One schema serves a SQLite file (zero setup, one host) and PostgreSQL (several
coordinator processes, ``postgresql+psycopg://...``). Everything committed
survives a crash: tasks, models (checkpoint blobs, content-addressed), rounds
with their counters, and sessions (a random id, the sha256 of the upload token
and a per-round pseudonym of the device's credential; nothing that identifies a
device). The open round's running sum does not: it lives in the coordinator
processes' memory and reaches the database only sealed (``coordinator.partials``:
Bonawitz et al. 2019 §4, aggregators are ephemeral and in-memory), so no disk,
WAL, dead tuple or backup holds a sum of fewer than the round's updates in the
clear; a crash loses the open round.

Concurrency: writers take row locks in one fixed order, task -> round ->
partial -> session (``SELECT ... FOR UPDATE`` on PostgreSQL); on SQLite every
write transaction starts with ``BEGIN IMMEDIATE``, which serializes writers
across processes. Assignment counting and update counting are single
conditional ``UPDATE`` statements that cannot over-count under any
interleaving; an upload's transaction writes counters only, a few bytes.
"""

from __future__ import annotations

import contextlib
import itertools
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
    sa.Column("weight_sum", sa.Float, nullable=False, default=0.0),  # the sum of accepted weights
    sa.Column("rejections", sa.Text, nullable=False, default="{}"),  # reason -> count
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),  # name -> [sum, count] of device reports
    sa.UniqueConstraint("task_id", "number"),
)

# A round's running sum is never stored (coordinator.partials): each process adds the updates it received in
# memory and has one row per open round here with its count and weight (not secret: the round row has the totals)
# and, once the round is due, its partial sum sealed to the committing process's ephemeral key. The row whose
# public_key is set is the committing process's; seen_at is each process's heartbeat.
partials = sa.Table(
    "fk_partials",
    metadata,
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), primary_key=True),
    sa.Column("owner", sa.String(32), primary_key=True),  # a random id per coordinator process
    sa.Column("count", sa.Integer, nullable=False, default=0),
    sa.Column("weight", sa.Float, nullable=False, default=0.0),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=True),  # X25519, set on the committing process's row
    sa.Column("sealed", sa.LargeBinary, nullable=True),  # HPKE ciphertext of the partial sum (coordinator.sealing)
)

sessions = sa.Table(
    "fk_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    # No index of its own: the unique key (round_id, participant) below leads with it and serves every lookup
    # by round, and an assignment writes one index entry fewer.
    sa.Column("round_id", sa.Integer, sa.ForeignKey("fk_rounds.id"), nullable=False),
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

# Check-ins per coordinator process and whole second (coordinator.arrivals): summed over the last minute, the
# population's arrival rate for pace steering across processes and hosts. A process writes at most once a second.
arrivals = sa.Table(
    "fk_arrivals",
    metadata,
    sa.Column("task_id", sa.Integer, primary_key=True),
    sa.Column("process", sa.String(64), primary_key=True),
    sa.Column("second", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
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


class Database:
    """Engines and transactions for one database URL.

    ``write()`` yields a connection in a transaction that serializes with other
    writers where the backend needs it (SQLite: ``BEGIN IMMEDIATE``); ``read()``
    a plain transaction. ``for_update(select)`` adds a row lock on PostgreSQL.

    ``changes`` counts the write transactions this process committed that may have changed a task or a
    round: the check-in's view of them (``coordinator.checkin_views``) is read again once it moved, so
    this process never answers from a view older than its own last write.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._changes = itertools.count(1)
        self.changes = 0
        # SQLite's busy handler sleeps with back-off while another writer holds the lock; queue this process's
        # writers on a lock instead, so only one thread per process waits on the file lock.
        self._sqlite_writer = threading.Lock()
        if self.is_sqlite:
            self._write = self._sqlite_engine(url, "BEGIN IMMEDIATE")
            self._read = self._sqlite_engine(url, "BEGIN")
            self._soft = self._write  # every SQLite write here is already unflushed at commit (WAL + NORMAL)
        else:
            self._write = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            self._read = self._write
            self._soft = self._soft_engine(url)

    @staticmethod
    def _soft_engine(url: str) -> Engine:
        """PostgreSQL connections for ``write(durable=False)``: set once to commit without waiting for the WAL
        flush, and not pinged at checkout (the claim thread's batches each paid two extra round trips for
        these). A dropped connection fails one batch, whose check-ins are told to retry, and is replaced."""
        engine = sa.create_engine(url, pool_size=2, max_overflow=2)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO OFF")
            dbapi_connection.commit()

        return engine

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
            with self.write() as conn:  # already compressed (gzip) or incompressible (ciphertext): skip TOAST's pglz
                conn.execute(sa.text("ALTER TABLE fk_partials ALTER COLUMN sealed SET STORAGE EXTERNAL"))
                conn.execute(sa.text("ALTER TABLE fk_blobs ALTER COLUMN gzip SET STORAGE EXTERNAL"))

    def drop_schema(self) -> None:
        metadata.drop_all(self._write)

    @contextlib.contextmanager
    def write(self, *, changes_state: bool = True, durable: bool = True) -> Iterator[Connection]:
        """A write transaction; ``changes_state=False`` for writers that never touch what a check-in reads
        of tasks and rounds, or that tell the check-in themselves (arrival counts, assignment claims).

        ``durable=False`` commits without waiting for PostgreSQL to flush the WAL to disk (on connections
        with ``synchronous_commit`` off): the commit is as atomic, ordered and visible to every other session as
        any, but a crash *of the database server* in the next few hundred milliseconds may undo it (never
        a coordinator's crash: kill -9 of a coordinator loses nothing the database acknowledged). That is
        the durability SQLite has here for every write (WAL with ``synchronous=NORMAL``). For soft state only,
        whose loss the protocol absorbs: an undone assignment claim leaves its device without a session, so
        its upload is refused and the round settles with the others (``rounds.due_state``).
        """
        if self.is_sqlite:
            with self._sqlite_writer, self._write.begin() as conn:
                yield conn
        else:
            with (self._write if durable else self._soft).begin() as conn:
                yield conn
        if changes_state:  # after the commit: a view read from now on sees it
            self.changes = next(self._changes)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self._write.dispose()
        if self._soft is not self._write:
            self._soft.dispose()
        if self._read is not self._write:
            self._read.dispose()
