"""The HTML status page: each task's state, one small chart per measure, and a round table.

Metrics come from device reports (means per round of e.g. ``loss_before`` and
``loss_after``: the loss of the round's model on the device's data before and
after local training). Charts are server-side SVG (``coordinator.status_charts``),
so the page needs no JavaScript and no CDN; bytes read as ``3.1 MB``, never
``3.123e+06``, and an abandoned round says why (``coordinator.round_story``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jinja2
from markupsafe import Markup

from coordinator.round_story import explain_round
from coordinator.status_charts import format_number, human_bytes, render_svg, round_charts
from wire.protocol import RoundInfo, TaskStatus

_TEMPLATES = Path(__file__).parent / "templates"
_SHOWN_APART = ("loss_before", "loss_after", "recall1_before", "recall1_after", "upload_bytes")


@dataclasses.dataclass(frozen=True)
class RoundRow:
    """One round as the table shows it: every cell already formatted."""

    round: int
    state: str
    version: str
    assigned: str
    received: str
    aborted: int
    reports: str
    rejections: str
    duration: str
    loss: str
    recall: str
    upload: str
    other_metrics: str
    story: str  # what happened, for a round that did not commit
    opened: str


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True)


def format_metric(name: str, value: float) -> str:
    """A device-reported metric mean for a cell: bytes human-readably, numbers without exponents."""
    return human_bytes(value) if name.endswith("bytes") else format_number(value)


def round_row(info: RoundInfo, now: float) -> RoundRow:
    m = info.metrics

    def before_after(before: str, after: str) -> str:
        if before not in m or after not in m:
            return ""
        return f"{format_number(m[before])} → {format_number(m[after])}"

    end = info.closed_unix if info.closed_unix is not None else now
    others = " ".join(f"{k}={format_metric(k, v)}" for k, v in sorted(m.items()) if k not in _SHOWN_APART)
    return RoundRow(
        round=info.round,
        state=info.state,
        version=str(info.model_version)
        + (f" → {info.committed_version}" if info.committed_version is not None else ""),
        assigned=f"{info.assigned} / {info.target}",
        received=f"{info.received} / {info.goal}",
        aborted=info.aborted,
        reports=f"{info.reports_completed} / {info.reports_failed}",
        rejections=" ".join(f"{k}: {v}" for k, v in sorted(info.rejections.items())),
        duration=f"{max(0.0, end - info.opened_unix):.0f} s" + ("" if info.closed_unix is not None else " (open)"),
        loss=before_after("loss_before", "loss_after"),
        recall=before_after("recall1_before", "recall1_after"),
        upload=human_bytes(m["upload_bytes"]) if "upload_bytes" in m else "",
        other_metrics=others,
        story="" if info.state == "committed" else explain_round(info, now=now),
        opened=time.strftime("%H:%M:%S", time.gmtime(info.opened_unix)),
    )


def render_status(
    env: jinja2.Environment,
    populations: list[tuple[TaskStatus, list[RoundInfo]]],
    now: float | None = None,
) -> str:
    now = time.time() if now is None else now
    tasks = [
        (
            status,
            [render_svg(chart) for chart in round_charts(rounds, now)] if rounds else list[Markup](),
            [round_row(r, now) for r in sorted(rounds, key=lambda r: -r.round)],
        )
        for status, rounds in populations
    ]
    return env.get_template("status.html").render(
        tasks=tasks, now=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    )
