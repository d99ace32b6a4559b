"""Settlement lines on PostgreSQL (issue 19): a row per settlement version and per reversal, the
centre's totals with and without refunds, and a reconciliation recorded once.

The region's year is the projection tests' (`app`): S-4 reversed on 2023-03-20, S-3 corrected on
2023-03-25 (its first version reversed that day, the second dated at its setl_time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.region import RegionApplication
from projections.read_model import catch_up, reading
from projections.reconciliation import center_totals
from store.app import Store
from tests.integration.test_projections_and_verify import REGION, app

__all__ = ["app"]  # fixture

MARCH = (dt.date(2023, 3, 1), dt.date(2023, 3, 31))


def lines_of(store: Store, setl_id: str) -> list[tuple[Any, ...]]:
    with store.connect_admin() as conn:
        return conn.execute(
            "SELECT version, refd_setl_flag, line_date::text, medfee_sumamt, fund_pay_sumamt, acct_pay, clr_type"
            " FROM region_330109.settlement_lines WHERE setl_id = %s ORDER BY notification_id",
            (setl_id,),
        ).fetchall()


def test_a_reversal_is_its_own_line_dated_at_its_business_date(store: Store, app: RegionApplication) -> None:
    catch_up(app)
    fund = app.settlement("S-4").current.amounts["fund_pay_sumamt"]  # type: ignore[union-attr]
    assert lines_of(store, "S-4") == [
        (1, "0", "2023-03-05", 2_000_000, fund, 0, "21"),
        (1, "1", "2023-03-20", -2_000_000, -fund, 0, "21"),
    ]


def test_a_correction_is_a_reversal_line_and_a_line_of_the_new_version(store: Store, app: RegionApplication) -> None:
    rows = lines_of(store, "S-3")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (1, "0", "2023-03-01", 3_000_000), (1, "1", "2023-03-25", -3_000_000), (2, "0", "2023-03-01", 2_500_000),
    ]  # fmt: skip


def test_an_account_payment_is_in_acct_pay(store: Store) -> None:
    ((_, flag, _, medfee, fund, acct, clr),) = lines_of(store, "S-2")
    assert (flag, clr, medfee, acct > 0, fund + acct <= medfee) == ("0", "11", 150_000, True, True)


def test_the_centres_totals_with_and_without_refunds(app: RegionApplication) -> None:
    with reading(app) as (curs, _):
        with_refunds = center_totals(curs, [REGION], "H001", "390", "21", *MARCH, with_refunds=True)
        without = center_totals(curs, [REGION], "H001", "390", "21", *MARCH, with_refunds=False)
    # March, inpatient, residents: S-3 v1, its reversal, S-3 v2, S-4, its reversal, S-LB.
    assert (with_refunds["fixmedins_setl_cnt"], without["fixmedins_setl_cnt"]) == (6, 4)
    assert with_refunds["medfee_sumamt"] == 3_000_000 - 3_000_000 + 2_500_000 + 0 + 1_000_000
    assert without["medfee_sumamt"] == 3_000_000 + 2_500_000 + 2_000_000 + 1_000_000


def test_a_reconciliation_is_recorded_once(app: RegionApplication) -> None:
    key = {"kind": "detail", "file_sha256": "ab" * 32, "hospital": "H001", "begin": "2023-03-01", "end": "2023-03-31"}
    result = {"stmt_rslt": "1", "matched": 3, "only_in_center": 1, "only_in_hospital": 0, "amounts_differ": 0}
    on = dt.date(2023, 4, 5)
    assert app.record_reconciliation(operator="fin-1", on_date=on, **key, result=result)
    assert not app.record_reconciliation(operator="fin-2", on_date=on, **key, result=result)
    reconciled = {**result, "stmt_rslt": "0", "only_in_center": 0, "matched": 4}
    assert app.record_reconciliation(operator="fin-2", on_date=on, **key, result=reconciled)
    (found,) = [r for r in app.reconciliations() if r.file_sha256 == "ab" * 32]
    assert (found.result["stmt_rslt"], found.operator, found.version) == ("0", "fin-2", 2)
