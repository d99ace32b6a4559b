"""The fund ledger: chart of accounts and balanced double-entry postings (SPEC 5).

Every fact that moves money (settlement, reversal, look-back, contribution, hospital payment,
deduction, recovery, fine, transfer, fund entry) carries its postings in its event. A posting is one leg:
`amount > 0` debits the account, `amount < 0` credits it; the legs of one fact sum to zero,
checked when they are built (`journal`) and again by the projection that writes them.

Accounts are per region (the event's schema) and fund. Fund codes are the national ones plus
`HMB` (惠民保) and `CHARITY`. `party` names the hospital or person a balance is owed to or by.
"""

from __future__ import annotations

import msgspec

from core.errors import YibaoError

FUNDS = ("310100", "310200", "330100", "390100", "390200", "510100", "610100", "HMB", "CHARITY")
MATERNITY_FUND = "510100"  # 生育保险基金
INDIVIDUAL_ACCOUNT_FUND = "310200"
BASIC_FUNDS = ("310100", "390100")
# Who paid a contribution (`source` of a contribution line); none said: contribution income.
FISCAL_SUBSIDY = "fiscal_subsidy"
CONTRIBUTION_SOURCES = ("individual", "employer", FISCAL_SUBSIDY)

BANK = "bank"
RECEIVABLE_FROM_HOSPITALS = "receivable_from_hospitals"
PAYABLE_TO_HOSPITALS = "payable_to_hospitals"
PAYABLE_TO_MEMBERS = "payable_to_members"
INDIVIDUAL_ACCOUNTS = "individual_accounts"
IN_TRANSIT = "in_transit"
DUE_TO_REGIONS = "due_to_regions"  # 往来: owed to (credit) or by (debit) other regions' funds
# 应收其他统筹区款: what other regions owe for their members treated at this region's institutions
# (异地就医), until the monthly clearing between regions (清分) settles it.
DUE_FROM_REGIONS = "due_from_regions"
OPENING_BALANCE = "opening_balance"  # 期初结余: a fund's balance brought in when its books open here
# Income in the order of the national fund statement (基金收支表).
CONTRIBUTION_INCOME = "contribution_income"  # 征缴收入: individuals' and employers' contributions
FISCAL_SUBSIDY_INCOME = "fiscal_subsidy_income"  # 财政补助收入
INTEREST_INCOME = "interest_income"  # 利息收入
TRANSFER_INCOME = "transfer_income"  # 转移收入: from another fund of the region (e.g. 大病保险筹资)
OTHER_INCOME = "other_income"  # fines (罚款) and other non-contribution income
BENEFIT_EXPENSE = "benefit_expense"
TRANSFER_EXPENSE = "transfer_expense"  # 转移支出: to another fund of the region

ASSETS = (BANK, RECEIVABLE_FROM_HOSPITALS, DUE_FROM_REGIONS)
LIABILITIES = (PAYABLE_TO_HOSPITALS, PAYABLE_TO_MEMBERS, INDIVIDUAL_ACCOUNTS, IN_TRANSIT, DUE_TO_REGIONS)
EQUITY = (OPENING_BALANCE,)
INCOME = (CONTRIBUTION_INCOME, FISCAL_SUBSIDY_INCOME, INTEREST_INCOME, TRANSFER_INCOME, OTHER_INCOME)
EXPENSES = (BENEFIT_EXPENSE, TRANSFER_EXPENSE)
ACCOUNTS = ASSETS + LIABILITIES + EQUITY + INCOME + EXPENSES


class UnbalancedPostings(YibaoError):
    reason = "unbalanced_postings"


class Posting(msgspec.Struct, frozen=True, array_like=True):
    """One leg of a journal entry (fen): debit when positive, credit when negative."""

    fund: str
    account: str
    party: str
    amount: int


def journal(*legs: Posting) -> list[Posting]:
    """The non-zero legs of one balanced entry; raises if they do not balance."""
    kept = [leg for leg in legs if leg.amount != 0]
    check_balanced(kept)
    return kept


_FUND_SET = frozenset(FUNDS)
_ACCOUNT_SET = frozenset(ACCOUNTS)


