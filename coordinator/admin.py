"""Admin operations: blobs, creating a task from an exported plan, pause/resume, status, history, models.

A task is created *from an exported plan* (``fedkeys export tflite``): its
``manifest.json`` and every file it lists are uploaded as content-addressed
blobs, then the task names the manifest blob and the initial checkpoint blob
(``wire.update.encode_weights``). The coordinator checks the plan's manifest,
that every listed file is present, and that the checkpoint has exactly the
manifest's tensors (Bonawitz et al. 2019 §2.2: the server hands out a plan and a
checkpoint; it never runs the model itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from coordinator.blobstore import get_blob, put_blob
from coordinator.db import ROUND_FIELDS, Database, models, rounds, tasks
from coordinator.errors import TaskError
from coordinator.lifecycle import open_next_round
from coordinator.logs import event
from coordinator.records import TaskRow, load_round, load_task
from coordinator.rounds import RoundState
from privacy import SAMPLING_ASSUMPTION, default_delta, dp_epsilon_of_rounds
from secagg.errors import SecAggError
from wire.manifest import TRAIN_FILE, ManifestError, PlanManifest
from wire.protocol import API_PREFIX, BlobInfo, ModelInfo, PrivacySpent, RoundInfo, TaskCreate, TaskStatus
from wire.update import WireError, decode_weights

logger = logging.getLogger(__name__)


class Admin:
    def __init__(self, db: Database, *, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def put_blob(self, data: bytes) -> BlobInfo:
        with self.db.write() as conn:
            digest = put_blob(conn, data, self.clock())
        return BlobInfo(sha256=digest, size=len(data))

    def create_task(self, req: TaskCreate) -> TaskStatus:
        now = self.clock()
        with self.db.read() as conn:
            manifest = self._manifest(conn, req.plan_sha256)
            checkpoint = get_blob(conn, req.checkpoint_sha256)
        if checkpoint is None:
            raise TaskError("missing_blob", f"no blob {req.checkpoint_sha256} (the checkpoint); upload it first")
        try:
            weights = decode_weights(checkpoint)
            manifest.check_tensors(weights, "checkpoint")
        except (WireError, ManifestError) as err:
            raise TaskError("bad_checkpoint", f"checkpoint {req.checkpoint_sha256}: {err}") from err
        try:
            with self.db.write() as conn:
                result = conn.execute(
                    sa.insert(tasks).values(
                        population=req.population,
                        name=req.task,
                        config=req.model_dump_json(),
                        shapes=json.dumps([list(t.shape) for t in manifest.tensors]),
                        batch_size=manifest.batch_size,
                        seq_len=manifest.seq_len,
                        paused=False,
                        finished=False,
                        model_version=0,
                        current_round=None,
                        created_at=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                task_id = int(key[0])
                conn.execute(
                    sa.insert(models).values(
                        task_id=task_id, version=0, round=None, weights_sha256=req.checkpoint_sha256, created_at=now
                    )
                )
                open_next_round(conn, task_id, now)  # a secure round checks its ring parameters here
        except IntegrityError as err:
            raise TaskError("population_exists", f"population {req.population!r} already has a task") from err
        except SecAggError as err:  # nothing was written: the transaction rolled back
            raise TaskError("bad_secure_config", f"secure aggregation cannot run with this task: {err}") from err
        event(logger, "task_created", population=req.population, task=req.task, tensors=len(manifest.tensors))
        return self.status(req.population)

    def _manifest(self, conn: Connection, digest: str) -> PlanManifest:
        text = get_blob(conn, digest)
        if text is None:
            raise TaskError("missing_blob", f"no blob {digest} (the plan's manifest.json); upload it first")
        try:
            manifest = PlanManifest.from_json(text)
        except ManifestError as err:
            raise TaskError("bad_plan", f"plan {digest}: {err}") from err
        if TRAIN_FILE not in manifest.files:
            raise TaskError("bad_plan", f"plan {digest} lists no {TRAIN_FILE}")
        for name, file_digest in manifest.files.items():
            if get_blob(conn, file_digest) is None:
                raise TaskError("missing_blob", f"plan file {name} ({file_digest}) was not uploaded")
        return manifest

    def set_paused(self, population: str, paused: bool) -> TaskStatus:
        with self.db.write() as conn:
            task = self._task(conn, population, lock=True)
            conn.execute(sa.update(tasks).where(tasks.c.id == task.id).values(paused=paused))
        event(logger, "task_paused" if paused else "task_resumed", population=population)
        return self.status(population)

    def populations(self) -> list[TaskStatus]:
        with self.db.read() as conn:
            names = list(conn.execute(sa.select(tasks.c.population).order_by(tasks.c.id)).scalars())
        return [self.status(name) for name in names]

    def status(self, population: str) -> TaskStatus:
        with self.db.read() as conn:
            task = self._task(conn, population)
            current = load_round(conn, task.id, task.current_round)
            by_state = sa.select(rounds.c.state, sa.func.count()).where(rounds.c.task_id == task.id)
            counts: dict[str, int] = {
                str(state): int(n) for state, n in conn.execute(by_state.group_by(rounds.c.state)).all()
            }
            privacy = _privacy(conn, task)
        return TaskStatus(
            population=task.population,
            task=task.name,
            paused=task.paused,
            finished=task.finished,
            model_version=task.model_version,
            rounds_committed=counts.get("committed", 0),
            rounds_abandoned=counts.get("abandoned", 0),
            current=None if current is None else round_info(current),
            config=task.config,
            privacy=privacy,
        )

    def rounds(self, population: str, *, limit: int = 100, before: int | None = None) -> list[RoundInfo]:
        """Most recent first."""
        with self.db.read() as conn:
            task = self._task(conn, population)
            query = sa.select(*ROUND_FIELDS).where(rounds.c.task_id == task.id)
            if before is not None:
                query = query.where(rounds.c.number < before)
            rows = conn.execute(query.order_by(rounds.c.number.desc()).limit(limit)).all()
        return [round_info(r) for r in rows]

    def models(self, population: str) -> list[ModelInfo]:
        with self.db.read() as conn:
            task = self._task(conn, population)
            rows = conn.execute(sa.select(models).where(models.c.task_id == task.id).order_by(models.c.version)).all()
        return [
            ModelInfo(
                version=m.version,
                round=m.round,
                sha256=m.weights_sha256,
                created_unix=m.created_at,
                url=f"{API_PREFIX}/admin/populations/{population}/models/{m.version}",
            )
            for m in rows
        ]

    def model_blob(self, population: str, version: int) -> bytes:
        """The checkpoint bytes (``wire.update.encode_weights``) of a committed version."""
        with self.db.read() as conn:
            task = self._task(conn, population)
            digest = conn.execute(
                sa.select(models.c.weights_sha256).where(models.c.task_id == task.id, models.c.version == version)
            ).scalar()
            blob = None if digest is None else get_blob(conn, digest)
        if blob is None:
            raise TaskError("unknown_version", f"population {population!r} has no model version {version}")
        return blob

    @staticmethod
    def _task(conn: Connection, population: str, *, lock: bool = False) -> TaskRow:
        task = load_task(conn, population, lock=lock)
        if task is None:
            raise TaskError("unknown_population", f"no population {population!r}")
        return task


def _privacy(conn: Connection, task: TaskRow) -> PrivacySpent | None:
    """What a DP task's committed rounds have spent: each released a noised sum of its received updates."""
    c = task.config
    if c.dp_noise_multiplier <= 0:
        return None
    sizes = list(
        conn.execute(
            sa.select(rounds.c.received).where(
                rounds.c.task_id == task.id, rounds.c.state == RoundState.COMMITTED.value
            )
        ).scalars()
    )
    return privacy_spent(c, sizes)


