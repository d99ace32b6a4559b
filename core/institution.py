"""The 定点 registry of one region: the hospitals and pharmacies (定点医疗机构, 定点零售药店) it
has an agreement with, and their suspensions (暂停医保结算) and terminations (解除协议).

One aggregate per region: a city registers hundreds of institutions, not millions, and every
batch of claims reads the whole registry once (it is kept between batches like a policy).
A region with no institution registered settles claims at any institution, as before the
registry existed; from its first registration, a claim must name an institution registered in
it, in force on the claim's date, at its registered level.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import attrs

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import registry_id

INSTITUTION_TYPES = ("hospital", "pharmacy")


class InstitutionRejected(YibaoError):
    reason = "institution_rejected"


class Standing(StrEnum):
    """An institution's standing on a date, as a claim there meets it."""

    ACTIVE = "active"
    UNKNOWN = "unknown_institution"
    SUSPENDED = "institution_suspended"
    TERMINATED = "institution_terminated"


@attrs.frozen
class Institution:
    """One registration: what the institution is, from `valid_from`."""

    fixmedins_code: str
    fixmedins_name: str
    fixmedins_type: str  # hospital | pharmacy
    hosp_lv: int
    admdvs: str
    valid_from: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Institution:
        return cls(**{f.name: obj[f.name] for f in attrs.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Suspension:
    begin: str
    end: str | None  # inclusive; None: until resumed
    reason: str
    operator: str

    def covers(self, day: str) -> bool:
        return self.begin <= day and (self.end is None or day <= self.end)


@attrs.define
class Entry:
    """What the registry knows of one institution: its registrations (latest last), suspensions
    and termination."""

    registrations: list[Institution] = attrs.field(factory=list)
    suspensions: list[Suspension] = attrs.field(factory=list)
    terminations: list[tuple[str, str]] = attrs.field(factory=list)  # (first day without, reason)

    def registration_on(self, day: str) -> Institution | None:
        """The registration in force on `day`: the latest `valid_from` on or before it (of two
        with the same date, the one recorded last)."""
        dated = [r for r in self.registrations if r.valid_from <= day]
        return max(reversed(dated), key=lambda r: r.valid_from) if dated else None

    def termination_on(self, day: str) -> tuple[str, str] | None:
        """The termination in force on `day`: the latest on or before it, unless a registration
        valid from a later date than it (a new agreement) is in force on `day`."""
        ended = max((t for t in self.terminations if t[0] <= day), default=None)
        if ended is None or any(ended[0] < r.valid_from <= day for r in self.registrations):
            return None
        return ended

    @property
    def open_termination(self) -> str | None:
        """The date of the last termination when no new agreement followed it."""
        last = max(self.terminations, default=None)
        if last is None or any(r.valid_from > last[0] for r in self.registrations):
            return None
        return last[0]

    def standing_on(self, day: str) -> tuple[Standing, str | None]:
        """The standing on `day` and a sentence saying why, when not active."""
        if self.registration_on(day) is None:
            return Standing.UNKNOWN, f"registered from {self.registrations[0].valid_from}"
        ended = self.termination_on(day)
        if ended is not None:
            return Standing.TERMINATED, f"agreement ended on {ended[0]}: {ended[1]}"
        held = next((s for s in self.suspensions if s.covers(day)), None)
        if held is not None:
            until = f" to {held.end}" if held.end else ""
            return Standing.SUSPENDED, f"settlement suspended from {held.begin}{until}: {held.reason}"
        return Standing.ACTIVE, None


@aggregate_topic("InstitutionRegistry")
class InstitutionRegistry(Aggregate):
    class Opened(Created):
        region: str

    class Registered(Event):
        institution: dict[str, Any]
        operator: str

        def apply(self, aggregate: Any) -> None:
            made = Institution.from_dict(self.institution)
            aggregate.entries.setdefault(made.fixmedins_code, Entry()).registrations.append(made)

    class Suspended(Event):
        fixmedins_code: str
        begin: str
        end: str | None
        reason: str
        operator: str

        def apply(self, aggregate: Any) -> None:
            held = Suspension(self.begin, self.end, self.reason, self.operator)
            aggregate.entries[self.fixmedins_code].suspensions.append(held)

    class Resumed(Event):
        """An open suspension ends the day before `on_date`."""

        fixmedins_code: str
        on_date: str
        reason: str
        operator: str

        def apply(self, aggregate: Any) -> None:
            entry = aggregate.entries[self.fixmedins_code]
            last = (dt.date.fromisoformat(self.on_date) - dt.timedelta(days=1)).isoformat()
            entry.suspensions = [attrs.evolve(s, end=last) if s.covers(self.on_date) else s for s in entry.suspensions]

    class Terminated(Event):
        fixmedins_code: str
        on_date: str
        reason: str
        operator: str

        def apply(self, aggregate: Any) -> None:
            aggregate.entries[self.fixmedins_code].terminations.append((self.on_date, self.reason))

    @staticmethod
    def create_id(region: str) -> Any:
        return registry_id(region)

    def __init__(self, region: str) -> None:
        self.region = region
        self.entries: dict[str, Entry] = {}

    def register(self, institution: Institution, operator: str) -> bool:
        """Record a registration; False (nothing recorded) when it is the institution's latest."""
        if institution.admdvs != self.region:
            raise InstitutionRejected(
                f"{institution.fixmedins_code} is registered in {institution.admdvs}, not {self.region}",
                reason="wrong_region",
            )
        entry = self.entries.get(institution.fixmedins_code)
        if entry is not None and institution in entry.registrations:
            return False  # recorded before: a file imported again changes nothing
        self.trigger_event(self.Registered, institution=institution.to_dict(), operator=operator)
        return True

    def suspend(self, code: str, begin: dt.date, end: dt.date | None, reason: str, operator: str) -> bool:
        """Suspend settlement at `code` from `begin` to `end` (inclusive; None: until resumed).
        False when that very suspension is recorded already."""
        entry = self._entry(code)
        if end is not None and end < begin:
            raise InstitutionRejected(f"--to {end} is before --from {begin}", reason="bad_period")
        held = Suspension(begin.isoformat(), end.isoformat() if end else None, reason, operator)
        if any((s.begin, s.end, s.reason) == (held.begin, held.end, held.reason) for s in entry.suspensions):
            return False
        self.trigger_event(self.Suspended, fixmedins_code=code, begin=held.begin, end=held.end, reason=reason,
                           operator=operator)  # fmt: skip
        return True

    def resume(self, code: str, on_date: dt.date, reason: str, operator: str) -> bool:
        """End the suspension in force on `on_date`; refused by name when none is."""
        entry = self._entry(code)
        if not any(s.covers(on_date.isoformat()) for s in entry.suspensions):
            raise InstitutionRejected(f"{code} has no suspension in force on {on_date}", reason="no_suspension")
        self.trigger_event(self.Resumed, fixmedins_code=code, on_date=on_date.isoformat(), reason=reason,
                           operator=operator)  # fmt: skip
        return True

    def terminate(self, code: str, on_date: dt.date, reason: str, operator: str) -> bool:
        """End the agreement from `on_date`; False when it is ended on that very date already,
        refused by name when it is ended on another (a registration valid from a later date than
        the end is a new agreement, which may be ended in turn)."""
        entry = self._entry(code)
        day, ended = on_date.isoformat(), entry.open_termination
        if ended == day:
            return False
        if ended is not None:
            raise InstitutionRejected(f"{code}'s agreement already ended on {ended}", reason="already_terminated")
        self.trigger_event(self.Terminated, fixmedins_code=code, on_date=on_date.isoformat(), reason=reason,
                           operator=operator)  # fmt: skip
        return True

    def _entry(self, code: str) -> Entry:
        entry = self.entries.get(code)
        if entry is None:
            raise InstitutionRejected(f"no institution {code} in region {self.region}", reason="unknown_institution")
        return entry


def standing(registry: InstitutionRegistry | None, code: str, day: dt.date) -> tuple[Standing, str | None]:
    """How a claim dated `day` at `code` meets the region's registry: a region with none
    registered accepts every institution."""
    if registry is None or not registry.entries:
        return Standing.ACTIVE, None
    entry = registry.entries.get(code)
    if entry is None:
        return Standing.UNKNOWN, f"{code} is not a 定点 institution of region {registry.region}"
    return entry.standing_on(day.isoformat())
