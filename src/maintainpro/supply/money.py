"""Money value type with ISO 4217 currencies, minor units and explicit rounding rules.

Rounding policy (procurement documents):

* Amounts are exact :class:`~decimal.Decimal` values; floats are rejected everywhere.
* A :class:`Money` may carry more digits than its currency's minor unit (unit prices such as
  ``0.0125 EUR`` per screw are common); rounding happens only when asked for, via
  :meth:`Money.round`, :func:`line_total` or :func:`document_total`.
* Document-level rounding goes to the currency's minor unit with ``ROUND_HALF_UP`` (commercial
  rounding); ``ROUND_HALF_EVEN`` (banker's rounding) is available as :attr:`Rounding.HALF_EVEN`.
* Line totals are rounded per line and the rounded lines are then summed; the document total is
  never computed by rounding the sum of unrounded lines.
* Splitting an amount uses the largest-remainder method so the parts always add up exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from types import MappingProxyType
from typing import Final, TypeAlias

__all__ = [
    "CURRENCY_EXPONENTS",
    "WITHDRAWN_CURRENCY_EXPONENTS",
    "AmountLike",
    "CurrencyMismatch",
    "FloatNotAllowed",
    "InvalidAmount",
    "Money",
    "MoneyError",
    "Rounding",
    "UnknownCurrency",
    "allocate",
    "currency_exponent",
    "document_total",
    "line_total",
    "round_lines",
    "split",
    "sum_money",
    "to_decimal",
    "validate_currency",
]

AmountLike: TypeAlias = Decimal | int | str
"""Accepted amount inputs; ``float`` is deliberately absent."""


def _exponent_table(groups: Mapping[int, str]) -> Mapping[str, int]:
    # Grouping codes by exponent keeps the table reviewable against the ISO list.
    return MappingProxyType({code: exp for exp, codes in groups.items() for code in codes.split()})


# ISO 4217 list one (active codes) with their minor units. Codes whose minor unit is "N.A."
# (precious metals, SDR, bond-market units, test codes) are left out because money in them
# cannot be rounded to a minor unit.
CURRENCY_EXPONENTS: Final[Mapping[str, int]] = _exponent_table(
    {
        0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
        2: (
            "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD "
            "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP "
            "DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF "
            "IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL "
            "MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
            "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
            "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD "
            "USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
        ),
        3: "BHD IQD JOD KWD LYD OMR TND",
        4: "CLF UYW",
    }
)
"""Active ISO 4217 currency codes mapped to their number of minor-unit digits."""

# Withdrawn codes stay accepted because old purchase documents and the ECB's historical
# reference rates (1999 onwards) still use them. TRL is given 0 digits since the kurus had no
# practical use before the 2005 redenomination.
WITHDRAWN_CURRENCY_EXPONENTS: Final[Mapping[str, int]] = _exponent_table(
    {
        0: "BYR TRL",
        2: "ANG BGN CUC CYP EEK HRK LTL LVL MRO MTL ROL SIT SKK SLL STD VEF ZWL",
    }
)
"""Withdrawn ISO 4217 codes (ECB history, recent replacements) mapped to their minor units."""

_NO_MINOR_UNIT: Final = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)

# Arithmetic must never lose digits silently, so Inexact is trapped; rounding is done only by
# quantize() in _ROUNDING_CTX, where inexactness is the whole point.
_EXACT_CTX: Final = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_ROUNDING_CTX: Final = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
# Bounds keep every amount inside the 60-digit contexts above (and any real ledger) and keep
# str() of an amount readable.
_MAX_ADJUSTED: Final = 24
_MAX_DIGITS: Final = 60
_MIN_EXPONENT: Final = -100


class MoneyError(ValueError):
    """Base class of all money errors."""


class UnknownCurrency(MoneyError):
    """A currency code is malformed or not a known ISO 4217 code."""


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were combined or compared."""


class InvalidAmount(MoneyError):
    """An amount is not a finite decimal number."""


class FloatNotAllowed(InvalidAmount, TypeError):
    """A float was passed where an exact decimal amount is required."""


class Rounding(enum.StrEnum):
    """Rounding modes allowed for money; values are the :mod:`decimal` constants."""

    HALF_UP = ROUND_HALF_UP
    HALF_EVEN = ROUND_HALF_EVEN


def validate_currency(code: object) -> str:
    """Return ``code`` if it is a known ISO 4217 code, else raise :class:`UnknownCurrency`."""
    if not isinstance(code, str):
        raise UnknownCurrency(f"currency code must be a str, got {type(code).__name__}")
    if len(code) != 3 or not (code.isascii() and code.isalpha() and code.isupper()):
        raise UnknownCurrency(f"currency code must be 3 uppercase ASCII letters, got {code!r}")
    if code in CURRENCY_EXPONENTS or code in WITHDRAWN_CURRENCY_EXPONENTS:
        return code
    if code in _NO_MINOR_UNIT:
        raise UnknownCurrency(f"{code} has no minor unit in ISO 4217 and cannot be used as money")
    raise UnknownCurrency(f"unknown ISO 4217 currency code {code!r}")


