from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import YibaoError
from core.money import (
    AMOUNT_FEN_MAX,
    AmountError,
    apply_ratio,
    format_yuan,
    parse_yuan,
    round_half_up_div,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1234.56", 123456),
        ("12", 1200),
        ("12.5", 1250),
        ("0", 0),
        ("0.00", 0),
        ("0.01", 1),
        ("007.10", 710),
        ("-0.00", 0),
        ("10000000000.00", AMOUNT_FEN_MAX),
    ],
)
def test_a_yuan_string_parses_to_exact_fen(text, fen):
    assert parse_yuan(text) == fen


def test_an_int_is_whole_yuan():
    assert parse_yuan(12) == 1200
    assert parse_yuan(0) == 0


def test_a_decimal_parses_exactly_without_float():
    assert parse_yuan(Decimal("0.1")) == 10
    assert parse_yuan(Decimal("96000.00")) == 9600000
    assert parse_yuan(Decimal("1E+3")) == 100000


def test_a_decimal_with_more_digits_than_the_context_precision_is_still_exact():
    assert parse_yuan(Decimal("9999999999.99")) == 999999999999


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        0.1,
        1.0,
        None,
        [],
        b"12",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "1e3",
        "1E3",
        " 12",
        "12 ",
        "12\n",
        "",
        "+12",
        "12.",
        ".5",
        "1,000.00",
        "１２",
        "٣",
        "0x10",
        "1_000",
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("sNaN"),
    ],
)
def test_anything_that_is_not_a_plain_number_is_amount_not_a_number(value):
    with pytest.raises(AmountError) as info:
        parse_yuan(value)
    assert info.value.reason == "amount_not_a_number"


@pytest.mark.parametrize("value", ["-1", "-0.01", -1, Decimal("-5.00")])
def test_a_negative_amount_is_amount_negative(value):
    with pytest.raises(AmountError) as info:
        parse_yuan(value)
    assert info.value.reason == "amount_negative"


@pytest.mark.parametrize("value", ["1.005", "0.001", "1.000", Decimal("2.345")])
def test_more_than_two_decimals_is_amount_too_precise_never_rounded(value):
    with pytest.raises(AmountError) as info:
        parse_yuan(value)
    assert info.value.reason == "amount_too_precise"


@pytest.mark.parametrize(
    "value",
    [
        "10000000000.01",
        "99999999999",
        100_000_000_01,
        "1" + "0" * 5000,
        Decimal("1E+100000"),
    ],
)
def test_more_than_ten_billion_yuan_is_amount_too_large(value):
    with pytest.raises(AmountError) as info:
        parse_yuan(value)
    assert info.value.reason == "amount_too_large"


def test_amount_error_is_a_value_error_and_a_named_yibao_error():
    with pytest.raises(ValueError):
        parse_yuan("x")
    with pytest.raises(YibaoError) as info:
        parse_yuan("x")
    assert info.value.reason == "amount_not_a_number"
    assert "amount not a number" in str(info.value)


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (123456, "1234.56"),
        (-5, "-0.05"),
        (0, "0.00"),
        (1, "0.01"),
        (100, "1.00"),
        (-123456, "-1234.56"),
        (AMOUNT_FEN_MAX, "10000000000.00"),
    ],
)
def test_format_yuan_writes_exactly_two_decimals(fen, text):
    assert format_yuan(fen) == text


def test_format_then_parse_round_trips():
    for fen in (0, 1, 99, 100, 101, 987654321, AMOUNT_FEN_MAX):
        assert parse_yuan(format_yuan(fen)) == fen


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_format_yuan_is_the_exact_decimal_value_with_two_places(fen):
    # The reference is Decimal's own formatting (exact for any int): the fast path's cents
    # table and its negative branch must write the same text.
    assert format_yuan(fen) == f"{Decimal(fen) / 100:.2f}"


def test_format_yuan_refuses_floats_and_bools():
    with pytest.raises(TypeError):
        format_yuan(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_yuan(True)


@pytest.mark.parametrize(
    ("base", "ratio", "fen"),
    [
        (100, 8000, 80),
        (1, 5000, 1),  # 0.5 rounds up
        (3, 5000, 2),  # 1.5 rounds up
        (1, 4999, 0),  # 0.4999 rounds down
        (1, 5001, 1),
        (5, 1000, 1),  # 0.5 rounds up
        (15, 1000, 2),  # 1.5 rounds up
        (14, 1000, 1),  # 1.4 rounds down
        (0, 7000, 0),
        (123, 0, 0),
        (123, 10000, 123),
        (8920000, 7000, 6244000),
        (-1, 5000, -1),  # half away from zero
        (-3, 5000, -2),
        (-14, 1000, -1),
        (-15, 1000, -2),
    ],
)
def test_apply_ratio_rounds_half_up_once(base, ratio, fen):
    assert apply_ratio(base, ratio) == fen


def test_apply_ratio_refuses_floats():
    with pytest.raises(TypeError):
        apply_ratio(100.0, 8000)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apply_ratio(100, 0.8)  # type: ignore[arg-type]


def test_apply_ratio_is_exact_on_large_amounts():
    assert apply_ratio(AMOUNT_FEN_MAX - 1, 5000) == 500_000_000_000  # 499999999999.5
    assert apply_ratio(AMOUNT_FEN_MAX - 1, 3333) == 333_300_000_000  # 333299999999.6667


def test_round_half_up_div_rounds_away_from_zero_on_the_half():
    assert round_half_up_div(25, 10) == 3
    assert round_half_up_div(-25, 10) == -3
    assert round_half_up_div(24, 10) == 2
    with pytest.raises(ValueError):
        round_half_up_div(1, 0)
