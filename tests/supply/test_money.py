"""Tests for maintainpro.supply.money: currencies, validation, arithmetic, rounding, allocation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintainpro.supply.money import (
    CURRENCY_EXPONENTS,
    WITHDRAWN_CURRENCY_EXPONENTS,
    CurrencyMismatch,
    FloatNotAllowed,
    InvalidAmount,
    Money,
    MoneyError,
    Rounding,
    UnknownCurrency,
    allocate,
    currency_exponent,
    document_total,
    line_total,
    round_lines,
    split,
    sum_money,
    to_decimal,
    validate_currency,
)

# Everything the ECB has ever published in eurofxref-hist, active or withdrawn.
ECB_CURRENCIES = [
    "USD",
    "JPY",
    "BGN",
    "CYP",
    "CZK",
    "DKK",
    "EEK",
    "GBP",
    "HUF",
    "LTL",
    "LVL",
    "MTL",
    "PLN",
    "ROL",
    "RON",
    "SEK",
    "SIT",
    "SKK",
    "CHF",
    "ISK",
    "NOK",
    "HRK",
    "RUB",
    "TRL",
    "TRY",
    "AUD",
    "BRL",
    "CAD",
    "CNY",
    "HKD",
    "IDR",
    "ILS",
    "INR",
    "KRW",
    "MXN",
    "MYR",
    "NZD",
    "PHP",
    "SGD",
    "THB",
    "ZAR",
]


def eur(amount: str) -> Money:
    """Shorthand for a EUR amount."""
    return Money.of(amount, "EUR")


# --- currencies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("EUR", 2),
        ("USD", 2),
        ("BHD", 3),
        ("KWD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("UYW", 4),
        ("CYP", 2),
        ("TRL", 0),
    ],
)
def test_currency_exponents(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_every_ecb_currency_is_known() -> None:
    for code in ECB_CURRENCIES:
        assert validate_currency(code) == code


def test_tables_are_frozen_and_disjoint() -> None:
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["EUR"] = 3  # type: ignore[index]
    assert not set(CURRENCY_EXPONENTS) & set(WITHDRAWN_CURRENCY_EXPONENTS)
    assert len(CURRENCY_EXPONENTS) > 150
    assert all(v in {0, 2, 3, 4} for v in CURRENCY_EXPONENTS.values())


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("usd", "3 uppercase"),
        ("US", "3 uppercase"),
        ("USDX", "3 uppercase"),
        ("U5D", "3 uppercase"),
        (" USD", "3 uppercase"),
        ("ÜSD", "3 uppercase"),
        ("", "3 uppercase"),
        ("ABC", "unknown ISO 4217"),
        ("XAU", "no minor unit"),
        ("XDR", "no minor unit"),
        (840, "must be a str"),
        (None, "must be a str"),
    ],
)
def test_bad_currency_codes(code: object, message: str) -> None:
    with pytest.raises(UnknownCurrency, match=message):
        validate_currency(code)
    with pytest.raises(ValueError, match=message):
        Money(Decimal(1), code)  # type: ignore[arg-type]


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (" 7 ", Decimal(7)),
        (3, Decimal(3)),
        ("1_000.5", Decimal("1000.5")),
        (Decimal("0.0125"), Decimal("0.0125")),
        ("-0", Decimal(0)),
        ("1E+3", Decimal(1000)),
    ],
)
def test_to_decimal_accepts(value: object, expected: Decimal) -> None:
    assert to_decimal(value) == expected


def test_float_is_refused_explicitly() -> None:
    with pytest.raises(FloatNotAllowed, match="not float"):
        Money.of(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not float"):
        to_decimal(1.0)
    with pytest.raises(FloatNotAllowed):
        eur("1") * 1.5  # type: ignore[operator]


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-inf",
        Decimal("NaN"),
        Decimal("-Infinity"),
        "abc",
        "",
        "1,5",
        "12 EUR",
        "1e30",
        "1e-101",
        "1" * 61,
        True,
        None,
        b"1",
        [1],
    ],
)
def test_hostile_amounts(value: object) -> None:
    with pytest.raises(InvalidAmount):
        to_decimal(value)
    with pytest.raises(MoneyError):
        Money(value, "EUR")  # type: ignore[arg-type]


def test_money_is_frozen_and_hashable() -> None:
    money = eur("1.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = Decimal(2)  # type: ignore[misc]
    assert money == eur("1.00")
    assert hash(money) == hash(eur("1.00"))
    assert money != Money.of("1.0", "USD")
    assert len({money, eur("1.00"), eur("1.01")}) == 2


# --- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (eur("1234.5"), "1234.50 EUR"),
        (eur("0.0125"), "0.0125 EUR"),
        (eur("1E+3"), "1000.00 EUR"),
        (Money.of("1234", "JPY"), "1234 JPY"),
        (Money.of("1.5", "KWD"), "1.500 KWD"),
        (Money.of("1", "CLF"), "1.0000 CLF"),
        (eur("-0.00"), "0.00 EUR"),
        (eur("-0"), "0.00 EUR"),
        (eur("-12.3"), "-12.30 EUR"),
    ],
)
def test_str_pads_to_minor_unit_and_never_rounds(money: Money, text: str) -> None:
    assert str(money) == text


def test_format_rounds_and_groups() -> None:
    assert eur("1234567.891").format(grouping=True) == "1,234,567.89 EUR"
    assert eur("2.665").format() == "2.67 EUR"
    assert eur("2.665").format(rounding=Rounding.HALF_EVEN) == "2.66 EUR"
    assert Money.of("1234.5", "JPY").format(code_first=True) == "JPY 1235"
    assert Money.of("-1234.5", "JPY").format() == "-1235 JPY"


@pytest.mark.parametrize("amount", ["-0.001", "-0.004", "-0.0049999"])
def test_negative_zero_never_printed(amount: str) -> None:
    rounded = eur(amount).round()
    assert str(rounded) == "0.00 EUR"
    assert eur(amount).format() == "0.00 EUR"
    assert not rounded.amount.is_signed()


def test_negating_zero_is_plain_zero() -> None:
    assert str(-Money.zero("EUR")) == "0.00 EUR"
    assert str(Money.zero("KWD") * -1) == "0.000 KWD"


# --- arithmetic ---------------------------------------------------------------------------


def test_add_sub_neg_abs_mul() -> None:
    assert eur("1.10") + eur("2.205") == eur("3.305")
    assert eur("1.10") - eur("2.20") == eur("-1.10")
    assert -eur("5") == eur("-5")
    assert +eur("5") == eur("5")
    assert abs(eur("-5")) == eur("5")
    assert eur("0.0125") * Decimal("1000") == eur("12.5")
    assert 3 * eur("0.10") == eur("0.30")
    assert eur("0.10") * "3" == eur("0.30")  # type: ignore[operator]


def test_mixing_currencies_raises() -> None:
    usd = Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch, match="EUR and USD"):
        eur("1") + usd
    with pytest.raises(CurrencyMismatch):
        eur("1") - usd
    with pytest.raises(CurrencyMismatch):
        _ = eur("1") < usd
    with pytest.raises(CurrencyMismatch):
        sum_money([eur("1"), usd])


def test_type_errors() -> None:
    with pytest.raises(TypeError):
        eur("1") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        eur("1") * eur("2")  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = eur("1") < 1  # type: ignore[operator]


def test_comparisons() -> None:
    assert eur("1.00") < eur("1.01") <= eur("1.01") < eur("2")
    assert eur("3") > eur("2.99") >= eur("2.99")
    assert max([eur("1"), eur("3"), eur("2")]) == eur("3")
    assert sorted([eur("2"), eur("-1"), eur("0")]) == [eur("-1"), eur("0"), eur("2")]


def test_sum_money() -> None:
    assert sum_money([eur("0.10")] * 10) == eur("1.00")
    assert sum_money([], "JPY") == Money.of(0, "JPY")
    assert str(sum_money([], "EUR")) == "0.00 EUR"
    with pytest.raises(ValueError, match="explicit currency"):
        sum_money([])
    with pytest.raises(CurrencyMismatch):
        sum_money([eur("1")], "USD")


def test_minor_units_round_trip() -> None:
    assert Money.from_minor_units(12345, "EUR") == eur("123.45")
    assert Money.from_minor_units(-5, "KWD") == Money.of("-0.005", "KWD")
    assert Money.of("123", "JPY").to_minor_units() == 123
    assert eur("1.5").to_minor_units() == 150
    with pytest.raises(InvalidAmount, match="round it first"):
        eur("1.005").to_minor_units()


def test_overflowing_arithmetic_is_a_money_error() -> None:
    big = eur("9" * 25)
    with pytest.raises(InvalidAmount):
        big * Decimal("1" + "0" * 20)


# --- rounding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "half_up", "half_even"),
    [
        ("2.665", "EUR", "2.67", "2.66"),
        ("2.675", "EUR", "2.68", "2.68"),
        ("0.125", "EUR", "0.13", "0.12"),
        ("-0.125", "EUR", "-0.13", "-0.12"),
        ("2.5", "JPY", "3", "2"),
        ("1.0005", "KWD", "1.001", "1.000"),
        ("1.00005", "CLF", "1.0001", "1.0000"),
    ],
)
def test_round_half_up_default_and_half_even_option(
    amount: str, currency: str, half_up: str, half_even: str
) -> None:
    money = Money.of(amount, currency)
    assert money.round() == Money.of(half_up, currency)
    assert money.round(Rounding.HALF_UP) == Money.of(half_up, currency)
    assert money.round(Rounding.HALF_EVEN) == Money.of(half_even, currency)
    assert money.round().is_rounded
    assert money.round().amount.as_tuple().exponent == -currency_exponent(currency)


def test_rounding_mode_outside_enum_is_refused() -> None:
    with pytest.raises(ValueError, match="ROUND_DOWN"):
        eur("1.005").round("ROUND_DOWN")  # type: ignore[arg-type]


def test_line_totals_are_rounded_per_line_then_summed() -> None:
    unit_price = eur("0.005")
    lines = [unit_price * 1, unit_price * 1, unit_price * 1]
    per_line = document_total(lines)
    sum_then_round = sum_money(lines).round()
    assert per_line == eur("0.03")
    assert sum_then_round == eur("0.02")
    assert per_line != sum_then_round
    # The printed lines add up to the printed total.
    assert sum_money(round_lines(lines)) == per_line


def test_line_total_with_fractional_unit_price() -> None:
    assert line_total(eur("0.0125"), 7) == eur("0.09")  # 0.0875
    assert line_total(eur("0.0125"), "7", Rounding.HALF_EVEN) == eur("0.09")
    assert line_total(eur("19.99"), Decimal("2.5")) == eur("49.98")  # 49.975
    with pytest.raises(FloatNotAllowed):
        line_total(eur("1"), 2.5)  # type: ignore[arg-type]


def test_document_total_empty_and_half_even() -> None:
    assert document_total([], currency="EUR") == eur("0")
    lines = [eur("0.125"), eur("0.135")]
    assert document_total(lines) == eur("0.27")
    assert document_total(lines, Rounding.HALF_EVEN) == eur("0.26")


# --- allocation ---------------------------------------------------------------------------


def test_allocate_examples() -> None:
    assert split(eur("100"), 3) == [eur("33.34"), eur("33.33"), eur("33.33")]
    assert split(eur("-100"), 3) == [eur("-33.34"), eur("-33.33"), eur("-33.33")]
    assert split(Money.of(100, "JPY"), 3) == [Money.of(n, "JPY") for n in (34, 33, 33)]
    assert allocate(eur("0.05"), [1, 2]) == [eur("0.02"), eur("0.03")]
    assert allocate(eur("10"), ["0.5", "0.25", "0.25"]) == [eur("5"), eur("2.5"), eur("2.5")]
    assert allocate(eur("1"), [0, 1]) == [eur("0"), eur("1")]
    assert allocate(eur("0.01"), [1, 1, 1]) == [eur("0.01"), eur("0"), eur("0")]
    assert allocate(Money.of("1", "KWD"), [1, 1, 1]) == [
        Money.of("0.334", "KWD"),
        Money.of("0.333", "KWD"),
        Money.of("0.333", "KWD"),
    ]


def test_allocate_errors() -> None:
    with pytest.raises(InvalidAmount, match="round it first"):
        split(eur("1.005"), 2)
    with pytest.raises(ValueError, match="at least one"):
        allocate(eur("1"), [])
    with pytest.raises(ValueError, match="negative"):
        allocate(eur("1"), [2, -1])
    with pytest.raises(ValueError, match="all be zero"):
        allocate(eur("1"), [0, 0])
    with pytest.raises(FloatNotAllowed):
        allocate(eur("1"), [0.5, 0.5])  # type: ignore[list-item]
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="positive int"):
            split(eur("1"), bad)


CURRENCIES = st.sampled_from(["EUR", "JPY", "KWD", "CLF", "USD"])


@given(
    units=st.integers(min_value=-(10**15), max_value=10**15),
    currency=CURRENCIES,
    ratios=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any),
)
def test_allocation_sums_exactly(units: int, currency: str, ratios: list[int]) -> None:
    total = Money.from_minor_units(units, currency)
    parts = allocate(total, ratios)
    assert len(parts) == len(ratios)
    assert sum_money(parts) == total
    weight = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        assert part.is_rounded
        # Largest remainder keeps each part within one minor unit of its exact share.
        exact_units = Decimal(units) * ratio / weight
        assert abs(part.to_minor_units() - exact_units) < 1
        if ratio == 0:
            assert part.amount == 0


@given(
    units=st.integers(min_value=-(10**12), max_value=10**12),
    parts=st.integers(min_value=1, max_value=50),
)
def test_split_parts_differ_by_at_most_one_unit(units: int, parts: int) -> None:
    total = Money.from_minor_units(units, "EUR")
    result = split(total, parts)
    assert sum_money(result) == total
    minor = [p.to_minor_units() for p in result]
    assert max(minor) - min(minor) <= 1


@given(
    a=st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
    b=st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
)
def test_add_sub_are_exact(a: Decimal, b: Decimal) -> None:
    x, y = eur(str(a)), eur(str(b))
    assert (x + y) - y == x
    assert x + y == y + x
    assert (x * 3) == x + x + x


@given(a=st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False))
def test_rounding_error_is_at_most_half_a_unit(a: Decimal) -> None:
    for mode in Rounding:
        rounded = eur(str(a)).round(mode)
        assert abs(rounded.amount - a) <= Decimal("0.005")
