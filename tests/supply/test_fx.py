"""Tests for maintainpro.supply.fx: bundled ECB data, lookup rules, conversion and file parsers."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.supply.fx import (
    DEFAULT_MAX_STALENESS,
    ECB_SOURCE,
    IDENTITY_SOURCE,
    MANUAL_SOURCE,
    AppliedRate,
    FxConverter,
    FxError,
    ManualRate,
    Publication,
    RateFileError,
    RateNotFound,
    RateTable,
    ecb_converter,
    load_bundled_ecb_rates,
    load_ecb_file,
    parse_ecb_csv,
    parse_ecb_xml,
)
from maintainpro.supply.money import CurrencyMismatch, Money, Rounding, currency_exponent

FRIDAY = date(2024, 1, 5)

# ECB format as served at /stats/eurofxref/eurofxref-daily.xml (values of 2024-01-05).
DAILY_XML = """<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" \
xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender>
\t\t<gesmes:name>European Central Bank</gesmes:name>
\t</gesmes:Sender>
\t<Cube>
\t\t<Cube time='2024-01-05'>
\t\t\t<Cube currency='USD' rate='1.0921'/>
\t\t\t<Cube currency='JPY' rate='158.57'/>
\t\t\t<Cube currency='BGN' rate='1.9558'/>
\t\t\t<Cube currency='GBP' rate='0.8621'/>
\t\t\t<Cube currency='CHF' rate='0.932'/>
\t\t\t<Cube currency='KRW' rate='1439.64'/>
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>
"""

# eurofxref-hist.xml: same envelope, newest day first, several days.
HIST_XML = DAILY_XML.replace(
    "\t\t<Cube time='2024-01-05'>",
    "\t\t<Cube time='2024-01-08'>\n"
    "\t\t\t<Cube currency='USD' rate='1.0946'/>\n"
    "\t\t\t<Cube currency='JPY' rate='158.19'/>\n"
    "\t\t</Cube>\n"
    "\t\t<Cube time='2024-01-05'>",
)

# eurofxref-hist.csv: ISO dates, newest first, "N/A" for missing, trailing comma on each line.
HIST_CSV = """Date,USD,JPY,BGN,CYP,GBP,ISK,RUB,
2024-01-05,1.0921,158.57,1.9558,N/A,0.8621,150.5,N/A,
2024-01-04,1.0953,157.91,1.9558,N/A,0.86278,150.5,N/A,
2022-03-01,1.1162,128.15,1.9558,N/A,0.8329,142,117.201,
"""

# eurofxref.csv (single day): spaces after commas and a spelled-out date.
DAILY_CSV = """Date, USD, JPY, BGN, GBP, \n 5 January 2024, 1.0921, 158.57, 1.9558, 0.8621, \n"""


def bundled_csv_rows() -> dict[str, dict[str, str]]:
    """Read the shipped zip independently of the code under test."""
    data = files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return {row[0]: dict(zip(header, row, strict=False)) for row in rows[1:]}


# --- bundled ECB data ---------------------------------------------------------------------


def test_bundled_data_loads_once_and_covers_ecb_history() -> None:
    table = load_bundled_ecb_rates()
    assert load_bundled_ecb_rates() is table
    assert table.first_day == date(1999, 1, 4)
    assert table.last_day > date(2024, 1, 1)
    assert {"USD", "JPY", "GBP", "CHF", "CYP", "EUR"} <= table.currencies
    assert all(p.source == ECB_SOURCE for p in table.publications[:10])


def test_known_eur_usd_reference_rates() -> None:
    converter = ecb_converter()
    rows = bundled_csv_rows()
    for day in (date(1999, 1, 4), date(2008, 12, 9), FRIDAY, date(2024, 4, 2)):
        applied = converter.rate("EUR", "USD", day)
        assert applied.rate == Decimal(rows[day.isoformat()]["USD"])
        assert applied.rate_date == day
        assert applied.source == ECB_SOURCE
    # Published ECB values, written out so a broken parser cannot agree with itself.
    assert converter.rate("EUR", "USD", date(1999, 1, 4)).rate == Decimal("1.1789")
    assert converter.rate("EUR", "USD", FRIDAY).rate == Decimal("1.0921")
    assert converter.rate("EUR", "JPY", FRIDAY).rate == Decimal("158.57")


@pytest.mark.parametrize("weekend_day", [date(2024, 1, 6), date(2024, 1, 7)])
def test_weekend_uses_friday_rate(weekend_day: date) -> None:
    applied = ecb_converter().rate("EUR", "USD", weekend_day)
    assert applied == AppliedRate("EUR", "USD", Decimal("1.0921"), FRIDAY, "ECB", weekend_day)


def test_easter_uses_last_publication_before_holidays() -> None:
    converter = ecb_converter()
    for day in (date(2024, 3, 29), date(2024, 3, 31), date(2024, 4, 1)):
        applied = converter.rate("EUR", "USD", day)
        assert (applied.rate_date, applied.rate) == (date(2024, 3, 28), Decimal("1.0811"))
    assert converter.rate("EUR", "USD", date(2024, 4, 2)).rate == Decimal("1.0749")


def test_before_first_publication_raises() -> None:
    with pytest.raises(RateNotFound, match=r"before 1998-12-31.*1999-01-04"):
        ecb_converter().rate("EUR", "USD", date(1998, 12, 31))


def test_currency_published_later_raises_before_its_first_day() -> None:
    rows = bundled_csv_rows()
    first_cny = min(d for d, row in rows.items() if row["CNY"] not in {"N/A", ""})
    with pytest.raises(RateNotFound, match=f"first published CNY rate is from {first_cny}"):
        ecb_converter().rate("USD", "CNY", date(2000, 1, 3))


def test_stopped_currency_is_not_carried_forward_silently() -> None:
    converter = ecb_converter()
    # The ECB suspended RUB after 2022-03-01 and ISK from December 2008 to 2018.
    assert converter.rate("EUR", "RUB", date(2022, 3, 1)).rate == Decimal("117.201")
    with pytest.raises(RateNotFound, match=r"from 2022-03-01.*stopped publishing"):
        converter.rate("EUR", "RUB", date(2023, 1, 2))
    with pytest.raises(RateNotFound, match="from 2008-12-09"):
        converter.rate("USD", "ISK", date(2010, 5, 7))
    lenient = ecb_converter(max_staleness=None)
    applied = lenient.rate("EUR", "ISK", date(2010, 5, 7))
    assert (applied.rate_date, applied.rate) == (date(2008, 12, 9), Decimal(290))


def test_data_newer_than_bundle_is_required_for_recent_days() -> None:
    table = load_bundled_ecb_rates()
    with pytest.raises(RateNotFound, match="out of date"):
        ecb_converter().rate("EUR", "USD", table.last_day + timedelta(days=30))
    assert timedelta(days=7) == DEFAULT_MAX_STALENESS


def test_currency_without_ecb_rate() -> None:
    with pytest.raises(RateNotFound, match="no reference rate for AED"):
        ecb_converter().rate("EUR", "AED", FRIDAY)


# --- cross rates and conversion ----------------------------------------------------------


def test_cross_rate_via_eur() -> None:
    applied = ecb_converter().rate("USD", "JPY", FRIDAY)
    with localcontext() as ctx:
        ctx.prec = 28
        expected = Decimal("158.57") / Decimal("1.0921")
    assert applied.rate == expected
    assert str(applied.rate).startswith("145.19732625217")
    assert applied.rate_date == FRIDAY


def test_inverse_and_identity() -> None:
    converter = ecb_converter()
    usd_eur = converter.rate("USD", "EUR", FRIDAY)
    assert usd_eur.rate * Decimal("1.0921") == pytest.approx(Decimal(1), abs=Decimal("1e-26"))
    same = converter.rate("CHF", "CHF", date(2024, 1, 6))
    assert (same.rate, same.source, same.rate_date) == (
        Decimal(1),
        IDENTITY_SOURCE,
        date(2024, 1, 6),
    )


def test_convert_returns_amount_and_applied_rate() -> None:
    conversion = ecb_converter().convert(Money.of("100", "USD"), "JPY", date(2024, 1, 6))
    assert conversion.original == Money.of("100", "USD")
    assert conversion.converted == Money.of("14520", "JPY")  # 14519.73 rounded to yen
    assert conversion.applied.rate_date == FRIDAY
    assert conversion.applied.requested_date == date(2024, 1, 6)
    assert conversion.applied.source == "ECB"
    assert conversion.applied.convert(conversion.original) == conversion.converted
    with pytest.raises(dataclasses.FrozenInstanceError):
        conversion.applied.rate = Decimal(1)  # type: ignore[misc]


def test_convert_rounding_options() -> None:
    converter = ecb_converter()
    money = Money.of("10.00", "EUR")
    exact = converter.convert(money, "USD", FRIDAY, rounding=None).converted
    assert exact == Money.of("10.921", "USD")
    assert converter.convert(money, "USD", FRIDAY).converted == Money.of("10.92", "USD")
    half = Money.of("0.50", "EUR")
    manual = FxConverter(
        load_bundled_ecb_rates(), (ManualRate("EUR", "USD", Decimal("0.25"), FRIDAY),)
    )
    assert manual.convert(half, "USD", FRIDAY).converted == Money.of("0.13", "USD")
    assert manual.convert(half, "USD", FRIDAY, Rounding.HALF_EVEN).converted == Money.of(
        "0.12", "USD"
    )


def test_applied_rate_refuses_other_currency() -> None:
    applied = ecb_converter().rate("EUR", "USD", FRIDAY)
    with pytest.raises(CurrencyMismatch, match="EUR->USD"):
        applied.convert(Money.of(1, "GBP"))


def test_datetime_and_bad_codes_are_refused() -> None:
    converter = ecb_converter()
    with pytest.raises(TypeError, match=r"datetime\.date"):
        converter.rate("EUR", "USD", datetime(2024, 1, 5, 12))
    with pytest.raises(TypeError):
        converter.rate("EUR", "USD", "2024-01-05")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 uppercase"):
        converter.rate("eur", "USD", FRIDAY)
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        converter.rate("EUR", "ZZZ", FRIDAY)


# --- manual rates -------------------------------------------------------------------------


def test_manual_rate_takes_precedence_on_its_date_only() -> None:
    manual = ManualRate("EUR", "USD", Decimal("1.1"), FRIDAY)
    converter = ecb_converter([manual])
    on_day = converter.rate("EUR", "USD", FRIDAY)
    assert (on_day.rate, on_day.source, on_day.rate_date) == (Decimal("1.1"), MANUAL_SOURCE, FRIDAY)
    inverse = converter.rate("USD", "EUR", FRIDAY)
    assert inverse.source == MANUAL_SOURCE
    assert inverse.rate == Decimal(1) / Decimal("1.1")
    saturday = converter.rate("EUR", "USD", date(2024, 1, 6))
    assert (saturday.rate, saturday.source) == (Decimal("1.0921"), ECB_SOURCE)
    # Pairs not configured manually still use the ECB.
    assert converter.rate("EUR", "JPY", FRIDAY).source == ECB_SOURCE


def test_manual_rate_for_currency_the_ecb_does_not_publish() -> None:
    converter = ecb_converter([ManualRate("USD", "AED", Decimal("3.6725"), FRIDAY)])
    conversion = converter.convert(Money.of("100", "USD"), "AED", FRIDAY)
    assert conversion.converted == Money.of("367.25", "AED")
    assert conversion.applied.source == "manual"
    with pytest.raises(RateNotFound, match="AED"):
        converter.rate("USD", "AED", date(2024, 1, 6))


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("EUR", "EUR", Decimal(1), FRIDAY), FxError, "two different"),
        (("EUR", "USD", Decimal(0), FRIDAY), FxError, "positive"),
        (("EUR", "USD", Decimal(-1), FRIDAY), FxError, "positive"),
        (("EUR", "USD", Decimal("NaN"), FRIDAY), FxError, "finite"),
        (("EUR", "USD", 1.1, FRIDAY), FxError, "float"),
        (("EUR", "usd", Decimal(1), FRIDAY), ValueError, "3 uppercase"),
        (("EUR", "USD", Decimal(1), "2024-01-05"), TypeError, "date"),
    ],
)
def test_bad_manual_rates(args: tuple[object, ...], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ManualRate(*args)  # type: ignore[arg-type]


def test_conflicting_manual_rates() -> None:
    rates = (
        ManualRate("EUR", "USD", Decimal("1.1"), FRIDAY),
        ManualRate("USD", "EUR", Decimal("0.9"), FRIDAY),
    )
    with pytest.raises(FxError, match="more than one"):
        FxConverter(load_bundled_ecb_rates(), rates)
    with pytest.raises(FxError, match="negative"):
        FxConverter(load_bundled_ecb_rates(), max_staleness=timedelta(days=-1))


# --- ECB XML files ------------------------------------------------------------------------


def test_parse_daily_xml() -> None:
    table = parse_ecb_xml(DAILY_XML.encode(), source="ECB-file:eurofxref-daily.xml")
    assert len(table) == 1
    pub = table.publications[0]
    assert pub.day == FRIDAY
    assert pub.source == "ECB-file:eurofxref-daily.xml"
    assert pub.rates["USD"] == Decimal("1.0921")
    assert pub.rates["KRW"] == Decimal("1439.64")
    assert set(pub.rates) == {"USD", "JPY", "BGN", "GBP", "CHF", "KRW"}


def test_parse_hist_xml_and_convert() -> None:
    table = parse_ecb_xml(HIST_XML, source="ECB-file:eurofxref-hist.xml")
    assert [p.day for p in table.publications] == [FRIDAY, date(2024, 1, 8)]
    converter = FxConverter(table)
    sunday = converter.rate("GBP", "USD", date(2024, 1, 7))
    assert sunday.rate_date == FRIDAY
    assert sunday.source == "ECB-file:eurofxref-hist.xml"
    # GBP is missing on 2024-01-08 in this sample: both legs come from the same earlier day.
    monday = converter.rate("GBP", "USD", date(2024, 1, 8))
    assert monday.rate_date == FRIDAY
    assert converter.rate("JPY", "USD", date(2024, 1, 8)).rate_date == date(2024, 1, 8)


def test_load_files_label_source(tmp_path: Path) -> None:
    xml_file = tmp_path / "eurofxref-daily.xml"
    xml_file.write_text(DAILY_XML, encoding="utf-8")
    csv_file = tmp_path / "eurofxref-hist.csv"
    csv_file.write_text(HIST_CSV, encoding="utf-8")
    zip_file = tmp_path / "eurofxref-hist.zip"
    with zipfile.ZipFile(zip_file, "w") as archive:
        archive.writestr("eurofxref-hist.csv", HIST_CSV)
    assert load_ecb_file(xml_file).publications[0].source == "ECB-file:eurofxref-daily.xml"
    assert load_ecb_file(str(csv_file)).publications[0].source == "ECB-file:eurofxref-hist.csv"
    assert len(load_ecb_file(zip_file)) == 3
    bad = tmp_path / "rates.txt"
    bad.write_text(HIST_CSV, encoding="utf-8")
    with pytest.raises(RateFileError, match="unsupported file type"):
        load_ecb_file(bad)
    with pytest.raises(FileNotFoundError):
        load_ecb_file(tmp_path / "missing.xml")


def test_imported_file_overrides_bundled_day(tmp_path: Path) -> None:
    path = tmp_path / "eurofxref-daily.xml"
    path.write_text(DAILY_XML.replace("'1.0921'", "'1.0999'"), encoding="utf-8")
    converter = ecb_converter(newer=[load_ecb_file(path)])
    applied = converter.rate("EUR", "USD", FRIDAY)
    assert (applied.rate, applied.source) == (Decimal("1.0999"), "ECB-file:eurofxref-daily.xml")
    assert converter.rate("EUR", "USD", date(2024, 1, 4)).source == ECB_SOURCE


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01">&lol2;</gesmes:Envelope>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01">&xxe;</gesmes:Envelope>
"""


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("", "not a valid ECB XML"),
        ("<gesmes:Envelope", "not a valid ECB XML"),
        ("not xml at all", "not a valid ECB XML"),
        (BILLION_LAUGHS, "not a valid ECB XML"),
        (EXTERNAL_ENTITY, "not a valid ECB XML"),
        ("<Envelope/>", "expected gesmes:Envelope"),
        (DAILY_XML.replace("http://www.ecb.int/", "http://example.org/"), "no eurofxref Cube"),
        (DAILY_XML.replace("time='2024-01-05'", ""), "without 'time'"),
        (DAILY_XML.replace("time='2024-01-05'", "time='2024-13-05'"), "invalid date"),
        (DAILY_XML.replace("time='2024-01-05'", "time='05.01.2024'"), "invalid date"),
        (DAILY_XML.replace(" rate='1.0921'", ""), "'currency' and 'rate'"),
        (DAILY_XML.replace("'1.0921'", "'1,0921'"), "USD: invalid rate '1,0921'"),
        (DAILY_XML.replace("'1.0921'", "'NaN'"), "invalid rate 'NaN'"),
        (DAILY_XML.replace("'1.0921'", "'-1.0921'"), "invalid rate"),
        (DAILY_XML.replace("'1.0921'", "'0'"), "invalid rate"),
        (DAILY_XML.replace("'USD'", "'usd'"), "invalid currency 'usd'"),
        (DAILY_XML.replace("'JPY'", "'USD'"), "USD appears twice"),
        (DAILY_XML.replace("'USD'", "'EUR'"), "must not contain EUR"),
        (HIST_XML.replace("2024-01-08", "2024-01-05"), "two publications for 2024-01-05"),
        (DAILY_XML.split("\t\t<Cube time")[0] + "\t</Cube>\n</gesmes:Envelope>", "no rates"),
    ],
)
def test_malformed_xml_gives_clear_errors(document: str, message: str) -> None:
    with pytest.raises(RateFileError, match=message):
        parse_ecb_xml(document, source="ECB-file:test.xml")


