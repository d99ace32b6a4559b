"""SaveInFlight (bulk/save_behind.py): a batch's outcomes are given only once its save has
committed, or after the batch was settled again; never after a failure, however often asked."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from app.outcomes import ConcurrencyConflict, Outcome
from bulk.save_behind import SaveInFlight

COMPUTED = [Outcome("settled", reason=None)]
AGAIN = [Outcome("duplicate")]


def saved(error: BaseException | None = None) -> Future:
    future: Future = Future()
    if error is None:
        future.set_result([1, 2, 3])
    else:
        future.set_exception(error)
    return future


def test_a_save_that_stood_gives_the_computed_outcomes() -> None:
    in_flight = SaveInFlight(saved(), COMPUTED, lambda: pytest.fail("settled again"), lambda: pytest.fail("forgot"))
    assert in_flight.finish() is True
    assert in_flight.outcomes() == COMPUTED


def test_a_save_that_lost_gives_the_outcomes_of_settling_again() -> None:
    in_flight = SaveInFlight(saved(IntegrityError("lost")), COMPUTED, lambda: AGAIN, lambda: None)
    assert in_flight.finish() is False
    assert in_flight.outcomes() == AGAIN and in_flight.outcomes() == AGAIN


def test_when_settling_again_fails_every_later_call_fails_too() -> None:
    def give_up() -> list[Outcome]:
        raise ConcurrencyConflict("gave up")

    in_flight = SaveInFlight(saved(IntegrityError("lost")), COMPUTED, give_up, lambda: None)
    for _ in range(3):
        with pytest.raises(ConcurrencyConflict):
            in_flight.outcomes()


def test_a_save_that_failed_otherwise_forgets_the_kept_aggregates_and_never_gives_outcomes() -> None:
    forgotten = []
    in_flight = SaveInFlight(
        saved(OperationalError("connection lost")), COMPUTED, lambda: AGAIN, lambda: forgotten.append(1)
    )
    for _ in range(2):
        with pytest.raises(OperationalError):
            in_flight.outcomes()
    assert forgotten == [1]
