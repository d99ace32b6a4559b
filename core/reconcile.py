"""Reconciliation with hospitals (对账) on the national interface: the rules, without a database.

3201 (对总账) compares a hospital's declared totals for a period with the centre's; 3202 (对明细账)
compares its settlement lines one by one, keyed by (setl_id, refd_setl_flag): a hospital may send
several lines of one key (a corrected claim's versions), so each side's amounts are summed per key
before they are compared. Amounts are fen; a reversal line's amounts are negative.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import attrs

from core.money import AmountError, format_yuan, parse_yuan
from core.records import RecordRejected, _Fields, decode_line

TOTAL_FIGURES = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt")
LINE_AMOUNTS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")
DETAIL_FIELDS = ("setl_id", "mdtrt_id", "psn_no", *LINE_AMOUNTS, "refd_setl_flag")
REFD_FLAGS = ("0", "1")
ONLY_IN_CENTER = "only_in_center"
ONLY_IN_HOSPITAL = "only_in_hospital"
AMOUNTS_DIFFER = "amounts_differ"
REASONS = (ONLY_IN_CENTER, ONLY_IN_HOSPITAL, AMOUNTS_DIFFER)


def _fail(reason: str, message: str) -> RecordRejected:
    return RecordRejected(message, reason=reason)


def signed_yuan(name: str, value: Any) -> int:
    """A yuan amount in fen that may be negative (a reversal line), or a named rejection."""
    negative = False
    if isinstance(value, str) and value.startswith("-"):
        negative, value = True, value[1:]
    elif isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool) and value < 0:
        negative, value = True, -value
    try:
        fen = parse_yuan(value)
    except AmountError as exc:
        raise _fail(exc.reason, f"field {name}: {exc}") from None
    return -fen if negative else fen


@attrs.frozen
class TotalsLine:
    """One line of a 3201 file: a hospital's totals for an insutype and clearing type in a period."""

    fixmedins_code: str
    insutype: str
    clr_type: str
    begin: dt.date
    end: dt.date
    figures: dict[str, int]  # TOTAL_FIGURES, in fen (the count as a count)
    with_refunds: bool  # refd_setl_flag "1" or absent: reversal lines included


def parse_totals(obj: Mapping[str, Any]) -> TotalsLine:
    f = _Fields(
        obj,
        ("fixmedins_code", "insutype", "clr_type", "stmt_begndate", "stmt_enddate", *TOTAL_FIGURES),
        ("refd_setl_flag",),
    )
    count = obj["fixmedins_setl_cnt"]
    if isinstance(count, str) and count.lstrip("-").isdigit():
        count = int(count)
    if type(count) is not int:
        raise _fail("bad_fixmedins_setl_cnt", "field fixmedins_setl_cnt: expected a whole number")
    line = TotalsLine(
        fixmedins_code=f.identifier("fixmedins_code"),
        insutype=f.choice("insutype", ("310", "390")),
        clr_type=f.choice("clr_type", ("11", "21", "41")),  # 41: pharmacy purchases (定点药店购药)
        begin=f.date("stmt_begndate"),
        end=f.date("stmt_enddate"),
        figures={**{name: signed_yuan(name, obj[name]) for name in LINE_AMOUNTS}, "fixmedins_setl_cnt": count},
        with_refunds=f.choice("refd_setl_flag", REFD_FLAGS, default="1") == "1",
    )
    if line.end < line.begin:
        raise _fail("bad_period", "stmt_enddate is before stmt_begndate")
    return line


def compare_totals(declared: Mapping[str, int], center: Mapping[str, int]) -> tuple[str, list[str]]:
    """stmt_rslt ("0" all four agree to the fen, "1" otherwise) and the names that differ."""
    differ = [name for name in TOTAL_FIGURES if declared[name] != center[name]]
    return ("1" if differ else "0"), differ


def totals_result(obj: Mapping[str, Any], center: Mapping[str, int]) -> tuple[dict[str, Any], str]:
    """The result line of a 3201 line: its keys as given, the centre's figures, the verdict."""
    line = parse_totals(obj)
    stmt_rslt, differ = compare_totals(line.figures, center)
    out = dict(obj)
    out["center"] = {name: _shown(name, center[name]) for name in TOTAL_FIGURES}
    out["stmt_rslt"] = stmt_rslt
    out["stmt_rslt_dscr"] = ", ".join(differ) if differ else "all figures agree"
    return out, stmt_rslt


def _shown(name: str, value: int) -> str | int:
    return value if name == "fixmedins_setl_cnt" else format_yuan(value)


@attrs.frozen
class DetailLine:
    setl_id: str
    mdtrt_id: str | None
    psn_no: str | None
    refd_setl_flag: str
    amounts: tuple[int, int, int]  # LINE_AMOUNTS in fen


def parse_detail(raw: bytes) -> DetailLine:
    """A 3202 line: a JSON object, or the national file's TAB-separated fields in DETAIL_FIELDS order."""
    if raw.lstrip().startswith(b"{"):
        obj = decode_line(raw)
    else:
        text = raw.decode("utf-8", errors="strict").rstrip("\r\n")
        values = text.split("\t")
        if len(values) != len(DETAIL_FIELDS):
            raise _fail("bad_detail_line", f"expected {len(DETAIL_FIELDS)} TAB-separated fields, got {len(values)}")
        obj = {name: value for name, value in zip(DETAIL_FIELDS, values, strict=True) if value != ""}
    f = _Fields(obj, ("setl_id", *LINE_AMOUNTS), ("mdtrt_id", "psn_no", "refd_setl_flag"))
    return DetailLine(
        setl_id=f.identifier("setl_id"),
        mdtrt_id=f.identifier("mdtrt_id", optional=True),
        psn_no=f.identifier("psn_no", optional=True),
        refd_setl_flag=f.choice("refd_setl_flag", REFD_FLAGS, default="0"),
        amounts=(
            signed_yuan("medfee_sumamt", obj["medfee_sumamt"]),
            signed_yuan("fund_pay_sumamt", obj["fund_pay_sumamt"]),
            signed_yuan("acct_pay", obj["acct_pay"]),
        ),
    )


def difference(
    setl_id: str, flag: str, center: tuple[int, ...] | None, hospital: tuple[int, ...] | None
) -> dict[str, Any] | None:
    """The difference line of one key, from each side's summed amounts (None: no line there);
    None when both sides agree to the fen."""
    out: dict[str, Any] = {"setl_id": setl_id, "refd_setl_flag": flag, "stmt_rslt": "1"}
    if hospital is None:
        return {**out, "reason": ONLY_IN_CENTER, "fields": _side(center, "center")}
    if center is None:
        return {**out, "reason": ONLY_IN_HOSPITAL, "fields": _side(hospital, "hospital")}
    fields = {
        name: {"center": format_yuan(c), "hospital": format_yuan(h)}
        for name, c, h in zip(LINE_AMOUNTS, center, hospital, strict=True)
        if c != h
    }
    return {**out, "reason": AMOUNTS_DIFFER, "fields": fields} if fields else None


def _side(amounts: tuple[int, ...] | None, side: str) -> dict[str, Any]:
    assert amounts is not None
    return {name: {side: format_yuan(value)} for name, value in zip(LINE_AMOUNTS, amounts, strict=True)}


def summary(counts: Mapping[str, int]) -> dict[str, Any]:
    return {"summary": True, "matched": counts.get("matched", 0), **{r: counts.get(r, 0) for r in REASONS}}
