"""Timeliness pictures drawn on the server as inline SVG (no script, nothing fetched).

``latency_chart``: one point per product (publication time -> delay), green when
published by its order's deadline, red when late, grey without a deadline, with a dashed
line per timeliness category. ``histogram``: how many products took how long, with the
same lines. The delay axis covers the delays and the strictest deadline; later deadlines
beyond it are named at its edge rather than squeezing the products into a corner.
Every text is escaped here; the result is passed to the page as markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

from proseo.catalog.kpi import human_duration

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 80, 110, 16, 44
ON_TIME, LATE, NO_DEADLINE, BAR, LINE = "#17803d", "#b42318", "#7b8794", "#0b63c5", "#c2410c"
BINS_PER_STEP = 4  # bins between two ticks of the delay axis


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


#: Tick steps that read well as durations (seconds).
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
DAY_S = 86400


def nice_step(top: float, ticks: int = 5) -> float:
    """The smallest readable step that covers [0, top] in at most ``ticks`` steps."""
    for step in NICE_STEPS:
        if step * ticks >= top:
            return float(step)
    days = math.ceil(top / ticks / DAY_S)
    return (
        float(DAY_S * next(n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500) if n >= days))
        if days <= 500
        else (float(DAY_S * days))
    )


def short_duration(seconds: float) -> str:
    """``2h``, ``1h30m``, ``1d``: the human duration without its zero parts (for axes and labels)."""
    text = human_duration(seconds)
    return re.sub(r"(?<=[dhm])0+[hms](?=\d|$)", "", re.sub(r"(?<=[dhm])00[hms]", "", text)) or "0s"


def _axis(delays: Sequence[float], deadlines: Mapping[str, float]) -> tuple[float, float]:
    """(top, step) of the delay axis: the delays and the strictest deadline (later ones may lie
    beyond it; they are named at the edge), rounded up to a whole step."""
    strictest = min(deadlines.values(), default=0.0)
    step = nice_step(max([*delays, strictest, 1.0]) * 1.05)
    top = step * max(1, math.ceil(max([*delays, strictest, 1.0]) * 1.05 / step))
    return top, step


def _beyond(deadlines: Mapping[str, float], top: float) -> str:
    return ", ".join(f"{name} {short_duration(s)}" for name, s in deadlines.items() if s > top)


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
    top, step = _axis([p[1] for p in points], deadlines)
    y0, yf = _scale(0.0, top, HEIGHT - BOTTOM, TOP)
    for i in range(round(top / step) + 1):
        y = y0 + yf * step * i
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef2f6"/>')
        out.append(_text(LEFT - 6, y + 4, short_duration(step * i), "end"))
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(_text(x0 + xf * t, HEIGHT - BOTTOM + 16, label))
    out.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, "published (UTC)", cls="axis"))
    for name, seconds in deadlines.items():
        if seconds > top:
            continue
        y = y0 + yf * seconds
        out.append(
            f'<line class="deadline" data-category="{escape(name)}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        out.append(
            _text(WIDTH - RIGHT + 6, y + 4, f"{name} {short_duration(seconds)}", "start", "deadline-label")
        )
    if _beyond(deadlines, top):
        out.append(
            _text(WIDTH - RIGHT + 6, TOP + 10, f"↑ {_beyond(deadlines, top)}", "start", "deadline-beyond")
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
    """How many products took how long (equal bins from zero, four per tick), with the deadline lines."""
    out = _frame("histogram", f"histogram of {what} delays")
    top, step = _axis(delays, deadlines)
    width = step / BINS_PER_STEP
    bins = round(top / width)
    counts = [0] * bins
    for d in delays:
        counts[min(bins - 1, max(0, int(d // width)))] += 1
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
    for i in range(round(top / step) + 1):
        out.append(_text(x0 + xf * step * i, HEIGHT - BOTTOM + 16, short_duration(step * i)))
    for n in range(0, highest + 1, max(1, math.ceil(highest / 4))):
        out.append(_text(LEFT - 6, y0 + yf * n + 4, str(n), "end"))
    out.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, f"{what} delay", cls="axis"))
    for name, seconds in deadlines.items():
        if seconds > top:
            continue
        x = x0 + xf * seconds
        out.append(
            f'<line class="deadline" data-category="{escape(name)}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{LINE}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        out.append(_text(x + 4, TOP + 12, f"{name} {short_duration(seconds)}", "start", "deadline-label"))
    if _beyond(deadlines, top):
        out.append(
            _text(WIDTH - RIGHT + 6, TOP + 12, f"{_beyond(deadlines, top)} →", "start", "deadline-beyond")
        )
    out.append("</svg>")
    return Markup("\n".join(out))  # every text above is escaped
