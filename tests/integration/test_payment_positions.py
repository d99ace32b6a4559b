"""What a hospital payment paid is decided by the journal position it records, never by time
(issue 17 item 2), each interleaving made to happen at one exact point on PostgreSQL.

Amounts from policy-330109-2023.toml for a resident, inpatient at a level-1 hospital: a claim of
10,000.00 within the policy range pays basic (fund 390100) 0.9 x (10,000 - 800) = 8,280.00.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from app.region import RegionApplication
from core.hospital import HospitalAccount, OwedAt
from core.ids import hospital_id
from core.money import format_yuan
from core.records import MemberRecord, parse_claim
from projections.read_model import catch_up
from projections.statements import owed_reader, owed_to_hospital
from store.app import Store
from store.server import ServerLocation
from tests.conftest import EXAMPLES, example_region

REGION = "330109"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"
THROUGH = dt.date(2023, 12, 31)


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    return example_region(store, REGION, overdraft=True)


@pytest.fixture
def other(location: ServerLocation) -> Any:
    """The same region through another store: another process's connections and aggregates."""
    with Store(location) as store:
        yield store.region(REGION)


def settle(app: RegionApplication, setl_id: str, hospital: str, setl_time: str = "2023-03-01") -> None:
    psn_no = f"M-{setl_id}"
    record = MemberRecord(
        psn_no=psn_no, insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=None,
    )  # fmt: skip
    assert [o.status for o in app.import_members([record])] == ["recorded"]
    raw = {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": hospital, "hosp_lv": 1, "med_type": "21",
        "setl_time": setl_time, "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00",
    }  # fmt: skip
    assert [o.status for o in app.settle_claims([parse_claim(raw)])] == ["settled"]


def pay(app: RegionApplication, payment_id: str, hospital: str, read_owed: Callable[[], OwedAt]) -> dict[str, str]:
    ((_, result),) = app.pay_hospitals(
        [hospital], payment_id=payment_id, read_owed=read_owed, through=THROUGH, paid_on=dt.date(2024, 1, 5),
        operator="fin-1",
    )  # fmt: skip
    assert result.status == "recorded"
    return {p.account: format_yuan(p.amount) for p in result.postings if p.account == "payable_to_hospitals"}


def balances(app: RegionApplication, hospital: str) -> dict[str, str]:
    """payable (owed to the hospital) and receivable (owed by it) of fund 390100, in yuan."""
    catch_up(app)
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT account, coalesce(sum(amount), 0) AS total FROM region_330109.journal "
            "WHERE party = %s AND fund = '390100' GROUP BY account",
            (hospital,),
        )
        totals = {row["account"]: int(row["total"]) for row in curs.fetchall()}
    return {
        "payable": format_yuan(-totals.get("payable_to_hospitals", 0)),
        "receivable": format_yuan(totals.get("receivable_from_hospitals", 0)),
    }


def then(read: Callable[[], OwedAt], action: Callable[[], object]) -> tuple[Callable[[], OwedAt], list[int]]:
    """`read`, with `action` run once right after its first sum: another writer between the
    payment's read and its save. Also gives the positions each call summed at."""
    positions: list[int] = []

    def reading() -> OwedAt:
        at = read()
        positions.append(at.position)
        if len(positions) == 1:
            action()
        return at

    return reading, positions


def test_a_reversal_committed_after_the_sum_was_read_is_summed_again_and_not_paid(
    app: RegionApplication, other: RegionApplication
) -> None:
    settle(app, "SR-1", "H-SR")
    settle(app, "SR-2", "H-SR")
    read, positions = then(owed_reader(app, THROUGH), lambda: other.reverse("SR-1", operator="op", reason="void"))

    paid = pay(app, "PAY-SR", "H-SR", read)

    assert paid == {"payable_to_hospitals": "8280.00"}  # SR-2 only
    assert len(positions) == 2 and positions[1] > positions[0]
    assert balances(app, "H-SR") == {"payable": "0.00", "receivable": "0.00"}


def test_a_reversal_committed_after_the_accounts_were_read_makes_the_save_fail_and_the_payment_sum_again(
    app: RegionApplication, other: RegionApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    settle(app, "SA-1", "H-SA")
    settle(app, "SA-2", "H-SA")
    select = app.recorder.select_positions  # type: ignore[attr-defined]
    calls: list[int] = []

    def select_then_reverse(keys: Any) -> Any:  # the payment's accounts are read: now the reversal
        found = select(keys)
        calls.append(len(keys))
        if len(calls) == 1:
            other.reverse("SA-1", operator="op", reason="void")
        return found

    monkeypatch.setattr(app.recorder, "select_positions", select_then_reverse)
    read, positions = then(owed_reader(app, THROUGH), lambda: None)

    paid = pay(app, "PAY-SA", "H-SA", read)

    assert paid == {"payable_to_hospitals": "8280.00"}
    assert len(positions) == 2  # the first save lost to the reversal on the account's version
    assert balances(app, "H-SA") == {"payable": "0.00", "receivable": "0.00"}


def test_a_settlement_committed_after_the_sum_was_read_is_not_paid_and_its_reversal_owes_nothing_back(
    app: RegionApplication, other: RegionApplication
) -> None:
    # Recorded before the payment was, dated within its period, but not in its sum: by time it
    # would count as paid, and its reversal would be a receivable while its payable stood.
    settle(app, "SL-1", "H-SL")
    read, _ = then(owed_reader(app, THROUGH), lambda: settle(other, "SL-2", "H-SL", "2023-02-01"))

    assert pay(app, "PAY-SL", "H-SL", read) == {"payable_to_hospitals": "8280.00"}
    assert balances(app, "H-SL") == {"payable": "8280.00", "receivable": "0.00"}

    app.reverse("SL-2", operator="op", reason="void", on_date=dt.date(2024, 2, 1))
    app.reverse("SL-1", operator="op", reason="void", on_date=dt.date(2024, 2, 1))

    assert balances(app, "H-SL") == {"payable": "0.00", "receivable": "8280.00"}
    account = app.hospital_account("H-SL")
    assert account is not None and account.receivable == {"390100": 828000}


def test_a_payment_recorded_before_positions_paid_what_was_recorded_before_it(app: RegionApplication) -> None:
    # A payment stored without `position` (as every payment before this change): it is taken at
    # its own place in the log.
    settle(app, "OLD-1", "H-OLD")
    catch_up(app)
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        owed = owed_to_hospital(curs, datastore.schema, "H-OLD", THROUGH)
    account = HospitalAccount(fixmedins_code="H-OLD")
    account.pay("PAY-OLD", THROUGH.isoformat(), "2024-01-05", owed, "fin-1", position=0)
    stored = [app.mapper.to_stored_event(e) for e in account.collect_events()]
    state = msgspec.json.decode(stored[-1].state)
    del state["position"]
    stored[-1] = StoredEvent(stored[-1].originator_id, stored[-1].originator_version, stored[-1].topic,
                             msgspec.json.encode(state))  # fmt: skip
    app.recorder.insert_events(stored)
    settle(app, "OLD-2", "H-OLD")  # after the payment

    loaded = app.hospital_account("H-OLD")
    assert loaded is not None and [m.position for m in loaded.payments["390100"]] == [None]
    app.reverse("OLD-1", operator="op", reason="void", on_date=dt.date(2024, 2, 1))
    app.reverse("OLD-2", operator="op", reason="void", on_date=dt.date(2024, 2, 1))

    assert balances(app, "H-OLD") == {"payable": "0.00", "receivable": "8280.00"}
    assert app.repository.get(hospital_id("H-OLD")).receivable == {"390100": 828000}
