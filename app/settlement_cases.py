"""Settling claims, correcting and reversing settlements (SPEC 4): load what a decision needs, let
`core.settle` decide, record what it decided."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from app.member_cases import MemberCases
from app.outcomes import (
    ConcurrencyConflict,
    Outcome,
    SettlementNotFound,
)
from app.unit_of_work import UnitOfWork
from core import settle
from core.account import IndividualAccount
from core.approval import ApprovalRequest, RequestStatus
from core.errors import UnknownRegion
from core.hospital import (
    FinanceRejected,
    HospitalAccount,
)
from core.ids import (
    account_id,
    approval_id,
    member_id,
    member_year_id,
    policy_book_id,
    registry_id,
    remote_care_id,
    settlement_id,
)
from core.institution import InstitutionRegistry
from core.ledger import due_by_fund
from core.lookback import late_recognition
from core.member import Member
from core.member_year import MemberYear
from core.records import Claim, MemberRecord
from core.remote_care import RemoteCare
from core.settlement import Settlement, SettlementFacts

log = logging.getLogger(__name__)


def _outcome(decision: settle.Refusal | settle.Answered) -> Outcome:
    if isinstance(decision, settle.Refusal):
        return Outcome.rejected(decision.reason, decision.detail)
    return Outcome(decision.status, facts=decision.facts)


class SettlementCases(MemberCases):
    def settle_claims(self, claims: Sequence[Claim], *, origins: Sequence[str] | None = None) -> list[Outcome]:
        """Settle claims in order (SPEC 4), all in one transaction; if the batch keeps losing to
        concurrent writers (other runs settling the same members or accounts), claim by claim: a
        claim's transaction holds a few aggregates, where the batch's holds hundreds.

        `origins` name where each claim came from ("<file sha256>:<line>"), recorded with the
        settlement: the same file run again after a crash answers `settled` for the lines its
        interrupted run settled, so its results are identical to an uninterrupted run's.
        """

        def settle(part: Sequence[Claim], part_origins: Sequence[str] | None) -> list[Outcome]:
            return self._in_transaction(
                lambda uow: self.settle_all(uow, part, operator=None, reason=None, origins=part_origins),
                reuse_kept=True,
            )

        try:
            return settle(claims, origins)
        except ConcurrencyConflict:
            if len(claims) == 1:
                raise
            log.info("region %s: a batch of %d kept conflicting; settling it claim by claim", self.region, len(claims))
        outcomes = []
        for i, claim in enumerate(claims):
            outcomes += settle([claim], [origins[i]] if origins else None)
        return outcomes

    def correct_claims(
        self,
        claims: Sequence[Claim],
        *,
        operator: str,
        reason: str,
        on_date: dt.date | None = None,
        origins: Sequence[str] | None = None,
    ) -> list[Outcome]:
        """Correction = reversal of the current version + a new version, same setl_id, both
        posted on `on_date` (default today). A claim whose current version is the correction
        made from the same origin (file hash and line) is answered as then, not corrected again:
        running a correction file twice corrects once."""
        when = (on_date or dt.date.today()).isoformat()
        return self._in_transaction(
            lambda uow: self.settle_all(uow, claims, operator=operator, reason=reason, on_date=when, origins=origins)
        )

    def reverse(
        self, setl_id: str, *, operator: str, reason: str, on_date: dt.date | None = None
    ) -> SettlementFacts | ApprovalRequest:
        """Reverse a settlement, or, when its fund payments are above the policy's
        `[controls] approval_above`, record the request for a second person to approve."""

        def work(uow: UnitOfWork) -> SettlementFacts | ApprovalRequest:
            settlement = self._settlement(uow, setl_id)
            day = (on_date or dt.date.today()).isoformat()
            amount = settlement.current.amounts["fund_pay_sumamt"]
            if not settlement.reversed and self._needs_approval(uow, settlement.current.year, amount):
                return self._request(uow, "reverse", settlement, amount, operator, reason, {"on_date": day})
            self._reverse(uow, settlement, operator, reason, day)
            return settlement.current

        return self._in_transaction(work)

    def settlement(self, setl_id: str) -> Settlement | None:
        try:
            return self.repository.get(settlement_id(setl_id))
        except AggregateNotFoundError:
            return None

    def _settlement(self, uow: UnitOfWork, setl_id: str) -> Settlement:
        settlement = uow.get(settlement_id(setl_id), Settlement)
        if settlement is None:
            raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
        return settlement

    def _needs_approval(self, uow: UnitOfWork, year: int, amount: int) -> bool:
        policy = self._policy(uow, year)
        above = policy.controls.approval_above if policy is not None else None
        return above is not None and amount > above

    def _request(
        self, uow: UnitOfWork, kind: str, settlement: Settlement, amount: int, maker: str, reason: str,
        details: dict[str, Any],
    ) -> ApprovalRequest:  # fmt: skip
        """The pending request for this action on this version, recorded once (a rejected one
        leaves room for a new attempt)."""
        version = settlement.current.version
        base = f"{kind}-{settlement.setl_id}-v{version}"
        return self._held(uow, base, kind, settlement.setl_id, version, amount, maker, reason, details)

    def _held(
        self, uow: UnitOfWork, base: str, kind: str, subject: str, version: int, amount: int, maker: str, reason: str,
        details: dict[str, Any],
    ) -> ApprovalRequest:  # fmt: skip
        """The request `base` (or `base-2`, … after rejected ones) for an action held for a second
        person: the one not rejected if there is one, else a new one."""
        for attempt in itertools.count(1):
            request_id = base if attempt == 1 else f"{base}-{attempt}"
            existing = uow.get(approval_id(request_id), ApprovalRequest)
            if existing is None:
                return uow.add(ApprovalRequest(
                    request_id=request_id, kind=kind, subject=subject, subject_version=version, amount=amount,
                    maker=maker, reason=reason, details=details,
                ))  # fmt: skip
            if existing.status != RequestStatus.REJECTED:
                return existing
        raise AssertionError("unreachable")

    def _preload_for_claims(self, uow: UnitOfWork, claims: Sequence[Claim], *, correcting: bool) -> None:
        """Read every aggregate the batch needs in one query: settlements, policies, members,
        member-years and accounts (one claim per transaction is then one read). A second query
        reads what only the members name (a bound family employee and their account) and, for
        corrections, the member-years of the settlements being corrected."""
        uow.preload(
            [settlement_id(c.setl_id) for c in claims]
            + [policy_book_id(self.region, y) for y in {c.year for c in claims}]
            + [member_id(c.psn_no) for c in claims]
            + [member_year_id(c.psn_no, c.year) for c in claims]
            + [account_id(c.psn_no) for c in claims]
            + [registry_id(self.region)]
            + [remote_care_id(c.setl_id) for c in claims if correcting or c.treated_elsewhere(self.region)]
        )
        family = set()
        for c in claims:
            member = uow.get(member_id(c.psn_no), Member)
            if member is not None and member.family_employee:
                family.add(member.family_employee)
        corrected_years = []
        if correcting:
            for c in claims:
                existing = uow.get(settlement_id(c.setl_id), Settlement)
                if existing is not None:
                    corrected_years.append(member_year_id(existing.current.psn_no, existing.current.year))
        uow.preload([account_id(p) for p in family] + [member_id(p) for p in family] + corrected_years)

    def settle_all(
        self,
        uow: UnitOfWork,
        claims: Sequence[Claim],
        *,
        operator: str | None,
        reason: str | None,
        on_date: str | None = None,
        origins: Sequence[str] | None = None,
    ) -> list[Outcome]:
        """Settle (or, with an operator, correct) `claims` in order into `uow`, unsaved."""
        self._preload_for_claims(uow, claims, correcting=operator is not None)
        return [
            self._settle_one(
                uow, c, operator=operator, reason=reason, on_date=on_date, origin=origins[i] if origins else None
            )
            for i, c in enumerate(claims)
        ]

    def _settle_one(
        self,
        uow: UnitOfWork,
        claim: Claim,
        *,
        operator: str | None,
        reason: str | None,
        on_date: str | None,
        origin: str | None = None,
        approved_by: str | None = None,
    ) -> Outcome:
        """Load what the decision needs, let `core.settle` decide, record what it decided."""
        correcting = operator is not None
        settlement = uow.get(settlement_id(claim.setl_id), Settlement)
        screened = settle.screen(claim, settlement, correcting=correcting, origin=origin)
        if screened is not None:
            return _outcome(screened)
        member = uow.get(member_id(claim.psn_no), Member)
        record = settle.record_in_force(claim, member, self.region)
        if isinstance(record, settle.Refusal):
            return _outcome(record)
        policy = self._policy(uow, claim.year)
        if policy is None:
            detail = f"no policy for region {self.region} year {claim.year}"
            return _outcome(settle.Refusal(settle.Rejection.NO_POLICY, detail))
        registry = self._registry_for(uow, claim)
        if isinstance(registry, settle.Refusal):
            return _outcome(registry)
        refused = settle.at_institution(claim, registry) or settle.maternity_cover(claim, record, policy)
        if refused is not None:
            return _outcome(refused)
        if correcting and settlement is not None and not settlement.reversed:  # the version in force goes first
            held = self._correction_reversed(uow, settlement, claim, operator or "", reason or "", on_date or "",
                                             origin, approved_by)  # fmt: skip
            if held is not None:
                return held
        member_year = uow.get(member_year_id(claim.psn_no, claim.year), MemberYear)
        if member_year is None:
            member_year = uow.add(MemberYear(psn_no=claim.psn_no, year=claim.year))
        own, family = self._accounts(uow, claim, record, member)
        decided = settle.decide(
            claim, region=self.region, record=record, policy=policy, ytd=member_year.ytd,
            accounts=settle.Accounts(
                own.psn_no if own else None, own.balance if own else 0,
                family.psn_no if family else None, family.balance if family else 0,
            ),
            version=settlement.current.version + 1 if settlement is not None else 1,
            operator=operator, reason=reason, on_date=on_date, origin=origin, approved_by=approved_by,
        )  # fmt: skip
        recorded = self._record_settlement(uow, settlement, member_year, decided, own, family)
        elsewhere = claim.treated_elsewhere(self.region)
        if elsewhere is not None:
            self._owe_elsewhere(uow, decided.facts, elsewhere)
        recognition = late_recognition(member.records if member else [], record, claim.setl_time)
        if recognition is not None:
            self._grant_look_back(member_year, recorded, policy, recognition)
        return Outcome(settle.Status.SETTLED, facts=decided.facts)

    def _registry_for(self, uow: UnitOfWork, claim: Claim) -> InstitutionRegistry | settle.Refusal | None:
        """The registry a claim's institution is checked against: this region's, or, for a
        member treated in another region (异地就医), that region's (就医地目录), read once a batch."""
        elsewhere = claim.treated_elsewhere(self.region)
        if elsewhere is None:
            return uow.get(registry_id(self.region), InstitutionRegistry)
        found = uow.registries_elsewhere
        if elsewhere not in found:
            try:
                if self.neighbours is None:
                    raise UnknownRegion(f"region {self.region} settles with no other region")
                found[elsewhere] = self.neighbours.registry_of(elsewhere)
            except UnknownRegion:
                found[elsewhere] = settle.Refusal(
                    settle.Rejection.UNKNOWN_TREATMENT_REGION, f"mdtrtarea_admvs {elsewhere} is not a region here"
                )
        registry: InstitutionRegistry | settle.Refusal | None = found[elsewhere]
        return registry

    def _owe_elsewhere(self, uow: UnitOfWork, facts: SettlementFacts, treated_in: str) -> None:
        """Record what the region of treatment is owed for this version (relayed there)."""
        remote = uow.get(remote_care_id(facts.setl_id), RemoteCare)
        if remote is None:
            remote = uow.add(RemoteCare(setl_id=facts.setl_id))
        amounts = due_by_fund(facts.postings, treated_in)
        remote.owe(facts.version, treated_in, facts.claim["fixmedins_code"], amounts, facts.posted_on)

    def _owed_elsewhere(self, uow: UnitOfWork, facts: SettlementFacts) -> RemoteCare | None:
        """The RemoteCare of a version owed to a region of treatment, else None."""
        if Claim.from_dict(facts.claim).treated_elsewhere(facts.region) is None:
            return None
        remote = uow.get(remote_care_id(facts.setl_id), RemoteCare)
        assert remote is not None and remote.owing is not None and remote.owing.version == facts.version
        return remote

    def _correction_reversed(
        self, uow: UnitOfWork, settlement: Settlement, claim: Claim, operator: str, reason: str, on_date: str,
        origin: str | None, approved_by: str | None,
    ) -> Outcome | None:  # fmt: skip
        """Reverse the version a correction replaces; or, above the approval threshold and not yet
        approved, hold the correction as a request (its outcome); or refuse it by name."""
        amount = settlement.current.amounts["fund_pay_sumamt"]
        if approved_by is None and self._needs_approval(uow, settlement.current.year, amount):
            details = {"claim": claim.to_dict(), "origin": origin, "on_date": on_date}
            request = self._request(uow, "correct", settlement, amount, operator, reason, details)
            return Outcome("pending_approval", extra={"request": request})
        try:
            self._reverse(uow, settlement, operator, reason, on_date, approved_by=approved_by)
        except FinanceRejected as exc:
            return Outcome.rejected(exc.reason, str(exc))
        return None

    def _record_settlement(
        self,
        uow: UnitOfWork,
        settlement: Settlement | None,
        member_year: MemberYear,
        decided: settle.Decided,
        own: IndividualAccount | None,
        family: IndividualAccount | None,
    ) -> Settlement:
        facts, split = decided.facts, decided.split
        if settlement is None:
            settlement = uow.add(Settlement(facts=facts))
        else:
            settlement.resettle(facts)
        member_year.apply_claim(facts.setl_id, facts.version, facts.claim["setl_time"][:10], facts.delta)
        ref = f"settlement:{facts.setl_id}:v{facts.version}"
        if split.acct_pay:
            assert own is not None
            own.debit(ref, "settlement", split.acct_pay)
        if split.acct_mulaid_pay:
            assert family is not None
            family.debit(ref, "family_mutual_aid", split.acct_mulaid_pay)
        return settlement

    def _accounts(
        self, uow: UnitOfWork, claim: Claim, record: MemberRecord, member: Member | None
    ) -> tuple[IndividualAccount | None, IndividualAccount | None]:
        """The member's own account (employees) and the bound employee's (家庭共济), while that
        employee is insured as an employee in this region."""
        own = None
        if record.insutype == "310":
            own = uow.get(account_id(claim.psn_no), IndividualAccount)
            if own is None:
                own = uow.add(IndividualAccount(psn_no=claim.psn_no))
        family = None
        if member is not None and member.family_employee:
            employee = uow.get(member_id(member.family_employee), Member)
            if settle.family_account_holder(employee, claim.setl_time, self.region):
                family = uow.get(account_id(member.family_employee), IndividualAccount)
        return own, family

    def _reverse(
        self,
        uow: UnitOfWork,
        settlement: Settlement,
        operator: str,
        reason: str,
        on_date: str,
        approved_by: str | None = None,
    ) -> None:
        facts = settlement.current
        if settlement.reversed:
            settlement.reverse(operator, reason, on_date)  # raises already_reversed
        remote = self._owed_elsewhere(uow, facts)
        if remote is not None:  # the region of treatment undoes its side when this is relayed
            self._undo_usage(uow, settlement, on_date)
            remote.withdraw(facts.version, on_date)
            settlement.reverse(operator, reason, on_date, approved_by=approved_by)
            return
        hospital = self._hospital(uow, facts.claim["fixmedins_code"])
        if hospital.deductions_on(facts.setl_id):
            # Undoing the settlement would undo the audited amounts a second time.
            raise FinanceRejected(
                f"settlement {facts.setl_id} has audit deductions; it cannot be reversed or corrected",
                reason="settlement_has_deductions",
            )
        self._undo_usage(uow, settlement, on_date)
        # What a payment already gave the hospital for this version, it now owes back. Recorded
        # on the hospital's account even when nothing was paid: a payment summed before this
        # reversal then loses its save to it, and is summed again without the version.
        paid = hospital.paid_for(facts.postings, facts.posted_on, *self._settlement_paid_evidence(hospital, settlement))
        settlement.reverse(operator, reason, on_date, paid_funds=frozenset(paid), approved_by=approved_by)
        hospital.owe_back(facts.setl_id, facts.version, paid, on_date)

    def _undo_usage(self, uow: UnitOfWork, settlement: Settlement, on_date: str) -> None:
        """Give back to the member's year and account what the current version used; a member
        payment summed before this must not pay what the version owed the member."""
        facts = settlement.current
        member_year = uow.get(member_year_id(facts.psn_no, facts.year), MemberYear)
        assert member_year is not None
        member_year.reverse_claim(facts.setl_id, facts.version)
        refund = facts.amounts["acct_pay"] + facts.amounts["acct_mulaid_pay"]
        if refund:
            assert facts.account_psn is not None
            account = uow.get(account_id(facts.account_psn), IndividualAccount)
            assert account is not None
            account.credit(f"reversal:{facts.setl_id}:v{facts.version}", "settlement_reversal", refund)
        if settlement.owes_member:  # a member payment summed before this must not pay it
            self._member_payables(uow).lower(facts.setl_id, facts.version, on_date)

    def _paid_evidence(
        self, hospital: HospitalAccount, posted_on: str, event: tuple[UUID, int]
    ) -> tuple[int | None, dict[int, int]]:
        """What HospitalAccount.is_paid needs about a version posted on `posted_on` and recorded by
        `event` (aggregate id, version): the journal position of that event (None: not stored
        yet), and the own positions of the account's payments recorded without one. Read only
        when a payment covers the date."""
        if all(mark.through < posted_on for marks in hospital.payments.values() for mark in marks):
            return None, {}
        legacy = hospital.unpositioned(posted_on)
        found = self.region_log.select_positions([event, *((hospital.id, v) for v in legacy)])
        return found.get(event), {v: found[(hospital.id, v)] for v in legacy}

    def _settlement_paid_evidence(
        self, hospital: HospitalAccount, settlement: Settlement
    ) -> tuple[int | None, dict[int, int]]:
        return self._paid_evidence(hospital, settlement.current.posted_on, (settlement.id, settlement.version_event))