def currency_exponent(code: str) -> int:
    """Return the number of minor-unit digits of an ISO 4217 currency (JPY 0, EUR 2, KWD 3)."""
    validate_currency(code)
    exponent = CURRENCY_EXPONENTS.get(code)
    return WITHDRAWN_CURRENCY_EXPONENTS[code] if exponent is None else exponent


def to_decimal(value: object, *, what: str = "amount") -> Decimal:
    """Convert a str/int/Decimal to a finite Decimal; floats, bools and NaN/Infinity are refused."""
    if isinstance(value, float):
        raise FloatNotAllowed(
            f"{what} must be Decimal, int or str, not float ({value!r}): floats cannot represent "
            "most decimal amounts exactly"
        )
    # bool is an int subclass; True as an amount is always a bug.
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidAmount(f"{what} must be Decimal, int or str, got {type(value).__name__}")
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmount(f"{what} {value!r} is not a decimal number") from None
    else:
        result = Decimal(value)
    if not result.is_finite():
        raise InvalidAmount(f"{what} must be finite, got {value!r}")
    if result and result.adjusted() > _MAX_ADJUSTED:
        raise InvalidAmount(f"{what} {value!r} is too large (more than 10**{_MAX_ADJUSTED})")
    digits = result.as_tuple()
    if len(digits.digits) > _MAX_DIGITS:
        raise InvalidAmount(f"{what} {value!r} has more than {_MAX_DIGITS} significant digits")
    if int(digits.exponent) < _MIN_EXPONENT:
        raise InvalidAmount(f"{what} {value!r} has more than {-_MIN_EXPONENT} decimal places")
    # Negative zero would print as "-0.00" on documents.
    if result.is_zero() and result.is_signed():
        result = result.copy_abs()
    return result


