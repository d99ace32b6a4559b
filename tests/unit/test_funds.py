"""The pure rules of fund financing (core/funds.py): entries and their postings, the
serious-illness financing, and the bank-balance rule that refuses an overdraft."""

from __future__ import annotations

import datetime as dt

import pytest

from core.codec import registered_topics
from core.funds import (
    BANK_EVENT_DATES,
    FUND_TRANSFER,
    INTEREST,
    OPENING,
    BankDraw,
    FundEntryRejected,
    InsufficientFundBalance,
    bank_moves,
    check_bank_draws,
    entry,
    entry_postings,
    lowest_bank_balance,
    serious_illness_financing,
)
from core.ledger import Posting, contribution_postings
from core.policy import PolicyError, parse_policy
from core.records import RecordRejected, parse_contribution
from projections.read_model import read_model_topics
from tests.conftest import REPO_ROOT

DAY = dt.date(2023, 1, 31)
TEST_POLICY = REPO_ROOT / "tests" / "data" / "financing-policy-2023.toml"


def test_a_transfer_is_transfer_expense_of_one_fund_and_transfer_income_of_the_other_each_balanced() -> None:
    facts = entry(FUND_TRANSFER, "T-1", fund="390100", to_fund="390200", amount=71_500, on_date=DAY, reason="r",
                  operator="fin-1")  # fmt: skip
    assert entry_postings(facts) == [
        Posting("390100", "transfer_expense", "390200", 71_500), Posting("390100", "bank", "", -71_500),
        Posting("390200", "bank", "", 71_500), Posting("390200", "transfer_income", "390100", -71_500),
    ]  # fmt: skip


@pytest.mark.parametrize(("kind", "account"), [(INTEREST, "interest_income"), (OPENING, "opening_balance")])
def test_interest_and_an_opening_balance_are_money_in_the_bank_on_their_own_line(kind: str, account: str) -> None:
    facts = entry(kind, "E-1", fund="610100", amount=123, on_date=DAY, reason="r", operator="")
    assert entry_postings(facts) == [Posting("610100", "bank", "", 123), Posting("610100", account, "", -123)]


@pytest.mark.parametrize(
    ("fund", "to_fund", "amount", "reason"),
    [("390100", "390100", 100, "same_fund"), ("390100", "310200", 100, "individual_account_fund"),
     ("390100", "390200", 0, "bad_amount"), ("390100", "390200", -5, "bad_amount")],
)  # fmt: skip
def test_a_transfer_that_cannot_be_made_is_refused_by_name(fund: str, to_fund: str, amount: int, reason: str) -> None:
    with pytest.raises(FundEntryRejected) as refused:
        entry(FUND_TRANSFER, "T-1", fund=fund, to_fund=to_fund, amount=amount, on_date=DAY, reason="r", operator="o")
    assert refused.value.reason == reason


def test_the_serious_illness_financing_is_the_per_capita_figure_times_the_members_insured() -> None:
    entries = serious_illness_financing(
        "330199", 2023, {"390": 6_500, "310": 4_050}, {"390": 2, "310": 3}, on_date=DAY, operator="fin-1"
    )
    assert [(e.entry_id, e.fund, e.to_fund, e.amount) for e in entries] == [
        ("SI-330199-2023-310", "310100", "330100", 12_150),
        ("SI-330199-2023-390", "390100", "390200", 13_000),
    ]
    assert serious_illness_financing("330199", 2023, {"390": 6_500}, {}, on_date=DAY, operator="o") == []


def days(*moves: tuple[str, int]) -> dict[str, list[tuple[str, int]]]:
    return {"390100": list(moves)}


def test_a_draw_the_balance_covers_on_its_date_and_after_passes() -> None:
    check_bank_draws([BankDraw("2023-02-05", {"390100": 1_000})], days(("2023-01-10", 1_000)))


def test_a_draw_beyond_the_balance_on_its_date_is_refused_naming_fund_balance_and_amount() -> None:
    with pytest.raises(InsufficientFundBalance) as refused:
        check_bank_draws([BankDraw("2023-02-05", {"390100": 1_001})], days(("2023-01-10", 1_000)))
    assert refused.value.reason == "insufficient_fund_balance"
    assert str(refused.value).startswith("fund 390100 has 10.00 in the bank on 2023-02-05: cannot pay 10.01")


def test_money_that_comes_in_after_the_date_does_not_pay_for_it() -> None:
    with pytest.raises(InsufficientFundBalance):
        check_bank_draws([BankDraw("2023-02-05", {"390100": 500})], days(("2023-07-15", 100_000)))


