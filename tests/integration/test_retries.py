"""How a unit of work's retries end (RegionApplication._in_transaction), on PostgreSQL: reads
that disagree for a race are retried; reads that disagree the same way on every fresh attempt
are the records themselves, named as such rather than blamed on concurrent writers."""

from __future__ import annotations

import itertools

import pytest

from app.region import ConcurrencyConflict, InconsistentRecords, RegionApplication, retry_count_max
from core.errors import StaleRead
from store.app import Store


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    store.add_region("330199")
    return store.region("330199")


def test_reads_that_disagree_once_are_read_again_and_the_work_is_done(app: RegionApplication) -> None:
    attempts = itertools.count(1)

    def work(_: object) -> str:
        if next(attempts) == 1:
            raise StaleRead("a transfer committed between two reads")
        return "done"

    assert app._in_transaction(work) == "done"
    assert next(attempts) == 3  # two attempts


def test_reads_that_disagree_the_same_way_every_time_are_inconsistent_records(app: RegionApplication) -> None:
    def work(_: object) -> None:
        raise StaleRead("P1 is transferred out from 2023-09-01")

    with pytest.raises(InconsistentRecords) as raised:
        app._in_transaction(work)

    assert raised.value.reason == "inconsistent_records"
    assert str(raised.value) == (
        f"region 330199: P1 is transferred out from 2023-09-01, on every one of {retry_count_max} fresh reads: "
        "the records themselves disagree, not a concurrent writer"
    )


def test_reads_that_disagree_differently_each_time_are_a_concurrency_conflict(app: RegionApplication) -> None:
    attempts = itertools.count(1)

    def work(_: object) -> None:
        raise StaleRead(f"race {next(attempts)}")

    with pytest.raises(ConcurrencyConflict):
        app._in_transaction(work)
