"""The maternity allowance (生育津贴): days of leave times the employer's average daily wage,
owed to the member by the maternity fund (510100) and paid with `finance pay-members`.

One aggregate per allowance id: recorded once; the same id again with the same facts is a
duplicate, with other facts refused.
"""

from __future__ import annotations

from typing import Any

import attrs

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import maternity_allowance_id
from core.ledger import BENEFIT_EXPENSE, MATERNITY_FUND, PAYABLE_TO_MEMBERS, Posting, journal, move, negated

LEAVE_DAYS_MAX = 365


class AllowanceRejected(YibaoError):
    reason = "allowance_rejected"


@attrs.frozen
class AllowanceFacts:
    """What an allowance is computed from, as recorded."""

    allowance_id: str
    psn_no: str
    days: int
    daily_wage: int  # fen: the employer's average daily wage (用人单位上年度职工月平均工资 / 30)
    on_date: str
    operator: str

    @property
    def amount(self) -> int:
        return self.days * self.daily_wage

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def check(self) -> None:
        if not 1 <= self.days <= LEAVE_DAYS_MAX:
            raise AllowanceRejected(f"days must be 1..{LEAVE_DAYS_MAX}, got {self.days}", reason="bad_days")
        if self.daily_wage <= 0:
            raise AllowanceRejected("the daily wage must be more than 0.00", reason="bad_daily_wage")


def allowance_postings(facts: AllowanceFacts) -> list[Posting]:
    return journal(*move(MATERNITY_FUND, BENEFIT_EXPENSE, PAYABLE_TO_MEMBERS, facts.amount, credit_party=facts.psn_no))


@aggregate_topic("MaternityAllowance")
class MaternityAllowance(Aggregate):
    class Granted(Created):
        facts: dict[str, Any]
        amount: int
        postings: list[Posting]

    class Reversed(Event):
        """A wrong allowance undone: what it owed the member is no longer owed (if it was paid,
        the member owes it back until what they are owed exceeds it)."""

        allowance_id: str
        on_date: str
        operator: str
        reason: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.reversed = True

    @staticmethod
    def create_id(facts: dict[str, Any], **_: Any) -> Any:
        return maternity_allowance_id(facts["allowance_id"])

    def __init__(self, facts: dict[str, Any], amount: int, postings: list[Posting]) -> None:
        self.facts, self.amount, self.postings = facts, amount, postings
        self.reversed = False

    def reverse(self, on_date: str, operator: str, reason: str) -> list[Posting]:
        if self.reversed:
            raise AllowanceRejected(
                f"allowance {self.facts['allowance_id']} is already reversed", reason="already_reversed"
            )
        undo = negated(self.postings)
        self.trigger_event(self.Reversed, allowance_id=self.facts["allowance_id"], on_date=on_date, operator=operator,
                           reason=reason, postings=undo)  # fmt: skip
        return undo

    def check_same(self, facts: AllowanceFacts) -> None:
        """The same id again: a duplicate for the same facts, refused for others."""
        mine = {k: v for k, v in self.facts.items() if k != "operator"}
        theirs = {k: v for k, v in facts.to_dict().items() if k != "operator"}
        if self.reversed:
            detail = f"allowance {facts.allowance_id} was reversed: record the right one under a new id"
            raise AllowanceRejected(detail, reason="allowance_reversed")
        if mine != theirs:
            raise AllowanceRejected(
                f"allowance {facts.allowance_id} was already recorded with other facts",
                reason="exists_with_different_content",
            )
