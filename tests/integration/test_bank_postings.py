"""The centre's side of a bank statement on PostgreSQL (projections.reconciliation.bank_postings):
each kind of fact that moves a fund's bank account is one posting with its kind, reference and
counterparty; an opening balance is none; and a statement's reconciliation is recorded once per
fund, file, period and answer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from core.bank_statement import BankItem
from core.reconciliation import BANK_KIND
from projections.read_model import catch_up, reading
from projections.reconciliation import bank_postings
from store.app import Store
from tests.cli_store import runner
from tests.conftest import EXAMPLES

REGION = "330109"
MEMBERS = [
    {"psn_no": psn_no, "insuplc_admdvs": REGION, "insutype": insutype, "assist_category": "none", "chronic": False,
     "supplementary": [], "valid_from": "2020-01-01"}
    for psn_no, insutype in (("BK-1", "390"), ("E-1", "310"))
]  # fmt: skip
CONTRIBUTIONS = [
    {"contrib_id": "C-1", "psn_no": "BK-1", "fund": "390100", "paid_date": "2023-03-01", "amount": "5000.00"},
    {"contrib_id": "C-E", "psn_no": "E-1", "fund": "310100", "paid_date": "2023-03-02", "amount": "600.00",
     "acct_amount": "200.00"},
]  # fmt: skip
CLAIM = {
    "setl_id": "BK-S1", "psn_no": "BK-1", "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "21",
    "setl_time": "2023-03-10", "medfee_sumamt": "2000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
    "preselfpay_amt": "0.00", "inscp_scp_amt": "2000.00",
}  # fmt: skip
FIN = ("--region", REGION, "--operator", "fin-1")


@pytest.fixture(scope="module")
def region(database_url: str, store: Store) -> Any:
    run = runner(database_url)

    def jsonl(rows: list[dict[str, Any]]) -> str:
        return "".join(json.dumps(r) + "\n" for r in rows)

    run("policy", "load", str(EXAMPLES / "policy-330109-2023.toml"))
    run("funds", "opening-balance", "--region", REGION, "--fund", "390100", "--amount", "10000.00", "--date",
        "2023-01-01", "--id", "OB-1", "--operator", "fin-1")  # fmt: skip
    run("members", "import", "-", stdin=jsonl(MEMBERS))
    run("contributions", "import", "-", stdin=jsonl(CONTRIBUTIONS))
    run("claims", "settle", "-", stdin=jsonl([CLAIM]))  # the fund owes H001 1,080.00
    run("finance", "pay", *FIN, "--hospital", "H001", "--through", "2023-03-31", "--paid-on", "2023-04-05",
        "--payment-id", "PAY-1")  # fmt: skip
    run("finance", "deduct", "reduce", *FIN, "--setl-id", "BK-S1", "--fund", "390100", "--amount", "100.00",
        "--deduction-id", "D-1", "--on", "2023-04-08", "--reason", "over-billed")  # fmt: skip
    run("finance", "recover", *FIN, "--hospital", "H001", "--fund", "390100", "--amount", "100.00",
        "--recovery-id", "REC-1", "--on", "2023-04-10")  # fmt: skip
    run("finance", "fine", *FIN, "--hospital", "H001", "--fund", "390100", "--amount", "50.00", "--fine-id",
        "FINE-1", "--on", "2023-04-12", "--reason", "虚假住院")  # fmt: skip
    run("funds", "transfer", *FIN, "--from", "390100", "--to", "390200", "--amount", "300.00", "--date",
        "2023-04-15", "--id", "TR-1", "--reason", "大病保险筹资划转")  # fmt: skip
    run("funds", "interest", "--region", REGION, "--fund", "390100", "--amount", "12.34", "--date", "2023-04-21",
        "--id", "INT-1")  # fmt: skip
    app = store.region(REGION)
    catch_up(app)
    return app


def postings(app: Any, fund: str, begin: str = "2023-01-01", end: str = "2023-12-31") -> list[BankItem]:
    with reading(app) as (curs, schema):
        return bank_postings(curs, schema, fund, begin, end)


def test_each_kind_of_bank_movement_is_one_posting_with_its_counterparty(region: Any) -> None:
    assert postings(region, "390100") == [
        BankItem("2023-03-01", 500000, "", "C-1", kind="contribution"),
        BankItem("2023-04-05", -108000, "H001", "PAY-1", kind="hospital_payment"),
        BankItem("2023-04-10", 10000, "H001", "REC-1", kind="recovery"),
        BankItem("2023-04-12", 5000, "H001", "FINE-1", kind="fine"),
        BankItem("2023-04-15", -30000, "390200", "TR-1", kind="fund_transfer"),
        BankItem("2023-04-21", 1234, "", "INT-1", kind="interest"),
    ]  # the opening balance of 10,000.00 is no movement of the account


def test_the_other_side_of_a_transfer_and_a_contributions_account_share_name_their_counterparty(
    region: Any,
) -> None:
    assert postings(region, "390200") == [BankItem("2023-04-15", 30000, "390100", "TR-1", kind="fund_transfer")]
    assert postings(region, "310100") == [BankItem("2023-03-02", 40000, "E-1", "C-E", kind="contribution")]
    assert postings(region, "310200") == [BankItem("2023-03-02", 20000, "E-1", "C-E", kind="contribution")]


def test_only_the_period_asked_for_is_read(region: Any) -> None:
    assert [p.reference for p in postings(region, "390100", "2023-04-10", "2023-04-15")] == ["REC-1", "FINE-1", "TR-1"]


def test_a_statement_is_recorded_once_per_fund_and_answer(region: Any) -> None:
    key = {"kind": BANK_KIND, "file_sha256": "f" * 64, "hospital": "", "begin": "2023-04-01", "end": "2023-04-30"}
    today = dt.date(2023, 5, 2)
    answer = {"stmt_rslt": "1", "matched": 5, "only_in_bank": 0, "only_in_center": 1}
    assert region.record_reconciliation(operator="fin-1", on_date=today, fund="390100", result=answer, **key)
    assert region.record_reconciliation(operator="fin-1", on_date=today, fund="390200", result=answer, **key)
    assert not region.record_reconciliation(operator="fin-2", on_date=today, fund="390100", result=answer, **key)
    settled = {**answer, "stmt_rslt": "0", "matched": 6, "only_in_center": 0}
    assert region.record_reconciliation(operator="fin-2", on_date=today, fund="390100", result=settled, **key)
    found = {(r.fund, r.result["stmt_rslt"], r.operator) for r in region.reconciliations() if r.kind == BANK_KIND}
    assert found == {("390100", "0", "fin-2"), ("390200", "1", "fin-1")}
