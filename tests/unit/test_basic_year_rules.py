"""Replay the worked example basic-year purely in memory with the domain rules.

No database, no CLI: members, policies and contributions are read from the repository's examples/ folder,
accumulators are a dict of YearToDate per (psn_no, year), and every figure of expected.jsonl and
expected-usage.jsonl must match to the fen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from core.money import AmountError, format_yuan, parse_yuan
from core.policy import Policy, parse_policy
from core.tiers import (
    ClaimAmounts,
    Computation,
    MemberTerms,
    PersonalSplit,
    YearToDate,
    compute_settlement,
    split_personal,
)
from tests.conftest import EXAMPLES

BASIC_YEAR = EXAMPLES / "basic-year"

AMOUNT_FIELDS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
)
USAGE_FIELDS = (
    "basic_paid",
    "basic_outpatient_paid",
    "serious_illness_base",
    "serious_illness_paid",
    "assistance_paid",
    "assistance_outpatient_paid",
    "supplementary_paid",
    "out_of_pocket",
    "charity_paid",
)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@attrs.define
class Settled:
    claim: dict[str, Any]
    year: int
    computation: Computation
    split: PersonalSplit
    own_account: str | None  # psn_no whose account paid acct_pay
    family_account: str | None  # psn_no whose account paid acct_mulaid_pay
    result: dict[str, Any]


class InMemoryBook:
    """Just enough of the settlement service to replay the example with the pure rules."""

    def __init__(self, policies: dict[int, Policy], members: list[dict], contributions: list[dict]):
        self.policies = policies
        self.members: dict[str, list[dict]] = {}
        for m in members:
            self.members.setdefault(m["psn_no"], []).append(m)
        self.accounts: dict[str, int] = {}
        for c in contributions:
            self.accounts[c["psn_no"]] = self.accounts.get(c["psn_no"], 0) + parse_yuan(c["acct_amount"])
        self.ytd: dict[tuple[str, int], YearToDate] = {}
        self.settled: dict[str, Settled] = {}

    def member_at(self, psn_no: str, date: str) -> dict | None:
        records = [m for m in self.members.get(psn_no, []) if m["valid_from"] <= date]
        return max(records, key=lambda m: m["valid_from"]) if records else None

    @staticmethod
    def _rejected(claim: dict, reason: str) -> dict:
        return {
            "setl_id": claim["setl_id"],
            "psn_no": claim["psn_no"],
            "status": "rejected",
            "reason": reason,
        }

    def settle(self, claim: dict) -> dict:
        previous = self.settled.get(claim["setl_id"])
        if previous is not None:
            if previous.claim == claim:
                return {**previous.result, "status": "duplicate"}
            return self._rejected(claim, "exists_with_different_content")
        return self._settle_new(claim)

    def _settle_new(self, claim: dict) -> dict:
        try:
            amounts = {f: parse_yuan(claim[f]) for f in AMOUNT_FIELDS}
        except AmountError as exc:
            return self._rejected(claim, exc.reason)
        claim_amounts = ClaimAmounts(med_type=claim["med_type"], hosp_lv=claim["hosp_lv"], **amounts)
        if not claim_amounts.adds_up:
            return self._rejected(claim, "amounts_do_not_add_up")
        member = self.member_at(claim["psn_no"], claim["setl_time"])
        if member is None:
            return self._rejected(claim, "unknown_member")
        year = int(claim["setl_time"][:4])
        policy = self.policies[year]
        terms = MemberTerms(
            insutype=member["insutype"],
            assist_category=member["assist_category"],
            chronic=member["chronic"],
            supplementary_enrolled=year in member["supplementary"],
        )
        key = (claim["psn_no"], year)
        ytd = self.ytd.get(key, YearToDate())
        comp = compute_settlement(claim_amounts, terms, policy, ytd)
        self.ytd[key] = ytd.plus(comp.delta)

        own = claim["psn_no"] if member["insutype"] == "310" else None
        family = member.get("family_of") if own is None else None
        split = split_personal(
            comp.psn_part_amt,
            own_account_balance=self.accounts.get(own, 0) if own else None,
            family_account_balance=self.accounts.get(family, 0) if family else None,
            use_acct=claim.get("use_acct", True),
        )
        if own:
            self.accounts[own] = self.accounts.get(own, 0) - split.acct_pay
        if family:
            self.accounts[family] = self.accounts.get(family, 0) - split.acct_mulaid_pay

        def y(fen: int) -> str:
            return format_yuan(fen)

        result = {
            "setl_id": claim["setl_id"],
            "psn_no": claim["psn_no"],
            "status": "settled",
            "year": year,
            "medfee_sumamt": y(claim_amounts.medfee_sumamt),
            "inscp_scp_amt": y(claim_amounts.inscp_scp_amt),
            "act_pay_dedc": y(comp.act_pay_dedc),
            "hifp_pay": y(comp.hifp_pay),
            "hifmi_pay": y(comp.hifmi_pay),
            "maf_pay": y(comp.maf_pay),
            "hmb_pay": y(comp.hmb_pay),
            "charity_pay": y(comp.charity_pay),
            "fund_pay_sumamt": y(comp.fund_pay_sumamt),
            "psn_part_amt": y(comp.psn_part_amt),
            "acct_pay": y(split.acct_pay),
            "acct_mulaid_pay": y(split.acct_mulaid_pay),
            "psn_cash_pay": y(split.psn_cash_pay),
            "charity_referral": comp.charity_referral,
        }
        self.settled[claim["setl_id"]] = Settled(
            claim=claim,
            year=year,
            computation=comp,
            split=split,
            own_account=own,
            family_account=family,
            result=result,
        )
        return result

    def reverse(self, setl_id: str) -> dict:
        original = self.settled.pop(setl_id)
        key = (original.claim["psn_no"], original.year)
        self.ytd[key] = self.ytd[key].minus(original.computation.delta)
        if original.own_account:
            self.accounts[original.own_account] += original.split.acct_pay
        if original.family_account:
            self.accounts[original.family_account] += original.split.acct_mulaid_pay
        return original.result

    def correct(self, claim: dict) -> dict:
        self.reverse(claim["setl_id"])
        return self._settle_new(claim)


def _load_book() -> InMemoryBook:
    policies = {
        2023: parse_policy((EXAMPLES / "policy-330109-2023.toml").read_bytes()),
        2024: parse_policy((BASIC_YEAR / "policy-2024.toml").read_bytes()),
    }
    return InMemoryBook(
        policies,
        _jsonl(BASIC_YEAR / "members.jsonl"),
        _jsonl(BASIC_YEAR / "contributions.jsonl"),
    )


def _replay() -> tuple[InMemoryBook, list[dict]]:
    book = _load_book()
    results = []
    for op in _jsonl(BASIC_YEAR / "operations.jsonl"):
        if op["op"] == "settle":
            results.append(book.settle(op["claim"]))
        elif op["op"] == "reverse":
            results.append(book.reverse(op["setl_id"]))
        elif op["op"] == "correct":
            results.append(book.correct(op["claim"]))
        else:  # pragma: no cover
            raise AssertionError(f"unknown op {op['op']}")
    return book, results


def _expected_results() -> list[dict]:
    return _jsonl(BASIC_YEAR / "expected.jsonl")


def test_every_operation_result_matches_the_worked_example_to_the_fen():
    _, results = _replay()
    expected = _expected_results()
    assert len(results) == len(expected)
    for got, want in zip(results, expected, strict=True):
        assert got == want, f"operation for {want['setl_id']} differs"


@pytest.mark.parametrize("index", range(17))
def test_each_operation_matches_its_expected_line(index):
    _, results = _replay()
    expected = _expected_results()
    assert index < len(expected)
    assert results[index] == expected[index]


def test_every_member_year_usage_matches_the_worked_example_to_the_fen():
    book, _ = _replay()
    for want in _jsonl(BASIC_YEAR / "expected-usage.jsonl"):
        ytd = book.ytd.get((want["psn_no"], want["year"]), YearToDate())
        got = {f: format_yuan(getattr(ytd, f)) for f in USAGE_FIELDS}
        assert got == {f: want[f] for f in USAGE_FIELDS}, f"{want['psn_no']} {want['year']}"


def test_the_account_of_p_d_is_spent_by_its_own_claims_and_the_family_member():
    book, _ = _replay()
    # 2400.00 allocated, 1270.00 own outpatient, 516.00 family mutual aid, 614.00 inpatient
    assert book.accounts["P-D"] == 0


def test_out_of_pocket_equals_the_personal_parts_of_the_surviving_settlements():
    book, _ = _replay()
    for (psn_no, year), ytd in book.ytd.items():
        personal = sum(
            s.computation.psn_part_amt for s in book.settled.values() if s.claim["psn_no"] == psn_no and s.year == year
        )
        assert ytd.out_of_pocket == personal


def test_reversing_every_settlement_brings_every_accumulator_back_to_zero():
    book, _ = _replay()
    balances_before = {"P-D": parse_yuan("2400.00")}
    for setl_id in list(book.settled):
        book.reverse(setl_id)
    for ytd in book.ytd.values():
        assert ytd == YearToDate()
    assert book.accounts == balances_before


def test_the_serious_illness_breakdown_of_s_0001_shows_the_dibao_terms():
    book, _ = _replay()
    bd = book.settled["S-0001"].computation.breakdown
    assert list(bd) == ["basic", "serious_illness", "assistance", "supplementary", "charity"]
    assert bd["serious_illness"]["terms"] == "dibao"
    assert bd["serious_illness"]["base_before"] == 0
    assert bd["serious_illness"]["base_after"] == 2756000
    assert bd["serious_illness"]["pay"] == 1141400
    assert bd["supplementary"] == {"applies": False, "why": "member not enrolled this year"}
    json.dumps(bd)  # JSON-able
