"""core.codec.stored_event makes the library's StoredEvent without its dataclass __init__."""

from __future__ import annotations

import dataclasses

from eventsourcing.persistence import StoredEvent

from core.codec import EventMapper, stored_event
from core.ids import member_year_id
from core.member_year import MemberYear


def test_it_is_the_stored_event_the_library_makes_with_every_field() -> None:
    assert [f.name for f in dataclasses.fields(StoredEvent)] == [
        "originator_id",
        "originator_version",
        "topic",
        "state",
    ]
    made = stored_event(member_year_id("P1", 2023), 3, "MemberYear.ClaimApplied", b"{}")
    assert made == StoredEvent(member_year_id("P1", 2023), 3, "MemberYear.ClaimApplied", b"{}")
    assert vars(made) == vars(StoredEvent(member_year_id("P1", 2023), 3, "MemberYear.ClaimApplied", b"{}"))


def test_the_mapper_stores_an_event_it_reads_back_the_same() -> None:
    member_year = MemberYear(psn_no="P1", year=2023)
    member_year.apply_claim("S1", 1, "2023-03-01", {"basic_paid": 12000})
    mapper = EventMapper()
    for event in member_year.pending_events:
        stored = mapper.to_stored_event(event)
        assert isinstance(stored, StoredEvent)
        assert (stored.originator_id, stored.originator_version) == (member_year.id, event.originator_version)
        assert vars(mapper.to_domain_event(stored)) == vars(event)
