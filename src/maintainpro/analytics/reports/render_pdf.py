"""PDF: title, period, the inline summary, then each table with its charts (PNG) above it, on
landscape A4.

Text streams are left uncompressed (``pageCompression=0``) and the file is reproducible
(``invariant=1``): the same data gives the same bytes, and the words in it can be searched
without a PDF library. Long tables are cut at ``MAX_PDF_ROWS`` with a note; the CSV and XLSX
files carry every row.
"""

from __future__ import annotations

import io
from typing import Any, Final
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from maintainpro.analytics.reports.charts import HEIGHT_IN, WIDTH_IN, chart_png
from maintainpro.analytics.reports.data import ColumnKind, ReportData, Table
from maintainpro.analytics.reports.formatting import (
    RenderedFile,
    cell_text,
    figure_text,
    period_text,
)

PDF_MIME: Final = "application/pdf"
MAX_PDF_ROWS: Final = 300
HEADER_FILL: Final = colors.HexColor("#1b6ca8")
STRIPE: Final = colors.HexColor("#f2f5f8")
_NUMERIC: Final = frozenset({ColumnKind.INTEGER, ColumnKind.DECIMAL, ColumnKind.PERCENT})


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    return {
        "title": sheet["Title"],
        "heading": sheet["Heading2"],
        "body": sheet["BodyText"],
        "cell": ParagraphStyle("cell", parent=sheet["BodyText"], fontSize=8, leading=10),
        "head": ParagraphStyle(
            "head", parent=sheet["BodyText"], fontSize=8, leading=10, textColor=colors.white
        ),
        "note": ParagraphStyle(
            "note", parent=sheet["BodyText"], fontSize=8, textColor=colors.HexColor("#555555")
        ),
    }


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph reads markup; report text (names, titles) is data and must stay literal.
    return Paragraph(escape(text), style)


def _summary(data: ReportData, zone: ZoneInfo, styles: dict[str, ParagraphStyle]) -> Any:
    rows = [
        [_para(f.label, styles["body"]), _para(figure_text(f, zone), styles["body"])]
        for f in data.summary
    ]
    if not rows:
        return Spacer(1, 1)
    table = PdfTable(rows, colWidths=[70 * mm, 60 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _table(
    table: Table, zone: ZoneInfo, styles: dict[str, ParagraphStyle], width: float
) -> list[Any]:
    flow: list[Any] = [_para(table.title, styles["heading"])]
    if not table.rows:
        flow.append(_para("No rows.", styles["note"]))
        return flow
    header = [_para(c.title, styles["head"]) for c in table.columns]
    body = [
        [
            _para(cell_text(value, column.kind, column.places, zone), styles["cell"])
            for column, value in zip(table.columns, row, strict=True)
        ]
        for row in table.rows[:MAX_PDF_ROWS]
    ]
    grid = PdfTable(
        [header, *body], repeatRows=1, colWidths=[width / len(table.columns)] * len(header)
    )
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
    ]
    style += [("BACKGROUND", (0, r), (-1, r), STRIPE) for r in range(2, len(body) + 1, 2)]
    grid.setStyle(TableStyle(style))
    flow.append(grid)
    if len(table.rows) > MAX_PDF_ROWS:
        flow.append(
            _para(
                f"First {MAX_PDF_ROWS} of {len(table.rows)} rows; the CSV and XLSX files hold all.",
                styles["note"],
            )
        )
    return flow


def render_pdf(data: ReportData, base: str) -> RenderedFile:
    """The report as one PDF file: ``{base}.pdf``."""
    zone = ZoneInfo(data.timezone)
    styles = _styles()
    page = landscape(A4)
    margin = 12 * mm
    width = page[0] - 2 * margin
    story: list[Any] = [
        _para(data.title, styles["title"]),
        _para(f"Period: {period_text(data)}", styles["body"]),
        _para(
            f"Generated: {cell_text(data.generated_at, ColumnKind.DATETIME, 0, zone)}",
            styles["body"],
        ),
    ]
    if data.sites:
        story.append(_para("Sites: " + ", ".join(data.sites), styles["body"]))
    story += [Spacer(1, 4 * mm), _para("Summary", styles["heading"]), _summary(data, zone, styles)]
    story += [_para(note, styles["note"]) for note in data.notes]
    # Each table is a section: its charts first, then its rows (a dashboard tile reads as one).
    for table in data.tables:
        for spec in data.charts:
            if spec.table != table.name:
                continue
            png = chart_png(spec, table)
            if png is None:
                continue
            scale = min(1.0, width / (WIDTH_IN * 72))
            picture = Image(
                io.BytesIO(png), width=WIDTH_IN * 72 * scale, height=HEIGHT_IN * 72 * scale
            )
            story += [Spacer(1, 4 * mm), KeepTogether([picture])]
        story += [Spacer(1, 4 * mm), *_table(table, zone, styles, width)]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=page,
        title=data.title,
        author="MaintAInPro",
        invariant=1,
        pageCompression=0,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
    ).build(story)
    return RenderedFile(f"{base}.pdf", PDF_MIME, buffer.getvalue())
