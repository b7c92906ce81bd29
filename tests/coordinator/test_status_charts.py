"""coordinator/status_charts.py: ticks, units and the SVG each chart draws."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from status_fixtures import T0, stalled_run

from coordinator.status_charts import (
    Chart,
    Series,
    format_number,
    human_bytes,
    nice_ticks,
    render_svg,
    round_charts,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0, 13, [0, 5, 10, 15]),
        (0, 0.031, [0, 0.01, 0.02, 0.03, 0.04]),
        (7.2, 8.5, [7.0, 7.5, 8.0, 8.5]),
        (0, 0, [0, 0.5, 1.0]),
        (3, 3, [2.6, 2.8, 3.0, 3.2, 3.4]),
    ],
)
def test_nice_ticks_cover_the_range_with_round_steps(lo: float, hi: float, ticks: list[float]) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(ticks)


def test_nice_ticks_of_counts_step_by_whole_numbers() -> None:
    assert nice_ticks(0, 2, integer=True) == [0, 1, 2]
    assert nice_ticks(0, 2) == [0, 0.5, 1.0, 1.5, 2.0]


def test_nice_ticks_refuses_infinite_range() -> None:
    with pytest.raises(ValueError, match=r"finite, got \[0, inf\]"):
        nice_ticks(0, float("inf"))


@pytest.mark.parametrize(
    ("count", "shown"),
    [(512, "512 B"), (3_123_000, "3.1 MB"), (1000, "1.0 kB"), (2.5e12, "2.5 TB"), (9e15, "9000.0 TB")],
)
def test_human_bytes_uses_si_units(count: float, shown: str) -> None:
    assert human_bytes(count) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(3_123_000, "3.12M"), (25_000, "25k"), (8.523, "8.52"), (0.0312, "0.0312"), (7, "7"),
                         (0.001, "1.0e-03"), (0, "0"), (250.4, "250")],
)  # fmt: skip
def test_format_number_never_prints_scientific_for_ordinary_values(value: float, shown: str) -> None:
    assert format_number(value) == shown


def test_round_charts_one_chart_per_measure() -> None:
    _, rounds = stalled_run()
    charts = round_charts(rounds, now=T0 + 260)
    assert [c.title for c in charts] == [
        "Participation",
        "Rejected uploads by reason",
        "Round duration",
        "loss before and after local training",
        "recall@1 before and after local training",
    ]
    participation, rejections, duration, loss, recall = charts
    assert [s.name for s in participation.series] == ["assigned", "received", "aborted", "goal"]
    assert participation.series[0].bars and participation.series[0].points[3] == (4, 13)
    assert rejections.series[0].points == ((1, 0), (2, 0), (3, 0), (4, 2), (5, 0))
    assert duration.series[0].points == ((1, 20), (2, 20), (3, 20), (4, 120), (5, 15))
    assert duration.series[0].point_colors == ("#2a7", "#2a7", "#2a7", "#999", "#27c")
    assert loss.series[0].points == ((1, 8.0), (2, 7.5), (3, 7.0))  # committed rounds only
    assert (loss.y_from_zero, loss.integer, loss.note) == (False, False, "")
    assert (participation.integer, rejections.integer) == (True, True)
    assert round_charts(rounds[3:4], now=T0)[4].note == "no recall@1 reported yet"
    assert [y for _, y in recall.series[1].points] == pytest.approx([0.04, 0.07, 0.1])


def test_render_svg_has_axes_ticks_labels_and_a_legend() -> None:
    chart = Chart("Loss", "round", "loss", (Series("before", "#f00", ((1, 8.5), (2, 7.5))),), y_from_zero=False)
    svg = ET.fromstring(str(render_svg(chart)))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts[:2] == ["Loss", "before"]  # title, legend
    assert {"7.5", "8", "8.5", "1", "2", "round", "loss"} <= set(texts)
    assert len(list(svg.iter(f"{SVG}polyline"))) == 1 and len(list(svg.iter(f"{SVG}circle"))) == 2
    assert svg.find(f"{SVG}path") is not None  # the axes


def test_render_svg_escapes_names_and_says_when_empty() -> None:
    chart = Chart("<b>", "round", "n", (), note="none rejected")
    svg = str(render_svg(chart))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert re.search(r">none rejected</text>", svg)


def test_render_svg_stacks_bars() -> None:
    chart = Chart("R", "round", "n", (Series("a", "#f00", ((1, 2),), True), Series("b", "#00f", ((1, 3),), True)))
    rects = [r for r in ET.fromstring(str(render_svg(chart))).iter(f"{SVG}rect") if r.get("fill") in ("#f00", "#00f")]
    bars = [r for r in rects if r.find(f"{SVG}title") is not None]
    assert len(bars) == 2
    a, b = bars
    assert float(b.get("y", "0")) + float(b.get("height", "0")) == pytest.approx(float(a.get("y", "0")), abs=0.11)
