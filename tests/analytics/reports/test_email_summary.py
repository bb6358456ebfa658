"""The e-mail's inline summary in HTML: the same content as the text, every value escaped, the
first rows of each section, a link back to the hub."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

from analytics.reports.report_world import BERLIN, FEB_END, FEB_START, RUN_AT
from maintainpro.analytics.reports.data import Column, ColumnKind, Figure, ReportData, Table
from maintainpro.analytics.reports.delivery import (
    PREVIEW_ROWS,
    Parcel,
    summary_html,
    summary_text,
)
from maintainpro.analytics.reports.formatting import RenderedFile

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(2)>'
# What the summary itself writes; anything else would have come from the data.
OWN_TAGS = {
    "html", "head", "meta", "title", "body", "h1", "h2", "p", "br", "strong", "table", "thead",
    "tbody", "tr", "th", "td", "ul", "li", "a",
}  # fmt: skip


class Tags(HTMLParser):
    """The start tags and the link targets of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the tag and any href."""
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if name == "href"]
        # An event handler attribute would mean markup got through.
        assert not any(name.startswith("on") for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        """Record the text."""
        self.text.append(data)


def hostile_parcel(rows: int = PREVIEW_ROWS + 3) -> Parcel:
    """A report whose names, sites, notes and cells all try to inject markup."""
    columns = (
        Column("asset", f"Asset {SCRIPT}"),
        Column("count", "Work orders", ColumnKind.INTEGER),
        Column("cost", "Cost", ColumnKind.DECIMAL, 2),
    )
    first = Table(
        "first",
        f"Top {ATTRIBUTE}",
        columns,
        tuple((f"P-{i} {SCRIPT}", i, Decimal("1234.5")) for i in range(rows)),
    )
    second = Table("second", "Second section", columns[:2], (("M-1", 7),))
    data = ReportData(
        title=f"Plant {SCRIPT}",
        period_start=FEB_START,
        period_end=FEB_END,
        timezone=BERLIN,
        generated_at=RUN_AT,
        summary=(
            Figure(f"Orders {ATTRIBUTE}", 1234),
            Figure("Share", Decimal("87.5"), ColumnKind.PERCENT),
        ),
        tables=(first, second),
        notes=(f"Note {SCRIPT}",),
        sites=(f"S{ATTRIBUTE}",),
    )
    files = (RenderedFile(f"plant-{SCRIPT}.pdf", "application/pdf", b"%PDF-1.4"),)
    return Parcel(
        report_id=7,
        report_name=f"Weekly {SCRIPT}",
        source="saved_query",
        run_id=3,
        data=data,
        files=files,
        link='https://hub.example/reports/7?a="b"',
    )


def test_hostile_values_are_text_in_the_html_summary() -> None:
    page = summary_html(hostile_parcel())
    parser = Tags()
    parser.feed(page)
    assert parser.tags <= OWN_TAGS
    assert SCRIPT not in page
    assert "<img" not in page
    text = "".join(parser.text)
    # Every hostile value is still there, as text.
    for value in (f"Plant {SCRIPT}", f"Top {ATTRIBUTE}", f"P-0 {SCRIPT}", f"Note {SCRIPT}"):
        assert value in text
    assert f"Weekly {SCRIPT}" in text
    assert parser.links == ['https://hub.example/reports/7?a="b"']


def test_the_html_summary_previews_each_section_and_the_figures() -> None:
    parcel = hostile_parcel()
    page = summary_html(parcel)
    text = "".join(t.strip() for t in _text(page))
    assert "Period: 2026-02-01 to 2026-02-28 (Europe/Berlin)" in text
    assert "1,234" in text  # the figure, formatted as in the text summary
    assert "87.5 %" in text
    # First section: its first rows, then how many more are in the files.
    assert f"P-{PREVIEW_ROWS - 1} {SCRIPT}" in text
    assert f"P-{PREVIEW_ROWS} {SCRIPT}" not in text
    assert "3 more rows in the attachments" in text
    assert "1,234.50" in text
    # The second section is previewed too, in both parts.
    assert "Second section" in text
    assert "M-1" in text
    plain = summary_text(parcel)
    assert "Second section" in plain
    assert "Open the report in MaintAInPro: https://hub.example/reports/7" in plain


def test_an_empty_report_says_so_without_tables() -> None:
    parcel = hostile_parcel(rows=0)
    empty = Parcel(
        parcel.report_id,
        parcel.report_name,
        parcel.source,
        parcel.run_id,
        ReportData("Nothing", FEB_START, FEB_END, BERLIN, RUN_AT, tables=parcel.data.tables[:1]),
        (),
    )
    page = summary_html(empty)
    assert "Nothing to report for this period." in page
    assert "<table" not in page
    assert "href" not in page  # no link without a public URL


def _text(page: str) -> list[str]:
    parser = Tags()
    parser.feed(page)
    return parser.text


def test_times_in_cells_are_local() -> None:
    moment = dt.datetime(2026, 2, 10, 5, 30, tzinfo=dt.UTC)
    data = ReportData(
        "Times",
        FEB_START,
        FEB_END,
        BERLIN,
        RUN_AT,
        tables=(Table("t", "When", (Column("at", "At", ColumnKind.DATETIME),), ((moment,),)),),
    )
    page = summary_html(Parcel(1, "Times", "backlog", 1, data, ()))
    assert "2026-02-10 06:30" in page
