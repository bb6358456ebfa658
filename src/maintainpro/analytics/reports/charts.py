"""Charts as PNG for the PDF, drawn with matplotlib's Agg canvas.

The figure is built without pyplot, so no global backend or figure registry is touched and
several reports can draw at once in worker threads.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from maintainpro.analytics.reports.data import Cell, ChartKind, ChartSpec, ColumnKind, Table

MAX_CATEGORIES: Final = 15
WIDTH_IN: Final = 9.0
HEIGHT_IN: Final = 3.6
DPI: Final = 110
# A palette that stays distinguishable in print and for common colour blindness.
COLOURS: Final = ("#1b6ca8", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")


def _number(value: Cell) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _label(value: Cell) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def chart_png(spec: ChartSpec, table: Table) -> bytes | None:
    """The chart of a table as PNG bytes; None when the table has no rows to draw."""
    if not table.rows:
        return None
    rows = table.rows[:MAX_CATEGORIES]
    category = table.column(spec.category)
    labels = [_label(row[category]) for row in rows]
    indexes = [table.column(key) for key in spec.series]
    series = [(table.columns[i].title, [_number(row[i]) for row in rows]) for i in indexes]
    counts = all(table.columns[i].kind is ColumnKind.INTEGER for i in indexes)
    value_label = spec.value_label or (series[0][0] if len(series) == 1 else "")
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    if spec.kind is ChartKind.LINE:
        for index, (name, values) in enumerate(series):
            axes.plot(positions, values, marker="o", label=name, color=COLOURS[index % 7])
        axes.set_xticks(positions, labels, rotation=30, ha="right")
    elif spec.kind is ChartKind.HORIZONTAL_BAR:
        # Rank 1 on top.
        order = positions[::-1]
        left = [0.0] * len(labels)
        for index, (name, values) in enumerate(series):
            axes.barh(order, values, left=left, label=name, color=COLOURS[index % 7])
            left = [a + b for a, b in zip(left, values, strict=True)]
        axes.set_yticks(order, labels)
    elif spec.kind is ChartKind.STACKED_BAR:
        bottom = [0.0] * len(labels)
        for index, (name, values) in enumerate(series):
            axes.bar(positions, values, bottom=bottom, label=name, color=COLOURS[index % 7])
            bottom = [a + b for a, b in zip(bottom, values, strict=True)]
        axes.set_xticks(positions, labels, rotation=30, ha="right")
    else:
        width = 0.8 / len(series)
        for index, (name, values) in enumerate(series):
            shifted = [p - 0.4 + width * (index + 0.5) for p in positions]
            axes.bar(shifted, values, width=width, label=name, color=COLOURS[index % 7])
        axes.set_xticks(positions, labels, rotation=30, ha="right")
    axes.set_title(spec.title)
    value_axis = axes.xaxis if spec.kind is ChartKind.HORIZONTAL_BAR else axes.yaxis
    value_axis.set_label_text(value_label)
    if counts:
        # Work orders and alerts come whole: no 2.5 on the axis.
        value_axis.set_major_locator(MaxNLocator(integer=True))
    if len(series) > 1:
        axes.legend(fontsize="small")
    axes.grid(axis="x" if spec.kind is ChartKind.HORIZONTAL_BAR else "y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
