"""Relationship transfers (医保关系转移接续): a member moves to another pooling region.

Two aggregates, one on each side, each in its own region's event log:

- `Transfer`, in the releasing region: started (the account balance leaves into in-transit and
  the member's record says they are insured in the receiving region from the transfer date),
  then released (at once below the review threshold, 免审即转; otherwise by an operator's
  approval) or rejected (the balance returns, the record is restored), and finally completed
  once the receiving region has recorded the arrival.
- `TransferIn`, in the receiving region: the arrival (member enrolled, balance credited,
  contribution years added). Its id derives from the transfer id, so it is recorded once.

The steps between regions are driven by `app.transfer_relay`, which follows each region's log.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import transfer_id, transfer_in_id
from core.ledger import Posting, check_balanced, negated

review_threshold_fen = 100_000  # 1,000 yuan: smaller balances move without review (免审即转)

PENDING_REVIEW = "pending_review"
RELEASED = "released"
REJECTED = "rejected"
COMPLETED = "completed"
STATUSES = (PENDING_REVIEW, RELEASED, REJECTED, COMPLETED)


class TransferRejected(YibaoError):
    reason = "transfer_rejected"


class TransferFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What a transfer moves, fixed when it starts (amounts in fen)."""

    transfer_id: str
    psn_no: str
    from_region: str
    to_region: str
    transfer_date: str  # ISO date: the member is insured in `to_region` from this date
    balance: int  # the individual-account balance that moves
    contribution_years: list[int]
    member_record: dict[str, Any]  # the record the receiving region enrols the member with
    record_before: dict[str, Any]  # the releasing region's record in force before, restored on rejection
    operator: str
    requested_on: str  # ISO date the transfer was started

    @property
    def review_required(self) -> bool:
        return self.balance >= review_threshold_fen

    def same_request(self, psn_no: str, to_region: str, transfer_date: str) -> bool:
        return (self.psn_no, self.to_region, self.transfer_date) == (psn_no, to_region, transfer_date)


@aggregate_topic("Transfer")
class Transfer(Aggregate):
    class Started(Created):
        facts: TransferFacts
        postings: list[Posting]

    class Released(Event):
        transfer_id: str
        on_date: str
        operator: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = RELEASED
            aggregate.released_on = self.on_date

    class Rejected(Event):
        transfer_id: str
        on_date: str
        operator: str
        reason: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = REJECTED

    class Completed(Event):
        transfer_id: str
        on_date: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = COMPLETED

    @staticmethod
    def create_id(facts: TransferFacts, postings: list[Posting]) -> Any:
        return transfer_id(facts.transfer_id)

    def __init__(self, facts: TransferFacts, postings: list[Posting]) -> None:
        check_balanced(postings)
        self.facts = facts
        self.postings = postings
        self.status = PENDING_REVIEW
        self.released_on: str | None = None

    def release(self, *, on_date: str, operator: str, reason: str) -> None:
        self._expect(PENDING_REVIEW, "approved")
        self.trigger_event(
            self.Released, transfer_id=self.facts.transfer_id, on_date=on_date, operator=operator, reason=reason
        )

    def reject(self, *, on_date: str, operator: str, reason: str) -> None:
        self._expect(PENDING_REVIEW, "rejected")
        self.trigger_event(
            self.Rejected,
            transfer_id=self.facts.transfer_id,
            on_date=on_date,
            operator=operator,
            reason=reason,
            postings=negated(self.postings),
        )

    def complete(self, *, on_date: str, postings: list[Posting]) -> bool:
        """Record the arrival in the receiving region; False when already recorded."""
        if self.status == COMPLETED:
            return False
        self._expect(RELEASED, "completed")
        check_balanced(postings)
        self.trigger_event(self.Completed, transfer_id=self.facts.transfer_id, on_date=on_date, postings=postings)
        return True

    def _expect(self, status: str, action: str) -> None:
        if self.status != status:
            raise TransferRejected(
                f"transfer {self.facts.transfer_id} is {self.status}; only a {status} transfer can be {action}",
                reason=f"transfer_{self.status}",
            )


@aggregate_topic("TransferIn")
class TransferIn(Aggregate):
    class Received(Created):
        facts: TransferFacts
        on_date: str
        postings: list[Posting]

    @staticmethod
    def create_id(facts: TransferFacts, on_date: str, postings: list[Posting]) -> Any:
        return transfer_in_id(facts.transfer_id, facts.from_region)

    def __init__(self, facts: TransferFacts, on_date: str, postings: list[Posting]) -> None:
        check_balanced(postings)
        self.facts = facts
        self.on_date = on_date
