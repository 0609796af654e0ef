"""Throughput and latency of the orders sent to 1C, drawn on the server as SVG from the sync log.

The sync log already holds every 1C call with its time, outcome and duration, so the last hours need no
second store and no clock job; bucketing a few thousand entries costs milliseconds. The SVG is built from
numbers only (every label is formatted here), so nothing from a peer reaches the markup, and it needs no
script or chart library from another host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

BUCKET_MINUTES = 5
WIDTH, HEIGHT, PAD = 600, 140, 28


@dataclass(frozen=True)
class Series:
    title: str
    unit: str
    start: float  # unix time of the first bucket
    good: tuple[float, ...]  # per bucket: delivered calls, or mean seconds
    bad: tuple[float, ...]  # per bucket: calls that did not go through, or the slowest call

    @property
    def total(self) -> float:
        return sum(self.good) + sum(self.bad)


def bucketed(calls: Iterable[tuple[float, str, float | None]], now: float, *, hours: int) -> tuple[Series, Series]:
    """(throughput, latency) per ``BUCKET_MINUTES`` over the last ``hours``, from (time, outcome, seconds)."""
    size = BUCKET_MINUTES * 60
    count = hours * 3600 // size
    start = now - count * size
    good = [0.0] * count
    bad = [0.0] * count
    spent = [0.0] * count
    timed = [0] * count
    slowest = [0.0] * count
    for at, outcome, seconds in calls:
        i = int((at - start) // size)
        if not 0 <= i < count:
            continue
        if outcome == "delivered":
            good[i] += 1
        else:
            bad[i] += 1
        if seconds is not None:
            spent[i] += seconds
            timed[i] += 1
            slowest[i] = max(slowest[i], seconds)
    mean = tuple(spent[i] / timed[i] if timed[i] else 0.0 for i in range(count))
    return (
        Series("orders to 1C per 5 minutes (delivered / not)", "calls", start, tuple(good), tuple(bad)),
        Series("1C answer time per 5 minutes (mean / slowest)", "s", start, mean, tuple(slowest)),
    )


def svg(series: Series, *, stacked: bool) -> Markup:
    """Bars: ``good`` below ``bad`` when ``stacked`` (counts), else side by side as mean and peak."""
    n = len(series.good) or 1
    peaks = [(g + b) if stacked else max(g, b) for g, b in zip(series.good, series.bad, strict=True)]
    top = max([*peaks, 1e-9])
    step = (WIDTH - PAD) / n
    bars = []
    for i, (g, b) in enumerate(zip(series.good, series.bad, strict=True)):
        x = PAD + i * step
        hg = (HEIGHT - PAD) * g / top
        hb = (HEIGHT - PAD) * b / top
        if stacked:
            bars.append(
                f'<rect class="good" x="{x:.1f}" y="{HEIGHT - PAD - hg:.1f}" width="{step * 0.8:.1f}" height="{hg:.1f}"/>'
            )
            bars.append(
                f'<rect class="bad" x="{x:.1f}" y="{HEIGHT - PAD - hg - hb:.1f}" width="{step * 0.8:.1f}" height="{hb:.1f}"/>'
            )
        else:
            bars.append(
                f'<rect class="peak" x="{x:.1f}" y="{HEIGHT - PAD - hb:.1f}" width="{step * 0.8:.1f}" height="{hb:.1f}"/>'
            )
            bars.append(
                f'<rect class="good" x="{x:.1f}" y="{HEIGHT - PAD - hg:.1f}" width="{step * 0.8:.1f}" height="{hg:.1f}"/>'
            )
    label = f"{top:.0f}" if stacked else f"{top:.2f}"
    axis = (
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}"/>'
        f'<text x="0" y="12">{label} {series.unit}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}">−{len(series.good) * BUCKET_MINUTES // 60} h</text>'
        f'<text x="{WIDTH - 30}" y="{HEIGHT - 8}">now</text>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{series.title}">'
        f"{axis}{''.join(bars)}</svg>"
    )