def check_balanced(postings: list[Posting]) -> None:
    for leg in postings:
        if leg.fund not in _FUND_SET or leg.account not in _ACCOUNT_SET:
            raise UnbalancedPostings(f"unknown account {leg.fund}:{leg.account}")
    total = sum(leg.amount for leg in postings)
    if total != 0:
        raise UnbalancedPostings(f"postings do not balance: debits - credits = {total} fen")


def move(
    fund: str, debit: str, credit: str, amount: int, *, debit_party: str = "", credit_party: str = ""
) -> tuple[Posting, Posting]:
    """Debit one account and credit another of the same fund by `amount`."""
    return Posting(fund, debit, debit_party, amount), Posting(fund, credit, credit_party, -amount)


def negated(postings: list[Posting]) -> list[Posting]:
    """The entry that undoes `postings` exactly (a reversal)."""
    return [Posting(p.fund, p.account, p.party, -p.amount) for p in postings]


def basic_fund(insutype: str) -> str:
    return "310100" if insutype == "310" else "390100"


def serious_illness_fund(insutype: str) -> str:
    return "330100" if insutype == "310" else "390200"


def settlement_postings(
    *, insutype: str, hospital: str, amounts: dict[str, int], account_psn: str | None, member: str | None = None,
    treated_in: str | None = None,
) -> list[Posting]:  # fmt: skip
    """What a settlement owes the hospital, per payer fund, and what the account paid.

    Each fund's payment is a benefit expense owed to the hospital until paid (拨付); the
    individual account's share lowers the members' account liability instead. With `member`
    (零星报销: the member paid the hospital in full), all of it is owed to that member instead;
    with `treated_in` (异地就医), to that region, which owes its hospital in turn.
    """
    payable, payee = PAYABLE_TO_HOSPITALS, hospital
    if member is not None:
        payable, payee = PAYABLE_TO_MEMBERS, member
    elif treated_in is not None:
        payable, payee = DUE_TO_REGIONS, treated_in
    payers = (
        (basic_fund(insutype), amounts["hifp_pay"]),
        (serious_illness_fund(insutype), amounts["hifmi_pay"]),
        ("610100", amounts["maf_pay"]),
        ("HMB", amounts["hmb_pay"]),
        ("CHARITY", amounts["charity_pay"]),
        (MATERNITY_FUND, amounts.get("maternity_pay", 0)),
    )
    legs: list[Posting] = []
    for fund, amount in payers:
        if amount:  # most payers pay nothing: no legs made to be dropped by `journal`
            legs.extend(move(fund, BENEFIT_EXPENSE, payable, amount, credit_party=payee))
    account_paid = amounts["acct_pay"] + amounts["acct_mulaid_pay"]
    if account_paid:
        legs.extend(
            move(
                INDIVIDUAL_ACCOUNT_FUND,
                INDIVIDUAL_ACCOUNTS,
                payable,
                account_paid,
                debit_party=account_psn or "",
                credit_party=payee,
            )
        )
    return journal(*legs)


def lookback_postings(*, psn_no: str, amount: int) -> list[Posting]:
    """Retroactive assistance is owed to the person, not the hospital."""
    return journal(*move("610100", BENEFIT_EXPENSE, PAYABLE_TO_MEMBERS, amount, credit_party=psn_no))


def contribution_postings(
    *, fund: str, psn_no: str, amount: int, acct_amount: int, source: str | None = None
) -> list[Posting]:
    """Money received: income of the fund, except the employee's account share (划账), which is
    owed to the member and sits in the individual-account fund. A fiscal subsidy (财政补助) is
    its own income line; individuals' and employers' money (and a contribution that does not say
    whose it is) is contribution income (征缴收入)."""
    income = FISCAL_SUBSIDY_INCOME if source == FISCAL_SUBSIDY else CONTRIBUTION_INCOME
    return journal(
        *move(fund, BANK, income, amount - acct_amount),
        *move(INDIVIDUAL_ACCOUNT_FUND, BANK, INDIVIDUAL_ACCOUNTS, acct_amount, credit_party=psn_no),
    )


