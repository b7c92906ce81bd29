"""The demo report's PNG plots (matplotlib, Agg backend, no display needed).

- recall@1 on validation users against round, simulation and deployment, with
  the central and n-gram references as horizontal lines;
- bytes uploaded per deployed round;
- participation and eligibility over the emulated day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_DPI = 100


def plot_recall_by_round(
    path: Path,
    curves: Mapping[str, Mapping[int, float]],
    references: Mapping[str, float],
    *,
    ylabel: str = "recall@1 on validation users",
) -> None:
    """One line per curve (round -> value) and one dotted line per reference value."""
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for i, (name, points) in enumerate(curves.items()):
        rounds = sorted(points)
        axes.plot(rounds, [points[r] for r in rounds], "os^v"[i % 4] + "-", color=f"C{i}", label=name)
    for j, (name, value) in enumerate(references.items()):
        axes.axhline(value, color=f"C{len(curves) + j}", linestyle=":", label=name)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("round (model after that many rounds)")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)


def plot_upload_bytes(
    path: Path,
    bytes_by_round: Mapping[int, int],
    uploads_by_round: Mapping[int, int],
    states: Mapping[int, str] | None = None,
) -> None:
    """Bars of bytes uploaded in each deployed round (grey if the round did not commit), with the upload count."""
    states = states or {}
    figure = Figure(figsize=(7, 3.6))
    axes = figure.subplots()
    rounds = sorted(bytes_by_round)
    mib = [bytes_by_round[r] / 2**20 for r in rounds]
    colors = ["C1" if states.get(r, "committed") == "committed" else "0.6" for r in rounds]
    bars = axes.bar(rounds, mib, color=colors)
    for bar, r in zip(bars, rounds, strict=True):
        label = f"{uploads_by_round.get(r, 0)}" + (
            "" if states.get(r, "committed") == "committed" else f"\n{states[r]}"
        )
        axes.annotate(
            label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8
        )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("deployed round (number on a bar: uploads; grey: the round did not commit)")
    axes.set_ylabel("MiB uploaded")
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)


def plot_participation(
    path: Path,
    hours: Sequence[int],
    uploads: Sequence[int],
    interrupted: Sequence[int],
    eligible_fraction: Sequence[float],
    start_label: str,
) -> None:
    """Uploads and interruptions per emulated hour (bars) and the share of eligible phones (line)."""
    figure = Figure(figsize=(7, 3.8))
    axes = figure.subplots()
    width = 0.4
    axes.bar([h - width / 2 for h in hours], uploads, width, color="C0", label="uploads")
    axes.bar([h + width / 2 for h in hours], interrupted, width, color="C3", label="interrupted")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"emulated hour since {start_label}")
    axes.set_ylabel("sessions")
    share = axes.twinx()
    share.plot(list(hours), [100 * f for f in eligible_fraction], "k.-", label="eligible phones (%)")
    share.set_ylabel("eligible phones (%)")
    share.set_ylim(0, 100)
    lines, labels = axes.get_legend_handles_labels()
    more, more_labels = share.get_legend_handles_labels()
    axes.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
