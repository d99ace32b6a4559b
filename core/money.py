"""Money: integer fen inside, yuan strings with two decimals outside, ratios in basis points.

Nothing here ever touches a float. Parsing goes through `decimal.Decimal` built from text (which
is exact whatever the context precision) and then through integer arithmetic only.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.errors import YibaoError

__all__ = [
    "AMOUNT_FEN_MAX",
    "RATIO_BP_FULL",
    "AmountError",
    "apply_ratio",
    "format_yuan",
    "parse_yuan",
    "round_half_up_div",
]

AMOUNT_FEN_MAX: int = 10**12
"""10 billion yuan; any larger amount is absurd input."""

RATIO_BP_FULL: int = 10_000
"""100% in basis points."""

_PLAIN_YUAN = re.compile(r"([0-9]{1,15})\.([0-9]{2})")
_YUAN_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

_REASONS = frozenset({"amount_not_a_number", "amount_negative", "amount_too_precise", "amount_too_large"})


class AmountError(YibaoError, ValueError):
    """A value that is not an acceptable yuan amount; `reason` names what is wrong."""

    def __init__(self, reason: str, value: object) -> None:
        if reason not in _REASONS:
            raise AssertionError(f"unknown amount error reason {reason!r}")
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"{reason.replace('_', ' ')}: {shown}", reason=reason)
        self.value = value


def parse_yuan(value: object) -> int:
    """Parse a yuan amount into fen, exactly.

    Accepts a string like ``"1234.56"``, ``"12"`` or ``"12.5"``, an ``int`` (whole yuan) or a
    ``Decimal``. Rejects bool, float, None and other types, NaN/Infinity, exponents, signs other
    than a leading minus, blanks, more than two decimals, negative amounts and amounts above
    `AMOUNT_FEN_MAX` fen.
    """
    if isinstance(value, bool):
        raise AmountError("amount_not_a_number", value)
    if isinstance(value, int):
        if value < 0:
            raise AmountError("amount_negative", value)
        if value * 100 > AMOUNT_FEN_MAX:
            raise AmountError("amount_too_large", value)
        return value * 100
    if isinstance(value, str):
        plain = _PLAIN_YUAN.fullmatch(value)
        if plain is not None:  # the common "1234.56" form, exactly, without Decimal
            fen = int(plain[1]) * 100 + int(plain[2])
            if fen > AMOUNT_FEN_MAX:
                raise AmountError("amount_too_large", value)
            return fen
        if _YUAN_TEXT.fullmatch(value) is None:
            raise AmountError("amount_not_a_number", value)
        try:
            dec = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern excludes this
            raise AmountError("amount_not_a_number", value) from exc
    elif isinstance(value, Decimal):
        dec = value
        if not dec.is_finite():
            raise AmountError("amount_not_a_number", value)
    else:
        raise AmountError("amount_not_a_number", value)

    sign, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    is_zero = all(d == 0 for d in digits)
    if sign and not is_zero:
        raise AmountError("amount_negative", value)
    if exponent < -2:
        # "1.005" and also "1.000": more than two decimals written is refused, not rounded.
        raise AmountError("amount_too_precise", value)
    if is_zero:
        return 0
    # digits has no leading zeros here; the fen value has len(digits) + exponent + 2 digits.
    if len(digits) + exponent + 2 > len(str(AMOUNT_FEN_MAX)):
        raise AmountError("amount_too_large", value)
    fen = int("".join(str(d) for d in digits)) * 10 ** (exponent + 2)
    if fen > AMOUNT_FEN_MAX:
        raise AmountError("amount_too_large", value)
    return fen


_CENTS = tuple(f".{cents:02d}" for cents in range(100))


def format_yuan(fen: int) -> str:
    """123456 -> "1234.56"; -5 -> "-0.05"; 0 -> "0.00".

    Thirteen of these go into every settlement's result line: the cents come from a table and
    the type is checked with one comparison (bool is a subclass of int, not int: refused too),
    0.2 µs a call instead of 0.55."""
    if type(fen) is not int:
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    if fen >= 0:
        return str(fen // 100) + _CENTS[fen % 100]
    return "-" + str(-fen // 100) + _CENTS[-fen % 100]


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, integers only (denominator > 0)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return -quotient if numerator < 0 else quotient


def apply_ratio(base_fen: int, ratio_bp: int) -> int:
    """round_half_up(base_fen * ratio_bp / 10000); half away from zero for negative bases."""
    for name, v in (("base_fen", base_fen), ("ratio_bp", ratio_bp)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    return round_half_up_div(base_fen * ratio_bp, RATIO_BP_FULL)
