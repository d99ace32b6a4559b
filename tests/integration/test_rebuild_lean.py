"""A rebuild with lean decoding and a writer thread leaves the tables the library's domain events build.

Two regions record a year with every kind of event the read model handles: settlements, a
reversal, a correction, a look-back (因病致贫), contributions, a hospital payment, a deduction, a
recovery, a fine, and transfers that complete and that are rejected. The reference is the read
model's handlers fed with the library mapper's domain events of the whole log, in memory, in one
page; the tables a rebuild writes at any page size must hold exactly those rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import Tracking

from app.clearing_between_regions import clear_between_regions
from app.region import RegionApplication
from app.transfer_relay import relay
from core.maternity import AllowanceFacts
from core.policy import parse_policy
from core.records import Contribution, parse_claim
from projections.read_model import (
    LINE_COLUMNS,
    SETTLEMENT_COLUMNS,
    TRANSFER_COLUMNS,
    USAGE_COLUMNS,
    InvalidEvent,
    Progress,
    RegionReadModel,
    catch_up,
    open_view,
    read_model_topics,
    rebuild,
)
from projections.region_dues import dues_reader
from projections.statements import budget_reader, owed_reader
from store.app import Store
from tests.conftest import EXAMPLES
from tests.integration.test_projections_and_verify import app
from tests.integration.test_transfers import TODAY, A, B, enrol, start

__all__ = ["app"]  # region A's year, a fixture of the projection tests

POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"


@pytest.fixture(scope="module")
def logs(store: Store, app: RegionApplication) -> tuple[RegionApplication, RegionApplication]:
    """A's year of the projection tests, plus transfers to B as in the transfer tests."""
    store.add_region(B)
    b = store.region(B)
    text = POLICY_FILE.read_text(encoding="utf-8").replace('region = "330109"', f'region = "{B}"')
    assert b.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    for psn_no, account in (("T-SMALL", "500.00"), ("T-BIG", "1000.00"), ("T-REJ", "2500.50")):
        enrol(app, psn_no, account)
        start(app, f"TR-{psn_no}", psn_no)
    app.review_transfer("TR-T-BIG", approve=True, operator="chief-2", reason="documents checked", on_date=TODAY)
    app.review_transfer("TR-T-REJ", approve=False, operator="chief-2", reason="wrong region", on_date=TODAY)
    relay(store)  # arrivals in B, completions in A
    _payees_and_budgets(app)
    _treated_in_b(store, app)
    return app, b


def _treated_in_b(store: Store, app: RegionApplication) -> None:
    """异地就医: two claims of A's member M-2 at B's hospital HB-1, one reversed, relayed to B, and
    the month cleared between the regions."""
    line = {
        "psn_no": "M-2", "fixmedins_code": "HB-1", "hosp_lv": 2, "med_type": "21", "setl_time": "2023-05-10",
        "medfee_sumamt": "3000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00",
        "inscp_scp_amt": "3000.00", "mdtrtarea_admvs": B,
    }  # fmt: skip
    claims = [parse_claim({"setl_id": setl_id, **line}) for setl_id in ("YD-1", "YD-2")]
    assert [o.status for o in app.settle_claims(claims)] == ["settled", "settled"]
    app.reverse("YD-2", operator="clerk-1", reason="billed twice", on_date=dt.date(2023, 5, 12))
    cleared = clear_between_regions(store, "2023-05", read_dues=dues_reader(), on_date=dt.date(2023, 6, 3),
                                    operator="fin-1")  # fmt: skip
    assert [pair.clearing for pair in cleared] == [f"{A}-{B}-2023-05-1"]


def _payees_and_budgets(app: RegionApplication) -> None:
    """The flows of issue 21: a maternity allowance reversed and recorded again, a payment to
    members (M-LB's look-back and the allowance), a year-end budget settlement."""
    app.import_contributions([Contribution("C-M-2-MAT", "M-2", "510100", dt.date(2023, 1, 10), 5_000_000, 0)])
    app.grant_allowance(AllowanceFacts("MA-1", "M-2", 98, 20_000, "2023-03-01", "clerk-1"))
    app.reverse_allowance("MA-1", on_date=dt.date(2023, 3, 2), operator="clerk-1", reason="wrong daily wage")
    app.grant_allowance(AllowanceFacts("MA-2", "M-2", 98, 15_000, "2023-03-02", "clerk-1"))
    through = dt.date(2023, 6, 30)
    paid = app.pay_members("MP-1", read_owed=owed_reader(app, through, members=True), through=through,
                           paid_on=through, operator="fin-1")  # fmt: skip
    assert paid.status == "recorded" and paid.paid["M-2"] == {"510100": 98 * 15_000}
    text = POLICY_FILE.read_text(encoding="utf-8") + BUDGET
    assert app.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    app.set_budget(hospital="H001", year=2023, amount=1_000_000, operator="fin-1")
    settled = app.settle_budgets(2023, read_use=budget_reader(app, 2023), on_date=dt.date(2024, 1, 20),
                                 operator="fin-1")  # fmt: skip
    assert [result.status for _, _, result in settled] == ["recorded"]


BUDGET = "\n[budget]\nsurplus_kept_bp = 5000\noverspend_shared_bp = 6000\noverspend_shared_up_to_bp = 1000\n"


def projected(app: RegionApplication) -> list[Any]:
    head = app.recorder.max_notification_id() or 0
    return app.recorder.select_notifications(1, head + 1, stop=head, topics=read_model_topics())


def plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(value.isoformat() if isinstance(value, dt.date) else value for value in row)


def through_the_mapper(app: RegionApplication) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the read model's handlers build from the library mapper's domain events, in one page."""
    projection = RegionReadModel(view=None)  # type: ignore[arg-type]  # rows in memory only
    for notification in projected(app):
        projection.handle(app.mapper.to_domain_event(notification), Tracking(app.name, notification.id))
    page = projection.page
    assert not (page.reversed or page.lookback or page.transfer_status or page.line_reversals)  # one page holds all
    return {
        "journal": sorted(map(plain, page.journal)),
        "settlements": sorted(map(plain, page.settlements.values())),
        "member_usage": sorted((psn_no, year, *sums) for (psn_no, year), sums in page.usage.items()),
        "transfers": sorted(map(plain, page.transfers.values())),
        "settlement_lines": sorted(map(plain, page.lines.values())),
        "tracking": [(app.name, app.recorder.max_notification_id())],
    }


def tables(store: Store, app: RegionApplication) -> dict[str, list[tuple[Any, ...]]]:
    schema = f"region_{app.region}"
    queries = {
        "journal": "notification_id, leg, posted_on, kind, ref, fund, account, party, amount FROM {}.journal",
        "settlements": f"{', '.join(SETTLEMENT_COLUMNS)} FROM {{}}.settlements",
        "member_usage": f"psn_no, year, {', '.join(USAGE_COLUMNS)} FROM {{}}.member_usage",
        "transfers": f"{', '.join(TRANSFER_COLUMNS)} FROM {{}}.transfers",
        "settlement_lines": f"{', '.join(LINE_COLUMNS)} FROM {{}}.settlement_lines",
        "tracking": "application_name, notification_id FROM {}.notification_tracking",
    }
    with store.connect_admin() as conn:
        return {
            name: sorted(map(plain, conn.execute(f"SELECT {q.format(schema)}").fetchall()))
            for name, q in queries.items()
        }


@pytest.fixture(scope="module")
def expected(logs: tuple[RegionApplication, ...]) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    return {region.region: through_the_mapper(region) for region in logs}


def test_the_example_logs_hold_every_topic_the_read_model_handles(
    logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    assert {n.topic for region in logs for n in projected(region)} == set(read_model_topics())
    assert {row[8] for row in expected[A]["transfers"]} == {"completed", "rejected"}
    assert {row[8] for row in expected[B]["transfers"]} == {"received"}


@pytest.mark.parametrize("page_size", [1, 2, 7, 20_000])
def test_a_rebuild_writes_the_rows_the_library_mappers_events_build(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any], page_size: int
) -> None:
    for region in logs:
        head = region.recorder.max_notification_id() or 0
        assert rebuild(region, page_size=page_size) == Progress(head, head)
        assert tables(store, region) == expected[region.region]


def test_a_runner_overtaken_by_another_continues_from_where_the_other_got_to(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    view = open_view(a)
    view.reset()
    reported: list[Progress] = []

    def overtaken(progress: Progress) -> None:
        reported.append(progress)
        if len(reported) == 1:
            assert catch_up(a, page_size=4) == Progress(head, head)  # another runner, all the way

    # The next page was already read and decoded; its write fails on rows the other wrote.
    assert catch_up(a, view, page_size=3, on_page=overtaken) == Progress(head, head)
    assert reported == [Progress(projected(a)[2].id, head)]
    assert tables(store, a) == expected[A]


@contextmanager
def claim_applied_delta(store: Store, notification_id: int, delta: dict[str, Any]) -> Iterator[None]:
    """Change one stored event's delta behind the application's back (as the owner), then undo it."""
    with store.connect_admin() as conn:
        (state,) = conn.execute(
            "SELECT state FROM region_330109.events WHERE notification_id = %s", (notification_id,)
        ).fetchone()
        changed = msgspec.json.encode({**msgspec.json.decode(state), "delta": delta})
        conn.execute("ALTER TABLE region_330109.events DISABLE TRIGGER USER")
        try:
            conn.execute(
                "UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (changed, notification_id)
            )
            yield
        finally:
            conn.execute(
                "UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (state, notification_id)
            )
            conn.execute("ALTER TABLE region_330109.events ENABLE TRIGGER USER")


def test_an_invalid_event_stops_a_rebuild_with_the_pages_before_it_committed_and_reported(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    positions = [n.id for n in projected(a)]
    applied = [n.id for n in projected(a) if n.topic == "MemberYear.ClaimApplied"]
    bad = positions.index(applied[2])
    page_size = 2
    reported: list[Progress] = []
    with claim_applied_delta(store, applied[2], {"basic_paid": "100.00"}):
        with pytest.raises(InvalidEvent, match=r"basic_paid is not an amount in fen: '100\.00'"):
            rebuild(a, page_size=page_size, on_page=reported.append)
        committed = [positions[(page + 1) * page_size - 1] for page in range(bad // page_size)]
        assert bad // page_size >= 2 and reported == [Progress(end, head) for end in committed]
        assert tables(store, a)["tracking"] == [(a.name, committed[-1])]
        assert tables(store, a)["journal"] == [row for row in expected[A]["journal"] if row[0] <= committed[-1]]
    assert catch_up(a, open_view(a), page_size=page_size) == Progress(head, head)
    assert tables(store, a) == expected[A]