# Relationship transfers (医保关系转移接续) move an individual-account balance between regions in
# three steps, each balanced in its own region's books; across both regions the sum of account
# liabilities, in-transit and inter-region balances never changes:
#   releasing region, start:     account -> in transit          (rejection reverses it)
#   receiving region, receipt:   due from the releasing region -> account
#   releasing region, completion: in transit -> due to the receiving region
# The two inter-region balances cancel; paying them is the funds' periodic clearing (清算).


def transfer_out_postings(*, psn_no: str, transfer_id: str, amount: int) -> list[Posting]:
    return journal(
        *move(INDIVIDUAL_ACCOUNT_FUND, INDIVIDUAL_ACCOUNTS, IN_TRANSIT, amount, debit_party=psn_no,
              credit_party=transfer_id)
    )  # fmt: skip


def transfer_in_postings(*, psn_no: str, from_region: str, amount: int) -> list[Posting]:
    return journal(
        *move(INDIVIDUAL_ACCOUNT_FUND, DUE_TO_REGIONS, INDIVIDUAL_ACCOUNTS, amount, debit_party=from_region,
              credit_party=psn_no)
    )  # fmt: skip


def transfer_completed_postings(*, transfer_id: str, to_region: str, amount: int) -> list[Posting]:
    return journal(
        *move(INDIVIDUAL_ACCOUNT_FUND, IN_TRANSIT, DUE_TO_REGIONS, amount, debit_party=transfer_id,
              credit_party=to_region)
    )  # fmt: skip


# 异地就医: a member of region A treated at an institution of region B is settled in A on A's
# policy and funds; A owes B what the hospital is owed (A's settlement credits due_to_regions B),
# and B owes its hospital the same (recorded in B when the settlement is relayed there):
#   B, remote settlement:  due from A -> payable to the hospital
#   B, remote reversal:    back to due from A, from payable (or receivable once B has paid)
#   both, clearing (清分):  the dues of the month fall, the net moves between the banks.


def due_by_fund(postings: list[Posting], region: str) -> dict[str, int]:
    """fund -> what these postings make owed to `region` (credits to due_to_regions)."""
    due: dict[str, int] = {}
    for p in postings:
        if p.account == DUE_TO_REGIONS and p.party == region:
            due[p.fund] = due.get(p.fund, 0) - p.amount
    return {fund: amount for fund, amount in sorted(due.items()) if amount}


def remote_settled_postings(*, hospital: str, insured_in: str, amounts: dict[str, int]) -> list[Posting]:
    return journal(*(
        leg for fund, amount in sorted(amounts.items())
        for leg in move(fund, DUE_FROM_REGIONS, PAYABLE_TO_HOSPITALS, amount, debit_party=insured_in,
                        credit_party=hospital)
    ))  # fmt: skip


def remote_reversed_postings(
    *, hospital: str, insured_in: str, amounts: dict[str, int], paid_funds: frozenset[str]
) -> list[Posting]:
    """What the remote settlement owed the hospital is undone; for the funds already paid to
    it, the hospital owes it back (a receivable, 追回 due), as a local reversal after payment."""
    return journal(*(
        leg for fund, amount in sorted(amounts.items())
        for leg in move(fund, RECEIVABLE_FROM_HOSPITALS if fund in paid_funds else PAYABLE_TO_HOSPITALS,
                        DUE_FROM_REGIONS, amount, debit_party=hospital, credit_party=insured_in)
    ))  # fmt: skip


def region_clearing_postings(*, other: str, owed_to: dict[str, int], owed_by: dict[str, int]) -> list[Posting]:
    """清分 seen from one region: what it owed `other` (`owed_to`, due_to_regions) and what
    `other` owed it (`owed_by`, due_from_regions) both fall to nothing; the bank pays the net
    (or receives it). Either may be negative (a reversal after an earlier clearing)."""
    legs: list[Posting] = []
    for fund in sorted(set(owed_to) | set(owed_by)):
        to, by = owed_to.get(fund, 0), owed_by.get(fund, 0)
        legs += [
            Posting(fund, DUE_TO_REGIONS, other, to),
            Posting(fund, DUE_FROM_REGIONS, other, -by),
            Posting(fund, BANK, "", by - to),
        ]
    return journal(*legs)