def test_xml_error_names_the_file() -> None:
    with pytest.raises(RateFileError, match=r"^ECB-file:bad\.xml: "):
        parse_ecb_xml(b"<oops", source="ECB-file:bad.xml")


# --- ECB CSV files ------------------------------------------------------------------------


def test_parse_hist_csv() -> None:
    table = parse_ecb_csv(HIST_CSV, source="ECB-file:eurofxref-hist.csv")
    assert [p.day for p in table.publications] == [date(2022, 3, 1), date(2024, 1, 4), FRIDAY]
    friday = table.publications[-1]
    assert friday.rates == {
        "USD": Decimal("1.0921"),
        "JPY": Decimal("158.57"),
        "BGN": Decimal("1.9558"),
        "GBP": Decimal("0.8621"),
        "ISK": Decimal("150.5"),
    }
    assert table.publications[0].rates["RUB"] == Decimal("117.201")
    assert "CYP" not in table.currencies  # a column of N/A gives no rate at all
    converter = FxConverter(table, max_staleness=None)
    assert converter.rate("EUR", "RUB", FRIDAY).rate_date == date(2022, 3, 1)


def test_parse_single_day_csv_with_spaces_and_bom() -> None:
    table = parse_ecb_csv("\ufeff" + DAILY_CSV, source="ECB-file:eurofxref.csv")
    (pub,) = table.publications
    assert pub.day == FRIDAY
    assert pub.rates["GBP"] == Decimal("0.8621")


