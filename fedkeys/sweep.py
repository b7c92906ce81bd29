"""Grid sweeps of ``fedkeys sim run``: the pure parts (grid, point names, the table).

Reddi et al. 2021 ("Adaptive Federated Optimization", §5 and App. D) choose
each recipe from a small grid of learning rates by validation accuracy; the
same is how clients per round and local epochs are picked for a population
(McMahan et al. 2017 §3 sweep C and E). ``fedkeys sim sweep`` runs every point
of a grid of ``sim run`` flags into its own run folder, then ranks the points
by their last *validation* recall@1, never by the test users', so that the
test figures stay an unbiased estimate of the chosen recipe.

    >>> grid_points({"clients_per_round": [10, 50], "local_epochs": [1, 2]})[1]
    {'clients_per_round': 10, 'local_epochs': 2}
    >>> point_label({"clients_per_round": 10, "local_epochs": 2})
    'clients_per_round=10,local_epochs=2'

This module imports neither TensorFlow nor the CLI; ``fedkeys._cli_sim``
composes it with ``run_simulation``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from fedkeys_errors import FedkeysError

__all__ = [
    "SweepError",
    "SweepResult",
    "grid_points",
    "last_validation",
    "parse_grid",
    "point_label",
    "rank",
    "sweep_table",
]


class SweepError(FedkeysError):
    """A ``--grid`` specification is malformed; the message quotes it."""


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["client-lr=0.2,0.5", "local_epochs=1,2"]`` -> ``{"client_lr": ["0.2", "0.5"], "local_epochs": ["1", "2"]}``.

    A flag may be written with dashes or underscores; values stay text (the
    caller converts them with the flag's own type). Each flag once, each value
    once, at least one value.
    """
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values_text = spec.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        values = [v.strip() for v in values_text.split(",")]
        if not sep or not name or not all(values):
            raise SweepError(f"--grid {spec!r}: expected FLAG=V1,V2,... (e.g. clients-per-round=10,50)")
        if name in grid:
            raise SweepError(f"--grid {spec!r}: {name} is already swept")
        if len(set(values)) != len(values):
            raise SweepError(f"--grid {spec!r}: a value is repeated")
        grid[name] = values
    if not grid:
        raise SweepError("--grid: give at least one FLAG=V1,V2,...")
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first flag varying slowest (``itertools.product`` order)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def point_label(point: Mapping[str, Any]) -> str:
    """The point's run-folder name: ``name=value`` pairs in grid order, comma-separated."""
    return ",".join(f"{name}={value}" for name, value in point.items())


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """One point's outcome: the last validation recall@1 of its metrics.csv and its test metrics."""

    label: str
    val_recall_at_1: float
    test_recall_at_1: float
    test_perplexity: float
    tokens: int
    wall_time_s: float


def last_validation(rows: Sequence[Mapping[str, str]]) -> float:
    """The last evaluated round's validation recall@1 in ``metrics.csv`` rows (NaN when none was evaluated)."""
    scored = [r["val_recall_at_1"] for r in rows if r.get("val_recall_at_1")]
    return float(scored[-1]) if scored else float("nan")


def rank(results: Sequence[SweepResult]) -> list[SweepResult]:
    """Best validation recall@1 first; NaN (never evaluated) last; ties keep grid order."""
    return sorted(results, key=lambda r: (r.val_recall_at_1 != r.val_recall_at_1, -r.val_recall_at_1))


def sweep_table(results: Sequence[SweepResult]) -> str:
    """A markdown table of ``rank(results)``."""
    lines = [
        "| point | validation recall@1 | test recall@1 | test perplexity | client tokens (one epoch) | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rank(results):
        lines.append(
            f"| {r.label} | {r.val_recall_at_1:.4f} | {r.test_recall_at_1:.4f} | {r.test_perplexity:.1f} | "
            f"{r.tokens:,} | {r.wall_time_s:,.0f} |"
        )
    return "\n".join(lines)