def _exact(op: str, a: Decimal, b: Decimal) -> Decimal:
    # Turn decimal traps into domain errors so callers only ever see MoneyError.
    try:
        if op == "add":
            return _EXACT_CTX.add(a, b)
        if op == "subtract":
            return _EXACT_CTX.subtract(a, b)
        return _EXACT_CTX.multiply(a, b)
    except DecimalException as exc:
        raise InvalidAmount(f"cannot {op} {a} and {b} exactly: {type(exc).__name__}") from None


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact decimal amount in one ISO 4217 currency; use :meth:`of` for str/int input."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        """Validate currency and amount, normalising negative zero."""
        validate_currency(self.currency)
        object.__setattr__(self, "amount", to_decimal(self.amount))

    @classmethod
    def of(cls, amount: AmountLike, currency: str) -> Money:
        """Build Money from a Decimal, int or decimal string such as ``"12.50"``."""
        return cls(to_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return zero in ``currency`` at its minor-unit precision."""
        return cls(Decimal(0).scaleb(-currency_exponent(currency), _EXACT_CTX), currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        """Build Money from an integer count of minor units (cents, fils, ...)."""
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidAmount(f"minor units must be an int, got {type(units).__name__}")
        return cls(Decimal(units).scaleb(-currency_exponent(currency), _EXACT_CTX), currency)

    @property
    def exponent(self) -> int:
        """Number of minor-unit digits of this amount's currency."""
        return currency_exponent(self.currency)

    @property
    def is_rounded(self) -> bool:
        """True if the amount has no digits beyond the currency's minor unit."""
        return self.amount == self.amount.quantize(_quantum(self.currency), context=_ROUNDING_CTX)

    def round(self, rounding: Rounding = Rounding.HALF_UP) -> Money:
        """Round to the currency's minor unit (default commercial ROUND_HALF_UP)."""
        rounded = self.amount.quantize(
            _quantum(self.currency), rounding=Rounding(rounding).value, context=_ROUNDING_CTX
        )
        return Money(rounded, self.currency)

    def to_minor_units(self) -> int:
        """Return the amount as an integer count of minor units; it must already be rounded."""
        if not self.is_rounded:
            raise InvalidAmount(
                f"{self} has digits beyond the minor unit of {self.currency}; round it first"
            )
        return int(self.amount.scaleb(self.exponent, _EXACT_CTX))

    def _check_same(self, other: Money, op: str) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {op} {self.currency} and {other.currency}; convert one of them first"
            )

    def __add__(self, other: Money) -> Money:
        """Add an amount in the same currency."""
        self._check_same(other, "add")
        return Money(_exact("add", self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        """Subtract an amount in the same currency."""
        self._check_same(other, "subtract")
        return Money(_exact("subtract", self.amount, other.amount), self.currency)

    def __mul__(self, quantity: Decimal | int) -> Money:
        """Multiply by a quantity (Decimal or int, never float), exactly."""
        if isinstance(quantity, Money):
            raise TypeError("cannot multiply Money by Money")
        qty = to_decimal(quantity, what="quantity")
        return Money(_exact("multiply", self.amount, qty), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        """Return the negated amount."""
        return Money(_EXACT_CTX.minus(self.amount), self.currency)

    def __pos__(self) -> Money:
        """Return the amount unchanged."""
        return self

    def __abs__(self) -> Money:
        """Return the absolute amount."""
        return Money(_EXACT_CTX.abs(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        """Compare with an amount in the same currency."""
        self._check_same(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        """Compare with an amount in the same currency."""
        self._check_same(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        """Compare with an amount in the same currency."""
        self._check_same(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        """Compare with an amount in the same currency."""
        self._check_same(other, "compare")
        return self.amount >= other.amount

    def __str__(self) -> str:
        """Render as ``"1234.50 EUR"``: at least the minor-unit digits, never silently rounded."""
        return f"{_plain(self.amount, self.exponent)} {self.currency}"

    def format(
        self,
        *,
        grouping: bool = False,
        rounding: Rounding = Rounding.HALF_UP,
        code_first: bool = False,
    ) -> str:
        """Render rounded to the minor unit, e.g. ``"1,234.50 EUR"`` with ``grouping=True``."""
        rounded = self.round(rounding)
        text = _plain(rounded.amount, self.exponent, grouping=grouping)
        return f"{self.currency} {text}" if code_first else f"{text} {self.currency}"


def _plain(amount: Decimal, exponent: int, *, grouping: bool = False) -> str:
    digits_exponent = amount.as_tuple().exponent
    if not isinstance(digits_exponent, int):
        raise InvalidAmount(f"cannot format non-finite amount {amount!r}")
    # Pad to the minor unit but keep extra digits: str() must never hide precision.
    places = max(exponent, -digits_exponent)
    return format(amount, f"{',' if grouping else ''}.{places}f")


def sum_money(items: Iterable[Money], currency: str | None = None) -> Money:
    """Sum amounts of one currency exactly; ``currency`` is required for an empty iterable."""
    total: Money | None = Money.zero(currency) if currency is not None else None
    for item in items:
        total = item if total is None else total + item
    if total is None:
        raise ValueError("sum_money() of an empty iterable needs an explicit currency")
    return total


def line_total(
    unit_price: Money, quantity: AmountLike, rounding: Rounding = Rounding.HALF_UP
) -> Money:
    """Return ``unit_price * quantity`` rounded to the minor unit (one document line)."""
    return (unit_price * to_decimal(quantity, what="quantity")).round(rounding)


def round_lines(lines: Iterable[Money], rounding: Rounding = Rounding.HALF_UP) -> list[Money]:
    """Round each line amount to its currency's minor unit."""
    return [line.round(rounding) for line in lines]


def document_total(
    lines: Iterable[Money],
    rounding: Rounding = Rounding.HALF_UP,
    currency: str | None = None,
) -> Money:
    """Round every line to the minor unit first, then sum the rounded lines (never the reverse).

    Rounding per line means each printed line adds up to the printed total; rounding the sum
    of unrounded lines instead can differ by several minor units on long documents.
    """
    return sum_money(round_lines(lines, rounding), currency)


def allocate(total: Money, ratios: Sequence[AmountLike]) -> list[Money]:
    """Split ``total`` by ``ratios`` with the largest-remainder method; parts sum to ``total``.

    ``total`` must already be rounded to its minor unit. Ties in the remainders go to the
    earlier part, so the result is deterministic.
    """
    if not ratios:
        raise ValueError("allocate() needs at least one ratio")
    weights = [Fraction(to_decimal(r, what="ratio")) for r in ratios]
    if any(w < 0 for w in weights):
        raise ValueError("allocation ratios must not be negative")
    weight_sum = sum(weights, Fraction(0))
    if weight_sum == 0:
        raise ValueError("allocation ratios must not all be zero")
    units = total.to_minor_units()
    # Work on the magnitude so floors and remainders behave the same for credits (negatives).
    sign = -1 if units < 0 else 1
    magnitude = abs(units)
    exact = [magnitude * w / weight_sum for w in weights]
    shares = [int(e) for e in exact]  # int() floors non-negative fractions
    leftover = magnitude - sum(shares)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:leftover]:
        shares[i] += 1
    return [Money.from_minor_units(sign * s, total.currency) for s in shares]


def split(total: Money, parts: int) -> list[Money]:
    """Split ``total`` into ``parts`` near-equal amounts that sum exactly (earlier parts larger)."""
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"parts must be a positive int, got {parts!r}")
    return allocate(total, [1] * parts)
