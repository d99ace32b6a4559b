"""How a unit of work's retries end (RegionApplication._in_transaction), on PostgreSQL: reads
that disagree for a race are retried; reads that disagree the same way on every fresh attempt
are the records themselves, named as such rather than blamed on concurrent writers; a batch of
claims that keeps losing to concurrent writers is settled claim by claim."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from app.base import retry_count_max
from app.outcomes import ConcurrencyConflict, InconsistentRecords
from app.region import RegionApplication
from core.errors import StaleRead
from core.ids import settlement_id
from core.records import MemberRecord, parse_claim
from core.settlement import Settlement
from store.app import Store
from tests.conftest import EXAMPLES, example_region


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


def test_a_batch_that_keeps_losing_to_concurrent_writers_is_settled_claim_by_claim(
    store: Store, app: RegionApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run that keeps writing the aggregates of a batch of several claims (here: every
    # save of more than one settlement loses) must not end the run: after the bounded retries
    # the batch is settled one claim a transaction, in order, each exactly once.
    policy = EXAMPLES / "policy-330109-2023.toml"
    if not policy.exists():
        pytest.skip(f"{policy} not found")
    region = example_region(store)
    record = MemberRecord(
        psn_no="BB-1", insuplc_admdvs="330109", insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=None,
    )  # fmt: skip
    assert [o.status for o in region.import_members([record])] == ["recorded"]
    same = {
        "psn_no": "BB-1", "fixmedins_code": "H-BB", "hosp_lv": 1, "med_type": "21", "medfee_sumamt": "10000.00",
        "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00",
    }  # fmt: skip
    claims = [parse_claim({"setl_id": f"BB-{i}", "setl_time": f"2023-03-0{i}", **same}) for i in (1, 2, 3)]
    claims.append(claims[0])  # the same line again: a duplicate of the first, as in one batch
    saves: list[int] = []
    save = region.save_aggregates

    def contended(aggregates: Any, tracking: Any = None, **kwargs: Any) -> None:
        settlements = sum(isinstance(a, Settlement) for a in aggregates)
        saves.append(settlements)
        if settlements > 1:
            raise IntegrityError("another writer got there first")
        save(aggregates, tracking, **kwargs)

    monkeypatch.setattr(region, "save_aggregates", contended)

    outcomes = region.settle_claims(claims)

    assert [o.status for o in outcomes] == ["settled", "settled", "settled", "duplicate"]
    assert saves == [3] * retry_count_max + [1, 1, 1]  # the batch 8 times, then one claim a save
    assert [o.facts.amounts["hifp_pay"] for o in outcomes if o.facts] == [828000, 828000, 828000, 828000]
    for claim in claims[:3]:
        assert len(list(region.recorder.select_events(settlement_id(claim.setl_id)))) == 1
