"""Four eyes (复核): a request held for a second person, approved (the action then takes effect,
by its maker, approved by the checker) or rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from app.clearing_cases import ClearingCases, ReadMonth
from app.unit_of_work import UnitOfWork
from core.approval import ApprovalRefused, ApprovalRequest
from core.codec import topic_of
from core.hospital import OwedAt
from core.ids import (
    approval_id,
)
from core.records import Claim
from core.settlement import SettlementFacts


class ApprovalCases(ClearingCases):
    def approval_request(self, request_id: str) -> ApprovalRequest | None:
        return self.unit_of_work().get(approval_id(request_id), ApprovalRequest)

    def approval_requests(self) -> list[ApprovalRequest]:
        uow = self.unit_of_work()
        ids = self.region_log.select_originators_of([topic_of(ApprovalRequest.Requested)])
        uow.preload(ids)
        found = (uow.get(i, ApprovalRequest) for i in ids)
        return sorted((r for r in found if r is not None), key=lambda r: r.request_id)

    def decide_request(
        self, request_id: str, *, checker: str, approve: bool, reason: str = "", on_date: dt.date | None = None,
        read_month: ReadMonth | None = None, owed_reader: Callable[[dt.date], Callable[[], OwedAt]] | None = None,
    ) -> tuple[ApprovalRequest, Any]:  # fmt: skip
        """Approve (the action takes effect in the same transaction, by its maker, approved by the
        checker) or reject a pending request; the maker can never decide their own. A clearing
        needs `read_month` and a payment `owed_reader` (what is owed through a date) to check
        that what they act on has not changed since they were asked."""

        def work(uow: UnitOfWork) -> tuple[ApprovalRequest, Any]:
            request = uow.get(approval_id(request_id), ApprovalRequest)
            if request is None:
                detail = f"no approval request {request_id} in region {self.region}"
                raise ApprovalRefused(detail, reason="unknown_request")
            day = (on_date or dt.date.today()).isoformat()
            if not approve:
                request.reject(checker, reason, day)
                return request, None
            request.approve(checker, day)
            if request.kind == "clear":
                assert read_month is not None
                return request, self._clear_approved(uow, request, checker, read_month)
            if request.kind == "pay":
                assert owed_reader is not None
                reader = owed_reader(dt.date.fromisoformat(request.details["through"]))
                return request, self._pay_approved(uow, request, checker, reader)
            settlement = self._settlement(uow, request.subject)
            if settlement.current.version != request.subject_version or settlement.reversed:
                raise ApprovalRefused(
                    f"settlement {request.subject} changed since request {request_id} was made: ask again",
                    reason="request_stale",
                )
            return request, self._carry_out(uow, request, checker)

        return self._in_transaction(work)

    def _carry_out(self, uow: UnitOfWork, request: ApprovalRequest, checker: str) -> SettlementFacts:
        """The action of an approved request, by its maker, approved by `checker`."""
        details, maker = request.details, request.maker
        settlement = self._settlement(uow, request.subject)
        if request.kind == "reverse":
            self._reverse(uow, settlement, maker, request.reason, details["on_date"], approved_by=checker)
            return settlement.current
        claim = Claim.from_dict(details["claim"])
        self._preload_for_claims(uow, [claim], correcting=True)
        outcome = self._settle_one(
            uow, claim, operator=maker, reason=request.reason, on_date=details["on_date"], origin=details["origin"],
            approved_by=checker,
        )  # fmt: skip
        if outcome.facts is None:
            raise ApprovalRefused(f"the correction cannot be made: {outcome.reason}: {outcome.detail}",
                                  reason=outcome.reason or "rejected")  # fmt: skip
        return outcome.facts
