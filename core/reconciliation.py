"""Reconciliation: one hospital file checked against the centre (3201 totals or 3202 detail).

Keyed by the file's sha256, the kind, the hospital and the period: the same file again is the
same aggregate. Its first check is `Recorded`; a later run of that file records `Rechecked` only
when the answer changed (the centre's lines were corrected since), so a rerun that gives the same
answer records nothing.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from core.codec import aggregate_topic
from core.events import Created, Event
from core.ids import reconciliation_id


def reconciliation_key(kind: str, file_sha256: str, hospital: str, begin: str, end: str) -> str:
    return f"{kind}:{file_sha256}:{hospital}:{begin}:{end}"


@aggregate_topic("Reconciliation")
class Reconciliation(Aggregate):
    class Recorded(Created):
        kind: str  # "totals" (3201) or "detail" (3202)
        file_sha256: str
        hospital: str
        begin: str
        end: str
        operator: str
        on_date: str
        result: dict[str, Any]  # stmt_rslt and the summary of what differed

    class Rechecked(Event):
        operator: str
        on_date: str
        result: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.result = self.result
            aggregate.operator = self.operator
            aggregate.on_date = self.on_date

    @staticmethod
    def create_id(kind: str, file_sha256: str, hospital: str, begin: str, end: str, **_: Any) -> Any:
        return reconciliation_id(reconciliation_key(kind, file_sha256, hospital, begin, end))

    def __init__(
        self, kind: str, file_sha256: str, hospital: str, begin: str, end: str, operator: str, on_date: str,
        result: dict[str, Any],
    ) -> None:  # fmt: skip
        self.kind, self.file_sha256, self.hospital, self.begin, self.end = kind, file_sha256, hospital, begin, end
        self.operator, self.on_date, self.result = operator, on_date, result

    def recheck(self, operator: str, on_date: str, result: dict[str, Any]) -> bool:
        """Record a new answer of the same file; False (nothing recorded) when it is the same."""
        if result == self.result:
            return False
        self.trigger_event(self.Rechecked, operator=operator, on_date=on_date, result=result)
        return True
