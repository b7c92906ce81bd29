"""The demo's one-page HTML report, rendered from ``templates/demo_report.html.j2`` with jinja2.

The page is self-contained: every plot is embedded as a ``data:`` URI (the
PNG files stay beside it too), so ``report.html`` alone can be mailed or
attached. The template is package data (inside ``fedkeys/``), so an installed
fedkeys renders the same page; values are auto-escaped.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from coordinator.round_story import explain_round
from fedkeys_errors import FedkeysError
from wire.protocol import RoundInfo

REPORT_FILE = "report.html"
_TEMPLATE = "demo_report.html.j2"


class ReportError(FedkeysError, ValueError):
    """A report that cannot be rendered as asked (e.g. a plot file to embed is missing)."""


def data_uri(path: Path) -> str:
    """``data:image/png;base64,...`` of the file at ``path``, for a page that must stand alone."""
    kind = mimetypes.guess_type(path.name)[0]
    if kind is None:
        raise ReportError(f"{path}: cannot tell the media type of this file to embed it")
    if not path.is_file():
        raise ReportError(f"{path}: the plot to embed in {REPORT_FILE} is missing")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def stalled_round_captions(rounds: Sequence[Mapping[str, Any]], span_seconds: float | None = None) -> list[str]:
    """One sentence per round that did not commit (``coordinator.round_story.explain_round``).

    ``rounds`` are the admin API's round records (``RoundInfo`` as JSON);
    ``span_seconds`` is the fleet's whole run, so a caption says how much of
    it a stalled round took.
    """
    infos = [RoundInfo.model_validate(r) for r in rounds]
    return [explain_round(i, span_seconds=span_seconds) for i in infos if i.state != "committed"]


def render_report(out: Path, context: dict[str, Any]) -> Path:
    """Write ``out/report.html`` from ``context`` (the template's variables) and return its path.

    The template's ``embed('recall.png')`` inlines ``out/recall.png``.
    """
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fedkeys", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty cell
    )
    environment.globals["embed"] = lambda name: data_uri(out / name)
    path = out / REPORT_FILE
    path.write_text(environment.get_template(_TEMPLATE).render(**context), encoding="utf-8")
    return path
