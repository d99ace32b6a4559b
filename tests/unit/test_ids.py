"""Aggregate ids are fixed forever: stored events are found by them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from core import ids

NAMESPACE = uuid.UUID("6f1c2b1e-3a52-5c1f-9d0e-7969626130a1")


def test_a_member_id_is_the_one_every_stored_event_was_written_under() -> None:
    assert ids.member_id("33010900093556") == uuid.UUID("47e2f53c-fc41-5337-8dae-145cfab7e451")


@given(st.text())
def test_the_fast_uuid5_is_the_standard_one(name: str) -> None:
    made = ids.uuid5(name)
    expected = uuid.uuid5(NAMESPACE, name)
    assert made == expected
    assert (made.version, made.variant, made.is_safe) == (5, uuid.RFC_4122, uuid.SafeUUID.unknown)
    assert hash(made) == hash(expected) and str(made) == str(expected)
