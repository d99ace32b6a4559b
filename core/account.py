"""IndividualAccount (个人账户, fund 310200): an employee's account balance, never negative.

Credits: contributions allocated to the account (划账), refunds of reversed settlements,
transfers in. Debits: the personal part of a settlement, the member's own or a bound family
member's (家庭共济). Each movement names the fact it belongs to (`ref`).
"""

from __future__ import annotations

from typing import Any

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import account_id


class AccountOverdrawn(YibaoError):
    reason = "account_overdrawn"


@aggregate_topic("IndividualAccount")
class IndividualAccount(Aggregate):
    class Opened(Created):
        psn_no: str

    class Credited(Event):
        ref: str
        kind: str
        amount: int

        def apply(self, aggregate: Any) -> None:
            aggregate.balance += self.amount

    class Debited(Event):
        ref: str
        kind: str
        amount: int

        def apply(self, aggregate: Any) -> None:
            aggregate.balance -= self.amount

    @staticmethod
    def create_id(psn_no: str) -> Any:
        return account_id(psn_no)

    def __init__(self, psn_no: str) -> None:
        self.psn_no = psn_no
        self.balance = 0

    def credit(self, ref: str, kind: str, amount: int) -> None:
        if amount <= 0:
            raise AssertionError("a credit is a positive amount")
        self.trigger_event(self.Credited, ref=ref, kind=kind, amount=amount)

    def debit(self, ref: str, kind: str, amount: int) -> None:
        if amount <= 0:
            raise AssertionError("a debit is a positive amount")
        if amount > self.balance:
            raise AccountOverdrawn(f"account of {self.psn_no}: debit {amount} fen exceeds balance {self.balance} fen")
        self.trigger_event(self.Debited, ref=ref, kind=kind, amount=amount)
