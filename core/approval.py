"""ApprovalRequest: an action that waits for a second person (四眼原则, 复核) before it takes effect.

A reversal or correction whose fund payments, or a payment whose amount, is above the policy's
`[controls] approval_above` is recorded as a request by its maker; it takes effect only when
someone else with the approver role approves it, in the same transaction as the approval. The
maker can never approve their own request. A rejected request changes nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import approval_id


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ApprovalRefused(YibaoError):
    reason = "approval_refused"


@aggregate_topic("ApprovalRequest")
class ApprovalRequest(Aggregate):
    class Requested(Created):
        request_id: str
        kind: str  # what takes effect when approved: "reverse"
        subject: str  # what it acts on: a setl_id
        subject_version: int  # the version it was asked for: a newer one makes it stale
        amount: int  # fen: what the threshold was compared with
        maker: str
        reason: str
        details: dict[str, Any]

    class Approved(Event):
        checker: str
        on_date: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = RequestStatus.APPROVED
            aggregate.checker, aggregate.decided_on = self.checker, self.on_date

    class Rejected(Event):
        checker: str
        reason: str
        on_date: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = RequestStatus.REJECTED
            aggregate.checker, aggregate.decided_on, aggregate.rejection = self.checker, self.on_date, self.reason

    @staticmethod
    def create_id(request_id: str, **_: Any) -> Any:
        return approval_id(request_id)

    def __init__(
        self, request_id: str, kind: str, subject: str, subject_version: int, amount: int, maker: str, reason: str,
        details: dict[str, Any],
    ) -> None:  # fmt: skip
        self.request_id = request_id
        self.kind = kind
        self.subject = subject
        self.subject_version = subject_version
        self.amount = amount
        self.maker = maker
        self.reason = reason
        self.details = details
        self.status = RequestStatus.PENDING
        self.checker: str | None = None
        self.decided_on: str | None = None
        self.rejection = ""  # why the checker rejected it

    def approve(self, checker: str, on_date: str) -> None:
        self._check_decidable(checker)
        self.trigger_event(self.Approved, checker=checker, on_date=on_date)

    def reject(self, checker: str, reason: str, on_date: str) -> None:
        self._check_decidable(checker)
        self.trigger_event(self.Rejected, checker=checker, reason=reason, on_date=on_date)

    def _check_decidable(self, checker: str) -> None:
        if self.status != RequestStatus.PENDING:
            raise ApprovalRefused(f"request {self.request_id} is already {self.status}", reason="request_decided")
        if checker == self.maker:
            detail = f"{checker} made request {self.request_id}: a second person must approve it"
            raise ApprovalRefused(detail, reason="maker_cannot_approve")