def test_parse_csv_with_crlf_and_blank_lines() -> None:
    text = HIST_CSV.replace("\n", "\r\n") + "\r\n\r\n"
    assert len(parse_ecb_csv(text, source="x")) == 3
    without_trailing_commas = HIST_CSV.replace(",\n", "\n")
    assert parse_ecb_csv(without_trailing_commas, source="x") == parse_ecb_csv(HIST_CSV, source="x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty CSV"),
        ("\n\n", "empty CSV"),
        ("Date,USD,\n", "no rates"),
        ("Day,USD,\n2024-01-05,1.0921,\n", "header must start with 'Date'"),
        ("Date,usd,\n2024-01-05,1.0921,\n", "invalid currency 'usd'"),
        ("Date,USD,USD,\n2024-01-05,1,1,\n", "duplicate currency"),
        (
            "Date,USD,JPY,\n2024-01-05,1.0921,\n",
            r"line 2: 2 cells before the trailing comma, header has 3",
        ),
        ("Date,USD,\n2024-01-05,1.0921,158.57,\n", "line 2: 3 cells"),
        ("Date,USD,JPY,\n2024-01-05,1.0921,158.57\n", "line 2: no trailing comma"),
        ("Date,USD,JPY\n2024-01-05,1.0921,158.57,\n", "line 2: 4 cells, header has 3"),
        ("Date,USD,\n05/01/2024,1.0921,\n", "invalid date '05/01/2024'"),
        ("Date,USD,\n2024-02-30,1.0921,\n", "invalid date"),
        ("Date,USD,\n31 Febtember 2024,1.0921,\n", "invalid date"),
        ("Date,USD,\n2024-01-05,abc,\n", "line 2, USD: invalid rate 'abc'"),
        ("Date,USD,\n2024-01-05,nan,\n", "invalid rate 'nan'"),
        ("Date,USD,\n2024-01-05,-1,\n", "invalid rate '-1'"),
        ("Date,USD,\n2024-01-05,1e999,\n", "invalid rate"),
        ("Date,EUR,\n2024-01-05,1,\n", "must not contain EUR"),
        ("Date,USD,\n2024-01-05,1.0921,\n2024-01-05,1.0921,\n", "two publications"),
        ('Date,USD,\n2024-01-05,"' + "9" * 200_000 + '",\n', "not a valid CSV"),
    ],
)
def test_malformed_csv_gives_clear_errors(text: str, message: str) -> None:
    with pytest.raises(RateFileError, match=message):
        parse_ecb_csv(text, source="ECB-file:test.csv")


