"""Settlement: one hospital settlement (`setl_id`) and its versions.

Version 1 is the original settlement; a reversal (撤销) undoes the current version; a correction
is a reversal followed by a new version under the same `setl_id`, linked to it, with operator
and reason. The facts of each version (claim, policy hash, amounts, breakdown, accumulator
delta) are kept whole so that an auditor can see why every amount is what it is.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import settlement_id
from core.ledger import (
    PAYABLE_TO_HOSPITALS,
    PAYABLE_TO_MEMBERS,
    RECEIVABLE_FROM_HOSPITALS,
    Posting,
    lookback_postings,
    negated,
)

# The names of a settlement's amounts (SPEC 4.2), defined here only: the payers in tier order,
# every amount of a result in its order, and the amounts a read-model row keeps.
PAYER_FIELDS = ("hifp_pay", "hifmi_pay", "maf_pay", "hmb_pay", "charity_pay")
PERSONAL_FIELDS = ("acct_pay", "acct_mulaid_pay", "psn_cash_pay")
AMOUNT_FIELDS = (
    "medfee_sumamt",
    "inscp_scp_amt",
    "act_pay_dedc",
    *PAYER_FIELDS,
    "fund_pay_sumamt",
    "psn_part_amt",
    *PERSONAL_FIELDS,
)
ROW_AMOUNT_FIELDS = ("medfee_sumamt", *PAYER_FIELDS, "psn_part_amt", *PERSONAL_FIELDS)
# A result's amounts (SPEC 4.2): the stored `hifmi_pay` is the serious-illness tier of either
# insutype; an employee's is reported as `hifob_pay` (fund 330100), a resident's as `hifmi_pay`.
RESULT_AMOUNT_FIELDS = tuple(
    part for name in AMOUNT_FIELDS for part in ((name, "hifob_pay") if name == "hifmi_pay" else (name,))
)


def clr_type(med_type: str) -> str:
    """The national clearing type (清算类别) of a medical type: outpatient 11, inpatient 21 (生育住院
    52 is an admission too), pharmacy purchases 41 (定点药店购药)."""
    return "21" if med_type in ("21", "52") else "41" if med_type == "41" else "11"


def national_amounts(insutype: str, amounts: dict[str, int]) -> dict[str, int]:
    """The stored amounts under their national names: the serious-illness tier split by insutype."""
    out = dict(amounts)
    serious = out.pop("hifmi_pay")
    out["hifmi_pay"], out["hifob_pay"] = (0, serious) if insutype == "310" else (serious, 0)
    return out


def fund_payments(insutype: str, amounts: dict[str, int]) -> list[tuple[str, int]]:
    """(national fund code, fen) of each payer that paid; HMB and CHARITY are yibao's own codes."""
    employee = insutype == "310"
    payers = (
        ("310100" if employee else "390100", amounts["hifp_pay"]),
        ("330100" if employee else "390200", amounts["hifmi_pay"]),
        ("610100", amounts["maf_pay"]),
        ("HMB", amounts["hmb_pay"]),
        ("CHARITY", amounts["charity_pay"]),
        ("510100", amounts.get("maternity_pay", 0)),
    )
    return [(fund, amount) for fund, amount in payers if amount]


class SettlementFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one version of a settlement decided, and on what grounds (amounts in fen)."""

    setl_id: str
    version: int
    psn_no: str
    region: str
    year: int
    insutype: str
    assist_category: str
    claim: dict[str, Any]
    content_hash: str
    policy_hash: str
    amounts: dict[str, int]
    charity_referral: bool
    breakdown: dict[str, Any]
    delta: dict[str, Any]
    account_psn: str | None = None  # whose individual account paid (own or bound employee's)
    operator: str | None = None
    reason: str | None = None
    origin: str | None = None  # "<sha256 of the claims file>:<line>" it was settled from
    approved_by: str | None = None  # the second person (复核), when a correction needed approval
    postings: list[Posting] = []  # balanced legs of this version (core.ledger)
    posted_on: str = ""  # business date of the postings: setl_time, or the correction date
    left_to_person: dict[str, int] = {}  # by part: policy, pre, full, over (for look-back)
    lookback_maf: int = 0  # assistance added later by look-back (因病致贫)

    def check_balanced(self) -> None:
        a = self.amounts
        maternity = a.get("maternity_pay", 0)  # a maternity claim's only payer
        payers = sum(a[name] for name in PAYER_FIELDS) + maternity
        assert payers + a["psn_part_amt"] == a["medfee_sumamt"], "settlement does not balance"
        assert a["acct_pay"] + a["acct_mulaid_pay"] + a["psn_cash_pay"] == a["psn_part_amt"]
        assert a["fund_pay_sumamt"] == a["hifp_pay"] + a["hifmi_pay"] + a["maf_pay"] + maternity
        # The postings were checked to balance when built (core.ledger.journal) and are checked
        # again by the projection that writes them.


class SettlementReversed(YibaoError):
    reason = "already_reversed"


@aggregate_topic("Settlement")
class Settlement(Aggregate):
    class Settled(Created):
        facts: SettlementFacts

    class Reversed(Event):
        setl_id: str
        setl_version: int
        operator: str
        reason: str
        on_date: str
        postings: list[Posting]
        approved_by: str | None = None  # the second person, when the reversal needed approval

        def apply(self, aggregate: Any) -> None:
            aggregate.reversed = True

    class Resettled(Event):
        """A new version after a reversal (a correction)."""

        facts: SettlementFacts

        def apply(self, aggregate: Any) -> None:
            aggregate.current = self.facts
            aggregate.reversed = False
            aggregate.lookback_postings = []
            aggregate.version_event = self.originator_version
            if self.facts.origin is not None:
                aggregate.corrected_from[self.facts.origin] = self.facts

    class AssistanceLookedBack(Event):
        setl_id: str
        setl_version: int
        amount: int
        recognised_on: str
        breakdown: dict[str, Any]
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.current = msgspec.structs.replace(
                aggregate.current, lookback_maf=aggregate.current.lookback_maf + self.amount
            )
            aggregate.lookback_postings = aggregate.lookback_postings + self.postings

    @staticmethod
    def create_id(facts: SettlementFacts) -> Any:
        return settlement_id(facts.setl_id)

    def __init__(self, facts: SettlementFacts) -> None:
        facts.check_balanced()
        self.current = facts
        self.reversed = False
        self.lookback_postings: list[Posting] = []
        # The version of this aggregate whose event recorded the current version: its journal
        # position says which payments paid it (HospitalAccount.is_paid).
        self.version_event = self.version
        # origin (correction file's hash:line) -> the version that correction made: a correction
        # file run again is answered from here, whichever version is current now.
        self.corrected_from: dict[str, SettlementFacts] = {}

    @property
    def setl_id(self) -> str:
        return self.current.setl_id

    @property
    def owes_member(self) -> bool:
        """Whether the current version owes its member something (零星报销, look-back assistance)."""
        return any(p.account == PAYABLE_TO_MEMBERS for p in self.current.postings + self.lookback_postings)

    def reverse(
        self,
        operator: str,
        reason: str,
        on_date: str,
        *,
        paid_funds: frozenset[str] = frozenset(),
        approved_by: str | None = None,
    ) -> None:
        """Undo the current version: every posting of it, and of look-backs on it, negated.
        For the funds that have already paid the hospital for it (`paid_funds`), what the
        hospital was owed becomes what it owes back: a receivable (追回 due), as a deduction
        after payment does (SPEC 5), not a payable below zero."""
        if self.reversed:
            raise SettlementReversed(f"settlement {self.setl_id} is already reversed")
        undo = [
            Posting(p.fund, RECEIVABLE_FROM_HOSPITALS, p.party, p.amount)
            if p.account == PAYABLE_TO_HOSPITALS and p.fund in paid_funds
            else p
            for p in negated(self.current.postings + self.lookback_postings)
        ]
        self.trigger_event(
            self.Reversed,
            setl_id=self.setl_id,
            setl_version=self.current.version,
            operator=operator,
            reason=reason,
            on_date=on_date,
            postings=undo,
            approved_by=approved_by,
        )

    def resettle(self, facts: SettlementFacts) -> None:
        if not self.reversed or facts.version != self.current.version + 1:
            raise AssertionError("a new version follows a reversal of the current one")
        facts.check_balanced()
        self.trigger_event(self.Resettled, facts=facts)

    def add_lookback_assistance(self, amount: int, recognised_on: str, breakdown: dict[str, Any]) -> None:
        self.trigger_event(
            self.AssistanceLookedBack,
            setl_id=self.setl_id,
            setl_version=self.current.version,
            amount=amount,
            recognised_on=recognised_on,
            breakdown=breakdown,
            postings=lookback_postings(psn_no=self.current.psn_no, amount=amount),
        )
