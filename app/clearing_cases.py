"""Clearing (清算, 3203): a hospital's month recorded once it reconciled, or by an override a
second person approves; payment by month only of a month cleared on the figures it has now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs

from app.finance_cases import FinanceCases
from app.unit_of_work import UnitOfWork
from core.approval import ApprovalRefused, ApprovalRequest
from core.clearing import EMPTY_MONTH, Clearing, ClearingRefused, months_between
from core.ids import clearing_id


class MonthRead(NamedTuple):
    """What a month reader answers (projections.clearing.MonthState)."""

    figures: dict[str, Any]
    refusal: tuple[str, str] | None


ReadMonth = Callable[[str, str], MonthRead]


@attrs.frozen
class ClearOutcome:
    status: str  # recorded | recleared | duplicate | pending_approval
    figures: dict[str, Any]
    clearing: Clearing | None = None
    request: ApprovalRequest | None = None


class ClearingCases(FinanceCases):
    def clearing(self, hospital: str, month: str) -> Clearing | None:
        return self.unit_of_work().get(clearing_id(self.region, hospital, month), Clearing)

    def clear_month(
        self, hospital: str, month: str, *, read_month: ReadMonth, operator: str, override_reason: str = "",
        on_date: dt.date | None = None,
    ) -> ClearOutcome:  # fmt: skip
        """Record the month's figures when it reconciled (not_reconciled otherwise); the same
        figures again record nothing; new figures, reconciled again, record a re-clearing. With
        `override_reason`, an unreconciled month becomes a request (kind "clear") for an approver."""
        day = (on_date or dt.date.today()).isoformat()

        def work(uow: UnitOfWork) -> ClearOutcome:
            figures, refusal = read_month(hospital, month)
            clearing = uow.get(clearing_id(self.region, hospital, month), Clearing)
            if clearing is not None and clearing.figures == figures:
                return ClearOutcome("duplicate", figures, clearing)
            if refusal is None:
                return self._record_clearing(uow, clearing, hospital, month, figures, operator, day)
            cause, detail = refusal
            if not override_reason:
                raise ClearingRefused(f"hospital {hospital} {month}: {cause}: {detail}")
            version = clearing.version if clearing is not None else 0
            request = self._held(
                uow, f"clear-{hospital}-{month}-v{version}", "clear", f"{hospital}:{month}", version,
                sum(figures["fund_appy_sum"].values()), operator, override_reason,
                {"hospital": hospital, "month": month, "figures": figures, "on_date": day, "cause": cause},
            )  # fmt: skip
            return ClearOutcome("pending_approval", figures, clearing, request)

        return self._in_transaction(work)

    def _record_clearing(
        self, uow: UnitOfWork, clearing: Clearing | None, hospital: str, month: str, figures: dict[str, Any],
        operator: str, day: str, **approval: str,
    ) -> ClearOutcome:  # fmt: skip
        if clearing is None:
            made = uow.add(Clearing(
                region=self.region, hospital=hospital, month=month, figures=figures, operator=operator, on_date=day,
                **approval,
            ))  # fmt: skip
            return ClearOutcome("recorded", figures, made)
        status = "recleared" if clearing.reclear(figures, operator, day, **approval) else "duplicate"
        return ClearOutcome(status, figures, clearing)

    def _clear_approved(
        self, uow: UnitOfWork, request: ApprovalRequest, checker: str, read_month: ReadMonth
    ) -> ClearOutcome:
        """An approved override: the month cleared on the request's figures, by its maker, approved
        by `checker`; refused (request_stale) when the figures or the clearing changed since."""
        hospital, month = request.details["hospital"], request.details["month"]
        figures, _ = read_month(hospital, month)
        clearing = uow.get(clearing_id(self.region, hospital, month), Clearing)
        version = clearing.version if clearing is not None else 0
        if figures != request.details["figures"] or version != request.subject_version:
            raise ApprovalRefused(
                f"the figures of {hospital} {month} changed since request {request.request_id} was made: ask again",
                reason="request_stale",
            )
        return self._record_clearing(
            uow, clearing, hospital, month, figures, request.maker, request.details["on_date"],
            override_reason=request.reason, approved_by=checker, request_id=request.request_id,
        )  # fmt: skip

    def check_cleared(
        self, uow: UnitOfWork, hospital: str, month: str, read_month: ReadMonth, first_line: dt.date | None = None
    ) -> dict[str, Any]:
        """The month's cleared figures, when they are still its figures; else not_cleared. A
        payment through the month's end also pays what earlier months owe: each month since the
        hospital's last payment (or since `first_line`, its first settlement line) that has
        lines must be cleared and current too."""
        paid = max(self._hospital(uow, hospital).paid_through.values(), default=None)
        start = dt.date.fromisoformat(paid) + dt.timedelta(days=1) if paid else first_line
        for earlier in months_between(start, month)[:-1]:
            if (
                uow.get(clearing_id(self.region, hospital, earlier), Clearing) is not None
                or read_month(hospital, earlier).figures != EMPTY_MONTH
            ):
                self._cleared_figures(uow, hospital, earlier, read_month)
        return self._cleared_figures(uow, hospital, month, read_month)

    def _cleared_figures(self, uow: UnitOfWork, hospital: str, month: str, read_month: ReadMonth) -> dict[str, Any]:
        clearing = uow.get(clearing_id(self.region, hospital, month), Clearing)
        if clearing is None:
            raise ClearingRefused(f"hospital {hospital} {month} is not cleared", reason="not_cleared")
        figures, _ = read_month(hospital, month)
        if figures != clearing.figures:
            raise ClearingRefused(
                f"hospital {hospital} {month}: its figures changed since it was cleared: reconcile and clear again",
                reason="not_cleared",
            )
        return figures
