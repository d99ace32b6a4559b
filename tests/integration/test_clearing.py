"""Clearing (清算, 3203) and four eyes on payments, on PostgreSQL (issue 19).

The region's year is the projection tests' (`app`): in March, H001 has S-3 (corrected on 03-25),
S-4 (reversed on 03-20) and S-LB (given look-back assistance later, owed to the person)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.clearing_cases import ReadMonth
from app.region import RegionApplication
from core.approval import ApprovalRefused
from core.clearing import ClearingRefused
from core.ids import hospital_id
from core.policy import parse_policy
from core.settlement import fund_payments
from projections.clearing import month_reader
from projections.read_model import catch_up, reading
from projections.reconciliation import center_totals
from projections.statements import owed_reader
from projections.trace import describe_event
from tests.integration.test_projections_and_verify import POLICY_FILE, REGION, app, claim

__all__ = ["app"]  # fixture


def reader(app: RegionApplication) -> ReadMonth:
    return month_reader(app, [app])


def test_a_months_figures_net_its_reversals_and_take_each_funds_part_from_the_journal(app: RegionApplication) -> None:
    catch_up(app)
    kept = [app.settlement(s).current for s in ("S-3", "S-LB")]  # type: ignore[union-attr]
    funds: dict[str, int] = {}
    for facts in kept:
        for fund, amount in fund_payments(facts.insutype, facts.amounts):
            funds[fund] = funds.get(fund, 0) + amount
    figures, refusal = reader(app)("H001", "2023-03")
    assert figures == {
        "psntime": 2,  # S-3 v1, v2, S-4 and S-LB, less two reversals
        "medfee_sumamt": 2_500_000 + 1_000_000,
        "fund_appy_sum": funds,
        "acct_pay": sum(f.amounts["acct_pay"] + f.amounts["acct_mulaid_pay"] for f in kept),
        "cash_payamt": sum(f.amounts["psn_cash_pay"] for f in kept),
    }
    assert refusal is not None and refusal[0] == "no_reconciliation"


def reconcile(app: RegionApplication, begin: str, end: str, sha: str, stmt_rslt: str = "0") -> None:
    with reading(app) as (curs, _):
        center = center_totals(
            curs, [REGION], "H001", "390", "21", dt.date.fromisoformat(begin), dt.date.fromisoformat(end),
            with_refunds=True,
        )  # fmt: skip
    line = {"insutype": "390", "clr_type": "21", "with_refunds": True, "figures": center}
    app.record_reconciliation(
        operator="fin-1", on_date=dt.date(2023, 4, 2), kind="totals", file_sha256=sha, hospital="H001", begin=begin,
        end=end, result={"stmt_rslt": stmt_rslt, "lines": [stmt_rslt], "center": [line]},
    )  # fmt: skip


def test_a_reconciled_month_is_cleared_once(app: RegionApplication) -> None:
    reconcile(app, "2023-03-01", "2023-03-31", "aa" * 32, stmt_rslt="1")
    with pytest.raises(ClearingRefused, match="differences") as refused:
        app.clear_month("H001", "2023-03", read_month=reader(app), operator="fin-1")
    assert refused.value.reason == "not_reconciled"
    reconcile(app, "2023-03-01", "2023-03-31", "bb" * 32)
    done = app.clear_month("H001", "2023-03", read_month=reader(app), operator="fin-1")
    assert (done.status, done.clearing.version) == ("recorded", 1)  # type: ignore[union-attr]
    again = app.clear_month("H001", "2023-03", read_month=reader(app), operator="fin-2")
    assert (again.status, app.clearing("H001", "2023-03").version) == ("duplicate", 1)  # type: ignore[union-attr]


def test_an_override_takes_effect_only_when_someone_else_approves_it(app: RegionApplication) -> None:
    # February has lines of both clearing types and no reconciliation.
    asked = app.clear_month("H001", "2023-02", read_month=reader(app), operator="fin-1", override_reason="audited")
    assert (asked.status, asked.request.request_id) == ("pending_approval", "clear-H001-2023-02-v0")  # type: ignore[union-attr]
    assert app.clearing("H001", "2023-02") is None
    with pytest.raises(ApprovalRefused) as own:
        app.decide_request("clear-H001-2023-02-v0", checker="fin-1", approve=True, read_month=reader(app))
    assert own.value.reason == "maker_cannot_approve"
    request, done = app.decide_request("clear-H001-2023-02-v0", checker="chk-1", approve=True, read_month=reader(app))
    cleared = app.clearing("H001", "2023-02")
    assert cleared is not None
    assert (done.status, cleared.operator, cleared.approved_by, request.checker) == (
        "recorded",
        "fin-1",
        "chk-1",
        "chk-1",
    )


def test_a_payment_above_the_threshold_is_paid_by_its_maker_approved_by_the_checker(app: RegionApplication) -> None:
    text = POLICY_FILE.read_text(encoding="utf-8") + '\n[controls]\napproval_above = "1000.00"\n'
    app.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    assert [o.status for o in app.settle_claims([claim("S-APR", "M-1", "2023-04-03", "5000.00")])] == ["settled"]
    through = dt.date(2023, 4, 30)
    [(payment, held)] = app.pay_hospitals(
        ["H001"], payment_id="PAY-APR", read_owed=owed_reader(app, through), through=through,
        paid_on=dt.date(2023, 5, 2), operator="fin-1",
    )  # fmt: skip
    assert (held.status, held.request_id, held.postings) == ("pending_approval", "pay-PAY-APR", [])
    with pytest.raises(ApprovalRefused) as own:
        app.decide_request("pay-PAY-APR", checker="fin-1", approve=True, owed_reader=lambda d: owed_reader(app, d))
    assert own.value.reason == "maker_cannot_approve"
    _, paid = app.decide_request(
        "pay-PAY-APR", checker="chk-1", approve=True, owed_reader=lambda d: owed_reader(app, d)
    )  # fmt: skip
    assert sum(p.amount for p in paid.postings if p.account == "bank") == -sum(payment.owed.values())
    account = app.hospital_account("H001")
    assert account is not None and account.has("PAY-APR")
    event = app.repository.event_store.get(hospital_id("H001"), gt=account.version - 1)
    [paid_event] = list(event)
    assert (paid_event.operator, paid_event.approved_by) == ("fin-1", "chk-1")  # type: ignore[attr-defined]
    catch_up(app)
    with reading(app) as (curs, schema):
        position = curs.execute(
            f"SELECT notification_id FROM {schema}.journal WHERE ref = 'PAY-APR' LIMIT 1"  # noqa: S608
        ).fetchone()["notification_id"]
    described = describe_event(app, position)
    assert described is not None and (described["operator"], described["approved_by"]) == ("fin-1", "chk-1")
