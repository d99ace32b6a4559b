"""The read model follows the log resumably, and `yibao verify` finds what was changed behind its back.

A region's year is recorded through RegionApplication: settlements, a reversal, a correction, a
look-back (因病致贫), contributions, a hospital payment, a deduction after payment, a recovery and a
fine. The projection is then interrupted and resumed at every page size down to one event a page
(so that reversals, corrections and look-backs land on a different page from the settlement they
change), and always ends equal to a rebuild. Tampering is done as the database owner, with the
event table's triggers disabled, and undone at the end of each test, so that `verify` passes again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import psycopg
import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import StoredEvent

from app.region import RegionApplication
from commands.cli import main
from core.funds import FUND_TRANSFER, OPENING, entry
from core.money import parse_yuan
from core.policy import parse_policy
from core.records import Contribution, MemberRecord, parse_claim
from projections.read_model import Progress, catch_up, open_view, progress, read_model_topics, rebuild
from projections.statements import owed_reader
from store.app import Store
from store.chain import event_hash, micros
from tests.conftest import EXAMPLES

REGION = "330109"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"


def member(psn_no: str, insutype: str = "390", category: str = "none", valid_from: str = "2023-01-01") -> MemberRecord:
    return MemberRecord(
        psn_no=psn_no, insuplc_admdvs=REGION, insutype=insutype, assist_category=category, chronic=False,
        supplementary=(), valid_from=dt.date.fromisoformat(valid_from), family_of=None,
    )  # fmt: skip


def claim(setl_id: str, psn_no: str, setl_time: str, inscp: str, med_type: str = "21") -> Any:
    return parse_claim(
        {
            "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H001", "hosp_lv": 1, "med_type": med_type,
            "setl_time": setl_time, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
            "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    store.add_region(REGION)
    region = store.region(REGION)
    policy = parse_policy(POLICY_FILE.read_bytes())
    assert region.record_policy(2023, policy.content_hash, POLICY_FILE.read_text(encoding="utf-8"))
    region.import_members([member("M-1"), member("M-2", "310"), member("M-3", category="dibao"), member("M-LB")])
    region.import_contributions(
        [Contribution("C-M-2", "M-2", "310100", dt.date(2023, 1, 10), 600000, 240000),
         Contribution("C-M-1", "M-1", "390100", dt.date(2023, 1, 15), 38000, 0)]
    )  # fmt: skip
    outcomes = region.settle_claims(
        [
            claim("S-1", "M-1", "2023-02-01", "10000.00"),
            claim("S-2", "M-2", "2023-02-10", "1500.00", med_type="11"),  # paid from the individual account
            claim("S-3", "M-3", "2023-03-01", "30000.00"),
            claim("S-4", "M-1", "2023-03-05", "20000.00"),
            claim("S-LB", "M-LB", "2023-03-10", "10000.00"),
        ]
    )
    assert [o.status for o in outcomes] == ["settled"] * 5
    region.reverse("S-4", operator="op-1", reason="duplicate billing", on_date=dt.date(2023, 3, 20))
    corrected = region.correct_claims(
        [claim("S-3", "M-3", "2023-03-01", "25000.00")], operator="op-2", reason="hospital resubmitted",
        on_date=dt.date(2023, 3, 25),
    )  # fmt: skip
    assert [o.status for o in corrected] == ["settled"]
    # M-LB is recognised as 因病致贫: S-LB, within the six months before, gets assistance afterwards.
    (recognised,) = region.import_members([member("M-LB", category="illness_poverty", valid_from="2023-06-01")])
    assert [grant["setl_id"] for grant in recognised.extra["lookback"]] == ["S-LB"]
    # The funds' balances brought in (期初结余) and the serious-illness financing (大病保险筹资): a
    # fund pays hospitals only what its bank account holds.
    region.record_fund_entries(
        [entry(OPENING, f"OPEN-{fund}", fund=fund, amount=parse_yuan("100000.00"), on_date=dt.date(2023, 1, 1),
               reason="期初结余", operator="fin-1") for fund in ("390100", "610100")]
        + [entry(FUND_TRANSFER, "SI-330109-2023-390", fund="390100", to_fund="390200", amount=parse_yuan("20000.00"),
                 on_date=dt.date(2023, 1, 31), reason="大病保险筹资划转", operator="fin-1")]
    )  # fmt: skip
    catch_up(region)
    region.pay_hospitals(
        ["H001"], payment_id="PAY-Q1", read_owed=owed_reader(region, dt.date(2023, 3, 31)),
        through=dt.date(2023, 3, 31), paid_on=dt.date(2023, 3, 31), operator="fin-1",
    )  # fmt: skip
    region.deduct(
        "DED-1", setl_id="S-1", fund="390100", kind="reduce", amount=parse_yuan("500.00"),
        on_date=dt.date(2023, 5, 1), operator="auditor-1", reason="over-treatment",
    )  # fmt: skip
    region.recover("REC-1", hospital="H001", fund="390100", amount=parse_yuan("200.00"), on_date=dt.date(2023, 6, 1),
                   operator="fin-1")  # fmt: skip
    region.fine("FINE-1", hospital="H001", fund="390100", amount=parse_yuan("3000.00"), on_date=dt.date(2023, 7, 1),
                operator="inspector-1", reason="fraudulent billing")  # fmt: skip
    rebuild(region)
    return region


def run(cli_env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env, catch_exceptions=False)


def read_model(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the read model and its tracking position, in a stable order."""
    queries = {
        "journal": "SELECT * FROM region_330109.journal ORDER BY notification_id, leg",
        "settlements": "SELECT * FROM region_330109.settlements ORDER BY setl_id",
        "member_usage": "SELECT * FROM region_330109.member_usage ORDER BY psn_no, year",
        "tracking": "SELECT * FROM region_330109.notification_tracking ORDER BY application_name",
    }
    with store.connect_admin() as conn:
        return {name: conn.execute(query).fetchall() for name, query in queries.items()}


