"""Fund financing on PostgreSQL through the CLI (docs/financing.md), to the fen.

Region 330199 under tests/data/financing-policy-2023.toml: residents R-1 (from January) and R-2
(from March), employee E-1, and R-X insured in another region. Each financing fact is recorded
once, with balanced postings, on its own line of the balance sheet; money never leaves a fund's
bank account that is not there, unless the policy allows that fund an overdraft.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from commands.cli import main
from core.funds import InsufficientFundBalance
from core.hospital import HospitalAccount, OwedAt
from core.ids import hospital_id
from store.app import Store
from tests.conftest import REPO_ROOT

REGION = "330199"
POLICY = REPO_ROOT / "tests" / "data" / "financing-policy-2023.toml"


def member(psn_no: str, insutype: str, valid_from: str, region: str = REGION) -> dict[str, str]:
    return {"psn_no": psn_no, "insuplc_admdvs": region, "insutype": insutype, "assist_category": "none",
            "valid_from": valid_from}  # fmt: skip


MEMBERS = [
    member("R-1", "390", "2023-01-01"),
    member("R-2", "390", "2023-03-01"),
    member("E-1", "310", "2020-01-01"),
    member("R-X", "390", "2023-01-01", region="330198"),
]
CONTRIBUTIONS = [
    {"contrib_id": "C-R1-own", "psn_no": "R-1", "fund": "390100", "paid_date": "2023-01-10", "amount": "380.00",
     "source": "individual"},
    {"contrib_id": "C-R1-sub", "psn_no": "R-1", "fund": "390100", "paid_date": "2023-01-10", "amount": "640.00",
     "source": "fiscal_subsidy"},
    {"contrib_id": "C-E1-er", "psn_no": "E-1", "fund": "310100", "paid_date": "2023-01-15", "amount": "2400.00",
     "source": "employer"},
    {"contrib_id": "C-E1-ee", "psn_no": "E-1", "fund": "310100", "paid_date": "2023-01-15", "amount": "600.00",
     "acct_amount": "600.00", "source": "individual"},
    {"contrib_id": "C-R2-old", "psn_no": "R-2", "fund": "390100", "paid_date": "2023-03-10", "amount": "100.00"},
]  # fmt: skip


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str) -> Result:
        if args[0] in ("funds", "report", "finance") and "--region" not in args:  # 330198 holds R-X
            args = (*args[:2], "--region", REGION, *args[2:])
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args))

    def sheet(self, as_of: str = "2023-12-31") -> dict[str, dict[str, Any]]:
        return self.json("report", "balance-sheet", "--as-of", as_of, "--format", "json")["funds"]


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli({"DATABASE_URL": database_url})
    folder = tmp_path_factory.mktemp("financing")
    cli.ok("db", "up")
    cli.ok("regions", "add", "330198")
    cli.ok("policy", "load", str(POLICY))
    cli.ok("members", "import", write(folder / "members.jsonl", MEMBERS))
    assert cli.ok("contributions", "import", write(folder / "c.jsonl", CONTRIBUTIONS)).strip() == (
        "contributions: 5 lines: 5 recorded"
    )
    return cli


def postings(out: str) -> list[tuple[str, str, str, str]]:
    return [(p["fund"], p["account"], p["party"], p["amount"]) for p in json.loads(out)["postings"]]


def test_contributions_book_by_who_paid_a_line_without_a_source_as_before(yibao: Cli, tmp_path: Path) -> None:
    lines = yibao.sheet()
    assert lines["390100"]["contribution_income"] == "480.00"  # 380.00 of R-1 and 100.00 of R-2 (no source)
    assert lines["390100"]["fiscal_subsidy_income"] == "640.00"
    assert lines["310100"]["contribution_income"] == "2400.00"  # the employee's 600.00 went to the account
    assert lines["310200"]["individual_accounts"] == "600.00"
    again = yibao.ok("contributions", "import", write(tmp_path / "again.jsonl", CONTRIBUTIONS))
    assert again.strip() == "contributions: 5 lines: 5 duplicate"
    changed = [{**CONTRIBUTIONS[1], "source": "individual"}]
    out = yibao.run("contributions", "import", write(tmp_path / "changed.jsonl", changed))
    assert "exists_with_different_content" in out.stdout + out.stderr


def test_the_serious_illness_financing_moves_the_per_capita_figure_for_each_member_insured(yibao: Cli) -> None:
    args = ("funds", "finance-serious-illness", "--year", "2023", "--date", "2023-01-31",
            "--operator", "fin-1")  # fmt: skip
    first = [json.loads(line) for line in yibao.ok(*args).splitlines()]
    # R-1 and R-2 (from March) are residents here in 2023, E-1 an employee; R-X is insured elsewhere.
    assert [(r["id"], r["status"], r["reason"]) for r in first] == [
        ("SI-330199-2023-310", "recorded", "大病保险筹资划转 2023: 1 insured x 40.50"),
        ("SI-330199-2023-390", "recorded", "大病保险筹资划转 2023: 2 insured x 65.00"),
    ]
    assert [(p["fund"], p["account"], p["amount"]) for p in first[1]["postings"]] == [
        ("390100", "transfer_expense", "130.00"), ("390100", "bank", "-130.00"),
        ("390200", "bank", "130.00"), ("390200", "transfer_income", "-130.00"),
    ]  # fmt: skip
    assert [json.loads(line)["status"] for line in yibao.ok(*args).splitlines()] == ["duplicate", "duplicate"]
    lines = yibao.sheet()
    assert (lines["390100"]["transfer_expense"], lines["390200"]["transfer_income"]) == ("130.00", "130.00")
    assert (lines["310100"]["transfer_expense"], lines["330100"]["transfer_income"]) == ("40.50", "40.50")
    assert lines["390200"]["bank"] == lines["390200"]["balance"] == "130.00"


def test_a_transfer_between_funds_is_recorded_once_and_an_id_reused_for_another_is_refused(yibao: Cli) -> None:
    args = ["funds", "transfer", "--from", "390100", "--to", "610100", "--amount", "200.00", "--date", "2023-02-01",
            "--id", "TR-1", "--reason", "救助资金调剂", "--operator", "fin-1"]  # fmt: skip
    assert postings(yibao.ok(*args)) == [
        ("390100", "transfer_expense", "610100", "200.00"), ("390100", "bank", "", "-200.00"),
        ("610100", "bank", "", "200.00"), ("610100", "transfer_income", "390100", "-200.00"),
    ]  # fmt: skip
    assert json.loads(yibao.ok(*args))["status"] == "duplicate"
    other = yibao.run(*[a if a != "200.00" else "200.01" for a in args])
    assert other.exit_code == 1
    assert other.stderr.startswith("error: exists_with_different_content: TR-1 was already used")
    assert yibao.sheet()["610100"]["transfer_income"] == "200.00"


def test_interest_is_its_own_income_line(yibao: Cli) -> None:
    args = ("funds", "interest", "--fund", "390100", "--amount", "1.23", "--date", "2023-03-21", "--id", "INT-Q1")
    assert postings(yibao.ok(*args)) == [("390100", "bank", "", "1.23"), ("390100", "interest_income", "", "-1.23")]
    assert json.loads(yibao.ok(*args))["status"] == "duplicate"
    lines = yibao.sheet()["390100"]
    # In the national order: 征缴, 财政补助, 利息, 转移, 其他; and the year's surplus is all of them less expense.
    income = [k for k in lines if k.endswith("_income")]
    assert income == ["contribution_income", "fiscal_subsidy_income", "interest_income", "transfer_income",
                      "other_income"]  # fmt: skip
    assert lines["income_of_year"] == "1121.23"  # 480.00 + 640.00 + 1.23
    assert lines["expense_of_year"] == "330.00"  # 130.00 to serious illness, 200.00 to assistance
    assert lines["surplus_of_year"] == lines["balance"] == lines["bank"] == "791.23"


def test_a_transfer_beyond_the_bank_balance_is_refused_by_name_and_records_nothing(yibao: Cli, store: Store) -> None:
    app = store.region(REGION)
    head = app.recorder.max_notification_id()
    refused = yibao.run("funds", "transfer", "--from", "390100", "--to", "390200", "--amount", "791.24", "--date",
                        "2023-12-31", "--id", "TR-BIG", "--reason", "r", "--operator", "fin-1")  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: insufficient_fund_balance: fund 390100 has 791.23 in the bank on 2023-12-31: cannot pay 791.24 "
        "from it (a policy allows overdrafts with [controls] overdraft_allowed)"
    )
    assert app.recorder.max_notification_id() == head
    dry = yibao.run("funds", "transfer", "--from", "390100", "--to", "390200", "--amount", "791.24", "--date",
                    "2023-12-31", "--id", "TR-BIG", "--reason", "r", "--operator", "fin-1", "--dry-run")  # fmt: skip
    assert dry.exit_code == 1 and "insufficient_fund_balance" in dry.stderr


def settle_and_owe(yibao: Cli, tmp_path: Path, setl_id: str, amount: str) -> None:
    claim = {"setl_id": setl_id, "psn_no": "R-1", "fixmedins_code": "H-1", "hosp_lv": 1, "med_type": "21",
             "setl_time": "2023-04-01", "medfee_sumamt": amount, "fulamt_ownpay_amt": "0.00",
             "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": amount}  # fmt: skip
    out = yibao.ok("claims", "settle", write(tmp_path / f"{setl_id}.jsonl", [claim]))
    assert json.loads(out)["status"] == "settled"


def test_a_hospital_payment_beyond_the_bank_balance_is_refused_and_records_nothing(
    yibao: Cli, store: Store, tmp_path: Path
) -> None:
    settle_and_owe(yibao, tmp_path, "S-1", "1000.00")  # basic pays 80%: 800.00 owed to H-1 by 390100
    app = store.region(REGION)
    head = app.recorder.max_notification_id()
    pay = ("finance", "pay", "--hospital", "H-1", "--through", "2023-04-30", "--paid-on",
           "2023-05-05", "--payment-id", "PAY-1", "--operator", "fin-1")  # fmt: skip
    refused = yibao.run(*pay)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: insufficient_fund_balance: fund 390100 has 791.23 in the bank on 2023-05-05: cannot pay 800.00"
    )
    assert app.recorder.max_notification_id() == head
    assert app.hospital_account("H-1") is None
    yibao.ok("funds", "interest", "--fund", "390100", "--amount", "8.77", "--date", "2023-05-01", "--id", "INT-X")
    assert json.loads(yibao.ok(*pay))["status"] == "recorded"
    assert yibao.sheet()["390100"]["bank"] == "0.00"


def test_a_fund_the_policy_allows_to_overdraw_pays_beyond_its_balance(yibao: Cli, store: Store, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed.toml"
    allowed.write_text(POLICY.read_text().replace("overdraft_allowed = []", 'overdraft_allowed = ["390100"]'))
    yibao.ok("policy", "load", str(allowed))
    try:
        out = yibao.ok("funds", "transfer", "--from", "390100", "--to", "390200", "--amount", "5.00", "--date",
                       "2023-12-31", "--id", "TR-OVER", "--reason", "r", "--operator", "fin-1")  # fmt: skip
        assert json.loads(out)["status"] == "recorded"
        assert yibao.sheet()["390100"]["bank"] == "-5.00"
        verified = yibao.run("verify", "--region", REGION)
        assert verified.exit_code == 0, verified.stdout  # allowed: not a finding
    finally:
        yibao.ok("policy", "load", str(POLICY))
    verified = yibao.run("verify", "--region", REGION, "--json")
    assert verified.exit_code == 1
    report = json.loads(verified.stdout.splitlines()[0])
    assert report["problems"] == ["fund 390100: bank balance -5.00 on 2023-12-31, below zero"]
    yibao.ok("funds", "interest", "--fund", "390100", "--amount", "5.00", "--date", "2023-12-31", "--id", "INT-Y")
    assert yibao.run("verify", "--region", REGION).exit_code == 0


def test_verify_names_a_bank_balance_below_zero_recorded_around_the_check(store: Store, yibao: Cli) -> None:
    """A payment saved without the check (as events recorded before the rule were)."""
    app = store.region(REGION)
    hospital = HospitalAccount(fixmedins_code="H-OLD")
    hospital.pay("PAY-OLD", "2023-06-30", "2023-07-05", {"610100": 25_000}, "fin-1", 0)
    app.save_aggregates([hospital])
    assert app.hospital_account("H-OLD") is not None and hospital.id == hospital_id("H-OLD")
    verified = yibao.run("verify", "--region", REGION, "--json")
    assert verified.exit_code == 1
    report = json.loads(verified.stdout.splitlines()[0])
    assert "fund 610100: bank balance -50.00 on 2023-07-05, below zero" in report["problems"]


def test_the_postings_behind_a_financing_line_are_traceable(yibao: Cli) -> None:
    out = yibao.ok("trace", "--account", "390200:transfer_income", "--region", REGION, "--as-of", "2023-12-31")
    assert out.splitlines()[0].split("\t")[1:] == ["2023-01-31", "fund_transfer", "SI-330199-2023-390", "390100",
                                                   "-130.00"]  # fmt: skip
    out = yibao.ok("trace", "--account", "390100:fiscal_subsidy_income", "--region", REGION, "--as-of", "2023-12-31")
    assert [line.split("\t")[2:4] for line in out.splitlines()] == [["contribution", "C-R1-sub"]]


def test_an_app_payment_checks_the_balance_too(store: Store) -> None:
    app = store.region(REGION)
    with pytest.raises(InsufficientFundBalance):
        app.pay_hospitals(
            ["H-APP"], payment_id="PAY-APP", read_owed=lambda: OwedAt(app.region_log.max_notification_id() or 0,
            {"H-APP": {"330100": 4_051}}), through=dt.date(2023, 12, 31), paid_on=dt.date(2023, 12, 31),
            operator="fin-1",
        )  # fmt: skip
