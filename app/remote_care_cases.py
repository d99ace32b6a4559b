"""异地就医 in the region of treatment, and the clearing between regions (清分) in each region.

The insured region settles its member's claim and records what it owes the region of treatment
(core.remote_care); the relay (app.remote_relay) brings each version here, where the hospital
is owed it (`receive_remote_care`), and each reversal, which undoes that, as a receivable when
the hospital was paid already. A clearing is decided in one region of a pair and mirrored in the
other (core.region_clearing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Tracking

from app.finance_cases import FinanceCases
from app.unit_of_work import UnitOfWork
from core.errors import StaleRead, YibaoError
from core.funds import InsufficientFundBalance
from core.hospital import HospitalAccount, RemoteVersion
from core.ids import hospital_id, region_clearings_id
from core.ledger import region_clearing_postings, remote_settled_postings
from core.region_clearing import Dues, RegionClearings
from core.remote_care import RemoteCare


class RegionCannotPay(InsufficientFundBalance):
    """A region's bank cannot pay its side of a clearing (the message names the region)."""


class RemoteCareCases(FinanceCases):
    def receive_remote_care(self, insured_in: str, events: Sequence[Any], *, tracking: Tracking) -> list[str]:
        """Record the remote settlement versions and reversals of `insured_in`'s members treated
        here, in log order; returns "<setl_id> v<version>" (and " reversed") of each recorded now
        (one recorded before is not recorded again)."""

        def work(uow: UnitOfWork) -> list[str]:
            uow.preload(hospital_id(e.fixmedins_code) for e in events)
            done = []
            for e in events:
                hospital = self._hospital(uow, e.fixmedins_code)
                if self._receive_one(hospital, insured_in, e):
                    reversed_ = "" if isinstance(e, RemoteCare.Owed) else " reversed"
                    done.append(f"{e.setl_id} v{e.setl_version}{reversed_}")
            return done

        return self._tracked(work, tracking)

    def _receive_one(self, hospital: HospitalAccount, insured_in: str, event: Any) -> bool:
        if isinstance(event, RemoteCare.Owed):
            return hospital.settle_remote(insured_in, event.setl_id, event.setl_version, event.amounts, event.posted_on)
        held = hospital.remote_version(insured_in, event.setl_id, event.setl_version)
        if held is None:
            return False  # reversed here before
        paid = self._remote_paid(hospital, insured_in, held)
        hospital.reverse_remote(insured_in, event.setl_id, held, paid, event.on_date)
        return True

    def _remote_paid(self, hospital: HospitalAccount, insured_in: str, held: RemoteVersion) -> dict[str, int]:
        """fund -> what a payment already gave the hospital for a remote settlement version."""
        postings = remote_settled_postings(hospital=hospital.fixmedins_code, insured_in=insured_in,
                                           amounts=held.amounts)  # fmt: skip
        evidence = self._paid_evidence(hospital, held.posted_on, (hospital.id, held.version))
        return hospital.paid_for(postings, held.posted_on, *evidence)

    def decide_region_clearing(
        self, other: str, month: str, month_end: dt.date, read_dues: Callable[[dt.date], tuple[Dues, Dues]], *,
        on_date: dt.date, operator: str,
    ) -> tuple[str | None, Dues]:  # fmt: skip
        """Record the clearing with `other` for `month` (its next name) of what `read_dues` says
        is owed both ways up to the day it clears (RegionClearings.through) and not cleared, by
        this region's books and the other's, the bank paying the net; its name (None when
        nothing is owed) and this region's dues. Read again on each attempt: figures that miss a
        clearing recorded since are refused (StaleRead), so two runs at once clear once. Refused
        by name when the bank cannot pay (core.funds)."""

        def work(uow: UnitOfWork) -> tuple[str | None, Dues]:
            book = self._clearings(uow, other)
            through = book.through(month_end)
            if on_date < through:
                raise YibaoError(
                    f"clearing with {other} up to {through}: its date {on_date} is before what it clears",
                    reason="clearing_date_before_its_dues",
                )
            dues, theirs = read_dues(through)
            if dues.clearings != len(book.cleared):
                raise StaleRead(f"clearings with {other}: the figures read miss one recorded since")
            if dues.empty:
                return None, dues
            name = book.next_name(month)
            book.clear(name, decided_in=self.region, month=month, through=through.isoformat(), dues=dues,
                       on_date=on_date.isoformat(), operator=operator, theirs=theirs)  # fmt: skip
            self._draw_from_banks(uow, book.recorded_postings(), on_date)
            return name, dues

        try:
            return self._in_transaction(work)
        except RegionCannotPay:
            raise
        except InsufficientFundBalance as exc:
            raise RegionCannotPay(f"region {self.region}: {exc}") from None

    def check_clearing_draws(self, other: str, dues: Dues, on_date: dt.date) -> None:
        """Refuse, before `other` decides a clearing with this region, what this region's bank
        could not pay of it: its mirror here cannot be refused once decided. As of now, not
        under this region's write lock (core.funds)."""
        uow = self.unit_of_work()
        self._draw_from_banks(uow, region_clearing_postings(other=other, owed_to=dues.owed_to,
                                                            owed_by=dues.owed_by), on_date)  # fmt: skip
        checked = [draw for draw in uow.bank_draws if draw.amounts]
        if checked:
            try:
                self.region_log.check_bank_draws(checked)
            except InsufficientFundBalance as exc:
                raise RegionCannotPay(f"region {self.region}: {exc}") from None

    def region_clearings(self, other: str) -> RegionClearings | None:
        return self.unit_of_work().get(region_clearings_id(self.region, other), RegionClearings)

    def _clearings(self, uow: UnitOfWork, other: str) -> RegionClearings:
        book = uow.get(region_clearings_id(self.region, other), RegionClearings)
        return book if book is not None else uow.add(RegionClearings(region=self.region, other=other))

    def mirror_region_clearings(self, decided: Sequence[Any], *, tracking: Tracking) -> list[str]:
        """Record here each clearing another region decided with this one (its mirror: the dues of
        this region's books the decision read), once; returns the names recorded now."""

        def work(uow: UnitOfWork) -> list[str]:
            done = []
            for c in decided:
                mirrored = Dues(c.their_owed_to or {}, c.their_owed_by or {})
                if self._clearings(uow, c.region).clear(
                    c.clearing, decided_in=c.region, month=c.month, through=c.through, dues=mirrored,
                    on_date=c.on_date, operator=c.operator,
                ):  # fmt: skip
                    done.append(c.clearing)
            return done

        return self._tracked(work, tracking)
