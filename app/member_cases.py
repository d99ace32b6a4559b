"""Members: their records, family bindings stated by member files, and the look-back of a
recognition of illness_poverty (SPEC 3.1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs

from app.base import RegionBase
from app.outcomes import (
    Outcome,
)
from app.unit_of_work import UnitOfWork
from core.ids import (
    member_id,
    member_year_id,
    settlement_id,
)
from core.lookback import CATEGORY as LOOKBACK_CATEGORY
from core.lookback import lookback_for, lookback_window
from core.member import FamilyStatement, Member, not_an_employee
from core.member_year import MemberYear
from core.money import format_yuan
from core.policy import Policy
from core.records import MemberRecord, insured_elsewhere
from core.settlement import Settlement

MEMBER_FILE_OPERATOR = "member-file"  # the operator of bindings stated by an imported member file


class MemberCases(RegionBase):
    def import_members(self, records: Sequence[MemberRecord], *, bind: bool = True) -> list[Outcome]:
        """Record members and changes; look back for newly recognised illness_poverty members.
        The records' `family_of` are bound once all of them are recorded (SPEC 3.1: the employee
        may come anywhere among them), each outcome's `binding` saying how; `bulk.batch` passes
        `bind=False` and binds after the last batch of a file (`bind_from_member_file`)."""

        def work(uow: UnitOfWork) -> list[Outcome]:
            uow.preload(member_id(r.psn_no) for r in records)
            outcomes = [self._import_member(uow, record) for record in records]
            if not bind:
                return outcomes
            held = [
                (i, FamilyStatement(r.psn_no, r.valid_from, r.family_of, o.status == "recorded"))
                for i, (r, o) in enumerate(zip(records, outcomes, strict=True))
                if r.family_of is not None and o.status in ("recorded", "unchanged")
            ]
            for (i, _), binding in zip(held, self._bind_statements(uow, [s for _, s in held]), strict=True):
                if binding is not None:
                    outcomes[i] = attrs.evolve(outcomes[i], extra={**outcomes[i].extra, "binding": binding})
            return outcomes

        return self._in_transaction(work, reuse_kept=True)

    def _import_member(self, uow: UnitOfWork, record: MemberRecord) -> Outcome:
        if record.insuplc_admdvs != self.region:
            raise AssertionError("member routed to the wrong region")
        member = uow.get(member_id(record.psn_no), Member)
        if member is None:
            member = uow.add(Member(psn_no=record.psn_no))
        before = member.record_at(record.valid_from)
        if before is not None and before.insuplc_admdvs != self.region:
            # Checked again here, in the import's transaction: a transfer out that
            # committed after the file's check (bulk.batch.insured_regions) is seen.
            refusal = insured_elsewhere(record.psn_no, before.insuplc_admdvs, record.valid_from)
            return Outcome.rejected(refusal.reason, str(refusal))
        if not member.add_record(record):
            return Outcome("unchanged")
        if member.records[-1] == record and record.family_of is None:
            when = record.valid_from.isoformat()  # the latest record names no employee: unbound now
            member.unbind_family(
                on_date=when, operator=MEMBER_FILE_OPERATOR, reason=f"member file record valid from {when}"
            )
        lookback: list[dict[str, Any]] = []
        if record.assist_category == "illness_poverty" and (
            before is None or before.assist_category != "illness_poverty"
        ):
            lookback = self._look_back(uow, member, record)
        return Outcome("recorded", extra={"lookback": lookback} if lookback else {})

    def bind_from_member_file(self, statements: Sequence[FamilyStatement]) -> list[dict[str, Any] | None]:
        """Bind the `family_of` of member-file lines recorded before (by `import_members` with
        `bind=False`), once every line of the file is: the employee named may come anywhere in it.
        Per line, its `binding` (see `_bind_statements`)."""
        return self._in_transaction(lambda uow: self._bind_statements(uow, statements), reuse_kept=True)

    def _bind_statements(self, uow: UnitOfWork, statements: Sequence[FamilyStatement]) -> list[dict[str, Any] | None]:
        """Per line, `{"family_of", "status", ...}` with status `bound` or `unchanged` (the
        member's latest record: its binding made, or already so), `refused` with `reason` and
        `detail` (and `ended`: the employee of a binding it ended, the file naming another),
        `superseded` (a later record, or `family bind` since, decides the binding); or None: a
        line recorded before whose binding needs nothing."""
        uow.preload(member_id(s.psn_no) for s in statements)
        uow.preload(member_id(s.family_of) for s in statements)
        return [self._bind_statement(uow, s) for s in statements]

    def _bind_statement(self, uow: UnitOfWork, statement: FamilyStatement) -> dict[str, Any] | None:
        member = uow.get(member_id(statement.psn_no), Member)
        assert member is not None, "a member-file line is bound after it is recorded"
        employee = statement.family_of
        record = member.record_from(statement.valid_from)
        if record is None or record.family_of != employee:
            replaced = "a later line for the same valid_from replaced this record"
            return {"family_of": employee, "status": "superseded", "detail": replaced} if statement.recorded else None
        states = record == member.records[-1] and member.binding_pending
        if not states and not statement.recorded:
            return None  # recorded before: its binding was made then, or another record or `family bind` decides
        themself = employee == statement.psn_no
        refusal = (
            "a member cannot be bound to themself"
            if themself
            else not_an_employee(employee, uow.get(member_id(employee), Member), self.region, record.valid_from)
        )
        when = record.valid_from.isoformat()
        why = f"member file record valid from {when}"
        if refusal is None and not states:
            later = "a later record of the member, or `family bind`, decides the binding"
            return {"family_of": employee, "status": "superseded", "detail": later}
        if refusal is None:
            bound = member.bind_family(employee, on_date=when, operator=MEMBER_FILE_OPERATOR, reason=why)
            return {"family_of": employee, "status": "bound" if bound else "unchanged"}
        reason = "bad_family_of" if themself else "not_an_employee"
        refused = {"family_of": employee, "status": "refused", "reason": reason, "detail": refusal}
        if not states:
            return refused
        ended = member.family_employee  # the file names another employee: the old account stops paying
        member.unbind_family(on_date=when, operator=MEMBER_FILE_OPERATOR, reason=f"{why}: {refusal}")
        return {**refused, "ended": ended} if ended else refused

    def _look_back(self, uow: UnitOfWork, member: Member, record: MemberRecord) -> list[dict[str, Any]]:
        """Assistance on every settlement dated from six months before the recognition for as long
        as it is in force (until the member's next record, if any), that was settled under an
        earlier record: the months before it, and claims after it settled before it was imported."""
        start, _ = lookback_window(record.valid_from)
        until = next((r.valid_from for r in member.records if r.valid_from > record.valid_from), None)
        last_year = until.year if until is not None else max(record.valid_from.year, dt.date.today().year) + 1
        years = range(start.year, last_year + 1)
        uow.preload(member_year_id(record.psn_no, year) for year in years)
        granted = []
        for year in years:
            member_year = uow.get(member_year_id(record.psn_no, year), MemberYear)
            if year <= record.valid_from.year:  # a claim of these years settled meanwhile conflicts with this
                if member_year is None:
                    member_year = uow.add(MemberYear(psn_no=record.psn_no, year=year))
                member_year.note_recognition(record.valid_from.isoformat())
            policy = self._policy(uow, year)
            if member_year is None or policy is None:
                continue
            in_window = sorted(
                (applied.setl_time, setl_id)
                for setl_id, applied in member_year.applied.items()
                if start.isoformat() <= applied.setl_time and (until is None or applied.setl_time < until.isoformat())
            )
            uow.preload(settlement_id(setl_id) for _, setl_id in in_window)
            for _, setl_id in in_window:
                settlement = uow.get(settlement_id(setl_id), Settlement)
                assert settlement is not None and not settlement.reversed
                if settlement.current.assist_category == LOOKBACK_CATEGORY:
                    continue  # settled as illness_poverty already: its assistance was paid then
                paid = self._grant_look_back(member_year, settlement, policy, record)
                if paid:
                    granted.append({"setl_id": setl_id, "year": year, "maf_pay": format_yuan(paid)})
        return granted

    @staticmethod
    def _grant_look_back(
        member_year: MemberYear, settlement: Settlement, policy: Policy, recognition: MemberRecord
    ) -> int:
        """The look-back assistance a settlement is still due for `recognition`, recorded on it and
        on its member-year within the year's limits; what was granted (fen). A version gets one
        look-back: a recognition ended and given again does not pay it twice."""
        if settlement.current.lookback_maf:
            return 0
        grant = lookback_for(settlement.current, policy, member_year.ytd)
        if grant is None:
            return 0
        member_year.look_back(settlement.setl_id, grant.delta)
        settlement.add_lookback_assistance(grant.maf_pay, recognition.valid_from.isoformat(), grant.breakdown)
        return grant.maf_pay