def test_bad_zip_and_encoding(tmp_path: Path) -> None:
    not_zip = tmp_path / "eurofxref-hist.zip"
    not_zip.write_bytes(b"PK not really")
    with pytest.raises(RateFileError, match="not a valid zip"):
        load_ecb_file(not_zip)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", HIST_CSV)
        archive.writestr("b.csv", HIST_CSV)
    with pytest.raises(RateFileError, match="expected one CSV or XML"):
        load_ecb_file(two)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Date,USD,\n2024-01-05,1\xe9,\n".encode("latin-1"))
    with pytest.raises(RateFileError, match="not UTF-8"):
        load_ecb_file(latin)


def test_rate_table_validation() -> None:
    with pytest.raises(RateFileError, match="at least one"):
        RateTable(())
    with pytest.raises(FxError, match="3 uppercase"):
        Publication(FRIDAY, {"usd": Decimal(1)}, "manual")
    pub = Publication(FRIDAY, {"USD": Decimal("1.0921")}, "x")
    with pytest.raises(TypeError):
        pub.rates["USD"] = Decimal(2)  # type: ignore[index]


# --- properties ---------------------------------------------------------------------------

# ISK, KRW and JPY have no minor unit and IDR is large: good edges for the round trip.
ROUND_TRIP_CURRENCIES = st.sampled_from(
    ["EUR", "USD", "JPY", "GBP", "CHF", "ISK", "KRW", "IDR", "HUF", "CZK", "BGN", "ZAR"]
)


