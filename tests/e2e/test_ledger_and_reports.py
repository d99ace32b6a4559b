"""The ledger and the finance reports after the basic-year example, through the CLI, to the fen.

The worked example (examples/basic-year) is replayed, a few more contributions are imported,
and every hospital is paid what it is owed up to the end of 2023. The balance sheet is then checked
against a ledger worked out here from the settlement results themselves: each fund's benefit
expense is what it paid on the settlements posted in the year, less what reversals and corrections
took back. The example's reversal (S-0002) and correction (S-0004) are made today, through
`claims reverse` / `claims correct`, so they are posted today: they change today's year and the
accumulated balance, never 2023's lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commands.cli import main
from projections.trace import trace_account
from store.app import Store
from tests.e2e.test_basic_year import BASIC_YEAR, EXAMPLES, Yibao, jsonl, replay

REGION = "330109"

MEMBERS = {m["psn_no"]: m for m in jsonl(BASIC_YEAR / "members.jsonl")}
# Which fund each payer field of a result is paid from: (employees, residents).
PAYER_FUNDS = {
    "hifp_pay": ("310100", "390100"),
    "hifmi_pay": ("330100", "390200"),
    "maf_pay": ("610100", "610100"),
    "hmb_pay": ("HMB", "HMB"),
    "charity_pay": ("CHARITY", "CHARITY"),
}
# Contributions beyond the example's one (C-D-2023: 6,000.00 to 310100, 2,400.00 of it to P-D's account).
MORE_CONTRIBUTIONS = [
    {"contrib_id": "C-A-2023", "psn_no": "P-A", "fund": "390100", "paid_date": "2023-01-15", "amount": "380.00"},
    {"contrib_id": "C-B-2023", "psn_no": "P-B", "fund": "390100", "paid_date": "2023-01-15", "amount": "380.00"},
    {"contrib_id": "C-D-2023-SI", "psn_no": "P-D", "fund": "330100", "paid_date": "2023-01-10", "amount": "120.00"},
    {"contrib_id": "C-A-2024", "psn_no": "P-A", "fund": "390100", "paid_date": "2024-01-15", "amount": "400.00"},
    {
        "contrib_id": "C-D-2024", "psn_no": "P-D", "fund": "310100", "paid_date": "2024-01-10", "amount": "6600.00",
        "acct_amount": "2640.00",
    },
]  # fmt: skip
# The funds' balances brought in on 1 January 2023 (期初结余): a fund never pays hospitals more than
# its bank holds, and the example's few contributions would not cover its claims.
OPENING = {"310100": "100000.00", "390100": "500000.00", "390200": "100000.00", "610100": "100000.00",
           "HMB": "10000.00"}  # fmt: skip
LIABILITIES = ("payable_to_hospitals", "payable_to_members", "individual_accounts", "in_transit")


def fen(yuan: str) -> int:
    """A yuan string (possibly negative) in fen, exactly."""
    value = Decimal(yuan) * 100
    assert value == value.to_integral_value(), yuan
    return int(value)


def yuan(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


@dataclass
class Books:
    yibao: Yibao
    today: dt.date
    results: list[dict[str, Any]]
    expense: list[tuple[dt.date, str, int]]  # (posted on, fund, fen): benefit expense of every version
    income: list[tuple[dt.date, str, int]]  # (paid on, fund, fen): contribution income
    sheet_before_payment: dict[str, Any]
    payment: list[dict[str, Any]]
    posted: list[tuple[dt.date, str, int, dt.date]]  # expense, with the day of the version each posts

    def paid_through(self, fund: str, through: dt.date) -> int:
        """What a payment for everything up to `through` pays: the versions dated by then, net of
        their reversals, whenever those were made."""
        return sum(amount for _, f, amount, version_day in self.posted if f == fund and version_day <= through)

    def sheet(self, as_of: dt.date | str) -> dict[str, Any]:
        out = self.yibao("report", "balance-sheet", "--region", REGION, "--as-of", str(as_of), "--format", "json")
        return json.loads(out)

    def expense_of_year(self, fund: str, as_of: dt.date) -> int:
        start = dt.date(as_of.year, 1, 1)
        return sum(amount for day, f, amount in self.expense if f == fund and start <= day <= as_of)

    def income_of_year(self, fund: str, as_of: dt.date) -> int:
        start = dt.date(as_of.year, 1, 1)
        return sum(amount for day, f, amount in self.income if f == fund and start <= day <= as_of)

    def balance(self, fund: str, as_of: dt.date) -> int:
        received = sum(amount for day, f, amount in self.income if f == fund and day <= as_of)
        paid_out = sum(amount for day, f, amount in self.expense if f == fund and day <= as_of)
        return fen(OPENING.get(fund, "0.00")) + received - paid_out


def expense_entries(
    operations: list[dict[str, Any]], results: list[dict[str, Any]], today: dt.date
) -> list[tuple[dt.date, str, int]]:
    """Benefit expense per fund from the settlement results: each settled version on its claim
    date; a reversal takes back the version in force, and a correction adds its new version,
    both on the day they are made."""
    return [(day, fund, amount) for day, fund, amount, _ in posted_entries(operations, results, today)]


def posted_entries(
    operations: list[dict[str, Any]], results: list[dict[str, Any]], today: dt.date
) -> list[tuple[dt.date, str, int, dt.date]]:
    """`expense_entries`, each with the date of the version it posts or takes back: a reversal
    counts for a payment with the version it reverses (projections.statements)."""
    in_force: dict[str, tuple[dict[str, Any], dt.date]] = {}
    entries: list[tuple[dt.date, str, int, dt.date]] = []

    def post(day: dt.date, result: dict[str, Any], sign: int, version_day: dt.date) -> None:
        employee = MEMBERS[result["psn_no"]]["insutype"] == "310"
        for field, funds in PAYER_FUNDS.items():
            if fen(result[field]):
                entries.append((day, funds[0] if employee else funds[1], sign * fen(result[field]), version_day))

    for op, result in zip(operations, results, strict=True):
        if op["op"] == "settle" and result["status"] == "settled":
            claim_day = dt.date.fromisoformat(op["claim"]["setl_time"])
            post(claim_day, result, 1, claim_day)
            in_force[result["setl_id"]] = (result, claim_day)
        elif op["op"] == "reverse":
            version, version_day = in_force.pop(op["setl_id"])
            post(today, version, -1, version_day)
        elif op["op"] == "correct":
            version, version_day = in_force[result["setl_id"]]
            post(today, version, -1, version_day)
            post(today, result, 1, today)
            in_force[result["setl_id"]] = (result, today)
    return entries


def income_entries() -> list[tuple[dt.date, str, int]]:
    contributions = jsonl(BASIC_YEAR / "contributions.jsonl") + MORE_CONTRIBUTIONS
    return [
        (dt.date.fromisoformat(c["paid_date"]), c["fund"], fen(c["amount"]) - fen(c.get("acct_amount", "0.00")))
        for c in contributions
    ]


@pytest.fixture(scope="module")
def books(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Books:
    yibao = Yibao({"DATABASE_URL": database_url})
    yibao("db", "up")
    yibao("policy", "load", str(EXAMPLES / "policy-330109-2023.toml"))
    yibao("policy", "load", str(BASIC_YEAR / "policy-2024.toml"))
    yibao("members", "import", str(BASIC_YEAR / "members.jsonl"))
    folder = tmp_path_factory.mktemp("contributions")
    of_2023 = folder / "2023.jsonl"
    of_2023.write_text("".join(json.dumps(c) + "\n" for c in [*jsonl(BASIC_YEAR / "contributions.jsonl"),
                                                              *MORE_CONTRIBUTIONS[:3]]))  # fmt: skip
    assert yibao("contributions", "import", str(of_2023)).strip() == "contributions: 4 lines: 4 recorded"
    results = replay(yibao)
    today = dt.date.today()
    # 2024's contributions come after the year's claims, so P-D's account pays exactly as in the example.
    of_2024 = folder / "2024.jsonl"
    of_2024.write_text("".join(json.dumps(c) + "\n" for c in MORE_CONTRIBUTIONS[3:]))
    assert yibao("contributions", "import", str(of_2024)).strip() == "contributions: 2 lines: 2 recorded"
    for fund, amount in OPENING.items():
        yibao("funds", "opening-balance", "--region", REGION, "--fund", fund, "--amount", amount, "--date",
              "2023-01-01", "--id", f"OPEN-{fund}", "--operator", "fin-1")  # fmt: skip
    before = json.loads(
        yibao("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31", "--format", "json")
    )
    out = yibao(
        "finance", "pay", "--region", REGION, "--all-hospitals", "--through", "2023-12-31", "--paid-on",
        "2023-12-31", "--payment-id", "PAY-2023", "--operator", "fin-1",
    )  # fmt: skip
    return Books(
        yibao=yibao,
        today=today,
        results=results,
        expense=expense_entries(jsonl(BASIC_YEAR / "operations.jsonl"), results, today),
        posted=posted_entries(jsonl(BASIC_YEAR / "operations.jsonl"), results, today),
        income=income_entries(),
        sheet_before_payment=before,
        payment=[json.loads(line) for line in out.splitlines()],
    )


def test_the_replay_settles_the_example_as_worked_out(books: Books) -> None:
    expected = jsonl(BASIC_YEAR / "expected.jsonl")
    settled = [(want, got) for want, got in zip(expected, books.results, strict=True) if got["status"] == "settled"]
    assert len(settled) == 12  # eleven settlements and the new version of S-0004
    for want, got in settled:
        assert {k: got[k] for k in PAYER_FUNDS} == {k: want[k] for k in PAYER_FUNDS}, want["setl_id"]


def as_of_dates(books: Books) -> list[dt.date]:
    return [dt.date(2023, 6, 30), dt.date(2023, 12, 31), dt.date(2024, 12, 31), books.today]


FUNDS_IN_USE = ["310100", "310200", "330100", "390100", "390200", "610100", "HMB"]


# --- the balance sheet, to the fen ---------------------------------------------------------------


def test_the_benefit_expense_of_2023_is_what_each_fund_paid_on_the_settlements_of_2023(books: Books) -> None:
    sheet = books.sheet("2023-12-31")
    assert list(sheet["funds"]) == FUNDS_IN_USE
    expense = {fund: lines["benefit_expense"] for fund, lines in sheet["funds"].items()}
    # Worked out by hand from expected.jsonl: S-0002 and S-0004 v1 count in full in 2023, since
    # their reversal and correction are posted today.
    assert expense == {
        "310100": "50510.00",  # S-0007 350.00 + S-0009 50,160.00
        "310200": "0.00",  # the individual-account fund has no benefit expense
        "330100": "0.00",
        "390100": "447744.00",
        "390200": "96270.00",
        "610100": "61426.80",
        "HMB": "7500.00",  # S-0004
    }
    assert expense == {fund: yuan(books.expense_of_year(fund, dt.date(2023, 12, 31))) for fund in FUNDS_IN_USE}


def test_each_years_benefit_expense_is_the_payouts_posted_that_year_less_the_reversals(books: Books) -> None:
    for as_of in as_of_dates(books):
        sheet = books.sheet(as_of)
        for fund in FUNDS_IN_USE:
            got = sheet["funds"][fund]["benefit_expense"]
            assert got == yuan(books.expense_of_year(fund, as_of)), f"{fund} as of {as_of}"
    this_year = books.sheet(books.today)["funds"]
    if books.today.year > 2024:
        # S-0002 reversed: -209,440.00 -60,676.00 -23,907.20; S-0004 corrected: v2 - v1.
        assert {fund: this_year[fund]["benefit_expense"] for fund in ("390100", "390200", "610100", "HMB")} == {
            "390100": "-225440.00", "390200": "-63276.00", "610100": "-25307.20", "HMB": "0.00",
        }  # fmt: skip
    assert books.sheet("2024-12-31")["funds"]["390100"]["benefit_expense"] == "13440.00"  # S-0013


def test_the_accumulated_balance_is_everything_received_less_everything_paid_out(books: Books) -> None:
    for as_of in as_of_dates(books):
        sheet = books.sheet(as_of)
        for fund in FUNDS_IN_USE:
            lines = sheet["funds"][fund]
            assert lines["contribution_income"] == yuan(books.income_of_year(fund, as_of)), f"{fund} {as_of}"
            assert lines["balance"] == yuan(books.balance(fund, as_of)), f"{fund} {as_of}"
            surplus = fen(lines["contribution_income"]) + fen(lines["other_income"]) - fen(lines["benefit_expense"])
            assert fen(lines["surplus_of_year"]) == surplus
    if books.today.year > 2024:
        # 500,000.00 brought in; 760.00 + 400.00 received; 447,744.00 + 13,440.00 - 225,440.00 paid out.
        assert books.sheet(books.today)["funds"]["390100"]["balance"] == "265416.00"
    assert books.sheet("2023-12-31")["funds"]["330100"]["balance"] == "120.00"


def test_assets_equal_liabilities_plus_the_balance_for_every_fund_on_every_date(books: Books) -> None:
    for as_of in as_of_dates(books):
        for fund, lines in books.sheet(as_of)["funds"].items():
            assets = fen(lines["bank"]) + fen(lines["receivable_from_hospitals"])
            liabilities = sum(fen(lines[name]) for name in LIABILITIES)
            assert assets == liabilities + fen(lines["balance"]), f"{fund} as of {as_of}"


def test_the_individual_account_liability_is_the_sum_of_the_members_account_balances(
    books: Books, store: Store
) -> None:
    app = store.region(REGION)
    balances = {psn_no: app.account_balance(psn_no) for psn_no in MEMBERS}
    # 2,400.00 credited in 2023 and all spent (S-0007 1,270.00, S-0008 516.00 family aid, S-0009
    # 614.00); 2,640.00 credited in 2024.
    assert balances == {"P-A": 0, "P-B": 0, "P-C": 0, "P-D": 264000, "P-E": 0}
    assert books.sheet(books.today)["funds"]["310200"]["individual_accounts"] == yuan(sum(balances.values()))
    assert books.sheet("2023-12-31")["funds"]["310200"]["individual_accounts"] == "0.00"
    assert books.sheet("2023-06-30")["funds"]["310200"]["individual_accounts"] == "2400.00"


PAYER_FUNDS_PAID = ("390100", "390200", "610100", "HMB")  # the residents' payer funds of the example


def test_paying_all_hospitals_pays_what_still_stands_of_the_claims_up_to_that_date(books: Books) -> None:
    before = books.sheet_before_payment["funds"]
    owed = {fund: before[fund]["payable_to_hospitals"] for fund in FUNDS_IN_USE}
    assert owed == {
        "310100": "50510.00", "310200": "2400.00", "330100": "0.00", "390100": "447744.00",
        "390200": "96270.00", "610100": "61426.80", "HMB": "7500.00",
    }  # fmt: skip
    (payment,) = books.payment
    assert (payment["payment_id"], payment["hospital"], payment["status"]) == ("PAY-2023-H001", "H001", "recorded")
    paid = {p["fund"]: p["amount"] for p in payment["postings"] if p["account"] == "payable_to_hospitals"}
    # The claims of 2023 reversed or corrected since (posted today) are not paid: only the
    # versions that still stand, not the payable of the 2023 balance sheet.
    through = dt.date(2023, 12, 31)
    assert {fund: paid.get(fund, "0.00") for fund in PAYER_FUNDS_PAID} == {
        fund: yuan(books.paid_through(fund, through)) for fund in PAYER_FUNDS_PAID
    }
    assert paid["390100"] == "78944.00"
    assert all(p["party"] == "H001" for p in payment["postings"] if p["account"] == "payable_to_hospitals")
    banked = {p["fund"]: p["amount"] for p in payment["postings"] if p["account"] == "bank"}
    assert banked == {fund: "-" + amount for fund, amount in paid.items()}

    after = books.sheet("2023-12-31")["funds"]
    for fund in PAYER_FUNDS_PAID:  # still owed on that date: what was reversed only later
        assert after[fund]["payable_to_hospitals"] == yuan(fen(owed[fund]) - fen(paid.get(fund, "0.00"))), fund
    assert after["390100"]["bank"] == "421816.00"  # 500,000.00 brought in + 760.00 contributions - 78,944.00 paid
    assert after["390100"]["benefit_expense"] == "447744.00"  # paying moves no expense


def test_what_is_payable_later_is_what_was_settled_after_the_payment_net_of_reversals(books: Books) -> None:
    through = dt.date(2023, 12, 31)
    for as_of in (dt.date(2024, 12, 31), books.today):
        lines = books.sheet(as_of)["funds"]
        for fund in PAYER_FUNDS_PAID:
            posted = sum(amount for day, f, amount in books.expense if f == fund and day <= as_of)
            assert lines[fund]["payable_to_hospitals"] == yuan(posted - books.paid_through(fund, through)), (
                f"{fund} as of {as_of}"
            )


# --- audit: verify, rebuild, trace ----------------------------------------------------------------


def test_verify_passes_on_the_replayed_year(books: Books) -> None:
    result = CliRunner().invoke(main, ["verify"], env=books.yibao.env, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("region 330109: OK (")
    report = json.loads(books.yibao("verify", "--json"))
    assert (report["region"], report["ok"], report["problems"]) == ("330109", True, [])
    assert report["checked"]["settlements"] == 11  # S-0001..S-0009, S-0012, S-0013


def test_a_rebuilt_projection_gives_byte_identical_reports(books: Books, store: Store) -> None:
    yibao = books.yibao
    commands = [
        ("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31", "--format", "json"),
        ("report", "balance-sheet", "--region", REGION, "--as-of", books.today.isoformat(), "--format", "json"),
        ("report", "balance-sheet", "--region", REGION, "--as-of", "2024-12-31", "--format", "csv"),
        ("report", "hospital", "--region", REGION, "--hospital", "H001", "--year", "2023"),
        ("report", "hospital", "--region", REGION, "--hospital", "H001", "--year", "2024"),
        ("report", "coverage", "--region", REGION, "--year", "2023"),
        ("trace", "--account", "390100:payable_to_hospitals", "--as-of", books.today.isoformat(), "--json"),
    ]
    before = [yibao(*command) for command in commands]
    head = store.region(REGION).recorder.max_notification_id()

    out = yibao("projections", "rebuild", "--region", REGION)

    assert out == f"{REGION}\trebuilt to position {head:,}\n"
    after = [yibao(*command) for command in commands]
    for command, old, new in zip(commands, before, after, strict=True):
        assert new == old, command
    assert yibao("projections", "status") == f"{REGION}\tposition {head:,} of {head:,}\tup to date\n"


def test_the_trace_of_a_corrected_settlement_shows_the_original_the_reversal_and_the_new_version(
    books: Books,
) -> None:
    lines = [json.loads(line) for line in books.yibao("trace", "S-0004", "--json").splitlines()]
    positions = [line["position"] for line in lines]
    assert positions == sorted(positions)
    assert {line["region"] for line in lines} == {REGION}
    own = [line for line in lines if line["type"].startswith("Settlement.")]
    assert [line["type"] for line in own] == ["Settlement.Settled", "Settlement.Reversed", "Settlement.Resettled"]
    settled, reversed_, resettled = own
    policy_hash = hashlib.sha256((EXAMPLES / "policy-330109-2023.toml").read_bytes()).hexdigest()

    assert (settled["operator"], settled["reason"], settled["version"]) == (None, None, 1)
    assert settled["policy"] == policy_hash
    assert settled["amounts"]["hifp_pay"] == "159360.00"
    assert settled["breakdown"]["basic"]["ratio_bp"] == 8000
    original = [
        {"fund": "390100", "account": "benefit_expense", "party": "", "amount": "159360.00"},
        {"fund": "390100", "account": "payable_to_hospitals", "party": "H001", "amount": "-159360.00"},
        {"fund": "390200", "account": "benefit_expense", "party": "", "amount": "19916.00"},
        {"fund": "390200", "account": "payable_to_hospitals", "party": "H001", "amount": "-19916.00"},
        {"fund": "610100", "account": "benefit_expense", "party": "", "amount": "20724.00"},
        {"fund": "610100", "account": "payable_to_hospitals", "party": "H001", "amount": "-20724.00"},
        {"fund": "HMB", "account": "benefit_expense", "party": "", "amount": "7500.00"},
        {"fund": "HMB", "account": "payable_to_hospitals", "party": "H001", "amount": "-7500.00"},
    ]
    assert settled["postings"] == original

    # The operator and reason given to `claims correct` by the replay (tests.e2e.test_basic_year).
    assert (reversed_["operator"], reversed_["reason"]) == ("op-7", "hospital resubmitted")
    assert (reversed_["setl_version"], reversed_["on_date"]) == (1, books.today.isoformat())
    assert reversed_["postings"] == [{**p, "amount": yuan(-fen(p["amount"]))} for p in original]

    assert (resettled["operator"], resettled["reason"], resettled["version"]) == ("op-7", "hospital resubmitted", 2)
    assert resettled["policy"] == policy_hash
    assert {k: resettled["amounts"][k] for k in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "hmb_pay")} == {
        "medfee_sumamt": "195000.00", "hifp_pay": "143360.00", "hifmi_pay": "17316.00", "maf_pay": "19324.00",
        "hmb_pay": "7500.00",
    }  # fmt: skip
    assert resettled["postings"][:2] == [
        {"fund": "390100", "account": "benefit_expense", "party": "", "amount": "143360.00"},
        {"fund": "390100", "account": "payable_to_hospitals", "party": "H001", "amount": "-143360.00"},
    ]
    # The member-year accumulators given back and applied again are part of the trace.
    assert [line["type"] for line in lines if line["type"].startswith("MemberYear.")] == [
        "MemberYear.ClaimApplied", "MemberYear.ClaimReversed", "MemberYear.ClaimApplied",
    ]  # fmt: skip

    readable = books.yibao("trace", "S-0004")
    assert "Settlement.Reversed by op-7: hospital resubmitted" in readable
    assert f"policy {policy_hash} version 2" in readable


@pytest.mark.parametrize(
    ("line", "as_of", "sign"),
    [
        ("390100:payable_to_hospitals", "2023-06-30", -1),
        ("390100:payable_to_hospitals", "2023-12-31", -1),
        ("390100:payable_to_hospitals", "today", -1),
        ("390100:benefit_expense", "2023-12-31", 1),
        ("610100:bank", "today", 1),
        ("310200:individual_accounts", "today", -1),
    ],
)
def test_the_trace_of_a_balance_sheet_line_adds_up_to_that_line(books: Books, line: str, as_of: str, sign: int) -> None:
    date = books.today if as_of == "today" else dt.date.fromisoformat(as_of)
    out = books.yibao("trace", "--account", line, "--as-of", date.isoformat(), "--json", "--region", REGION)
    postings = [json.loads(row) for row in out.splitlines()]
    fund, account = line.split(":")
    assert postings and all(p["posted_on"] <= date.isoformat() for p in postings)
    assert sign * sum(fen(p["amount"]) for p in postings) == fen(books.sheet(date)["funds"][fund][account])


def test_the_payable_trace_at_mid_2023_lists_the_settlements_behind_it(books: Books) -> None:
    out = books.yibao("trace", "--account", "390100:payable_to_hospitals", "--as-of", "2023-06-30", "--json")
    postings = [json.loads(row) for row in out.splitlines()]
    assert [(p["ref"], p["amount"]) for p in postings] == [
        ("S-0001", "-62440.00"), ("S-0002", "-209440.00"), ("S-0004", "-159360.00"), ("S-0005", "-1620.00"),
        ("S-0006", "-880.00"),
    ]  # fmt: skip
    assert books.sheet("2023-06-30")["funds"]["390100"]["payable_to_hospitals"] == "433740.00"


# --- formats ----------------------------------------------------------------------------------------


def test_the_balance_sheet_as_csv_has_a_row_per_line_and_a_column_per_fund(books: Books) -> None:
    out = books.yibao("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["line", "行项目", *FUNDS_IN_USE]
    by_line = {row[0]: row for row in rows[1:]}
    assert by_line["benefit expense (year)"] == [
        "benefit expense (year)", "本年待遇支出", "50510.00", "0.00", "0.00", "447744.00", "96270.00", "61426.80",
        "7500.00",
    ]  # fmt: skip
    assert by_line["accumulated balance"][1:3] == ["累计结余", "53090.00"]  # 100,000.00 brought in - 46,910.00
    # What the payment left owed on that date: the claims reversed or corrected only later.
    (payment,) = books.payment
    paid = {p["fund"]: fen(p["amount"]) for p in payment["postings"] if p["account"] == "payable_to_hospitals"}
    before = books.sheet_before_payment["funds"]
    assert by_line["payable to hospitals"][2:] == [
        yuan(fen(before[fund]["payable_to_hospitals"]) - paid.get(fund, 0)) for fund in FUNDS_IN_USE
    ]
    assert by_line["payable to hospitals"][5] == "368800.00"  # 390100: 447,744.00 - 78,944.00


def test_the_balance_sheet_as_xlsx_holds_exact_numbers(books: Books, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    target = tmp_path / "sheet.xlsx"
    out = books.yibao(
        "report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31", "--format", "xlsx", "--out",
        str(target),
    )  # fmt: skip
    assert out.strip() == f"wrote {target}"
    book = load_workbook(target)
    ws = book["资产负债表"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "Balance sheet 资产负债表 — region 330109, as of 2023-12-31"
    assert list(rows[1]) == ["line", "行项目", *FUNDS_IN_USE]
    expense = next(row for row in rows if row[0] == "benefit expense (year)")
    column = {fund: i for i, fund in enumerate(rows[1])}
    assert Decimal(str(expense[column["390100"]])) == Decimal("447744.00")
    assert Decimal(str(expense[column["610100"]])) == Decimal("61426.80")
    assert not isinstance(expense[column["610100"]], str)  # a number a finance officer can add up
    row_number = next(i for i, row in enumerate(rows, start=1) if row[0] == "benefit expense (year)")
    assert ws.cell(row=row_number, column=column["390100"] + 1).number_format == "#,##0.00"


def test_the_balance_sheet_as_xlsx_needs_an_output_file(books: Books) -> None:
    result = CliRunner().invoke(
        main, ["report", "balance-sheet", "--region", REGION, "--format", "xlsx"], env=books.yibao.env,
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: missing_out: ")


def test_the_balance_sheet_as_a_table_has_chinese_and_english_labels(books: Books) -> None:
    out = books.yibao("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31")
    assert out.startswith("资产负债表 Balance sheet — region 330109, as of 2023-12-31\n")
    expense = next(line for line in out.splitlines() if line.startswith("本年待遇支出 benefit expense (year)"))
    assert expense.split()[-7:] == ["50510.00", "0.00", "0.00", "447744.00", "96270.00", "61426.80", "7500.00"]
    for label in ("银行存款 bank", "应付医疗机构款 payable to hospitals", "累计结余 accumulated balance",
                  "当年结余 surplus of the year", "可支付月数 months of payment capacity"):  # fmt: skip
        assert label in out


def test_the_balance_sheet_table_shows_every_label_in_full(books: Books) -> None:
    from projections.balance_sheet import LABELS

    out = books.yibao("report", "balance-sheet", "--region", REGION, "--as-of", "2023-12-31")
    for zh, en in LABELS.values():
        assert f"{zh} {en}" in out


# --- hospital statement -----------------------------------------------------------------------------


def hospital_statement(books: Books, year: int) -> dict[str, Any]:
    return json.loads(books.yibao("report", "hospital", "--region", REGION, "--hospital", "H001", "--year", str(year)))


def test_the_hospital_statement_shows_what_was_settled_paid_and_outstanding(books: Books) -> None:
    statement = hospital_statement(books, 2023)
    assert statement["funds"]["390100"] == {
        # Paid: what still stands of 2023's claims; outstanding at the year's end: those reversed
        # or corrected later (posted today), not paid.
        "settled": "447744.00", "deducted": "0.00", "paid": "78944.00", "recovered": "0.00",
        "outstanding": "368800.00", "receivable": "0.00",
    }  # fmt: skip
    settled = defaultdict(int)
    for day, fund, amount in books.expense:
        if day.year == 2023:
            settled[fund] += amount
    assert {fund: line["settled"] for fund, line in statement["funds"].items() if fund != "310200"} == {
        fund: yuan(amount) for fund, amount in settled.items()
    }
    assert statement["funds"]["310200"]["settled"] == "2400.00"  # paid from the individual accounts


def test_the_budget_used_in_a_year_counts_only_that_years_settlements(books: Books) -> None:
    books.yibao("finance", "budget", "--region", REGION, "--hospital", "H001", "--year", "2024", "--amount",
                "100000.00", "--operator", "fin-1")  # fmt: skip
    statement = hospital_statement(books, 2024)
    # 2024: S-0013 only, basic fund 390100 13,440.00.
    assert (statement["budget"], statement["budget_used"], statement["budget_used_ratio"]) == (
        "100000.00", "13440.00", "13.4%",
    )  # fmt: skip


def test_an_account_trace_is_read_a_page_at_a_time_and_gives_every_posting(books: Books, store: Store) -> None:
    # It used to stop silently at 10,000 postings; now it reads on after the last one given.
    app = store.region(REGION)
    whole = list(trace_account(app, "390100", "payable_to_hospitals", books.today))
    paged = list(trace_account(app, "390100", "payable_to_hospitals", books.today, page_rows=2))
    assert len(whole) > 4 and paged == whole
    assert len({(line["position"], line["ref"], line["amount"]) for line in paged}) == len(paged)
    line = books.sheet(books.today)["funds"]["390100"]["payable_to_hospitals"]
    assert yuan(-sum(fen(p["amount"]) for p in paged)) == line
