"""Reconciliations with hospitals (对账) recorded once per file and answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.base import RegionBase
from app.unit_of_work import UnitOfWork
from core.codec import topic_of
from core.reconciliation import Reconciliation


class ReconciliationCases(RegionBase):
    def record_reconciliation(self, *, operator: str, on_date: dt.date, **key_and_result: Any) -> bool:
        """Record a file's reconciliation once (True when something was recorded): the same file
        again records nothing unless its answer changed."""

        def work(uow: UnitOfWork) -> bool:
            found = uow.get(Reconciliation.create_id(**key_and_result), Reconciliation)
            if found is not None:
                return found.recheck(operator, on_date.isoformat(), key_and_result["result"])
            uow.add(Reconciliation(**key_and_result, operator=operator, on_date=on_date.isoformat()))
            return True

        return self._in_transaction(work)

    def reconciliations(self) -> list[Reconciliation]:
        uow = self.unit_of_work()
        ids = self.region_log.select_originators_of([topic_of(Reconciliation.Recorded)])
        uow.preload(ids)
        return [r for r in (uow.get(i, Reconciliation) for i in ids) if r is not None]
