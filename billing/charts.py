"""Bar charts drawn on the server as inline SVG: no JavaScript, no CDN, readable offline.

Every bar carries a <title> (hover tooltip, read by screen readers) with its exact value, and
the chart a text summary, so the numbers are there even where SVG is not drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 200
PAD_LEFT = 8
PAD_RIGHT = 8
PAD_TOP = 24
PAD_BOTTOM = 26


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    css_class: str = "",
) -> SafeString:
    """One bar per (label, value); labels are thinned so that at most ~10 are printed."""
    count = max(len(points), 1)
    peak = max((value for _, value in points), default=0) or 1
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / count
    bar_w = max(slot * 0.7, 1)
    every = max(1, round(count / 10))
    total = sum(value for _, value in points)
    parts = [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: total {escape(fmt(total))}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-peak" x="{PAD_LEFT}" y="14">max {escape(fmt(peak if total else 0))}</text>',
        f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP + plot_h}"/>',
    ]
    for index, (label, value) in enumerate(points):
        height = plot_h * (value / peak) if value > 0 else 0
        x = PAD_LEFT + index * slot + (slot - bar_w) / 2
        y = PAD_TOP + plot_h - height
        parts.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(height, 0):.1f}" '
            f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        if index % every == 0 or index == count - 1:
            parts.append(
                f'<text class="chart-label" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above
