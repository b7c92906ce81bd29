"""Per-round records of a run: metrics.csv, TensorBoard, the recall plot.

``metrics.csv`` has one row per round (round, loss, train tokens, clients,
upload bytes, seconds, and the validation metrics in evaluated rounds). On
resume, rows after the restored round are dropped, so the file always
describes the state that was saved. ``tensorboard/`` gets every number of a
row as a scalar at step ``round``, written with TensorBoard's own record
writer and protos (:class:`ScalarEvents`), not TensorFlow's, so a process that
never imports TensorFlow (a deployment's log, ``fedkeys.deployed_log``) writes
the same files; ``tensorboard --logdir`` shows both side by side.
"""

from __future__ import annotations

import csv
import itertools
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

COLUMNS = (
    "round", "loss", "train_tokens", "clients", "eligible", "upload_bytes", "seconds", "client_lr", "server_lr",
    "val_recall_at_1", "val_recall_at_3", "val_recall_at_1_no_oov", "val_recall_at_3_no_oov",
    "val_perplexity", "val_tokens",
)  # fmt: skip


_EVENT_FILES: Iterator[int] = itertools.count()


class ScalarEvents:
    """A TensorBoard event file of scalars, written without TensorFlow.

    TensorBoard's ``EventFileWriter`` opens its file through ``tf.io.gfile``,
    which imports TensorFlow whenever it is installed; its ``RecordWriter``
    (TFRecord framing and checksums) and event protos do not, so this class
    composes those: a ``brain.Event:2`` header, then one event per step whose
    values are ``scalar_pb`` summaries, what ``tf.summary.scalar`` writes.
    """

    def __init__(self, logdir: Path) -> None:
        from tensorboard.compat.proto import event_pb2

        logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_EVENT_FILES)}"
        self.path = logdir / name
        self.path.write_bytes(b"")
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add(self, step: int, values: Mapping[str, float]) -> None:
        """The scalars ``values`` (tag -> number) at ``step``, flushed to disk."""
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        summary = summary_pb2.Summary()
        for tag, value in values.items():
            summary.value.extend(scalar_pb(tag, float(value)).value)
        self._write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: Any) -> None:
        from tensorboard.summary.writer.record_writer import RecordWriter

        with self.path.open("ab") as f:
            RecordWriter(f).write(event.SerializeToString())


class RunLog:
    """``metrics.csv`` (the named ``columns``) and ``tensorboard/`` of a run, a row per round."""

    def __init__(self, out: Path, resume_after: int = 0, columns: Sequence[str] = COLUMNS) -> None:
        self._path = out / "metrics.csv"
        self._columns = tuple(columns)
        kept = [r for r in _read(self._path) if int(r["round"]) <= resume_after] if resume_after else []
        with self._path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(kept)
        self._events = ScalarEvents(out / "tensorboard")

    def append(self, row: dict[str, Any]) -> None:
        with self._path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns).writerow({k: row.get(k, "") for k in self._columns})
        numbers = {k: v for k, v in row.items() if k != "round" and isinstance(v, int | float)}
        self._events.add(int(row["round"]), numbers)

    def rows(self) -> list[dict[str, str]]:
        return _read(self._path)


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plot_recall(rows: list[dict[str, str]], path: Path, references: dict[str, float], title: str) -> None:
    """Validation recall@1 and @3 against round, with reference lines (e.g. central, n-gram)."""
    evaluated = [r for r in rows if r.get("val_recall_at_1")]
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for key, style in (("val_recall_at_1", "o-"), ("val_recall_at_3", "s--")):
        axes.plot(
            [int(r["round"]) for r in evaluated],
            [float(r[key]) for r in evaluated],
            style,
            label=key.removeprefix("val_").replace("_at_", "@"),
        )
    for i, (name, value) in enumerate(sorted(references.items())):
        axes.axhline(value, color=f"C{i + 2}", linestyle=":", label=name)
    axes.set_xlabel("round")
    axes.set_ylabel("recall on validation users")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
