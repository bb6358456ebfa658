"""The files: XLSX read back with openpyxl, CSV parsed, the PDF's words found in its bytes."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from maintainpro.analytics.reports.data import (
    ChartKind,
    ChartSpec,
    Column,
    ColumnKind,
    Figure,
    ReportData,
    Table,
)
from maintainpro.analytics.reports.formatting import base_name, period_text, slug
from maintainpro.analytics.reports.render_csv import render_csv
from maintainpro.analytics.reports.render_pdf import render_pdf
from maintainpro.analytics.reports.render_xlsx import XLSX_MIME, render_xlsx

UTC = dt.UTC
OPENED = dt.datetime(2026, 2, 10, 5, 30, tzinfo=UTC)  # 06:30 in Berlin


def sample(rows: int = 2, title: str = "Backlog report") -> ReportData:
    """A table of every column kind, a chart and three figures."""
    table = Table(
        "orders",
        "Open orders",
        (
            Column("id", "Work order", ColumnKind.INTEGER),
            Column("title", "Title"),
            Column("age", "Age (days)", ColumnKind.DECIMAL, 1),
            Column("share", "Share %", ColumnKind.PERCENT, 1),
            Column("due", "Due", ColumnKind.DATE),
            Column("opened", "Opened", ColumnKind.DATETIME),
        ),
        tuple(
            (
                100 + i,
                '=HYPERLINK("http://evil")' if i == 0 else f"Pump {i}",
                Decimal("12.5") + i,
                33.3,
                dt.date(2026, 3, 1),
                OPENED,
            )
            for i in range(rows)
        ),
    )
    return ReportData(
        title=title,
        period_start=dt.datetime(2026, 1, 31, 23, tzinfo=UTC),
        period_end=dt.datetime(2026, 2, 28, 23, tzinfo=UTC),
        timezone="Europe/Berlin",
        generated_at=dt.datetime(2026, 3, 1, 5, tzinfo=UTC),
        summary=(
            Figure("Open work orders", rows),
            Figure("Average age", Decimal("13.0"), ColumnKind.DECIMAL, unit="days"),
            Figure("Compliance", 87.5, ColumnKind.PERCENT),
        ),
        tables=(table,),
        charts=(ChartSpec("Age by order", ChartKind.BAR, "orders", "id", ("age",)),),
        notes=("Ages are counted to the run.",),
        sites=("SA",),
    )


def test_xlsx_has_typed_cells_a_header_and_frozen_panes() -> None:
    produced = render_xlsx(sample(), "backlog_2026-03-01")
    assert (produced.filename, produced.mime) == ("backlog_2026-03-01.xlsx", XLSX_MIME)
    book = openpyxl.load_workbook(io.BytesIO(produced.content))
    assert book.sheetnames == ["Summary", "Open orders"]
    sheet = book["Open orders"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header == ["Work order", "Title", "Age (days)", "Share %", "Due", "Opened"]
    assert all(c.font.bold for c in sheet[1])
    first = [c.value for c in sheet[2]]
    assert first == [
        100,
        '=HYPERLINK("http://evil")',
        12.5,
        33.3,
        dt.datetime(2026, 3, 1),  # a date cell reads back as midnight
        dt.datetime(2026, 2, 10, 6, 30),  # Berlin wall-clock time
    ]
    assert isinstance(first[0], int)
    assert sheet.cell(2, 2).data_type == "s"  # text, never a formula
    assert sheet.cell(2, 3).number_format == "#,##0.0"
    assert sheet.cell(2, 5).is_date
    assert sheet.cell(2, 6).is_date
    summary = book["Summary"]
    assert summary["A1"].value == "Backlog report"
    values = {summary.cell(r, 1).value: summary.cell(r, 2).value for r in range(1, 12)}
    assert values["Open work orders"] == 2
    assert values["Compliance"] == 87.5
    assert values["Period"] == "2026-02-01 to 2026-02-28 (Europe/Berlin)"


def test_csv_is_one_file_per_table_with_local_times_and_inert_text() -> None:
    (produced,) = render_csv(sample(), "backlog")
    assert produced.filename == "backlog_orders.csv"
    assert produced.content.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(produced.content.decode("utf-8-sig"))))
    assert parsed[0] == ["Work order", "Title", "Age (days)", "Share %", "Due", "Opened"]
    assert parsed[1] == [
        "100",
        '\'=HYPERLINK("http://evil")',
        "12.5",
        "33.3",
        "2026-03-01",
        "2026-02-10 06:30:00",
    ]


def test_pdf_holds_title_period_figures_rows_and_a_chart() -> None:
    produced = render_pdf(sample(), "backlog")
    pdf = produced.content
    assert produced.filename == "backlog.pdf"
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    for text in (
        b"Backlog report",
        b"Period: 2026-02-01 to 2026-02-28 \\(Europe/Berlin\\)",
        b"Open work orders",
        b"13.0 days",
        b"87.5 %",
        b"Pump 1",
        b"2026-02-10 06:30",
        b"Sites: SA",
    ):
        assert text in pdf, text
    assert b"/Subtype /Image" in pdf  # the chart
    assert render_pdf(sample(), "backlog").content == pdf  # reproducible


def test_pdf_of_an_empty_report_has_no_chart_and_says_so() -> None:
    pdf = render_pdf(sample(rows=0), "empty").content
    assert b"/Subtype /Image" not in pdf
    assert b"No rows." in pdf


def test_markup_in_a_title_is_printed_not_interpreted() -> None:
    pdf = render_pdf(sample(title="Line <b>2</b> & co"), "x").content
    assert b"Line <b>2</b> & co" in pdf


def test_long_tables_are_cut_in_the_pdf_but_not_in_the_workbook() -> None:
    data = sample(rows=320)
    assert b"First 300 of 320 rows" in render_pdf(data, "long").content
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(data, "long").content))
    assert book["Open orders"].max_row == 321


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PM compliance \u2013 Site A", "pm-compliance-site-a"),
        ("../../etc", "etc"),
        ("???", "report"),
    ],
)
def test_file_names_are_slugs(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_base_name_has_the_local_date_and_the_site() -> None:
    assert base_name(sample(), "PM compliance", "SA") == "pm-compliance_2026-03-01_sa"
    assert period_text(sample()) == "2026-02-01 to 2026-02-28 (Europe/Berlin)"
