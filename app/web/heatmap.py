"""Heatmaps by hour of the week, rendered on the server as SVG in the house style of
app/web/charts.py: no script, a title, one <title> per cell, and a data table beside it."""

from __future__ import annotations

from html import escape

DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
# Sequential scales from white, colour-blind safe (Okabe–Ito blue and vermilion).
COLOURS = {"blue": (0, 114, 178), "orange": (213, 94, 0)}


def _shade(value: float, peak: float, colour: str) -> str:
    r, g, b = COLOURS[colour]
    t = 0.0 if peak <= 0 else min(value / peak, 1.0)
    mix = [round(255 + (c - 255) * t) for c in (r, g, b)]
    return "#{:02x}{:02x}{:02x}".format(*mix)


def week_heatmap(title: str, values: dict[tuple[int, int], int], *, colour: str = "blue") -> str:
    """`values` maps (ISO day of week 1..7, local hour 0..23) to a count."""
    width, left, top, cell_w, cell_h = 640, 64, 18, 24, 22
    height = top + 7 * cell_h + 4
    peak = float(max(values.values(), default=0))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'class="chart heatmap" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for hour in range(0, 24, 2):
        parts.append(
            f'<text x="{left + hour * cell_w + cell_w / 2:.0f}" y="{top - 5}" class="axis" '
            f'text-anchor="middle">{hour} h</text>'
        )
    for d, name in enumerate(DAYS):
        y = top + d * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{y + cell_h * 0.7:.0f}" class="axis" '
            f'text-anchor="end">{name[:3]}.</text>'
        )
        for hour in range(24):
            n = values.get((d + 1, hour), 0)
            parts.append(
                f'<rect x="{left + hour * cell_w}" y="{y}" width="{cell_w - 1}" '
                f'height="{cell_h - 1}" fill="{_shade(n, peak, colour)}" stroke="#e4e4e4">'
                f"<title>{name} {hour} h : {n}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)