# No deadline: the first example may pay for loading the bundled data set (under a second).
@settings(deadline=None)
@given(
    units=st.integers(min_value=0, max_value=10**11),
    base=ROUND_TRIP_CURRENCIES,
    quote=ROUND_TRIP_CURRENCIES,
    day=st.dates(min_value=date(2018, 3, 1), max_value=date(2024, 12, 31)),
)
def test_conversion_round_trip_within_rounding(
    units: int, base: str, quote: str, day: date
) -> None:
    converter = ecb_converter()
    original = Money.from_minor_units(units, base)
    there = converter.convert(original, quote, day)
    back = converter.convert(there.converted, base, day)
    assert there.applied.rate_date == back.applied.rate_date <= day
    # Each leg rounds by at most half a minor unit; the first error is scaled by the back rate.
    unit_base = Decimal(1).scaleb(-currency_exponent(base))
    unit_quote = Decimal(1).scaleb(-currency_exponent(quote))
    bound = unit_base / 2 + back.applied.rate * unit_quote / 2 + original.amount * Decimal("1e-25")
    assert abs(back.converted.amount - original.amount) <= bound


@settings(deadline=None)
@given(
    day=st.dates(min_value=date(1999, 1, 4), max_value=date(2024, 12, 31)),
    code=st.sampled_from(["USD", "JPY", "GBP", "CHF", "SEK"]),
)
def test_lookup_uses_last_publication_never_a_later_one(day: date, code: str) -> None:
    table = load_bundled_ecb_rates()
    pub = table.publication_for("EUR", code, day)
    assert pub.day <= day
    assert day - pub.day <= DEFAULT_MAX_STALENESS
    later = [p for p in table.publications if pub.day < p.day <= day and code in p.rates]
    assert later == []
    assert ecb_converter().rate("EUR", code, day).rate == pub.rates[code]
