"""Small server-side SVG charts for the status page: one measure a chart, each with axes, ticks and labels.

No JavaScript and nothing from a CDN, so the page works on an air-gapped
coordinator. :func:`round_charts` turns the rounds into the page's five
charts (participation, rejections by reason, round duration, loss and recall
before and after local training); :func:`render_svg` draws one
:class:`Chart`; :func:`nice_ticks` and :func:`human_bytes` are the pure
helpers with exact tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from wire.protocol import RoundInfo

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
_W, _H = 330, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 10, 40, 34
_Scale = Callable[[float], float]  # data coordinate -> pixel
_STATE_COLOR = {"committed": "#2a7", "abandoned": "#999", "selecting": "#27c", "reporting": "#27c"}


@dataclasses.dataclass(frozen=True)
class Series:
    """One named series: points (x, y); drawn as a line, or as bars stacked on the chart's earlier bars."""

    name: str
    color: str
    points: tuple[tuple[float, float], ...]
    bars: bool = False
    dashed: bool = False
    point_colors: tuple[str, ...] = ()  # per-bar colours (e.g. by round state); ``color`` when empty


@dataclasses.dataclass(frozen=True)
class Chart:
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    y_from_zero: bool = True
    integer: bool = False  # a count: integer ticks
    note: str = ""  # shown under the chart when the chart has no data or needs a key


