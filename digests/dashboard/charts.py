"""The dashboard's charts as geometry: SVG drawn by the server, turned into (escaped)
markup by ``templates/admin/dashboard_chart.html``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from digests.dashboard import selectors

PALETTE = ["#417690", "#e8a33d", "#5b9a68", "#b05a7a", "#79aec8", "#8a6fb0"]
OTHER_COLOR = "#9aa3ab"
CHART_SOURCES = 5  # the rest of the sources are stacked as "other"


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    """Geometry of one SVG chart in a ``width`` x ``height`` viewBox."""

    title: str
    width: int = 640
    height: int = 220
    left: int = 48
    right: int = 16
    top: int = 12
    bottom: int = 28
    bars: list[Rect] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    y2_ticks: list[Tick] = field(default_factory=list)
    y_title: str = ""  # named only when a second axis could be mistaken for it
    y2_title: str = ""
    x_ticks: list[Tick] = field(default_factory=list)
    line_points: str = ""
    line_color: str = ""
    dots: list[Rect] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def nice_scale(maximum: float, steps: int = 4) -> tuple[float, float]:
    """An axis top and step with round numbers (1, 2, 2.5, 5 x 10^n) covering ``maximum``."""
    if maximum <= 0:
        return 1.0, 1.0
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1.0
    return step * math.ceil(maximum / step), step


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:,.0f}"


def _y_ticks(chart: Chart, top: float, step: float) -> list[Tick]:
    ticks, value = [], 0.0
    while value <= top + step / 2:
        ticks.append(Tick(round(chart.plot_bottom - value / top * chart.plot_height, 1), _number(value)))
        value += step
    return ticks


# A second axis only pays when sign-ups are too few to see on the subscribers' scale.
SHARED_AXIS_RATIO = 4


def growth_chart(growth: list[selectors.WeekPoint]) -> Chart:
    """Weekly sign-ups as bars, subscribers in total as a line.

    Both count people, so they share one axis unless the weekly sign-ups are under a
    quarter of the total; then the sign-ups get their own right axis, and each axis
    says what it counts.
    """
    most_total = max((p.total for p in growth), default=0)
    most_signups = max((p.signups for p in growth), default=0)
    two_axes = bool(most_signups) and most_signups * SHARED_AXIS_RATIO < most_total
    chart = Chart(title="Subscribers over the last 12 weeks", right=48 if two_axes else 16, top=26 if two_axes else 12)
    slot = chart.plot_width / max(len(growth), 1)
    if two_axes:
        total_top, total_step = nice_scale(most_total)
        signup_top, signup_step = nice_scale(most_signups)
        chart.y2_ticks = _y_ticks(chart, signup_top, signup_step)
        chart.y_title, chart.y2_title = "subscribers (line)", "sign-ups per week (bars)"
    else:
        total_top, total_step = nice_scale(max(most_total, most_signups))
        signup_top = total_top
    chart.y_ticks = _y_ticks(chart, total_top, total_step)
    points = []
    for index, point in enumerate(growth):
        center = chart.left + slot * (index + 0.5)
        height = point.signups / signup_top * chart.plot_height
        label = f"week of {point.week_start:%d %b}"
        chart.bars.append(
            Rect(
                round(center - slot * 0.3, 1),
                round(chart.plot_bottom - height, 1),
                round(slot * 0.6, 1),
                round(height, 1),
                PALETTE[4],
                f"{label}: {point.signups:,} sign-ups, {point.unsubscribes:,} unsubscribes",
            )
        )
        y = round(chart.plot_bottom - point.total / total_top * chart.plot_height, 1)
        points.append(f"{round(center, 1)},{y}")
        chart.dots.append(Rect(round(center, 1), y, 3, 3, PALETTE[0], f"{label}: {point.total:,} subscribers"))
        if index % 2 == 0 or len(growth) <= 6:
            chart.x_ticks.append(Tick(round(center, 1), f"{point.week_start:%d %b}"))
    chart.line_points = " ".join(points)
    chart.line_color = PALETTE[0]
    if chart.y2_ticks:
        chart.legend = [(PALETTE[0], "Subscribers (left axis)"), (PALETTE[4], "New sign-ups per week (right axis)")]
    else:
        chart.legend = [(PALETTE[0], "Subscribers"), (PALETTE[4], "New sign-ups per week")]
    return chart


def papers_chart(papers: selectors.PaperImports) -> Chart:
    """New papers per day, stacked by source (the biggest five, then "other")."""
    chart = Chart(title="Papers imported per day over the last 30 days", width=1100, height=240)
    shown = papers.sources[:CHART_SOURCES]
    colors = {source: PALETTE[i % len(PALETTE)] for i, source in enumerate(shown)}
    stacks: list[tuple[date, list[tuple[str, int, str]]]] = []
    for day in papers.days:
        per_source = papers.counts[day]
        stack = [(source, per_source.get(source, 0), colors[source]) for source in shown]
        other = sum(n for source, n in per_source.items() if source not in colors)
        if other:
            stack.append(("other", other, OTHER_COLOR))
        stacks.append((day, stack))
    top, step = nice_scale(max((sum(n for _, n, _ in stack) for _, stack in stacks), default=0))
    chart.y_ticks = _y_ticks(chart, top, step)
    slot = chart.plot_width / max(len(stacks), 1)
    for index, (day, stack) in enumerate(stacks):
        x = chart.left + slot * index + slot * 0.15
        y = float(chart.plot_bottom)
        for source, count, color in stack:
            if not count:
                continue
            height = count / top * chart.plot_height
            y -= height
            chart.bars.append(
                Rect(
                    round(x, 1),
                    round(y, 1),
                    round(slot * 0.7, 1),
                    round(height, 1),
                    color,
                    f"{day:%d %b}: {count:,} from {source}",
                )
            )
        if index % 5 == 0 or index == len(stacks) - 1:
            chart.x_ticks.append(Tick(round(chart.left + slot * (index + 0.5), 1), f"{day:%d %b}"))
    totals = papers.per_source_totals()
    chart.legend = [(colors[source], f"{source} · {totals[source]:,}") for source in shown]
    if len(papers.sources) > len(shown):
        chart.legend.append((OTHER_COLOR, f"other · {sum(totals[s] for s in papers.sources[len(shown) :]):,}"))
    return chart
