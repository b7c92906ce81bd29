"""fedkeys/report_html.py: a self-contained report page and the stalled-round captions."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from report_fixtures import write_report

from fedkeys.report_html import ReportError, data_uri, stalled_round_captions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_render_report_embeds_every_image_as_a_data_uri(tmp_path: Path) -> None:
    page = write_report(tmp_path / "demo").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 3
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert 'src="recall.png"' not in page


def test_render_report_shows_stalled_round_captions(tmp_path: Path) -> None:
    page = write_report(tmp_path / "demo", round_stories=["round 4 took 120 of 146 s: <stalled>"]).read_text()
    assert "<li>round 4 took 120 of 146 s: &lt;stalled&gt;</li>" in page
    assert "Rounds that did not commit" not in write_report(tmp_path / "plain").read_text()


def test_data_uri_missing_or_unknown_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"recall.png: the plot to embed in report.html is missing"):
        data_uri(tmp_path / "recall.png")
    with pytest.raises(ReportError, match="cannot tell the media type"):
        data_uri(tmp_path / "plot.zzz")


def test_stalled_round_captions_only_rounds_that_did_not_commit() -> None:
    record = {
        "round": 4, "state": "abandoned", "model_version": 3, "committed_version": None, "goal": 10, "target": 13,
        "assigned": 13, "received": 3, "aborted": 7, "reports_completed": 3, "reports_failed": 0,
        "rejections": {}, "metrics": {}, "opened_unix": 1000.0, "closed_unix": 1120.0, "weight_sum": 0.0,
    }  # fmt: skip
    committed = record | {"round": 3, "state": "committed", "committed_version": 3}
    assert stalled_round_captions([committed, record], span_seconds=146) == [
        "round 4 took 120 of 146 s: 7 of 13 assigned devices aborted; "
        "goal 10 not reached before the report deadline (3 received)"
    ]
