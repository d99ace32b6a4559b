"""Finance operations (SPEC 5) on PostgreSQL, through RegionApplication and the `yibao finance` CLI.

Hospital payment (拨付), deductions after audit (拒付 refuse / 核减 reduce), recovery (追回), fines and
the annual total budget (总额预算), each to the fen. Every test uses its own hospital and its own
member, so the accumulators and the amounts owed of one test never touch another's.

Amounts worked out from policy-330109-2023.toml for a resident (390) with no assistance category,
inpatient at a level-1 hospital: deductible 800 per visit, ratio 90%, serious illness from a
year-to-date base of 20,000. So a claim of 10,000 within the policy range pays basic
0.9 * 9,200 = 8,280.00 (base 1,720); a second one of 20,000 pays 0.9 * 19,200 = 17,280.00 (base
4,440 in all, still under the threshold): only fund 390100 pays.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from app.outcomes import FinanceResult
from app.region import RegionApplication
from commands.cli import main
from core.errors import YibaoError
from core.funds import OPENING, entry
from core.money import format_yuan, parse_yuan
from core.policy import parse_policy
from core.records import MemberRecord, parse_claim
from core.settlement import SettlementFacts
from projections.read_model import catch_up
from projections.statements import owed_reader, owed_to_hospital
from store.app import Store
from tests.conftest import EXAMPLES

REGION = "330109"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    store.add_region(REGION)
    region = store.region(REGION)
    policy = parse_policy(POLICY_FILE.read_bytes())
    assert region.record_policy(2023, policy.content_hash, POLICY_FILE.read_text(encoding="utf-8"))
    # Balances brought in (期初结余) large enough for every payment here: a fund pays hospitals only
    # what its bank account holds (tests/integration/test_fund_financing.py tests that).
    region.record_fund_entries(
        [entry(OPENING, f"OPEN-{fund}", fund=fund, amount=parse_yuan("10000000.00"), on_date=dt.date(2023, 1, 1),
               reason="期初结余", operator="fin-1") for fund in ("310100", "330100", "390100", "390200")]
    )  # fmt: skip
    return region


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def run(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> dict[str, Any]:
        """Run a finance command that prints one JSON object and must succeed."""
        result = self.run(*args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def yibao(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)


def settle(
    app: RegionApplication, setl_id: str, psn_no: str, hospital: str, setl_time: str, inscp: str
) -> SettlementFacts:
    """Settle an inpatient claim at a level-1 hospital for a resident, creating the member."""
    if app.member(psn_no) is None:
        record = MemberRecord(
            psn_no=psn_no, insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False,
            supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=None,
        )  # fmt: skip
        assert [o.status for o in app.import_members([record])] == ["recorded"]
    claim = parse_claim(
        {
            "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": hospital, "hosp_lv": 1, "med_type": "21",
            "setl_time": setl_time, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
            "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
        }
    )  # fmt: skip
    (outcome,) = app.settle_claims([claim])
    assert outcome.status == "settled", (outcome.reason, outcome.detail)
    assert outcome.facts is not None
    return outcome.facts


def owed(app: RegionApplication, hospital: str, through: str) -> dict[str, str]:
    """What each fund owes the hospital for everything posted up to `through`, from the journal."""
    catch_up(app)
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        by_fund = owed_to_hospital(curs, datastore.schema, hospital, dt.date.fromisoformat(through))
    return {fund: format_yuan(amount) for fund, amount in by_fund.items()}


def account_total(app: RegionApplication, fund: str, account: str, party: str) -> str:
    """Sum of the journal postings on one account of one party (debit positive), in yuan."""
    catch_up(app)
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT coalesce(sum(amount), 0) AS total FROM region_330109.journal "
            "WHERE fund = %s AND account = %s AND party = %s",
            (fund, account, party),
        )
        return format_yuan(int(curs.fetchone()["total"]))


def head(app: RegionApplication) -> int:
    return app.recorder.max_notification_id() or 0


def posting(fund: str, account: str, party: str, amount: str) -> dict[str, str]:
    return {"fund": fund, "account": account, "party": party, "amount": amount}


def hospital_report(yibao: Cli, hospital: str, year: int = 2023) -> dict[str, Any]:
    return yibao.ok("report", "hospital", "--region", REGION, "--hospital", hospital, "--year", str(year))


# --- hospital payment (拨付) --------------------------------------------------------------------


def test_a_hospital_payment_pays_exactly_what_each_fund_owes_up_to_the_date(app: RegionApplication, yibao: Cli) -> None:
    assert settle(app, "PAY-1", "M-PAY", "H-PAY", "2023-03-01", "10000.00").amounts["hifp_pay"] == 828000
    assert settle(app, "PAY-2", "M-PAY", "H-PAY", "2023-05-01", "20000.00").amounts["hifp_pay"] == 1728000
    assert owed(app, "H-PAY", "2023-03-31") == {"390100": "8280.00"}

    out = yibao.ok(
        "finance", "pay", "--region", REGION, "--hospital", "H-PAY", "--through", "2023-03-31",
        "--paid-on", "2023-04-05", "--payment-id", "PAY-Q1", "--operator", "fin-1",
    )  # fmt: skip

    assert out == {
        "payment_id": "PAY-Q1", "hospital": "H-PAY", "status": "recorded",
        "postings": [
            posting("390100", "payable_to_hospitals", "H-PAY", "8280.00"), posting("390100", "bank", "", "-8280.00"),
        ],
    }  # fmt: skip
    # The payment is posted on the day it is made: paid by the end of April, 8,280.00 was still
    # payable at the end of March, and 17,280.00 is owed for May.
    assert owed(app, "H-PAY", "2023-04-30") == {}
    assert owed(app, "H-PAY", "2023-12-31") == {"390100": "17280.00"}
    account = app.hospital_account("H-PAY")
    assert account is not None and account.paid_through == {"390100": "2023-03-31"}
    statement = hospital_report(yibao, "H-PAY")["funds"]["390100"]
    assert statement == {
        "settled": "25560.00", "deducted": "0.00", "paid": "8280.00", "recovered": "0.00",
        "outstanding": "17280.00", "receivable": "0.00",
    }  # fmt: skip


def test_paying_again_with_the_same_payment_id_is_a_duplicate_and_records_nothing(
    app: RegionApplication, yibao: Cli
) -> None:
    settle(app, "DUP-1", "M-DUP", "H-DUP", "2023-03-01", "10000.00")
    args = (
        "finance", "pay", "--region", REGION, "--hospital", "H-DUP", "--through", "2023-12-31",
        "--paid-on", "2024-01-05", "--payment-id", "PAY-DUP", "--operator", "fin-1",
    )  # fmt: skip
    assert yibao.ok(*args)["status"] == "recorded"
    # More is owed by the time the same payment is submitted again: it still pays nothing.
    settle(app, "DUP-2", "M-DUP", "H-DUP", "2023-05-01", "20000.00")
    position = head(app)

    again = yibao.ok(*args)

    assert again == {"payment_id": "PAY-DUP", "hospital": "H-DUP", "status": "duplicate", "postings": []}
    assert head(app) == position
    assert owed(app, "H-DUP", "2024-01-31") == {"390100": "17280.00"}


def test_paying_all_hospitals_gives_each_its_own_payment_id(app: RegionApplication, yibao: Cli) -> None:
    settle(app, "ALL-1", "M-ALL", "H-ALL", "2023-02-01", "10000.00")
    assert owed(app, "H-ALL", "2023-02-28") == {"390100": "8280.00"}

    result = yibao.run(
        "finance", "pay", "--region", REGION, "--all-hospitals", "--through", "2023-02-28",
        "--paid-on", "2023-03-01", "--payment-id", "PAY-FEB", "--operator", "fin-1",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["hospital"]: line["payment_id"] for line in lines}["H-ALL"] == "PAY-FEB-H-ALL"
    assert all(line["status"] == "recorded" for line in lines)
    assert owed(app, "H-ALL", "2023-03-01") == {}


def test_a_second_payment_for_a_period_already_paid_pays_nothing_more(app: RegionApplication, yibao: Cli) -> None:
    settle(app, "TWICE-1", "M-TWICE", "H-TWICE", "2023-03-01", "10000.00")
    pay = ("finance", "pay", "--region", REGION, "--hospital", "H-TWICE", "--through", "2023-03-31",
           "--operator", "fin-1")  # fmt: skip
    first = yibao.ok(*pay, "--paid-on", "2023-04-05", "--payment-id", "PAY-TWICE-A")
    assert first["postings"][0] == posting("390100", "payable_to_hospitals", "H-TWICE", "8280.00")

    second = yibao.ok(*pay, "--paid-on", "2023-04-06", "--payment-id", "PAY-TWICE-B")

    assert second["postings"] == []
    assert account_total(app, "390100", "payable_to_hospitals", "H-TWICE") == "0.00"


# --- deductions (拒付/核减) and recovery (追回) ------------------------------------------------------


def test_a_deduction_before_payment_lowers_what_the_fund_owes_the_hospital(app: RegionApplication, yibao: Cli) -> None:
    settle(app, "DB-1", "M-DB", "H-DB", "2023-03-01", "10000.00")

    out = yibao.ok(
        "finance", "deduct", "reduce", "--region", REGION, "--setl-id", "DB-1", "--fund", "390100",
        "--amount", "1000.00", "--deduction-id", "DED-DB-1", "--on", "2023-04-01", "--operator", "auditor-1",
        "--reason", "over-treatment",
    )  # fmt: skip

    assert out == {
        "deduction_id": "DED-DB-1", "setl_id": "DB-1", "kind": "reduce", "status": "recorded",
        "postings": [
            posting("390100", "payable_to_hospitals", "H-DB", "1000.00"),
            posting("390100", "benefit_expense", "", "-1000.00"),
        ],
    }  # fmt: skip
    assert owed(app, "H-DB", "2023-12-31") == {"390100": "7280.00"}
    assert account_total(app, "390100", "receivable_from_hospitals", "H-DB") == "0.00"
    assert hospital_report(yibao, "H-DB")["funds"]["390100"] == {
        "settled": "8280.00", "deducted": "1000.00", "paid": "0.00", "recovered": "0.00",
        "outstanding": "7280.00", "receivable": "0.00",
    }  # fmt: skip
    # The member's settlement is not reopened.
    settlement = app.settlement("DB-1")
    assert settlement is not None and settlement.current.amounts["hifp_pay"] == 828000

    paid = yibao.ok(
        "finance", "pay", "--region", REGION, "--hospital", "H-DB", "--through", "2023-12-31",
        "--paid-on", "2024-01-05", "--payment-id", "PAY-DB", "--operator", "fin-1",
    )  # fmt: skip
    assert paid["postings"][0] == posting("390100", "payable_to_hospitals", "H-DB", "7280.00")


def test_a_deduction_after_payment_becomes_a_receivable_that_recoveries_settle(
    app: RegionApplication, yibao: Cli
) -> None:
    settle(app, "DA-1", "M-DA", "H-DA", "2023-03-01", "10000.00")
    yibao.ok(
        "finance", "pay", "--region", REGION, "--hospital", "H-DA", "--through", "2023-03-31",
        "--paid-on", "2023-04-05", "--payment-id", "PAY-DA", "--operator", "fin-1",
    )  # fmt: skip

    deducted = yibao.ok(
        "finance", "deduct", "refuse", "--region", REGION, "--setl-id", "DA-1", "--fund", "390100",
        "--amount", "2000.00", "--deduction-id", "DED-DA-1", "--on", "2023-06-01", "--operator", "auditor-1",
        "--reason", "services not documented",
    )  # fmt: skip

    assert deducted["postings"] == [
        posting("390100", "receivable_from_hospitals", "H-DA", "2000.00"),
        posting("390100", "benefit_expense", "", "-2000.00"),
    ]
    assert owed(app, "H-DA", "2023-12-31") == {}
    assert account_total(app, "390100", "receivable_from_hospitals", "H-DA") == "2000.00"
    account = app.hospital_account("H-DA")
    assert account is not None and account.receivable == {"390100": 200000}

    recover = (
        "finance", "recover", "--region", REGION, "--hospital", "H-DA", "--fund", "390100", "--on", "2023-07-01",
        "--operator", "fin-2",
    )  # fmt: skip
    first = yibao.ok(*recover, "--amount", "1500.00", "--recovery-id", "REC-DA-1")
    assert first["postings"] == [
        posting("390100", "bank", "", "1500.00"),
        posting("390100", "receivable_from_hospitals", "H-DA", "-1500.00"),
    ]
    assert account_total(app, "390100", "receivable_from_hospitals", "H-DA") == "500.00"

    position = head(app)
    too_much = yibao.run(*recover, "--amount", "500.01", "--recovery-id", "REC-DA-2")
    assert too_much.exit_code == 1
    assert too_much.stderr.startswith("error: recovery_exceeds_receivable: ")
    assert head(app) == position

    yibao.ok(*recover, "--amount", "500.00", "--recovery-id", "REC-DA-3")
    assert account_total(app, "390100", "receivable_from_hospitals", "H-DA") == "0.00"
    assert hospital_report(yibao, "H-DA")["funds"]["390100"] == {
        "settled": "8280.00", "deducted": "2000.00", "paid": "8280.00", "recovered": "2000.00",
        "outstanding": "0.00", "receivable": "0.00",
    }  # fmt: skip
    nothing_left = yibao.run(*recover, "--amount", "0.01", "--recovery-id", "REC-DA-4")
    assert nothing_left.exit_code == 1
    assert nothing_left.stderr.startswith("error: recovery_exceeds_receivable: ")


def test_reversing_a_settlement_already_paid_makes_what_was_paid_a_receivable_that_recoveries_settle(
    app: RegionApplication, yibao: Cli
) -> None:
    # SPEC 5: once paid, money owed back by a hospital is a receivable (追回 due), not a payable
    # below zero; `finance recover` then settles it.
    settle(app, "RP-1", "M-RP", "H-RP", "2023-03-01", "10000.00")  # fund 390100 owes 8,280.00
    settle(app, "RP-2", "M-RP", "H-RP", "2023-05-01", "10000.00")  # after the payment's date: unpaid
    yibao.ok(
        "finance", "pay", "--region", REGION, "--hospital", "H-RP", "--through", "2023-03-31",
        "--paid-on", "2023-04-05", "--payment-id", "PAY-RP", "--operator", "fin-1",
    )  # fmt: skip

    app.reverse("RP-1", operator="op-1", reason="billed by mistake", on_date=dt.date(2023, 6, 1))
    app.reverse("RP-2", operator="op-1", reason="billed by mistake", on_date=dt.date(2023, 6, 1))

    assert account_total(app, "390100", "receivable_from_hospitals", "H-RP") == "8280.00"
    assert account_total(app, "390100", "payable_to_hospitals", "H-RP") == "0.00"  # RP-2's is undone
    account = app.hospital_account("H-RP")
    assert account is not None and account.receivable == {"390100": 828000}
    assert hospital_report(yibao, "H-RP")["funds"]["390100"] == {
        "settled": "0.00", "deducted": "0.00", "paid": "8280.00", "recovered": "0.00",
        "outstanding": "0.00", "receivable": "8280.00",
    }  # fmt: skip
    recover = (
        "finance", "recover", "--region", REGION, "--hospital", "H-RP", "--fund", "390100", "--on", "2023-07-01",
        "--operator", "fin-2",
    )  # fmt: skip
    too_much = yibao.run(*recover, "--amount", "8280.01", "--recovery-id", "REC-RP-0")
    assert too_much.stderr.startswith("error: recovery_exceeds_receivable: "), too_much.stderr
    yibao.ok(*recover, "--amount", "8280.00", "--recovery-id", "REC-RP-1")
    assert account_total(app, "390100", "receivable_from_hospitals", "H-RP") == "0.00"
    assert json.loads(yibao.run("verify", "--json").stdout)["problems"] == []


def test_a_claim_reversed_or_corrected_before_payment_is_paid_for_its_period_net_of_that(
    app: RegionApplication, yibao: Cli
) -> None:
    # Reversals are posted on the day they are made (after the period): a payment for the claim's
    # period must still count them, or it pays the hospital for a claim that no longer stands.
    settle(app, "RB-1", "M-RB", "H-RB", "2023-03-01", "10000.00")  # 8,280.00 owed by 390100
    settle(app, "RB-2", "M-RB2", "H-RB", "2023-03-02", "10000.00")  # 8,280.00, then corrected
    app.reverse("RB-1", operator="op-1", reason="billed by mistake", on_date=dt.date(2023, 9, 1))
    corrected = parse_claim(
        {
            "setl_id": "RB-2", "psn_no": "M-RB2", "fixmedins_code": "H-RB", "hosp_lv": 1, "med_type": "21",
            "setl_time": "2023-03-02", "medfee_sumamt": "5000.00", "fulamt_ownpay_amt": "0.00",
            "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "5000.00",
        }
    )  # fmt: skip
    (outcome,) = app.correct_claims([corrected], operator="op-1", reason="resubmitted", on_date=dt.date(2023, 9, 1))
    assert outcome.status == "settled"

    # Through March: RB-1 nets to nothing; RB-2's first version is undone and its new one (posted
    # in September) is owed from September on.
    assert owed(app, "H-RB", "2023-03-31") == {}
    assert owed(app, "H-RB", "2023-09-30") == {"390100": "3780.00"}  # 0.9 x (5,000 - 800)


def test_a_recovery_from_a_hospital_that_owes_nothing_is_refused(app: RegionApplication) -> None:
    position = head(app)
    with pytest.raises(YibaoError) as refused:
        app.recover("REC-NONE", hospital="H-NONE", fund="390100", amount=100, on_date=dt.date(2023, 5, 1),
                    operator="fin-1")  # fmt: skip
    assert refused.value.reason == "recovery_exceeds_receivable"
    assert head(app) == position


def test_deductions_never_exceed_what_the_fund_paid_on_the_settlement_in_total(app: RegionApplication) -> None:
    settle(app, "DX-1", "M-DX", "H-DX", "2023-03-01", "10000.00")  # 390100 paid 8,280.00

    def deduct(deduction_id: str, yuan: str, fund: str = "390100", kind: str = "reduce") -> str:
        try:
            app.deduct(
                deduction_id, setl_id="DX-1", fund=fund, kind=kind, amount=parse_yuan(yuan),
                on_date=dt.date(2023, 4, 1), operator="auditor-1", reason="audit",
            )  # fmt: skip
        except YibaoError as exc:
            return str(exc.reason)
        return "recorded"

    position = head(app)
    assert deduct("DX-A", "8280.01") == "deduction_exceeds_fund_payment"
    assert deduct("DX-B", "0.01", fund="390200") == "deduction_exceeds_fund_payment"  # paid nothing on it
    assert head(app) == position
    assert deduct("DX-C", "5000.00") == "recorded"
    assert deduct("DX-D", "3280.01", kind="refuse") == "deduction_exceeds_fund_payment"
    assert deduct("DX-E", "3280.00", kind="refuse") == "recorded"
    position = head(app)
    assert deduct("DX-F", "0.01") == "deduction_exceeds_fund_payment"
    assert head(app) == position
    assert owed(app, "H-DX", "2023-12-31") == {}
    assert account_total(app, "390100", "payable_to_hospitals", "H-DX") == "0.00"


def test_a_deduction_id_used_twice_is_a_duplicate_and_deducts_once(app: RegionApplication) -> None:
    settle(app, "DD-1", "M-DD", "H-DD", "2023-03-01", "10000.00")
    args: dict[str, Any] = dict(
        setl_id="DD-1", fund="390100", kind="reduce", amount=10000, on_date=dt.date(2023, 4, 1),
        operator="auditor-1", reason="audit",
    )  # fmt: skip
    assert app.deduct("DED-DD", **args).status == "recorded"
    position = head(app)

    again = app.deduct("DED-DD", **args)

    assert (again.status, again.postings) == ("duplicate", [])
    assert head(app) == position
    assert owed(app, "H-DD", "2023-12-31") == {"390100": "8180.00"}


def test_an_operation_id_used_again_for_another_amount_is_refused_by_name(app: RegionApplication, yibao: Cli) -> None:
    # A retry of the same operation is `duplicate`; the same id with another amount (a typo
    # corrected, a second fine) must not be told it succeeded while nothing is recorded.
    settle(app, "RE-1", "M-RE", "H-RE", "2023-03-01", "10000.00")
    common = ("--region", REGION, "--hospital", "H-RE", "--operator", "fin-1")
    assert yibao.ok("finance", "pay", *common, "--through", "2023-03-31", "--payment-id", "PAY-RE")["status"] == (
        "recorded"
    )
    fine = ("finance", "fine", *common, "--fund", "390100", "--fine-id", "FINE-RE", "--reason", "late bills")
    deduction = ("finance", "deduct", "reduce", "--region", REGION, "--setl-id", "RE-1", "--fund", "390100",
                 "--deduction-id", "DED-RE", "--operator", "auditor-1", "--reason", "audit")  # fmt: skip
    recovery = ("finance", "recover", *common, "--fund", "390100", "--recovery-id", "REC-RE")
    for command, first, second in (
        (fine, "500.00", "900.00"), (deduction, "100.00", "300.00"), (recovery, "10.00", "50.00"),
    ):  # fmt: skip
        assert yibao.ok(*command, "--amount", first)["status"] == "recorded"
        assert yibao.ok(*command, "--amount", first)["status"] == "duplicate"
        position = head(app)

        refused = yibao.run(*command, "--amount", second)

        assert refused.exit_code != 0
        assert refused.stderr.startswith("error: exists_with_different_content: "), refused.stderr
        assert first in refused.stderr and second in refused.stderr
        assert head(app) == position
    again = yibao.run("finance", "pay", *common, "--through", "2023-06-30", "--payment-id", "PAY-RE")
    assert again.stderr.startswith("error: exists_with_different_content: "), again.stderr
    # What was recorded: the deduction after payment (100.00) and its recovery (10.00).
    assert account_total(app, "390100", "receivable_from_hospitals", "H-RE") == "90.00"


def test_a_deduction_on_a_reversed_settlement_is_refused(app: RegionApplication, yibao: Cli) -> None:
    settle(app, "RV-1", "M-RV", "H-RV", "2023-03-01", "10000.00")
    app.reverse("RV-1", operator="op-1", reason="duplicate billing", on_date=dt.date(2023, 3, 5))
    position = head(app)

    result = yibao.run(
        "finance", "deduct", "refuse", "--region", REGION, "--setl-id", "RV-1", "--fund", "390100",
        "--amount", "100.00", "--deduction-id", "DED-RV", "--on", "2023-04-01", "--operator", "auditor-1",
        "--reason", "audit",
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr.startswith("error: settlement_reversed: ")
    assert head(app) == position


def test_a_deduction_on_an_unknown_settlement_is_refused(yibao: Cli) -> None:
    result = yibao.run(
        "finance", "deduct", "refuse", "--region", REGION, "--setl-id", "NO-SUCH", "--fund", "390100",
        "--amount", "100.00", "--deduction-id", "DED-NONE", "--operator", "auditor-1", "--reason", "audit",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown_settlement: ")


def test_reversing_a_settlement_after_a_deduction_leaves_nothing_owed_either_way(app: RegionApplication) -> None:
    settle(app, "RD-1", "M-RD", "H-RD", "2023-03-01", "10000.00")
    app.deduct(
        "DED-RD", setl_id="RD-1", fund="390100", kind="reduce", amount=100000, on_date=dt.date(2023, 4, 1),
        operator="auditor-1", reason="audit",
    )  # fmt: skip
    try:
        app.reverse("RD-1", operator="op-1", reason="claim withdrawn", on_date=dt.date(2023, 4, 2))
    except YibaoError:
        return  # refusing the reversal of a settlement with deductions is an acceptable answer too
    # Settled 8,280.00, reduced by 1,000.00 (never paid), then reversed: nothing is owed either way.
    assert account_total(app, "390100", "payable_to_hospitals", "H-RD") == "0.00"
    assert account_total(app, "390100", "receivable_from_hospitals", "H-RD") == "0.00"


def test_a_deduction_on_a_settlement_uploaded_after_the_payment_lowers_what_is_still_owed(
    app: RegionApplication,
) -> None:
    settle(app, "LATE-1", "M-LATE", "H-LATE", "2023-03-01", "10000.00")
    pay(app, "PAY-LATE", "H-LATE", through=dt.date(2023, 3, 31), paid_on=dt.date(2023, 4, 5))
    # Uploaded by the hospital after the payment, dated within the period that payment covered.
    settle(app, "LATE-2", "M-LATE2", "H-LATE", "2023-03-15", "10000.00")
    assert owed(app, "H-LATE", "2023-04-30") == {"390100": "8280.00"}

    result = app.deduct(
        "DED-LATE", setl_id="LATE-2", fund="390100", kind="reduce", amount=100000, on_date=dt.date(2023, 4, 20),
        operator="auditor-1", reason="audit",
    )  # fmt: skip

    assert [p.account for p in result.postings] == ["payable_to_hospitals", "benefit_expense"]
    assert owed(app, "H-LATE", "2023-04-30") == {"390100": "7280.00"}


def pay(app: RegionApplication, payment_id: str, hospital: str, *, through: dt.date, paid_on: dt.date) -> FinanceResult:
    """Pay one hospital what the journal says it is owed, as `finance pay` does."""
    ((_, result),) = app.pay_hospitals(
        [hospital], payment_id=payment_id, read_owed=owed_reader(app, through), through=through, paid_on=paid_on,
        operator="fin-1",
    )  # fmt: skip
    return result


# --- fines and budgets ----------------------------------------------------------------------------


def test_a_fine_is_other_income_of_the_fund_and_is_recorded_once(app: RegionApplication, yibao: Cli) -> None:
    args = (
        "finance", "fine", "--region", REGION, "--hospital", "H-FINE", "--fund", "610100", "--amount", "5000.00",
        "--fine-id", "FINE-1", "--on", "2023-06-01", "--operator", "inspector-1", "--reason", "fraudulent billing",
    )  # fmt: skip

    out = yibao.ok(*args)

    assert out == {
        "fine_id": "FINE-1", "hospital": "H-FINE", "status": "recorded",
        "postings": [posting("610100", "bank", "", "5000.00"), posting("610100", "other_income", "H-FINE", "-5000.00")],
    }  # fmt: skip
    position = head(app)
    assert yibao.ok(*args)["status"] == "duplicate"
    assert head(app) == position
    sheet = json.loads(
        yibao.run("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31", "--format", "json").stdout
    )
    assert sheet["funds"]["610100"]["other_income"] == "5000.00"
    assert sheet["funds"]["610100"]["contribution_income"] == "0.00"
    assert account_total(app, "610100", "bank", "") == "5000.00"


def test_a_fine_must_be_a_positive_amount(app: RegionApplication) -> None:
    with pytest.raises(YibaoError) as refused:
        app.fine("FINE-0", hospital="H-FINE", fund="610100", amount=0, on_date=dt.date(2023, 6, 1),
                 operator="inspector-1", reason="x")  # fmt: skip
    assert refused.value.reason == "bad_amount"


def test_a_hospital_budget_shows_on_the_hospital_statement_with_its_use(app: RegionApplication, yibao: Cli) -> None:
    settle(app, "BUD-1", "M-BUD", "H-BUD", "2023-03-01", "10000.00")
    settle(app, "BUD-2", "M-BUD", "H-BUD", "2023-05-01", "20000.00")
    app.deduct(
        "DED-BUD", setl_id="BUD-2", fund="390100", kind="reduce", amount=28000, on_date=dt.date(2023, 6, 1),
        operator="auditor-1", reason="audit",
    )  # fmt: skip
    budget = ("finance", "budget", "--region", REGION, "--hospital", "H-BUD", "--year", "2023", "--amount",
              "100000.00", "--operator", "fin-1")  # fmt: skip

    first = yibao.run(*budget)
    again = yibao.run(*budget)

    assert first.stdout.strip() == "budget H-BUD 2023: 100000.00 (recorded)"
    assert again.stdout.strip() == "budget H-BUD 2023: 100000.00 (unchanged)"
    report = hospital_report(yibao, "H-BUD")
    # Used: 8,280.00 + 17,280.00 settled by the basic fund, less 280.00 deducted.
    assert {k: report[k] for k in ("budget", "budget_used", "budget_used_ratio")} == {
        "budget": "100000.00", "budget_used": "25280.00", "budget_used_ratio": "25.3%",
    }  # fmt: skip
    assert hospital_report(yibao, "H-BUD", 2024)["budget"] is None


# --- --dry-run writes nothing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry_hospital(app: RegionApplication) -> str:
    """H-DRY: DRY-1 paid and then reduced by 200.00 (a receivable); DRY-2 still owed."""
    settle(app, "DRY-1", "M-DRY", "H-DRY", "2023-03-01", "10000.00")
    settle(app, "DRY-2", "M-DRY", "H-DRY", "2023-05-01", "20000.00")
    pay(app, "PAY-DRY", "H-DRY", through=dt.date(2023, 3, 31), paid_on=dt.date(2023, 4, 5))
    app.deduct(
        "DED-DRY-1", setl_id="DRY-1", fund="390100", kind="reduce", amount=20000, on_date=dt.date(2023, 6, 1),
        operator="auditor-1", reason="audit",
    )  # fmt: skip
    return "H-DRY"


DRY_RUNS = {
    "pay": (
        ("finance", "pay", "--region", REGION, "--hospital", "H-DRY", "--through", "2023-12-31",
         "--payment-id", "PAY-DRY-2", "--operator", "fin-1"),
        [posting("390100", "payable_to_hospitals", "H-DRY", "17280.00"), posting("390100", "bank", "", "-17280.00")],
    ),
    "deduct": (
        ("finance", "deduct", "reduce", "--region", REGION, "--setl-id", "DRY-2", "--fund", "390100",
         "--amount", "100.00", "--deduction-id", "DED-DRY-2", "--operator", "auditor-1", "--reason", "audit"),
        [posting("390100", "payable_to_hospitals", "H-DRY", "100.00"),
         posting("390100", "benefit_expense", "", "-100.00")],
    ),
    "recover": (
        ("finance", "recover", "--region", REGION, "--hospital", "H-DRY", "--fund", "390100", "--amount", "200.00",
         "--recovery-id", "REC-DRY", "--operator", "fin-1"),
        [posting("390100", "bank", "", "200.00"), posting("390100", "receivable_from_hospitals", "H-DRY", "-200.00")],
    ),
    "fine": (
        ("finance", "fine", "--region", REGION, "--hospital", "H-DRY", "--fund", "390100", "--amount", "300.00",
         "--fine-id", "FINE-DRY", "--operator", "inspector-1", "--reason", "late filing"),
        [posting("390100", "bank", "", "300.00"), posting("390100", "other_income", "H-DRY", "-300.00")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("operation", sorted(DRY_RUNS))
def test_every_finance_operation_with_dry_run_prints_its_postings_and_writes_nothing(
    app: RegionApplication, yibao: Cli, dry_hospital: str, operation: str
) -> None:
    args, postings = DRY_RUNS[operation]
    account_before = app.hospital_account(dry_hospital)
    assert account_before is not None
    position = head(app)

    out = yibao.ok(*args, "--dry-run")

    assert out["status"] == "dry_run"
    assert out["postings"] == postings
    assert head(app) == position
    account_after = app.hospital_account(dry_hospital)
    assert account_after is not None
    assert (account_after.version, account_after.operations) == (account_before.version, account_before.operations)
    assert owed(app, dry_hospital, "2023-12-31") == {"390100": "17280.00"}
    assert account_total(app, "390100", "receivable_from_hospitals", dry_hospital) == "200.00"


def test_a_dry_run_that_would_be_refused_is_refused_and_writes_nothing(
    app: RegionApplication, yibao: Cli, dry_hospital: str
) -> None:
    position = head(app)
    result = yibao.run(
        "finance", "recover", "--region", REGION, "--hospital", dry_hospital, "--fund", "390100",
        "--amount", "200.01", "--recovery-id", "REC-DRY-X", "--operator", "fin-1", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: recovery_exceeds_receivable: ")
    assert head(app) == position


# --- operator and reason are required ------------------------------------------------------------

DEDUCT = ("finance", "deduct", "reduce", "--region", REGION, "--setl-id", "DRY-2", "--fund", "390100",
          "--amount", "1.00", "--deduction-id", "DED-REQ")  # fmt: skip
FINE = ("finance", "fine", "--region", REGION, "--hospital", "H-DRY", "--fund", "390100", "--amount", "1.00",
        "--fine-id", "FINE-REQ")  # fmt: skip
RECOVER = ("finance", "recover", "--region", REGION, "--hospital", "H-DRY", "--fund", "390100", "--amount", "1.00",
           "--recovery-id", "REC-REQ")  # fmt: skip
PAY = ("finance", "pay", "--region", REGION, "--hospital", "H-DRY", "--through", "2023-12-31",
       "--payment-id", "PAY-REQ")  # fmt: skip
BUDGET = ("finance", "budget", "--region", REGION, "--hospital", "H-DRY", "--year", "2023", "--amount", "1.00")


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        ((*DEDUCT, "--reason", "audit"), 2, "Missing option '--operator'"),
        ((*DEDUCT, "--operator", "auditor-1"), 2, "Missing option '--reason'"),
        ((*DEDUCT, "--operator", "  ", "--reason", "audit"), 1, "error: missing_operator: "),
        ((*DEDUCT, "--operator", "auditor-1", "--reason", ""), 1, "error: missing_reason: "),
        ((*FINE, "--reason", "late"), 2, "Missing option '--operator'"),
        ((*FINE, "--operator", "inspector-1"), 2, "Missing option '--reason'"),
        ((*FINE, "--operator", "inspector-1", "--reason", " "), 1, "error: missing_reason: "),
        (RECOVER, 2, "Missing option '--operator'"),
        ((*RECOVER, "--operator", ""), 1, "error: missing_operator: "),
        (PAY, 2, "Missing option '--operator'"),
        ((*PAY, "--operator", " "), 1, "error: missing_operator: "),
        (BUDGET, 2, "Missing option '--operator'"),
        ((*BUDGET, "--operator", ""), 1, "error: missing_operator: "),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_finance_operations_require_an_operator_and_a_reason(
    app: RegionApplication, yibao: Cli, dry_hospital: str, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    position = head(app)
    result = yibao.run(*args)
    assert result.exit_code == exit_code
    assert message in result.stderr
    assert head(app) == position


def test_paying_needs_either_named_hospitals_or_all_hospitals(yibao: Cli) -> None:
    result = yibao.run(
        "finance", "pay", "--region", REGION, "--through", "2023-12-31", "--payment-id", "PAY-X",
        "--operator", "fin-1",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: missing_hospital: ")
