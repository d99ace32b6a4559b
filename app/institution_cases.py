"""The 定点 registry (core.institution): institutions registered, suspended, resumed, terminated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from app.base import RegionBase
from app.unit_of_work import UnitOfWork
from core.ids import registry_id
from core.institution import Institution, InstitutionRegistry, InstitutionRejected


class InstitutionCases(RegionBase):
    def register_institutions(self, institutions: Sequence[Institution], *, operator: str) -> list[bool]:
        """Record each registration once, in one transaction: per institution, False when its
        latest registration is this very one already."""
        return self._in_transaction(lambda uow: [self._registry(uow, create=True).register(i, operator)
                                                 for i in institutions])  # fmt: skip

    def suspend_institution(
        self, code: str, *, begin: dt.date, end: dt.date | None, reason: str, operator: str
    ) -> bool:
        return self._in_transaction(lambda uow: self._registry(uow).suspend(code, begin, end, reason, operator))

    def resume_institution(self, code: str, *, on_date: dt.date, reason: str, operator: str) -> bool:
        return self._in_transaction(lambda uow: self._registry(uow).resume(code, on_date, reason, operator))

    def terminate_institution(self, code: str, *, on_date: dt.date, reason: str, operator: str) -> bool:
        return self._in_transaction(lambda uow: self._registry(uow).terminate(code, on_date, reason, operator))

    def institution_registry(self) -> InstitutionRegistry | None:
        return self.unit_of_work().get(registry_id(self.region), InstitutionRegistry)

    def _registry(self, uow: UnitOfWork, *, create: bool = False) -> InstitutionRegistry:
        registry = uow.get(registry_id(self.region), InstitutionRegistry)
        if registry is not None:
            return registry
        if not create:
            raise InstitutionRejected(
                f"region {self.region} has no institution registered", reason="unknown_institution"
            )
        return uow.add(InstitutionRegistry(region=self.region))
