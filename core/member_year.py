"""MemberYear: one person's accumulators for one benefit year; every cap is enforced on them.

Replaying its events gives the year-to-date figures that the tier rules need (SPEC 4). Each
settlement adds its delta; a reversal subtracts exactly the delta it names; look-back
assistance adds its own delta. The aggregate refuses to apply a settlement twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from core.codec import aggregate_topic
from core.errors import StaleRead
from core.events import Aggregate, Created, Event
from core.ids import member_year_id
from core.tiers import YearToDate, nonzero

NOTHING_YET = YearToDate()


@attrs.frozen
class AppliedClaim:
    version: int
    setl_time: str
    # everything this settlement added, look-back included, as recorded (zero amounts left out)
    delta_fen: dict[str, Any] = attrs.field(converter=nonzero)

    @property
    def delta(self) -> YearToDate:
        # Built only when needed (a reversal or a look-back): a long member-year holds hundreds.
        return YearToDate.from_dict(self.delta_fen)


@aggregate_topic("MemberYear")
class MemberYear(Aggregate):
    class Opened(Created):
        psn_no: str
        year: int

    class ClaimApplied(Event):
        psn_no: str
        year: int
        setl_id: str
        setl_version: int
        setl_time: str
        delta: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.unfolded.append((self.delta, 1))
            aggregate.applied[self.setl_id] = AppliedClaim(self.setl_version, self.setl_time, self.delta)

    class ClaimReversed(Event):
        psn_no: str
        year: int
        setl_id: str
        setl_version: int
        delta: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.unfolded.append((self.delta, -1))
            del aggregate.applied[self.setl_id]

    class AssistanceLookedBack(Event):
        psn_no: str
        year: int
        setl_id: str
        delta: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            delta = YearToDate.from_dict(self.delta)
            aggregate.ytd = aggregate.ytd.plus(delta)
            applied = aggregate.applied[self.setl_id]
            aggregate.applied[self.setl_id] = attrs.evolve(applied, delta_fen=applied.delta.plus(delta).to_dict())

    class RecognitionNoted(Event):
        """The member was recognised illness_poverty from `valid_from` (a member record). It changes
        nothing here; its save conflicts with any claim of this member-year being settled under the
        earlier record at the same moment, which is then settled again and gets the assistance."""

        valid_from: str

        def apply(self, aggregate: Any) -> None:
            pass

    class TransferRecorded(Event):
        """The member transferred out of the region from `transfer_date` (`insured_elsewhere`),
        or that ended (the transfer was rejected, or the member transferred back in). Its save
        conflicts with any claim of this member-year being settled at the same moment."""

        transfer_id: str
        transfer_date: str
        insured_elsewhere: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.transferred_from = self.transfer_date if self.insured_elsewhere else None

    @staticmethod
    def create_id(psn_no: str, year: int) -> Any:
        return member_year_id(psn_no, year)

    transferred_from: str | None = None  # ISO date from which the member is insured elsewhere

    def note_recognition(self, valid_from: str) -> None:
        self.trigger_event(self.RecognitionNoted, valid_from=valid_from)

    def record_transfer(self, transfer_id: str, transfer_date: str, *, insured_elsewhere: bool) -> None:
        self.trigger_event(
            self.TransferRecorded,
            transfer_id=transfer_id,
            transfer_date=transfer_date,
            insured_elsewhere=insured_elsewhere,
        )

    def __init__(self, psn_no: str, year: int) -> None:
        self.psn_no = psn_no
        self.year = year
        self.ytd = NOTHING_YET  # frozen, so one instance serves every new member-year
        self.applied: dict[str, AppliedClaim] = {}  # settlements in force this year

    # The accumulators are summed when read, not at each replayed event: a load replays many
    # deltas and reads the total once (measured: a third of a bulk load of member-years).
    # `unfolded` holds the (delta, sign) pairs not yet added into `_ytd`.

    def _fold(self, total: YearToDate) -> None:
        self._ytd: YearToDate = total
        self.unfolded: list[tuple[Mapping[str, int], int]] = []

    @property
    def ytd(self) -> YearToDate:
        if self.unfolded:
            self._fold(self._ytd.plus_all(self.unfolded))
        return self._ytd

    @ytd.setter
    def ytd(self, value: YearToDate) -> None:
        self._fold(value)

    def apply_claim(self, setl_id: str, setl_version: int, setl_time: str, delta: Mapping[str, Any]) -> None:
        """Add what a settlement version takes (`delta`: fen by YearToDate field, as its facts hold it)."""
        if setl_id in self.applied:
            raise StaleRead(f"settlement {setl_id} is already applied to {self.psn_no}/{self.year}")
        if self.transferred_from is not None and setl_time >= self.transferred_from:
            # The member record read for this claim predates the transfer: read again.
            raise StaleRead(f"{self.psn_no} is transferred out from {self.transferred_from}")
        self.trigger_event(
            self.ClaimApplied,
            psn_no=self.psn_no,
            year=self.year,
            setl_id=setl_id,
            setl_version=setl_version,
            setl_time=setl_time,
            delta=nonzero(delta),
        )

    def reverse_claim(self, setl_id: str, setl_version: int) -> YearToDate:
        """Give back exactly what the settlement (and any look-back on it) took; returns it."""
        applied = self.applied.get(setl_id)
        if applied is None or applied.version != setl_version:
            raise StaleRead(f"settlement {setl_id} v{setl_version} is not applied to {self.psn_no}/{self.year}")
        self.trigger_event(
            self.ClaimReversed,
            psn_no=self.psn_no,
            year=self.year,
            setl_id=setl_id,
            setl_version=setl_version,
            delta=applied.delta_fen,
        )
        return applied.delta

    def look_back(self, setl_id: str, delta: YearToDate) -> None:
        if setl_id not in self.applied:
            raise AssertionError(f"settlement {setl_id} is not applied to {self.psn_no}/{self.year}")
        self.trigger_event(
            self.AssistanceLookedBack, psn_no=self.psn_no, year=self.year, setl_id=setl_id, delta=delta.to_dict()
        )
