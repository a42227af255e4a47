"""Charts drawn on the server as SVG: no script, no CDN, readable without JavaScript.

Each mark carries a `<title>`, which browsers show on hover, so a chart tells its exact figures
without any script. Colours come from the style sheet by series index (`s0`, `s1`, …): the
Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

_WIDTH = 720
_LEFT = 48
_BOTTOM = 22
_TOP = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _figure(value: float, unit: str) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return f"{unit}{text}" if unit == "$" else f"{text}{unit}"


def _frame(
    labels: Sequence[str], top: float, height: int, unit: str, title: str
) -> tuple[list[str], Callable[[float], float], float]:
    """The axes, a value→y function and the width of one label's slot."""
    plot_h = height - _BOTTOM - _TOP
    slot = (_WIDTH - _LEFT) / max(1, len(labels))

    def y(value: float) -> float:
        return _TOP + plot_h - (value / top) * plot_h if top else _TOP + plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{_LEFT}" y1="{y(0):.1f}" x2="{_WIDTH}" y2="{y(0):.1f}"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 10}" text-anchor="end">'
        f"{escape(_figure(top, unit))}</text>",
        f'<text x="{_LEFT - 4}" y="{y(0):.1f}" text-anchor="end">0</text>',
    ]
    every = max(1, len(labels) // 12)  # at most about 12 labels under the axis
    for index, label in enumerate(labels):
        if index % every == 0:
            x = _LEFT + slot * (index + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>'
            )
    return parts, y, slot


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = True,
    unit: str = "",
    height: int = 200,
) -> Markup:
    """Bars per label, one colour per series, stacked (or side by side)."""
    if stacked:
        top = max((sum(s.values[i] for s in series) for i in range(len(labels))), default=0)
    else:
        top = max((max(s.values, default=0) for s in series), default=0)
    parts, y, slot = _frame(labels, float(top), height, unit, title)
    inner = slot * 0.8
    for index, label in enumerate(labels):
        base = 0.0
        for number, one in enumerate(series):
            value = float(one.values[index])
            if stacked:
                x, width, low, high = _LEFT + slot * index + slot * 0.1, inner, base, base + value
                base = high
            else:
                width = inner / max(1, len(series))
                x, low, high = _LEFT + slot * index + slot * 0.1 + width * number, 0.0, value
            if value <= 0:
                continue
            parts.append(
                f'<rect class="s{number % 6}" x="{x:.1f}" y="{y(high):.1f}" '
                f'width="{width:.1f}" height="{max(0.5, y(low) - y(high)):.1f}">'
                f"<title>{escape(label)} · {escape(one.name)}: "
                f"{escape(_figure(value, unit))}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts)) + legend(series)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    height: int = 200,
) -> Markup:
    """One line per series, with a point per label that names its figure on hover."""
    top = max((max(s.values, default=0) for s in series), default=0)
    parts, y, slot = _frame(labels, float(top), height, unit, title)
    for number, one in enumerate(series):
        points = [
            (_LEFT + slot * (index + 0.5), y(float(value)))
            for index, value in enumerate(one.values)
        ]
        path = " ".join(f"{x:.1f},{py:.1f}" for x, py in points)
        parts.append(f'<polyline class="s{number % 6}" points="{path}"/>')
        for (x, py), label, value in zip(points, labels, one.values, strict=True):
            parts.append(
                f'<circle class="s{number % 6}" cx="{x:.1f}" cy="{py:.1f}" r="3">'
                f"<title>{escape(label)} · {escape(one.name)}: "
                f"{escape(_figure(float(value), unit))}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts)) + legend(series)


def legend(series: Sequence[Series]) -> Markup:
    items = "".join(
        f'<span><i class="swatch s{number % 6}"></i>{escape(one.name)}</span>'
        for number, one in enumerate(series)
    )
    return Markup(f'<p class="legend">{items}</p>')
