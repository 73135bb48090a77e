"""The gap heat map of a campaign: one row per requested class, one column per unit (day or month).

Drawn on the server as inline SVG (no script, nothing fetched). A cell's colour says what
its slices are: all made (green), still to come or in progress (grey, amber), or gaps with
a reason that needs someone (red: input missing, step failed, planning failed, not made);
its shade deepens with the share of slices missing. Each cell has a tooltip (``<title>``)
with the counts and reasons, and data attributes for tests and scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from proseo.planning.campaign_gaps import IN_PROGRESS, NOT_STARTED, Cell

DONE, WAITING, WORKING, GAP = "#17803d", "#cbd2d9", "#f0b429", "#b42318"
LEFT, TOP, BOTTOM, RIGHT = 120, 8, 40, 10
ROW = 22
MAX_WIDTH = 1200


def cell_colour(cell: Cell) -> tuple[str, float]:
    """(colour, opacity) of a cell."""
    if cell.expected == 0 or cell.missing == 0:
        return DONE, 1.0
    share = cell.missing / cell.expected
    shade = 0.35 + 0.65 * share
    failing = sum(n for r, n in cell.reasons.items() if r not in (IN_PROGRESS, NOT_STARTED))
    if failing:
        return GAP, shade
    if cell.reasons.get(IN_PROGRESS):
        return WORKING, shade
    return WAITING, 1.0


def gap_heatmap(cells: Sequence[Cell], units: Sequence[str], classes: Sequence[str]) -> Markup:
    """The class x unit heat map as SVG markup (escaped here)."""
    col = max(2.0, min(28.0, (MAX_WIDTH - LEFT - RIGHT) / max(len(units), 1)))
    width = LEFT + RIGHT + col * len(units)
    height = TOP + BOTTOM + ROW * len(classes)
    x_of = {u: LEFT + i * col for i, u in enumerate(units)}
    y_of = {c: TOP + i * ROW for i, c in enumerate(classes)}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" viewBox="0 0 {width:.0f} {height}" '
        f'width="{width:.0f}" height="{height}" role="img" aria-label="gaps per class and unit">'
    ]
    for c in classes:
        out.append(
            f'<text x="{LEFT - 6}" y="{y_of[c] + ROW * 0.65:.1f}" text-anchor="end" font-size="11" '
            f'font-family="monospace" fill="#1f2933">{escape(c)}</text>'
        )
    every = max(1, int(60 // col))
    for i, u in enumerate(units):
        if i % every == 0:
            out.append(
                f'<text x="{x_of[u] + col / 2:.1f}" y="{height - BOTTOM + 14}" font-size="10" fill="#52606d" '
                f'text-anchor="start" transform="rotate(30 {x_of[u] + col / 2:.1f} {height - BOTTOM + 14})">'
                f"{escape(u)}</text>"
            )
    merged: dict[tuple[str, str], Cell] = {}
    for cell in cells:  # a unit with two parts has one cell per class anyway; merge to be safe
        key = (cell.product_type, cell.unit)
        held = merged.get(key)
        if held is None:
            merged[key] = Cell(
                cell.product_type, cell.unit, cell.expected, cell.produced, cell.reasons.copy()
            )
        else:
            held.expected += cell.expected
            held.produced += cell.produced
            held.reasons.update(cell.reasons)
    for (c, u), cell in merged.items():
        if c not in y_of or u not in x_of:
            continue
        fill, opacity = cell_colour(cell)
        why = "; ".join(f"{n} {r}" for r, n in cell.reasons.items()) or "complete"
        tip = f"{c} {u}: {cell.produced}/{cell.expected} made; {why}"
        out.append(
            f'<rect class="cell" data-class="{escape(c)}" data-unit="{escape(u)}" '
            f'data-expected="{cell.expected}" data-produced="{cell.produced}" x="{x_of[u]:.1f}" '
            f'y="{y_of[c] + 1}" width="{max(col - 1, 1):.1f}" height="{ROW - 2}" fill="{fill}" '
            f'fill-opacity="{opacity:.2f}"><title>{escape(tip)}</title></rect>'
        )
    out.append("</svg>")
    return Markup("".join(out))