def test_a_draw_that_leaves_a_later_payment_already_booked_uncovered_is_refused() -> None:
    booked = days(("2023-01-10", 1_000), ("2023-03-05", -800))
    with pytest.raises(InsufficientFundBalance) as refused:
        check_bank_draws([BankDraw("2023-02-05", {"390100": 300})], booked)
    assert "and 2.00 on 2023-03-05" in str(refused.value)


def test_the_facts_of_one_save_find_the_money_the_ones_before_them_brought_in() -> None:
    opening = BankDraw("2023-01-01", {}, {"390100": 5_000})
    check_bank_draws([opening, BankDraw("2023-01-31", {"390100": 5_000}, {"390100": -5_000})], days())
    with pytest.raises(InsufficientFundBalance):
        check_bank_draws([opening, BankDraw("2023-01-31", {"390100": 5_001})], days())


def test_bank_moves_are_net_per_fund() -> None:
    legs = [Posting("390100", "bank", "", -700), Posting("390200", "bank", "", 700), Posting("390100", "x", "", 700)]
    assert bank_moves(legs) == {"390100": -700, "390200": 700}


def test_the_lowest_end_of_day_balance_counts_each_day_whole() -> None:
    assert lowest_bank_balance([("2023-01-02", -500), ("2023-01-02", 800), ("2023-01-01", 0)]) is None
    assert lowest_bank_balance([("2023-01-01", 100), ("2023-02-01", -350), ("2023-03-01", 100)]) == ("2023-02-01", -250)


def test_every_event_the_read_model_journals_on_a_bank_account_has_its_posting_date_listed() -> None:
    """Events after the read model's position are read from the log: each kind that can move
    a bank account must say where its date is (the others never post to `bank`)."""
    never_bank = {
        "Settlement.Settled", "Settlement.Resettled", "Settlement.Reversed", "Settlement.AssistanceLookedBack",
        "HospitalAccount.Deducted", "Transfer.Started", "Transfer.Released", "Transfer.Rejected",
        "Transfer.Completed", "TransferIn.Received", "MemberYear.ClaimApplied", "MemberYear.ClaimReversed",
        "MemberYear.AssistanceLookedBack", "HospitalAccount.BudgetSettled", "MaternityAllowance.Granted",
        "MaternityAllowance.Reversed", "HospitalAccount.RemoteSettled", "HospitalAccount.RemoteReversed",
    }  # fmt: skip
    assert set(read_model_topics()) - never_bank == set(BANK_EVENT_DATES)
    assert set(BANK_EVENT_DATES) <= set(registered_topics())


def test_a_contribution_says_who_paid_and_a_fiscal_subsidy_is_its_own_income_line() -> None:
    line = {"contrib_id": "C-1", "psn_no": "P-1", "fund": "390100", "paid_date": "2023-01-10", "amount": "640.00"}
    old = parse_contribution(line)
    assert old.source is None and "source" not in old.to_dict()  # a line of before keeps its hash
    subsidy = parse_contribution({**line, "source": "fiscal_subsidy"})
    assert subsidy.content_hash != old.content_hash
    subsidised = contribution_postings(fund="390100", psn_no="P-1", amount=64_000, acct_amount=0, source=subsidy.source)
    assert subsidised == [
        Posting("390100", "bank", "", 64_000),
        Posting("390100", "fiscal_subsidy_income", "", -64_000),
    ]
    for source in (None, "individual", "employer"):
        legs = contribution_postings(fund="390100", psn_no="P-1", amount=100, acct_amount=0, source=source)
        assert legs[1].account == "contribution_income"
    with pytest.raises(RecordRejected) as refused:
        parse_contribution({**line, "source": "lottery"})
    assert refused.value.reason == "bad_source"


def test_the_policy_names_the_per_capita_financing_and_the_funds_allowed_an_overdraft() -> None:
    policy = parse_policy(TEST_POLICY.read_bytes())
    assert policy.serious_illness_per_capita == {"310": 4_050, "390": 6_500}
    assert policy.controls.overdraft_allowed == frozenset()
    text = TEST_POLICY.read_text().replace("overdraft_allowed = []", 'overdraft_allowed = ["390100"]')
    assert parse_policy(text.encode()).controls.overdraft_allowed == {"390100"}
    with pytest.raises(PolicyError, match=r"controls\.overdraft_allowed"):
        parse_policy(TEST_POLICY.read_text().replace("overdraft_allowed = []", 'overdraft_allowed = ["9"]').encode())
