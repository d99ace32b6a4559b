"""Rules of the console's pages (web/pages.py): when the overview shows a region's latest verify
in red (it found something, or events were recorded more than 7 days after it, or a log was
never verified), and the sign that makes a line's postings sum to the line."""

from __future__ import annotations

import datetime as dt

from core.ledger import ACCOUNTS
from store.verify_runs import VerifyRun
from web.pages import SIGN, VERIFY_STALE_AFTER, _verify

AT = dt.datetime(2023, 12, 1, 9, 0, tzinfo=dt.UTC)


def run(*, ok: bool = True) -> VerifyRun:
    return VerifyRun(id=1, at=AT, ran_by="auditor1", ran_by_known=True, region="330109", ok=ok,
                     problems=0 if ok else 2, first_problem=None if ok else "event at position 3 was changed",
                     position=100, checked={"events": 100})  # fmt: skip


def test_the_limit_is_a_week() -> None:
    assert dt.timedelta(days=7) == VERIFY_STALE_AFTER


def test_a_clean_run_newer_than_the_log_or_within_the_week_is_not_red() -> None:
    assert _verify(run(), AT - dt.timedelta(hours=1))["warn"] is False
    assert _verify(run(), AT + dt.timedelta(days=7))["warn"] is False


def test_a_run_the_log_outgrew_by_more_than_a_week_is_stale() -> None:
    shown = _verify(run(), AT + dt.timedelta(days=7, seconds=1))
    assert (shown["stale"], shown["warn"]) == (True, True)


def test_a_run_that_found_something_is_red_however_new() -> None:
    shown = _verify(run(ok=False), AT - dt.timedelta(hours=1))
    assert (shown["stale"], shown["warn"]) == (False, True)


def test_a_log_never_verified_is_red_and_an_empty_one_is_not() -> None:
    assert _verify(None, AT)["warn"] is True
    assert _verify(None, None)["warn"] is False


def test_every_account_of_the_chart_has_the_sign_of_its_balance_sheet_line() -> None:
    """The postings page of any line sums to the line (the opening balance, 期初结余, is credit-normal
    like a liability: the balance sheet shows it negated)."""
    assert set(SIGN) == set(ACCOUNTS)
    assert SIGN["opening_balance"] == -1
