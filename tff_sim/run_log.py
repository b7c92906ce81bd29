"""Per-round records of a simulation: metrics.csv, TensorBoard, the recall plot.

``metrics.csv`` has one row per round (round, loss, train tokens, clients,
upload bytes, seconds, and the validation metrics in evaluated rounds). On
resume, rows after the restored round are dropped, so the file always
describes the state that was saved.
"""

from __future__ import annotations

import csv
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


class RunLog:
    def __init__(self, out: Path, resume_after: int = 0) -> None:
        self._path = out / "metrics.csv"
        kept = [r for r in _read(self._path) if int(r["round"]) <= resume_after] if resume_after else []
        with self._path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(str(out / "tensorboard"))

    def append(self, row: dict[str, Any]) -> None:
        with self._path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS).writerow({k: row.get(k, "") for k in COLUMNS})
        import tensorflow as tf

        with self._writer.as_default(step=int(row["round"])):
            for key, value in row.items():
                if key != "round" and isinstance(value, int | float):
                    tf.summary.scalar(key, value)
        self._writer.flush()

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
