"""What the region's use cases answer (an outcome per input record, a finance result) and the
errors they name."""

from __future__ import annotations

from typing import Any

import attrs

from core.errors import YibaoError
from core.ledger import Posting
from core.settlement import SettlementFacts


class SettlementNotFound(YibaoError):
    reason = "unknown_settlement"


class ConcurrencyConflict(YibaoError):
    reason = "concurrency_conflict"


class InconsistentRecords(YibaoError):
    """Reads that disagree however often they are repeated (a member-year transferred out while
    the member's record says insured here): the data, not a concurrent writer."""

    reason = "inconsistent_records"


@attrs.frozen
class Outcome:
    """What happened to one input record: settled/duplicate/recorded/unchanged/rejected."""

    status: str
    facts: SettlementFacts | None = None
    reason: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def rejected(cls, reason: str, detail: str | None = None) -> Outcome:
        return cls("rejected", reason=reason, detail=detail)


@attrs.frozen
class HospitalPayment:
    payment_id: str
    hospital: str
    owed: dict[str, int]  # fund -> fen
    cleared: dict[str, Any] | None = None  # the month's cleared figures (core.clearing), paid by month


@attrs.frozen
class FinanceResult:
    status: str  # recorded | duplicate | dry_run | pending_approval
    postings: list[Posting]
    request_id: str = ""  # the approval request of a held payment