def privacy_spent(config: TaskCreate, sample_sizes: list[int]) -> PrivacySpent:
    """(epsilon, delta) of a DP task after rounds that summed ``sample_sizes`` updates (None without N)."""
    population = config.dp_population_size
    delta = config.dp_delta if config.dp_delta is not None or population is None else default_delta(population)
    epsilon = None
    if population is not None and delta is not None:
        epsilon = dp_epsilon_of_rounds(
            noise_multiplier=config.dp_noise_multiplier,
            population=population,
            sample_sizes=sample_sizes,
            delta=delta,
        )
    return PrivacySpent(
        noise_multiplier=config.dp_noise_multiplier,
        norm_bound=config.norm_bound,
        rounds=len(sample_sizes),
        population=population,
        delta=delta,
        epsilon=epsilon,
        accounting=SAMPLING_ASSUMPTION if population is not None else "set dp_population_size to account epsilon",
    )


def round_info(row: Row[Any]) -> RoundInfo:
    r = row._mapping
    metrics = {k: v[0] / v[1] for k, v in json.loads(r["metrics"] or "{}").items() if v[1]}
    return RoundInfo(
        round=r["number"],
        state=r["state"],
        model_version=r["model_version"],
        committed_version=r["committed_version"],
        goal=r["goal"],
        target=r["target"],
        assigned=r["assigned"],
        received=r["received"],
        aborted=r["aborted"],
        reports_completed=r["reports_completed"],
        reports_failed=r["reports_failed"],
        rejections=json.loads(r["rejections"] or "{}"),
        metrics=metrics,
        opened_unix=r["opened_at"],
        closed_unix=r["closed_at"],
        weight_sum=r["weight_sum"],
    )