def verify(cli_env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = run(cli_env, "verify", "--region", REGION, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def rebuilt(app: RegionApplication, store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The read model as a rebuild from the first event leaves it."""
    rebuild(app)
    return read_model(store)


class Interrupted(Exception):
    pass


def projected_positions(app: RegionApplication) -> list[int]:
    """The positions of the events the read model builds rows from (it reads only those)."""
    notifications = app.recorder.select_notifications(0, 100_000, topics=read_model_topics(), inclusive_of_start=False)
    return [n.id for n in notifications]


def expected_pages(app: RegionApplication, page_size: int) -> list[Progress]:
    """Where each page of a catch-up from the start ends: after `page_size` projected events, and
    at the head of the log once fewer are left."""
    head = app.recorder.max_notification_id() or 0
    positions = projected_positions(app)
    pages, position, taken = [], 0, 0
    while position < head:
        chunk = positions[taken : taken + page_size]
        taken += len(chunk)
        position = chunk[-1] if len(chunk) == page_size else head
        pages.append(Progress(position, head))
    return pages


def stop(_: Progress) -> None:
    raise Interrupted


# --- the projection -------------------------------------------------------------------------------


def test_the_example_covers_what_crosses_pages(rebuilt: dict[str, list[tuple[Any, ...]]]) -> None:
    kinds = {row[3] for row in rebuilt["journal"]}
    assert kinds == {
        "contribution", "settlement", "reversal", "correction", "lookback", "hospital_payment", "deduction_reduce",
        "recovery", "fine", "opening_balance", "fund_transfer",
    }  # fmt: skip
    status = {row[0]: (row[1], row[2], row[-1]) for row in rebuilt["settlements"]}  # version, status, lookback_maf
    assert status["S-4"][:2] == (1, "reversed")
    assert status["S-3"][:2] == (2, "settled")
    assert status["S-LB"][2] > 0


def test_an_interrupted_catch_up_resumes_where_it_stopped_and_ends_equal_to_a_rebuild(
    app: RegionApplication, store: Store, cli_env: dict[str, str], rebuilt: dict[str, list[tuple[Any, ...]]]
) -> None:
    view = open_view(app)
    view.reset()
    head = app.recorder.max_notification_id()
    positions = projected_positions(app)
    fifth = positions[4]

    with pytest.raises(Interrupted):
        catch_up(app, view, page_size=5, on_page=stop)

    # The first page (five projected events) was committed with its position; nothing after it was.
    assert progress(app, view) == Progress(fifth, head)
    assert read_model(store)["journal"] == [row for row in rebuilt["journal"] if row[0] <= fifth]
    status = run(cli_env, "projections", "status", "--region", REGION)
    assert status.stdout == f"{REGION}\tposition {fifth:,} of {head:,}\t{head - fifth:,} events behind\n"

    with pytest.raises(Interrupted):
        catch_up(app, view, page_size=1, on_page=stop)
    assert progress(app, view).position == positions[5]

    assert catch_up(app, view, page_size=3) == Progress(head, head)
    assert read_model(store) == rebuilt
    assert run(cli_env, "projections", "status").stdout == f"{REGION}\tposition {head:,} of {head:,}\tup to date\n"


@pytest.mark.parametrize("page_size", [1, 2, 7])
def test_catching_up_a_page_at_a_time_builds_the_same_read_model_as_a_rebuild(
    app: RegionApplication, store: Store, rebuilt: dict[str, list[tuple[Any, ...]]], page_size: int
) -> None:
    view = open_view(app)
    view.reset()
    pages: list[Progress] = []
    head = app.recorder.max_notification_id()

    assert catch_up(app, view, page_size=page_size, on_page=pages.append) == Progress(head, head)

    assert pages == expected_pages(app, page_size)
    assert read_model(store) == rebuilt


def test_projections_status_reports_how_far_behind_the_log_the_read_model_is(
    app: RegionApplication, cli_env: dict[str, str], rebuilt: dict[str, list[tuple[Any, ...]]]
) -> None:
    position = app.recorder.max_notification_id()
    app.fine("FINE-STATUS", hospital="H-STATUS", fund="390100", amount=100, on_date=dt.date(2023, 8, 1),
             operator="inspector-1", reason="late filing")  # fmt: skip
    head = app.recorder.max_notification_id()
    assert head == position + 2  # the hospital's account is opened, then fined

    behind = run(cli_env, "projections", "status", "--region", REGION)

    assert behind.stdout == f"{REGION}\tposition {position:,} of {head:,}\t2 events behind\n"
    assert run(cli_env, "projections", "run").stdout == f"{REGION}\tposition {head:,} of {head:,}\n"
    assert run(cli_env, "projections", "status").stdout == f"{REGION}\tposition {head:,} of {head:,}\tup to date\n"


# --- verify -----------------------------------------------------------------------------------------


def test_verify_passes_on_an_untouched_store(app: RegionApplication, cli_env: dict[str, str]) -> None:
    code, report = verify(cli_env)
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert report["checked"]["events"] == app.recorder.max_notification_id()
    assert report["checked"]["settlements"] == 5


@contextmanager
def triggers_off(store: Store) -> Iterator[psycopg.Connection[Any]]:
    """An owner's connection with the immutability triggers of the events and seals disabled."""
    with store.connect_admin() as conn:
        for table in ("events", "seals"):
            conn.execute(f"ALTER TABLE region_330109.{table} DISABLE TRIGGER USER")
        try:
            yield conn
        finally:
            for table in ("events", "seals"):
                conn.execute(f"ALTER TABLE region_330109.{table} ENABLE TRIGGER USER")


def event_row(conn: psycopg.Connection[Any], topic: str) -> tuple[Any, ...]:
    """(notification_id, originator_id, originator_version, topic, state, chain_hash) of the first event of a topic."""
    row = conn.execute(
        "SELECT notification_id, originator_id, originator_version, topic, state, chain_hash "
        "FROM region_330109.events WHERE topic = %s ORDER BY notification_id LIMIT 1",
        (topic,),
    ).fetchone()
    assert row is not None, topic
    return tuple(row)


def edited(state: bytes, **changes: Any) -> bytes:
    obj = msgspec.json.decode(state)
    obj.update(changes)
    return msgspec.json.encode(obj)


def test_verify_names_the_position_of_an_event_whose_content_was_changed(store: Store, cli_env: dict[str, str]) -> None:
    with triggers_off(store) as conn:
        position, _, _, _, state, _ = event_row(conn, "HospitalAccount.Fined")
        # Ten times the fine, still balanced: only the hash chain can tell.
        forged = edited(
            bytes(state), amount=3000000,
            postings=[["390100", "bank", "", 3000000], ["390100", "other_income", "H001", -3000000]],
        )  # fmt: skip
        conn.execute("UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (forged, position))
        try:
            code, report = verify(cli_env)
        finally:
            conn.execute("UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (state, position))

    assert code == 1 and not report["ok"]
    assert report["problems"][0].startswith(f"event at position {position} (HospitalAccount.Fined, ")
    assert report["problems"][0].endswith(") was changed: its stored columns no longer match its hash")
    assert report["problems"][1:] == [
        f"read model 'journal': row (position {position}, leg 0) differs from a fresh replay: amount 300000 where a "
        "fresh replay gives 3000000",
        f"read model 'journal': row (position {position}, leg 1) differs from a fresh replay: amount -300000 where a "
        "fresh replay gives -3000000",
    ]
    assert verify(cli_env)[0] == 0


def test_verify_names_the_position_after_a_deleted_event(store: Store, cli_env: dict[str, str]) -> None:
    with triggers_off(store) as conn:
        row = conn.execute(
            "SELECT originator_id, originator_version, topic, state, notification_id, recorded_at, chain_hash "
            "FROM region_330109.events WHERE topic = 'Settlement.Reversed'"
        ).fetchone()
        deleted = row[4]
        following = conn.execute(
            "SELECT min(notification_id) FROM region_330109.events WHERE notification_id > %s", (deleted,)
        ).fetchone()[0]
        conn.execute("DELETE FROM region_330109.events WHERE notification_id = %s", (deleted,))
        try:
            code, report = verify(cli_env)
        finally:
            conn.execute(
                "INSERT INTO region_330109.events (originator_id, originator_version, topic, state, notification_id, "
                "recorded_at, chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                tuple(row),
            )

    assert code == 1
    assert report["problems"][0] == (
        f"event(s) deleted between positions {deleted - 1} and {following} (position {deleted} missing): the event at "
        f"position {following} is intact but does not chain from the one before it"
    )
    assert (
        f"read model 'journal': row (position {deleted}, leg 0) is not in a fresh replay of the log (added by hand, or "
        "its event deleted)"
    ) in report["problems"]
    assert verify(cli_env)[0] == 0


def test_verify_detects_that_the_newest_event_was_deleted(
    app: RegionApplication, store: Store, cli_env: dict[str, str]
) -> None:
    changed = MemberRecord(
        psn_no="M-1", insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=True,
        supplementary=(), valid_from=dt.date(2023, 9, 1), family_of=None,
    )  # fmt: skip
    assert [o.status for o in app.import_members([changed])] == ["recorded"]
    with triggers_off(store) as conn:
        row = conn.execute(
            "SELECT originator_id, originator_version, topic, state, notification_id, recorded_at, chain_hash "
            "FROM region_330109.events ORDER BY notification_id DESC LIMIT 1"
        ).fetchone()
        assert row[2] == "Member.RecordAdded"
        conn.execute("DELETE FROM region_330109.events WHERE notification_id = %s", (row[4],))
        try:
            code, report = verify(cli_env)
        finally:
            conn.execute(
                "INSERT INTO region_330109.events (originator_id, originator_version, topic, state, notification_id, "
                "recorded_at, chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                tuple(row),
            )

    assert code == 1, report


def test_verify_finds_unbalanced_postings_even_when_the_hash_chain_was_forged(
    store: Store, cli_env: dict[str, str]
) -> None:
    with triggers_off(store) as conn:
        position, _, _, _, state, _ = event_row(conn, "HospitalAccount.Fined")
        unbalanced = [["390100", "bank", "", 400000], ["390100", "other_income", "H001", -300000]]
        forged = edited(bytes(state), postings=unbalanced)
        rows = conn.execute(
            "SELECT e.notification_id, originator_id, originator_version, topic, state, e.chain_hash, recorded_at, "
            "s.notification_id IS NOT NULL FROM region_330109.events AS e LEFT JOIN region_330109.seals AS s "
            "USING (notification_id) WHERE e.notification_id >= %s ORDER BY notification_id",
            (position,),
        ).fetchall()
        previous = bytes(
            conn.execute(
                "SELECT chain_hash FROM region_330109.events WHERE notification_id < %s "
                "ORDER BY notification_id DESC LIMIT 1",
                (position,),
            ).fetchone()[0]
        )
        # A forger who knows the chain recomputes every hash from the edited row on (and the seals).
        for notification_id, originator_id, version, topic, row_state, _, recorded_at, sealed in rows:
            content = forged if notification_id == position else bytes(row_state)
            event = StoredEvent(originator_id, version, topic, content)
            previous = event_hash(previous, event, notification_id, micros(recorded_at), sealed)
            conn.execute(
                "UPDATE region_330109.events SET state = %s, chain_hash = %s WHERE notification_id = %s",
                (content, previous, notification_id),
            )
            conn.execute("UPDATE region_330109.seals SET chain_hash = %s WHERE notification_id = %s",
                         (previous, notification_id))  # fmt: skip
        try:
            code, report = verify(cli_env)
        finally:
            for notification_id, _, _, _, row_state, row_hash, _, _ in rows:
                conn.execute(
                    "UPDATE region_330109.events SET state = %s, chain_hash = %s WHERE notification_id = %s",
                    (row_state, row_hash, notification_id),
                )
                conn.execute("UPDATE region_330109.seals SET chain_hash = %s WHERE notification_id = %s",
                             (row_hash, notification_id))  # fmt: skip

    assert code == 1
    assert not any("event at position" in p and "was" in p for p in report["problems"]), report["problems"]
    assert f"event at position {position}: postings do not balance: debits - credits = 100000 fen" in report["problems"]
    assert verify(cli_env)[0] == 0


def test_verify_names_an_event_that_no_longer_decodes(store: Store, cli_env: dict[str, str]) -> None:
    with triggers_off(store) as conn:
        position, _, _, _, state, _ = event_row(conn, "HospitalAccount.Recovered")
        conn.execute("UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (b"{not json", position))
        try:
            code, report = verify(cli_env)
        finally:
            conn.execute("UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (state, position))

    assert code == 1
    assert report["problems"][0].startswith(f"event at position {position} (HospitalAccount.Recovered")
    assert any(problem.startswith(f"event at position {position} does not decode") for problem in report["problems"])
    assert verify(cli_env)[0] == 0


@contextmanager
def changed_read_model(store: Store, change: str, undo: str) -> Iterator[None]:
    with store.connect_admin() as conn:
        try:
            assert conn.execute(change).rowcount == 1
            yield
        finally:
            conn.execute(undo)


@pytest.mark.parametrize(
    ("change", "undo", "problem"),  # {position}: the event of the journal row changed
    [
        (
            "UPDATE region_330109.journal SET amount = amount + 1 "
            "WHERE kind = 'settlement' AND ref = 'S-1' AND account = 'benefit_expense'",
            "UPDATE region_330109.journal SET amount = amount - 1 "
            "WHERE kind = 'settlement' AND ref = 'S-1' AND account = 'benefit_expense'",
            "read model 'journal': row (position {position}, leg 0) was changed: amount 828001 where a fresh replay "
            "gives 828000",
        ),
        (
            # One more leg, on its own: the postings of that event no longer balance in the journal.
            "INSERT INTO region_330109.journal SELECT notification_id, 99, posted_on, kind, ref, fund, 'bank', '', "
            "100000 FROM region_330109.journal WHERE ref = 'FINE-1' AND leg = 0",
            "DELETE FROM region_330109.journal WHERE leg = 99",
            "read model 'journal': row (position {position}, leg 99) is not in a fresh replay of the log (added by "
            "hand)",
        ),
        (
            "UPDATE region_330109.settlements SET hifp_pay = hifp_pay + 1 WHERE setl_id = 'S-2'",
            "UPDATE region_330109.settlements SET hifp_pay = hifp_pay - 1 WHERE setl_id = 'S-2'",
            "read model 'settlements': row S-2 was changed: hifp_pay 40001 where a fresh replay gives 40000",
        ),
        (
            "UPDATE region_330109.settlements SET status = 'settled' WHERE setl_id = 'S-4'",
            "UPDATE region_330109.settlements SET status = 'reversed' WHERE setl_id = 'S-4'",
            "read model 'settlements': row S-4 was changed: status settled where a fresh replay gives reversed",
        ),
        (
            "UPDATE region_330109.member_usage SET basic_paid = basic_paid - 100 WHERE psn_no = 'M-3'",
            "UPDATE region_330109.member_usage SET basic_paid = basic_paid + 100 WHERE psn_no = 'M-3'",
            "read model 'member_usage': row M-3/2023 was changed: basic_paid 2177900 where a fresh replay gives "
            "2178000",
        ),
    ],
    ids=["journal-amount", "journal-unbalanced-leg", "settlement-amount", "settlement-status", "member-usage"],
)
def test_verify_names_the_read_model_table_that_differs_from_the_log(
    app: RegionApplication, store: Store, cli_env: dict[str, str], change: str, undo: str, problem: str
) -> None:
    catch_up(app)
    with store.connect_admin() as conn:  # the journal's rows of the settlement S-1, and of the fine
        row = conn.execute(
            "SELECT notification_id FROM region_330109.journal WHERE kind = %s AND ref = %s LIMIT 1",
            ("settlement", "S-1") if "828001" in problem else ("fine", "FINE-1"),
        ).fetchone()
    with changed_read_model(store, change, undo):
        code, report = verify(cli_env)

    assert code == 1
    assert report["problems"] == [problem.format(position=row[0])]
    assert verify(cli_env)[0] == 0


def test_a_tracked_position_set_back_is_a_named_error_not_an_endless_retry(
    app: RegionApplication, store: Store, cli_env: dict[str, str]
) -> None:
    # The pages after it clash with rows already written; nobody else moved the position, so
    # retrying would clash forever (verify, reports and `projections run` used to spin).
    catch_up(app)
    with changed_read_model(
        store,
        "UPDATE region_330109.notification_tracking SET notification_id = notification_id - 5",
        "UPDATE region_330109.notification_tracking SET notification_id = notification_id + 5",
    ):
        result = run(cli_env, "projections", "run")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: read_model_inconsistent: the page after position ")
    assert verify(cli_env)[0] == 0


def test_verify_prints_its_findings_readably_and_exits_1(store: Store, cli_env: dict[str, str]) -> None:
    with changed_read_model(
        store,
        "UPDATE region_330109.settlements SET maf_pay = maf_pay + 1 WHERE setl_id = 'S-3'",
        "UPDATE region_330109.settlements SET maf_pay = maf_pay - 1 WHERE setl_id = 'S-3'",
    ):
        result = run(cli_env, "verify")

    assert result.exit_code == 1
    first, second = result.stdout.splitlines()
    assert first.startswith(f"region {REGION}: PROBLEMS (")
    assert second == (
        "  - read model 'settlements': row S-3 was changed: maf_pay 257601 where a fresh replay gives 257600"
    )
