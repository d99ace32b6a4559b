"""Clearing (清算, 3203) rules without a database: a month's figures from its summed lines, and
when a month may be cleared (each cause of not_reconciled)."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clearing import (
    CHANGED_SINCE,
    DIFFERENCES,
    NO_RECONCILIATION,
    Clearing,
    LineCheck,
    PeriodCheck,
    month_bounds,
    month_figures,
    months_between,
    unreconciled,
)
from core.errors import YibaoError

MARCH = (dt.date(2023, 3, 1), dt.date(2023, 3, 31))
FIGURES = {"medfee_sumamt": 500_000, "fund_pay_sumamt": 306_000, "acct_pay": 0, "fixmedins_setl_cnt": 4}
KEY = {("390", "21")}


def period(begin: int, end: int, stmt_rslt: str = "0", now: dict[str, int] | None = None) -> PeriodCheck:
    line = LineCheck("390", "21", FIGURES, now if now is not None else FIGURES)
    return PeriodCheck(dt.date(2023, 3, begin), dt.date(2023, 3, end), stmt_rslt, (line,))


def test_a_reversal_counts_minus_one_and_its_amounts_net_out() -> None:
    # Three settlements (2,000.00, 3,000.00 and 1,000.00), the last reversed; one paid 50.00 from the account.
    got = month_figures(3, 1, 500_000, 5_000, {"390100": 306_000, "390200": 0, "610100": 12_000})
    assert got == {
        "psntime": 2, "medfee_sumamt": 500_000, "fund_appy_sum": {"390100": 306_000, "610100": 12_000},
        "acct_pay": 5_000, "cash_payamt": 177_000,
    }  # fmt: skip


def test_a_corrected_settlement_counts_once() -> None:
    # Version 1, its reversal and version 2: 1 - 1 + 1.
    assert month_figures(2, 1, 200_000, 0, {"390100": 108_000})["psntime"] == 1


def test_a_month_wholly_reconciled_on_unchanged_figures_may_be_cleared() -> None:
    assert unreconciled(*MARCH, KEY, [period(1, 31)]) is None
    assert unreconciled(*MARCH, KEY, [period(1, 15), period(16, 31)]) is None


def test_no_reconciliation_or_a_gap_is_named() -> None:
    assert unreconciled(*MARCH, KEY, []) == (NO_RECONCILIATION, "no reconciled totals of 390/21 cover 2023-03-01")
    assert unreconciled(*MARCH, KEY, [period(1, 15)])[0] == NO_RECONCILIATION  # type: ignore[index]
    assert "cover 2023-03-16" in unreconciled(*MARCH, KEY, [period(1, 15), period(17, 31)])[1]  # type: ignore[index]


def test_a_period_outside_the_month_does_not_count() -> None:
    february_to_march = PeriodCheck(dt.date(2023, 2, 1), dt.date(2023, 3, 31), "0", period(1, 31).lines)
    assert unreconciled(*MARCH, KEY, [february_to_march])[0] == NO_RECONCILIATION  # type: ignore[index]


def test_differences_are_named() -> None:
    cause, detail = unreconciled(*MARCH, KEY, [period(1, 31, "1")])  # type: ignore[misc]
    assert (cause, detail) == (
        DIFFERENCES,
        "the reconciliation of 2023-03-01..2023-03-31 found differences (stmt_rslt 1)",
    )


def test_figures_changed_since_the_reconciliation_are_named() -> None:
    after_a_reversal = {**FIGURES, "fixmedins_setl_cnt": 5, "medfee_sumamt": 300_000}
    cause, _ = unreconciled(*MARCH, KEY, [period(1, 31, now=after_a_reversal)])  # type: ignore[misc]
    assert cause == CHANGED_SINCE
    unknown = PeriodCheck(MARCH[0], MARCH[1], "0", (LineCheck("390", "21", None, FIGURES),))
    assert unreconciled(*MARCH, KEY, [unknown])[0] == CHANGED_SINCE  # type: ignore[index]


def test_the_months_a_payment_through_a_month_end_covers() -> None:
    assert months_between(None, "2023-03") == ["2023-03"]
    assert months_between(dt.date(2022, 11, 30), "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]
    assert months_between(dt.date(2023, 4, 1), "2023-03") == ["2023-03"]


def test_month_bounds() -> None:
    assert month_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    for bad in ("2024-2", "2024-13", "March"):
        with pytest.raises(YibaoError) as found:
            month_bounds(bad)
        assert found.value.reason == "bad_month"


def test_the_same_figures_again_record_nothing_new_ones_a_reclearing() -> None:
    figures = month_figures(3, 1, 500_000, 0, {"390100": 306_000})
    clearing = Clearing(region="330109", hospital="H001", month="2023-03", figures=figures, operator="a", on_date="d")
    assert clearing.reclear(dict(figures), "b", "d") is False
    assert clearing.reclear(month_figures(3, 2, 300_000, 0, {"390100": 198_000}), "b", "d") is True
    assert (clearing.clearings, clearing.figures["psntime"], len(clearing.collect_events())) == (2, 1, 2)
