"""Contributions (缴费): the funds' income and the employees' individual accounts."""

from __future__ import annotations

from collections.abc import Sequence

from app.base import RegionBase
from app.outcomes import (
    Outcome,
)
from app.unit_of_work import UnitOfWork
from core.account import IndividualAccount
from core.contribution import ContributionReceived
from core.ids import (
    account_id,
    contribution_id,
    member_id,
)
from core.ledger import contribution_postings
from core.member import Member, no_record_on
from core.records import Contribution


class ContributionCases(RegionBase):
    def import_contributions(self, contributions: Sequence[Contribution]) -> list[Outcome]:
        def work(uow: UnitOfWork) -> list[Outcome]:
            uow.preload(contribution_id(c.contrib_id) for c in contributions)
            uow.preload(member_id(c.psn_no) for c in contributions)
            uow.preload(account_id(c.psn_no) for c in contributions if c.acct_amount)
            outcomes = []
            for c in contributions:
                existing = uow.get(contribution_id(c.contrib_id), ContributionReceived)
                if existing is not None:
                    same = existing.content_hash == c.content_hash
                    outcomes.append(Outcome("duplicate") if same else Outcome.rejected("exists_with_different_content"))
                    continue
                member = uow.get(member_id(c.psn_no), Member)
                record = member.record_at(c.paid_date) if member else None
                if record is None:
                    outcomes.append(Outcome.rejected(*no_record_on(member, c.paid_date)))
                    continue
                if record.insuplc_admdvs != self.region:
                    outcomes.append(
                        Outcome.rejected("member_transferred_out", f"insured in {record.insuplc_admdvs} on that date")
                    )
                    continue
                if c.acct_amount and record.insutype != "310":
                    outcomes.append(Outcome.rejected("no_individual_account", "only employees have an account"))
                    continue
                assert member is not None
                member.add_contribution_years([c.paid_date.year], f"contribution:{c.contrib_id}")
                postings = contribution_postings(
                    fund=c.fund, psn_no=c.psn_no, amount=c.amount, acct_amount=c.acct_amount, source=c.source
                )
                uow.add(ContributionReceived(contribution=c.to_dict(), content_hash=c.content_hash, postings=postings))
                if c.acct_amount:
                    account = uow.get(account_id(c.psn_no), IndividualAccount)
                    if account is None:
                        account = uow.add(IndividualAccount(psn_no=c.psn_no))
                    account.credit(f"contribution:{c.contrib_id}", "contribution", c.acct_amount)
                outcomes.append(Outcome("recorded"))
            return outcomes

        return self._in_transaction(work, reuse_kept=True)
