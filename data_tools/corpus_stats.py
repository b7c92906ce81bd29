"""Summary numbers and the words-per-user histogram of a prepared corpus.

Federated data is very unbalanced (a few users type most of the words), so
the distribution of words per user is reported as quantiles and plotted on
a log axis: it decides how many clients a round can usefully sample and
how much a single client can dominate an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["QUANTILES", "plot_words_per_user", "words_per_user_quantiles"]

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p10", 0.10),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p99", 0.99),
)


def words_per_user_quantiles(counts: Sequence[int]) -> dict[str, float]:
    """``p10 .. p99`` (linear interpolation) and ``max`` of per-user word counts."""
    if not counts:
        return {**{name: 0.0 for name, _ in QUANTILES}, "max": 0.0}
    values = np.asarray(counts, dtype=np.float64)
    result = {name: round(float(np.quantile(values, q)), 2) for name, q in QUANTILES}
    result["max"] = float(values.max())
    return result


def plot_words_per_user(counts: Sequence[int], path: Path, *, corpus: str, min_words: int) -> None:
    """Save a log-x histogram of words per user, marking the ``min_words`` cut.

    ``counts`` should include dropped users so the cut is visible.  Uses the
    Agg canvas directly (no pyplot), so it works headless and thread-safely.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray([c for c in counts if c > 0], dtype=np.float64)
    figure = Figure(figsize=(7, 4.5), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if values.size:
        top = max(float(values.max()), 10.0)
        bins = np.logspace(0, np.log10(top) + 0.01, 50)
        axes.hist(values, bins=bins.tolist(), color="#4c72b0")
    if min_words > 0:
        axes.axvline(min_words, color="#c44e52", linestyle="--", label=f"min_words = {min_words}")
        axes.legend()
    axes.set_xscale("log")
    axes.set_xlabel("words per user (log scale)")
    axes.set_ylabel("users")
    axes.set_title(f"Words per user - {corpus} ({len(counts)} users before the cut)")
    figure.savefig(path, dpi=100)
