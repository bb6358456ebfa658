"""The shared chart helper: Plotly figures described on the server, drawn by plotly.js."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Colours that keep a 3:1 contrast against the page background for lines and markers.
PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e")


@dataclass(frozen=True)
class Series:
    """One line of a time chart."""

    name: str
    times: Sequence[dt.datetime]
    values: Sequence[float]
    unit: str = ""


@dataclass(frozen=True)
class Threshold:
    """A horizontal line drawn across a chart (alarm limits, reorder points)."""

    label: str
    value: float
    color: str = "#b91c1c"


@dataclass(frozen=True)
class Chart:
    """A time chart ready to be embedded in a page as JSON."""

    title: str
    series: Sequence[Series]
    thresholds: Sequence[Threshold] = field(default_factory=tuple)
    y_title: str = ""

    def figure(self) -> dict[str, Any]:
        """The Plotly figure (data and layout) as plain JSON-ready data."""
        data = [
            {
                "type": "scatter",
                "mode": "lines+markers" if len(s.values) < 50 else "lines",
                "name": s.name,
                "x": [t.isoformat() for t in s.times],
                "y": list(s.values),
                "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
                "hovertemplate": f"%{{y}} {s.unit}<extra>{s.name}</extra>",
            }
            for i, s in enumerate(self.series)
        ]
        shapes = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": t.value,
                "y1": t.value,
                "line": {"color": t.color, "width": 1, "dash": "dash"},
            }
            for t in self.thresholds
        ]
        annotations = [
            {
                "xref": "paper",
                "x": 1,
                "y": t.value,
                "text": t.label,
                "showarrow": False,
                "xanchor": "right",
                "yanchor": "bottom",
                "font": {"color": t.color, "size": 11},
            }
            for t in self.thresholds
        ]
        layout = {
            "title": {"text": self.title, "font": {"size": 14}},
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "height": 300,
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": self.y_title}},
            "shapes": shapes,
            "annotations": annotations,
            "legend": {"orientation": "h"},
        }
        return {"data": data, "layout": layout}
