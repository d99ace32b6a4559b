"""What the region's funds owe members (应付参保人款) and pay them: 零星报销 settlements paid to
the member, and look-back assistance.

One aggregate per region, like a hospital's account: its payments (each once, by its id) and
a mark for every reversal that lowers what a member is owed. A payment is summed from the
journal at a position; a reversal recorded after that sum touches this aggregate too, so the
payment's save fails on its version and the sum is read again: a payment never pays a
settlement reversed meanwhile.
"""

from __future__ import annotations

from typing import Any

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import member_payables_id
from core.ledger import BANK, PAYABLE_TO_MEMBERS, Posting, journal, move


class MemberPaymentRejected(YibaoError):
    reason = "member_payment_rejected"


@aggregate_topic("MemberPayables")
class MemberPayables(Aggregate):
    class Opened(Created):
        region: str

    class Paid(Event):
        payment_id: str
        through: str
        paid_on: str
        amounts: dict[str, dict[str, int]]  # psn_no -> fund -> fen
        operator: str
        position: int
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.payments[self.payment_id] = self.through
            aggregate.paid[self.payment_id] = self.amounts

    class Lowered(Event):
        """A settlement version that owed a member was reversed."""

        setl_id: str
        setl_version: int
        on_date: str

        def apply(self, aggregate: Any) -> None:
            pass

    @staticmethod
    def create_id(region: str) -> Any:
        return member_payables_id(region)

    def __init__(self, region: str) -> None:
        self.region = region
        self.payments: dict[str, str] = {}  # payment id -> through
        self.paid: dict[str, dict[str, dict[str, int]]] = {}  # payment id -> psn_no -> fund -> fen

    def check_same(self, payment_id: str, through: str) -> None:
        """A payment id used before is `duplicate` for the same period, refused for another."""
        if self.payments[payment_id] != through:
            raise MemberPaymentRejected(
                f"{payment_id} was already used, for a payment through {self.payments[payment_id]}",
                reason="exists_with_different_content",
            )

    def pay(
        self, payment_id: str, *, through: str, paid_on: str, owed: dict[str, dict[str, int]], operator: str,
        position: int,
    ) -> tuple[dict[str, dict[str, int]], list[Posting]]:  # fmt: skip
        """Pay every member what `owed` (summed at journal `position`, by fund, negative where
        they owe a fund money back) says is owed to them, net of what they owe; what was paid,
        and its postings."""
        amounts = {psn: paid for psn, funds in sorted(owed.items()) if (paid := net_payment(funds))}
        legs = [
            leg
            for psn, funds in amounts.items()
            for fund, amount in funds.items()
            for leg in move(fund, PAYABLE_TO_MEMBERS, BANK, amount, debit_party=psn)
        ]
        postings = journal(*legs)
        self.trigger_event(
            self.Paid, payment_id=payment_id, through=through, paid_on=paid_on, amounts=amounts, operator=operator,
            position=position, postings=postings,
        )  # fmt: skip
        return amounts, postings

    def lower(self, setl_id: str, setl_version: int, on_date: str) -> None:
        self.trigger_event(self.Lowered, setl_id=setl_id, setl_version=setl_version, on_date=on_date)


def net_payment(funds: dict[str, int]) -> dict[str, int]:
    """What to pay a member, by fund: their net total, when positive, taken from the funds that
    owe them, the largest first (what they owe one fund stays owed to it, offset by what is
    left owed to them by another)."""
    left = sum(funds.values())
    paid: dict[str, int] = {}
    for fund, amount in sorted(funds.items(), key=lambda item: (-item[1], item[0])):
        if left <= 0 or amount <= 0:
            break
        paid[fund] = min(amount, left)
        left -= paid[fund]
    return dict(sorted(paid.items()))
