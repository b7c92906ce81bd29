"""Issue 14.8's attack: an operator reads the SQLite files (main file and -wal) during and after a round.

Before ``coordinator.partials``, every upload rewrote a shard row of the float64 running sum, so the
WAL held the sum after one update, i.e. one device's weighted update. Now nothing about fewer than
``k`` (here the goal, 3) updates may be found: not an update's uploaded bytes, not ``delta`` or
``w * delta`` in float32 or float64, not the sum of any 1 or 2 of the updates (which is what a
difference of consecutive sum versions would give), in the clear or in the rotated domain. A
positive control writes one such vector into the same database and the scan finds it, so the scan
does see what reaches the files.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from coordinator_fixtures import Clock
from test_partials import _process, _task
from test_partials import _upload as _upload_one

from coordinator import Coordinator, Database
from wire.codec import dequantize
from wire.update import decode_update

K = 3


def _upload(coord: Coordinator, i: int, codec: str) -> tuple[bytes, float]:
    return _upload_one(coord, i, codec, salt=11, base_weight=2.0)


def _vectors(blob: bytes, weight: float) -> list[np.ndarray]:
    """What a sum of this update alone could look like: tensor 0 in the clear and in the rotated domain."""
    msg = decode_update(blob)
    delta = msg.decode_tensors()[0].ravel()
    out = [delta.astype(np.float64), weight * delta.astype(np.float64)]
    t = msg.tensors[0]
    if t.bits is not None:
        out.append(weight * dequantize(msg.levels(0), t.bits, t.lo, t.hi))  # the rotated-domain contribution
    return out


def _fingerprints(vector: np.ndarray) -> list[bytes]:
    """24-byte windows of the vector as float64 and as float32 (any one found on disk is a leak)."""
    out = []
    for dtype in ("<f8", "<f4"):
        raw = vector.astype(dtype).tobytes()
        out += [raw[j : j + 24] for j in range(0, len(raw) - 24, len(raw) // 3)]
    return out


def _leaks(files: list[bytes], uploads: list[tuple[bytes, float]]) -> list[str]:
    found = []
    for i, (blob, _) in enumerate(uploads):  # the uploaded bytes themselves
        msg = decode_update(blob)
        payload = msg.payload[msg.tensors[0].offset : msg.tensors[0].offset + msg.tensors[0].length]
        if any(payload[j : j + 12] in data for data in files for j in range(0, len(payload) - 12, 12)):
            found.append(f"payload of update {i}")
    per_update = [_vectors(blob, w) for blob, w in uploads]
    for size in range(1, K):  # sums of fewer than k updates, as float64 and float32
        for subset in itertools.combinations(range(len(uploads)), size):
            for form in range(len(per_update[0])):
                total = sum(per_update[i][form] for i in subset)
                assert isinstance(total, np.ndarray)
                if any(fp in data for data in files for fp in _fingerprints(total)):
                    found.append(f"form {form} of updates {subset}")
    return found


def _files(path: Path) -> list[bytes]:
    return [p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()]


@pytest.mark.parametrize(("codec", "processes"), [("float32", 1), ("quant8", 1), ("float32", 2), ("quant8", 2)])
def test_sum_on_disk_no_fewer_than_k_updates_readable(tmp_path: Path, codec: str, processes: int) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    db.create_schema()
    clock = Clock()
    _task(db, clock, codec, goal=K)
    coords = [_process(db, clock) for _ in range(processes)]
    uploads = []
    for i in range(K):
        uploads.append(_upload(coords[i % processes], i, codec))
        if i < K - 1:
            assert _leaks(_files(path), uploads) == []  # mid-round
    for coord in coords:
        coord.tick()  # hand over (two processes), then commit
    coords[0].tick()
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT model_version FROM fk_tasks").scalar_one() == 1
    files = _files(path)
    assert Path(f"{path}-wal").exists()  # the WAL is still there to read
    assert _leaks(files, uploads) == []
    # positive control: a sum of one update written to the same database is found by the same scan
    with db.write() as conn:
        conn.execute(sa.text("CREATE TABLE leak (v BLOB)"))
        conn.execute(sa.text("INSERT INTO leak VALUES (:v)"), {"v": _vectors(*uploads[0])[1].astype("<f8").tobytes()})
    assert _leaks(_files(path), uploads) == ["form 1 of updates (0,)"]
    db.dispose()
