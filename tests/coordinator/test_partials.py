"""coordinator.partials: in-memory round sums of several coordinator processes, gathered sealed, on one database.

Two ``Coordinator`` instances on one database file play two processes (each has its own
``RoundPartials`` owner and memory); a shared fake clock drives the ticks and the lease.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from coordinator_fixtures import TRAIN_TFLITE, Clock, initial_weights, manifest_json

from coordinator import Admin, Coordinator, Database
from coordinator.db import partials
from coordinator.enrollment import Enrollment, EnrollmentConfig
from coordinator.metrics import Metrics
from coordinator.pace import PaceConfig
from coordinator.partials import RoundPartials
from coordinator.sealing import SealError, new_private_key, open_sealed
from wire.protocol import Assignment, CheckinRequest, TaskCreate
from wire.update import decode_update, decode_weights, encode_update, encode_weights

GOAL = 4


def _task(db: Database, clock: Clock, codec: str, goal: int = GOAL) -> None:
    admin = Admin(db, clock=clock)
    admin.put_blob(TRAIN_TFLITE)
    plan = admin.put_blob(manifest_json()).sha256
    ckpt = admin.put_blob(encode_weights(initial_weights())).sha256
    create = {"population": "p", "plan_sha256": plan, "checkpoint_sha256": ckpt, "goal_count": goal}
    admin.create_task(TaskCreate.model_validate(create | {"over_selection": 2.0, "codec": codec, "max_rows": 8}))


_KEY = os.urandom(32)  # one enrollment secret for every "process" of a test, as for real workers


def _enrollment() -> Enrollment:
    return Enrollment(_KEY, EnrollmentConfig(None, 10**6, 1e6, 86400.0, 0.0))


def _process(db: Database, clock: Clock, partials: RoundPartials | None = None) -> Coordinator:
    return Coordinator(
        db,
        clock=clock,
        metrics=Metrics(),
        pace=PaceConfig(),
        enrollment=_enrollment(),
        partials=RoundPartials(lease_seconds=10) if partials is None else partials,
    )


def checkin_request(coord: Coordinator, codec: str) -> CheckinRequest:
    """A check-in of a freshly enrolled device (one device a session)."""
    credential = coord.enrollment.issue("p", coord.clock())[0]
    return CheckinRequest(
        client_version="t", runtime="t", codecs=[codec], example_count=5, token_count=100, credential=credential
    )


def _delta(i: int, salt: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng([salt, i])
    return [(0.1 * rng.normal(size=w.shape)).astype(np.float32) for w in initial_weights()]


def _upload(coord: Coordinator, i: int, codec: str, *, salt: int = 5, base_weight: float = 1.0) -> tuple[bytes, float]:
    """Device ``i`` checks in and uploads ``_delta(i, salt)`` with weight ``base_weight + i``; (blob, weight)."""
    a = asyncio.run(coord.checkin("p", checkin_request(coord, codec))).assignment
    assert isinstance(a, Assignment)
    weight = base_weight + i
    blob = encode_update(
        _delta(i, salt), codec=codec, round=a.round, base_version=a.model_version, weight=weight, seed=a.seed,
        rotation_seed=a.rotation_seed,
    )  # fmt: skip
    coord.upload(a.session_id, a.upload_token, blob)
    return blob, weight


def _version(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT model_version FROM fk_tasks").scalar_one())


def _rows(db: Database) -> list[sa.Row]:
    with db.read() as conn:
        return list(conn.execute(sa.select(partials).order_by(partials.c.owner)).all())


def _states(db: Database) -> list[str]:
    with db.read() as conn:
        return [str(s) for s in conn.exec_driver_sql("SELECT state FROM fk_rounds ORDER BY number").scalars()]


def _model(db: Database, version: int) -> list[np.ndarray]:
    return decode_weights(Admin(db, clock=time.time).model_blob("p", version))


@pytest.mark.parametrize("codec", ["float32", "quant8"])
def test_partials_two_processes_commit_the_exact_weighted_mean(db: Database, codec: str) -> None:
    clock = Clock()
    _task(db, clock, codec)
    a, b = _process(db, clock), _process(db, clock)
    uploads = [_upload(b if i % 2 else a, i, codec) for i in range(GOAL)]  # b gets the last: it reaches the goal
    assert _version(db) == 0  # b claimed the round, a still holds its half in memory
    rows = {r.owner: r for r in _rows(db)}
    assert (rows[a.partials.owner]._mapping["count"], rows[a.partials.owner].sealed) == (2, None)
    assert rows[b.partials.owner].public_key is not None
    a.tick()  # a seals its partial to b's key
    assert {r.owner: r.sealed is not None for r in _rows(db)} == {a.partials.owner: True, b.partials.owner: False}
    assert _version(db) == 0
    b.tick()  # b opens it, checks the counts, unrotates once and commits
    assert _version(db) == 1 and _rows(db) == []
    total = sum(w for _, w in uploads)
    decoded = [decode_update(blob).decode_tensors() for blob, _ in uploads]  # each update on its own, the slow way
    for t, (w0, w1) in enumerate(zip(initial_weights(), _model(db, 1), strict=True)):
        mean = sum(w * d[t].astype(np.float64) for (_, w), d in zip(uploads, decoded, strict=True)) / total
        np.testing.assert_allclose(w1, (w0 + mean).astype(np.float32), rtol=0, atol=1e-6)


def test_partials_one_process_commits_at_the_goal_upload(db: Database) -> None:
    clock = Clock()
    _task(db, clock, "quant8")
    a = _process(db, clock)
    for i in range(GOAL):
        _upload(a, i, "quant8")
    assert _version(db) == 1 and _states(db) == ["committed", "selecting"]


def test_partials_dead_process_round_abandoned_after_the_lease(db: Database) -> None:
    clock = Clock()
    _task(db, clock, "float32")
    a, b = _process(db, clock), _process(db, clock)
    _upload(a, 0, "float32")
    _upload(b, 1, "float32")
    del a  # killed: its partial is gone with its memory, its row stays
    clock.advance(9)
    b.tick()
    assert _states(db) == ["selecting"]  # within the lease: maybe just slow
    clock.advance(2)
    b.tick()
    assert _states(db) == ["abandoned", "selecting"] and _version(db) == 0


def test_partials_dead_claimer_round_abandoned_after_the_lease(db: Database) -> None:
    clock = Clock()
    _task(db, clock, "float32", goal=2)
    a, b = _process(db, clock), _process(db, clock)
    _upload(a, 0, "float32")
    _upload(b, 1, "float32")  # b reaches the goal and claims
    del b
    a.tick()  # a hands its partial over to a claimer that will never open it
    assert _states(db) == ["selecting"]  # due, but the claimer's lease has not run out
    clock.advance(11)
    a.tick()
    assert _states(db)[0] == "abandoned" and _version(db) == 0


def test_partials_sealed_row_opens_only_with_the_claimers_key(db: Database) -> None:
    clock = Clock()
    _task(db, clock, "float32", goal=2)
    a, b = _process(db, clock), _process(db, clock)
    blob, _ = _upload(a, 0, "float32")
    _upload(b, 1, "float32")
    a.tick()
    sealed = next(r.sealed for r in _rows(db) if r.owner == a.partials.owner)
    payload = decode_update(blob).values(0).tobytes()
    assert payload[:16] not in sealed  # ciphertext: the update's bytes do not show
    with pytest.raises(SealError):
        open_sealed(new_private_key(), sealed, f"round=1|owner={a.partials.owner}".encode())


def test_round_partials_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        RoundPartials(lease_seconds=0)
    with pytest.raises(ValueError, match="stripes"):
        RoundPartials(stripes=0)


def test_partials_commit_waits_for_a_counted_add_still_running(db: Database) -> None:
    """An upload counted (its transaction committed) but not yet added: the commit waits, it never loses it."""
    clock = Clock()
    _task(db, clock, "float32", goal=2)
    coord = _process(db, clock, RoundPartials(wait_seconds=0.2))
    _, w1 = _upload(coord, 0, "float32")
    release = threading.Event()
    real_add = coord.partials.add

    def slow_add(*args: Any) -> None:
        release.wait(30)
        real_add(*args)

    coord.partials.add = slow_add  # type: ignore[method-assign]
    uploader = threading.Thread(target=_upload, args=(coord, 1, "float32"))
    uploader.start()
    deadline = time.monotonic() + 30
    while _counted(db) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    coord.tick()  # the round is due, the add is pending: wait (0.2 s here), do not commit a partial sum
    assert _states(db) == ["selecting"] and _version(db) == 0
    release.set()
    uploader.join(30)  # its own goal tick commits once the add is in
    assert _version(db) == 1
    got = _model(db, 1)
    mean = [(w1 * a + 2.0 * b) / (w1 + 2.0) for a, b in zip(_delta(0), _delta(1), strict=True)]
    for w0, w, m in zip(initial_weights(), got, mean, strict=True):
        np.testing.assert_allclose(w, (w0 + m).astype(np.float32), rtol=0, atol=1e-6)


def _counted(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT received FROM fk_rounds").scalar_one())
