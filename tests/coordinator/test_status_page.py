"""coordinator/status_page.py: the round table's cells and the rendered page."""

from __future__ import annotations

from status_fixtures import T0, round_info, stalled_run

from coordinator.status_page import environment, format_metric, render_status, round_row


def test_round_row_formats_every_cell() -> None:
    row = round_row(round_info(2), now=T0 + 500)
    assert (row.version, row.assigned, row.received, row.reports, row.duration) == (
        "1 → 2", "13 / 13", "10 / 10", "10 / 0", "20 s",
    )  # fmt: skip
    assert (row.loss, row.recall, row.upload, row.other_metrics, row.story) == (
        "7.5 → 7.2", "0.06 → 0.07", "3.1 MB", "tokens=250", "",
    )  # fmt: skip


def test_round_row_of_an_open_and_an_abandoned_round() -> None:
    _, rounds = stalled_run()
    stalled, open_round = round_row(rounds[3], now=T0 + 260), round_row(rounds[4], now=T0 + 260)
    assert stalled.rejections == "bad_norm: 2" and stalled.loss == ""
    assert stalled.story == (
        "round 4 took 120 s: 7 of 13 assigned devices aborted; 2 uploads rejected (bad_norm: 2); "
        "goal 10 not reached before the report deadline (3 received)"
    )
    assert open_round.duration == "15 s (open)"


def test_format_metric_bytes_are_human_readable() -> None:
    assert (format_metric("upload_bytes", 3.123e6), format_metric("raw_bytes", 512.0)) == ("3.1 MB", "512 B")
    assert format_metric("loss_after", 8.4567) == "8.46"


def test_render_status_has_five_charts_and_a_row_per_round() -> None:
    page = render_status(environment(), [stalled_run()], now=T0 + 260)
    assert page.count('<svg class="chart"') == 5
    assert page.count('<span class="state ') == 5
    assert "3.1 MB" in page and "e+06" not in page
    assert "bad_norm: 2" in page and "goal 10 not reached before the report deadline" in page
    assert page.index("<td>5</td>") < page.index("<td>1</td>")  # newest round first


def test_render_status_without_populations_says_how_to_start() -> None:
    assert "fedkeys admin create-task" in render_status(environment(), [], now=T0)
