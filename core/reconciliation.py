"""Reconciliation: one hospital file checked against the centre (3201 totals or 3202 detail), or
one bank statement of a fund checked against the fund's bank postings (kind "bank", `fund` set,
`hospital` empty).

Keyed by the file's sha256, the kind, the hospital or fund and the period: the same file again is
the same aggregate. Its first check is `Recorded`; a later run of that file records `Rechecked` only
when the answer changed (the centre's lines were corrected since), so a rerun that gives the same
answer records nothing.
"""

from __future__ import annotations

from typing import Any

from core.codec import aggregate_topic
from core.events import Aggregate, Created, Event
from core.ids import reconciliation_id

BANK_KIND = "bank"


def reconciliation_key(kind: str, file_sha256: str, hospital: str, begin: str, end: str, fund: str = "") -> str:
    key = f"{kind}:{file_sha256}:{hospital}:{begin}:{end}"
    return f"{key}:{fund}" if fund else key  # the hospitals' keys as they were before bank statements


@aggregate_topic("Reconciliation")
class Reconciliation(Aggregate):
    class Recorded(Created):
        kind: str  # "totals" (3201), "detail" (3202) or "bank" (a fund's bank statement)
        file_sha256: str
        hospital: str
        begin: str
        end: str
        operator: str
        on_date: str
        result: dict[str, Any]  # stmt_rslt and the summary of what differed
        fund: str = ""  # a bank statement's fund; added with them, absent from hospitals' events

    class Rechecked(Event):
        operator: str
        on_date: str
        result: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.result = self.result
            aggregate.operator = self.operator
            aggregate.on_date = self.on_date

    @staticmethod
    def create_id(kind: str, file_sha256: str, hospital: str, begin: str, end: str, fund: str = "", **_: Any) -> Any:
        return reconciliation_id(reconciliation_key(kind, file_sha256, hospital, begin, end, fund))

    def __init__(
        self, kind: str, file_sha256: str, hospital: str, begin: str, end: str, operator: str, on_date: str,
        result: dict[str, Any], fund: str = "",
    ) -> None:  # fmt: skip
        self.kind, self.file_sha256, self.hospital, self.begin, self.end = kind, file_sha256, hospital, begin, end
        self.operator, self.on_date, self.result, self.fund = operator, on_date, result, fund

    def recheck(self, operator: str, on_date: str, result: dict[str, Any]) -> bool:
        """Record a new answer of the same file; False (nothing recorded) when it is the same."""
        if result == self.result:
            return False
        self.trigger_event(self.Rechecked, operator=operator, on_date=on_date, result=result)
        return True
