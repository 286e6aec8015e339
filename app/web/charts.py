"""Bar charts rendered on the server as SVG: no script, no network, readable by screen
readers (each chart has a title, a description and a data table beside it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# Colour-blind safe, contrast ≥ 3:1 on white (Okabe–Ito blue and orange, dark grey).
PALETTE = ("#0072B2", "#D55E00", "#444444")


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


def nice_ceiling(value: float) -> float:
    """The smallest of 4, 8, 10, 20, 40, 50, 80, 100… at or above `value`: four whole ticks."""
    if value <= 4:
        return 4.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 5, 8, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def bar_chart(title: str, labels: list[str], series: list[Series], *, unit: str = "") -> str:
    width, height, left, bottom, top = 640, 240, 44, 40, 16
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = nice_ceiling(max([v for s in series for v in s.values] + [0.0]))
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    # At most 8 axis labels: "30 nov." takes about 45 units at the axis font size, so more
    # would overlap (the SVG scales as a whole, on a 390 px phone as at 1280 px).
    label_every = math.ceil(groups / 8)
    bar_w = max(2.0, group_w * 0.8 / max(len(series), 1))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'class="chart" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(0, 5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{value:.0f}</text>"
        )
    for i, label in enumerate(labels):
        x0 = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else 0
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(s.name)} {escape(label)} : {value:g}{escape(unit)}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" class="axis" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