def nice_ticks(lo: float, hi: float, count: int = 4, *, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]: a step of 1, 2 or 5 times a power of ten, about ``count`` steps.

    ``integer``: counts (devices, uploads), so the step is at least 1.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi, lo = (hi + 1.0, lo) if lo == 0 else (hi + abs(hi) * 0.1, lo - abs(lo) * 0.1)
    raw = (hi - lo) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw * (1 - 1e-9))
    step = max(step, 1.0) if integer else step
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def human_bytes(count: float) -> str:
    """``3.1 MB`` for 3_123_000 (SI units, as network rates are quoted); ``512 B`` below a kilobyte."""
    if not math.isfinite(count):
        return str(count)
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_number(value: float) -> str:
    """A tick or cell value: ``0.031``, ``8.52``, ``1.2k``, ``3.1M``; never exponent notation."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return "0" if value == 0 else f"{value:.1e}"


def round_charts(rounds: Sequence[RoundInfo], now: float) -> list[Chart]:
    """The page's charts for one task's rounds (any order), x = round number."""
    ordered = sorted(rounds, key=lambda r: r.round)
    committed = [r for r in ordered if r.state == "committed"]
    return [
        _participation(ordered),
        _rejections(ordered),
        _durations(ordered, now),
        _before_after(committed, "loss", "loss_before", "loss_after", "mean loss on the device's data"),
        _before_after(committed, "recall@1", "recall1_before", "recall1_after", "mean recall@1 on the device"),
    ]


def _participation(rounds: Sequence[RoundInfo]) -> Chart:
    def line(name: str, color: str, values: list[int], dashed: bool = False, bars: bool = False) -> Series:
        points = tuple((r.round, v) for r, v in zip(rounds, values, strict=True))
        return Series(name, color, points, bars=bars, dashed=dashed)

    return Chart(
        "Participation",
        "round",
        "devices",
        (
            line("assigned", "#aec7e8", [r.assigned for r in rounds], bars=True),  # bars: visible under "received"
            line("received", PALETTE[2], [r.received for r in rounds]),
            line("aborted", PALETTE[1], [r.aborted for r in rounds]),
            line("goal", "#555", [r.goal for r in rounds], dashed=True),
        ),
        integer=True,
    )


def _rejections(rounds: Sequence[RoundInfo]) -> Chart:
    reasons = sorted({k for r in rounds for k in r.rejections})
    series = tuple(
        Series(reason, PALETTE[i % len(PALETTE)], tuple((r.round, r.rejections.get(reason, 0)) for r in rounds), True)
        for i, reason in enumerate(reasons)
    )
    note = "" if reasons else "none rejected"
    return Chart("Rejected uploads by reason", "round", "uploads", series, integer=True, note=note)


def _durations(rounds: Sequence[RoundInfo], now: float) -> Chart:
    ends = [r.closed_unix if r.closed_unix is not None else now for r in rounds]
    points = tuple((r.round, max(0.0, end - r.opened_unix)) for r, end in zip(rounds, ends, strict=True))
    colors = tuple(_STATE_COLOR[r.state] for r in rounds)
    return Chart(
        "Round duration",
        "round",
        "seconds",
        (Series("duration", "#2a7", points, bars=True, point_colors=colors),),
        note="green committed, grey abandoned, blue still open",
    )


def _before_after(rounds: Sequence[RoundInfo], measure: str, before: str, after: str, ylabel: str) -> Chart:
    series = tuple(
        Series(label, color, tuple((r.round, r.metrics[key]) for r in rounds if key in r.metrics))
        for label, key, color in (
            ("before training", before, PALETTE[1]),
            ("after training", after, PALETTE[0]),
        )
    )
    has_data = any(s.points for s in series)
    note = "" if has_data else f"no {measure} reported yet"
    return Chart(
        f"{measure} before and after local training", "committed round", ylabel, series, y_from_zero=False, note=note
    )


def render_svg(chart: Chart, width: int = _W, height: int = _H) -> Markup:
    """The chart as an inline ``<svg>`` (title, legend, y ticks with grid, integer round ticks, axis labels)."""
    xs = [x for s in chart.series for x, _ in s.points]
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(chart.title)}</title>',
        f'<text x="{_LEFT}" y="14" class="t">{escape(chart.title)}</text>',
    ]
    parts.extend(_legend(chart))
    if not xs:
        note = escape(chart.note)
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="n">{note}</text>')
        return Markup("".join(parts) + "</svg>")
    x0, x1 = min(xs) - 0.5, max(xs) + 0.5
    yticks = _y_ticks(chart)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - (y - yticks[0]) / (yticks[-1] - yticks[0]) * plot_h

    for tick in yticks:
        y = py(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{format_number(tick)}</text>')
    for x in _x_ticks(min(xs), max(xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{_TOP + plot_h + 13}" text-anchor="middle">{x}</text>')
    parts.append(f'<path d="M{_LEFT},{_TOP} V{_TOP + plot_h} H{width - _RIGHT}" class="a"/>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="l">{escape(chart.xlabel)}</text>'
    )
    parts.append(
        f'<text transform="translate(11,{_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" class="l">'
        f"{escape(chart.ylabel)}</text>"
    )
    parts.extend(_bars(chart.series, px, py, plot_w / (x1 - x0)))
    parts.extend(_lines(chart.series, px, py))
    return Markup("".join(parts) + "</svg>")


def _y_ticks(chart: Chart) -> list[float]:
    stacked: dict[float, float] = {}
    values = []
    for s in chart.series:
        for x, y in s.points:
            if s.bars:
                stacked[x] = stacked.get(x, 0.0) + y
            else:
                values.append(y)
    values.extend(stacked.values())
    lo, hi = min(values), max(values)
    return nice_ticks(0.0 if chart.y_from_zero else lo, hi, integer=chart.integer)


def _x_ticks(first: float, last: float) -> list[int]:
    step = max(1, math.ceil((last - first + 1) / 8))
    return list(range(int(first), int(last) + 1, step))


def _legend(chart: Chart) -> list[str]:
    series = chart.series
    if len(series) == 1 and series[0].point_colors:  # one bar series coloured by state: the note is the key
        return [f'<text x="{_LEFT}" y="30">{escape(chart.note)}</text>']
    parts, x = [], float(_LEFT)
    for s in series:
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        mark = (
            f'<rect x="{x:.0f}" y="21" width="9" height="9" fill="{s.color}"/>'
            if s.bars
            else f'<line x1="{x:.0f}" x2="{x + 12:.0f}" y1="26" y2="26" stroke="{s.color}" stroke-width="2"{dash}/>'
        )
        parts.append(f'{mark}<text x="{x + 15:.0f}" y="30">{escape(s.name)}</text>')
        x += 22 + 5.6 * len(s.name)
    return parts


def _bars(series: Sequence[Series], px: _Scale, py: _Scale, unit: float) -> list[str]:
    parts: list[str] = []
    base: dict[float, float] = {}
    width = max(2.0, 0.7 * unit)
    for s in (s for s in series if s.bars):
        colors = s.point_colors or (s.color,) * len(s.points)
        for (x, y), color in zip(s.points, colors, strict=True):
            if y <= 0:
                continue
            bottom = base.get(x, 0.0)
            top = py(bottom + y)
            parts.append(
                f'<rect x="{px(x) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
                f'height="{py(bottom) - top:.1f}" fill="{color}"><title>{escape(s.name)} round {x:g}: '
                f"{format_number(y)}</title></rect>"
            )
            base[x] = bottom + y
    return parts


def _lines(series: Sequence[Series], px: _Scale, py: _Scale) -> list[str]:
    parts = []
    for s in (s for s in series if not s.bars and s.points):
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        parts.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} points="{points}"/>')
        if not s.dashed:
            parts.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s.color}">'
                f"<title>{escape(s.name)} round {x:g}: {format_number(y)}</title></circle>"
                for x, y in s.points
            )
    return parts
