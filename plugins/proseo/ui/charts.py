"""Timeliness pictures drawn on the server as inline SVG (no script, nothing fetched).

``latency_chart``: one point per product (publication time -> delay), green when
published by its order's deadline, red when late, grey without a deadline, with a dashed
line per timeliness category. ``histogram``: how many products took how long, with the
same lines. Every text is escaped here; the result is passed to the page as markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

from proseo.catalog.kpi import human_duration

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 80, 110, 16, 44
ON_TIME, LATE, NO_DEADLINE, BAR, LINE = "#17803d", "#b42318", "#7b8794", "#0b63c5", "#c2410c"
BINS = 24


def _frame(kind: str, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="#fbfcfe" stroke="#d9e2ec"/>',
    ]


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "tick") -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#52606d">{escape(text)}</text>'
    )


def _scale(low: float, high: float, out_low: float, out_high: float) -> tuple[float, float]:
    """(offset, factor) mapping [low, high] onto [out_low, out_high]."""
    span = (high - low) or 1.0
    factor = (out_high - out_low) / span
    return out_low - low * factor, factor


def _delay_top(delays: Sequence[float], deadlines: Mapping[str, float]) -> float:
    return max([*delays, *deadlines.values(), 1.0]) * 1.08


def latency_chart(
    points: Sequence[tuple[datetime, float, bool | None]], deadlines: Mapping[str, float], what: str
) -> Markup:
    """Delay (seconds) per product over publication time, with the categories' deadline lines."""
    out = _frame("latency", f"{what} delay per product over publication time")
    times = [p[0].timestamp() for p in points]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    if t1 - t0 < 60:
        t0, t1 = t0 - 1800, t1 + 1800
    x0, xf = _scale(t0, t1, LEFT + 8, WIDTH - RIGHT - 8)
    top = _delay_top([p[1] for p in points], deadlines)
    y0, yf = _scale(0.0, top, HEIGHT - BOTTOM, TOP)
    for i in range(5):
        value = top * i / 4
        y = y0 + yf * value
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef2f6"/>')
        out.append(_text(LEFT - 6, y + 4, human_duration(value), "end"))
        t = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(_text(x0 + xf * t, HEIGHT - BOTTOM + 16, label))
    out.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, "published (UTC)", cls="axis"))
    for name, seconds in deadlines.items():
        y = y0 + yf * seconds
        out.append(
            f'<line class="deadline" data-category="{escape(name)}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        out.append(
            _text(WIDTH - RIGHT + 6, y + 4, f"{name} {human_duration(seconds)}", "start", "deadline-label")
        )
    for (when, delay, on_time), t in zip(points, times, strict=True):
        colour = NO_DEADLINE if on_time is None else ON_TIME if on_time else LATE
        state = "none" if on_time is None else "on-time" if on_time else "late"
        out.append(
            f'<circle class="point {state}" cx="{x0 + xf * t:.1f}" cy="{y0 + yf * delay:.1f}" r="3.5" '
            f'fill="{colour}" fill-opacity=".8"><title>{escape(when.strftime("%Y-%m-%d %H:%M:%S"))}Z: '
            f"{escape(human_duration(delay))}</title></circle>"
        )
    out.append("</svg>")
    return Markup("\n".join(out))  # every text above is escaped


def histogram(delays: Sequence[float], deadlines: Mapping[str, float], what: str) -> Markup:
    """How many products took how long (``BINS`` equal bins from zero), with the deadline lines."""
    out = _frame("histogram", f"histogram of {what} delays")
    top = _delay_top(delays, deadlines)
    width = top / BINS
    counts = [0] * BINS
    for d in delays:
        counts[min(BINS - 1, max(0, int(d // width)))] += 1
    highest = max([*counts, 1])
    x0, xf = _scale(0.0, top, LEFT, WIDTH - RIGHT)
    y0, yf = _scale(0.0, highest * 1.1, HEIGHT - BOTTOM, TOP)
    for i, n in enumerate(counts):
        if n:
            x, y = x0 + xf * i * width, y0 + yf * n
            out.append(
                f'<rect class="bin" data-count="{n}" x="{x + 1:.1f}" y="{y:.1f}" '
                f'width="{max(1.0, xf * width - 2):.1f}" height="{HEIGHT - BOTTOM - y:.1f}" fill="{BAR}" '
                f'fill-opacity=".75"><title>{escape(human_duration(i * width))}–'
                f"{escape(human_duration((i + 1) * width))}: {n}</title></rect>"
            )
    for i in range(5):
        value = top * i / 4
        out.append(_text(x0 + xf * value, HEIGHT - BOTTOM + 16, human_duration(value)))
        count = highest * 1.1 * i / 4
        out.append(
            _text(LEFT - 6, y0 + yf * count + 4, f"{count:.0f}" if highest > 4 else f"{count:.1f}", "end")
        )
    out.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, f"{what} delay", cls="axis"))
    for name, seconds in deadlines.items():
        x = x0 + xf * seconds
        out.append(
            f'<line class="deadline" data-category="{escape(name)}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{LINE}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        out.append(_text(x + 4, TOP + 12, name, "start", "deadline-label"))
    out.append("</svg>")
    return Markup("\n".join(out))  # every text above is escaped
