"""The HTML status page: rounds, participation and the model's metrics across versions.

Metrics come from device reports (means per round of e.g. ``loss_before`` and
``loss_after``: the loss of the round's model on the device's data before and
after local training), drawn per committed version as a small inline SVG.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jinja2

from wire.protocol import RoundInfo, TaskStatus

_TEMPLATES = Path(__file__).parent / "templates"
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclasses.dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: str  # SVG polyline points


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True)


def metric_series(rounds: list[RoundInfo], width: int = 600, height: int = 160) -> tuple[list[Series], float, float]:
    """Committed rounds' metric means as polylines over the committed version (oldest left)."""
    committed = sorted((r for r in rounds if r.state == "committed"), key=lambda r: r.round)
    names = sorted({k for r in committed for k in r.metrics if k.startswith(("loss", "recall", "accuracy"))})
    values = [r.metrics[n] for r in committed for n in names if n in r.metrics]
    if len(committed) < 1 or not values:
        return [], 0.0, 0.0
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = width / max(1, len(committed) - 1)
    series = []
    for i, name in enumerate(names):
        pts = [
            f"{j * step:.1f},{height - (r.metrics[name] - lo) / span * height:.1f}"
            for j, r in enumerate(committed)
            if name in r.metrics
        ]
        series.append(Series(name, _PALETTE[i % len(_PALETTE)], " ".join(pts)))
    return series, lo, hi


def render_status(env: jinja2.Environment, populations: list[tuple[TaskStatus, list[RoundInfo]]]) -> str:
    charts = [metric_series(rounds) for _, rounds in populations]
    return env.get_template("status.html").render(
        populations=list(zip(populations, charts, strict=True)),
        now=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        fmt_time=lambda t: "" if t is None else time.strftime("%H:%M:%S", time.gmtime(t)),
    )
