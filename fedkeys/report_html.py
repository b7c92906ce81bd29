"""The demo's one-page HTML report, rendered from ``templates/demo_report.html.j2`` with jinja2.

The template is package data (inside ``fedkeys/``), so an installed fedkeys
renders the same page; values are auto-escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

REPORT_FILE = "report.html"
_TEMPLATE = "demo_report.html.j2"


def render_report(out: Path, context: dict[str, Any]) -> Path:
    """Write ``out/report.html`` from ``context`` (the template's variables) and return its path."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fedkeys", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty cell
    )
    path = out / REPORT_FILE
    path.write_text(environment.get_template(_TEMPLATE).render(**context), encoding="utf-8")
    return path
