"""A full run of the read model (`rebuild`): the indexes keyed by person or reference dropped and
built after the last page, member usage summed in memory, and whatever stops it, the next
catch-up ends with every index and the rows an uninterrupted run writes.

The logs are those of test_rebuild_lean (two regions, every topic the read model handles); the
reference rows are the read model's handlers fed with the library mapper's domain events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from eventsourcing.persistence import Tracking

from app.region import RegionApplication
from projections import read_model
from projections.read_model import Overtaken, Page, Progress, catch_up, open_view, rebuild
from store.app import Store
from tests.integration.test_rebuild_lean import A, app, expected, logs, projected, tables

__all__ = ["app", "expected", "logs"]  # fixtures

SCHEMA = f"region_{A}"
DROPPED = {  # for a full run's pages
    "journal_by_party": f"CREATE INDEX journal_by_party ON {SCHEMA}.journal USING btree (party)",
    "settlements_by_member": f"CREATE INDEX settlements_by_member ON {SCHEMA}.settlements USING btree (psn_no, year)",
    "journal_by_ref": f"CREATE INDEX journal_by_ref ON {SCHEMA}.journal USING btree (ref)",
}
ALWAYS = {
    "journal_by_account": f"CREATE INDEX journal_by_account ON {SCHEMA}.journal USING btree (fund, account, posted_on)",
    "settlements_by_hospital": (
        f"CREATE INDEX settlements_by_hospital ON {SCHEMA}.settlements USING btree (hospital, setl_time)"
    ),
    "journal_pkey": f"CREATE UNIQUE INDEX journal_pkey ON {SCHEMA}.journal USING btree (notification_id, leg)",
    "settlements_pkey": f"CREATE UNIQUE INDEX settlements_pkey ON {SCHEMA}.settlements USING btree (setl_id)",
    "member_usage_pkey": f"CREATE UNIQUE INDEX member_usage_pkey ON {SCHEMA}.member_usage USING btree (psn_no, year)",
    "transfers_pkey": (
        f"CREATE UNIQUE INDEX transfers_pkey ON {SCHEMA}.transfers USING btree (transfer_id, direction, from_region)"
    ),
    "transfers_by_status": f"CREATE INDEX transfers_by_status ON {SCHEMA}.transfers USING btree (status)",
}


class Stop(Exception):
    pass


def indexes(store: Store) -> dict[str, str]:
    with store.connect_admin() as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
            "AND tablename IN ('journal', 'settlements', 'member_usage', 'transfers')",
            (SCHEMA,),
        ).fetchall()
    return dict(rows)


def full_runs(store: Store, region: str = A) -> list[str]:
    with store.connect_admin() as conn:
        query = f"SELECT application_name FROM region_{region}.read_model_full_runs"  # noqa: S608  # a region code
        return [row[0] for row in conn.execute(query)]


def test_a_rebuild_drops_the_indexes_keyed_by_person_or_ref_for_its_pages_and_ends_with_them_as_migrated(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    assert indexes(store) == {**ALWAYS, **DROPPED}  # as the fixture's rebuild left them
    during: list[tuple[dict[str, str], list[str], int]] = []

    def look(progress: Progress) -> None:
        if not during:
            usage = len(tables(store, a)["member_usage"])
            during.append((indexes(store), full_runs(store), usage))

    assert rebuild(a, page_size=3, on_page=look) == Progress(head, head)
    assert during == [(ALWAYS, [a.name], 0)]  # three indexes dropped, the run recorded, usage held in memory
    assert indexes(store) == {**ALWAYS, **DROPPED}
    assert full_runs(store) == []
    assert tables(store, a) == expected[A]


def test_a_rebuild_killed_after_a_page_is_carried_on_by_the_next_catch_up_to_the_same_rows_and_indexes(
    store: Store, database_url: str, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    first_page = projected(a)[2].id
    env = {**os.environ, "DATABASE_URL": database_url, "YIBAO_FAILPOINT": "projection.after_page"}
    done = subprocess.run(
        [sys.executable, "-m", "commands", "projections", "rebuild", "--region", A, "--page-size", "3"],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()

    # Killed with its first page committed: three indexes dropped, no usage yet, the run recorded.
    killed = tables(store, a)
    assert killed["tracking"] == [(a.name, first_page)]
    assert killed["journal"] == [row for row in expected[A]["journal"] if row[0] <= first_page]
    assert killed["member_usage"] == []
    assert indexes(store) == ALWAYS
    assert full_runs(store) == [a.name]

    pages: list[Progress] = []
    assert catch_up(a, page_size=4, on_page=pages.append) == Progress(head, head)
    assert pages[0].position == projected(a)[2 + 4].id  # carried on from its position, not from the first event
    assert tables(store, a) == expected[A]
    assert indexes(store) == {**ALWAYS, **DROPPED}
    assert full_runs(store) == []


def test_a_run_that_merged_part_of_its_usage_and_stopped_is_carried_on_without_counting_it_twice(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    monkeypatch.setattr(read_model, "usage_held_max", 1)  # merged whenever two member-years are held
    seen: list[int] = []

    def stop_late(progress: Progress) -> None:
        seen.append(len(tables(store, a)["member_usage"]))
        if progress.position >= head // 2:
            raise Stop

    with pytest.raises(Stop):
        rebuild(a, page_size=2, on_page=stop_late)
    assert seen[-1] > 0  # some usage was merged before the stop
    assert full_runs(store) == [a.name]

    assert catch_up(a, page_size=2) == Progress(head, head)
    assert tables(store, a) == expected[A]
    assert indexes(store) == {**ALWAYS, **DROPPED}

    assert rebuild(a, page_size=2) == Progress(head, head)  # uninterrupted, merging as it goes
    assert tables(store, a) == expected[A]


def test_a_catch_up_during_a_full_run_waits_for_the_run_to_end(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    head = a.recorder.max_notification_id() or 0
    result: list[Progress] = []
    waiting: list[bool] = []
    other = threading.Thread(target=lambda: result.append(catch_up(a, page_size=5)))

    def start_another(progress: Progress) -> None:
        if other.is_alive() or result:
            return
        other.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with store.connect_admin() as conn:
                found = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                    " AND datname = current_database()"
                ).fetchone()[0]
            if found:
                waiting.append(True)
                return
            time.sleep(0.05)

    assert rebuild(a, page_size=3, on_page=start_another) == Progress(head, head)
    other.join(timeout=60)
    assert waiting == [True]  # the other runner waited on the run's lock
    assert result == [Progress(head, head)]
    assert tables(store, a) == expected[A]
    assert indexes(store) == {**ALWAYS, **DROPPED}


def test_a_page_written_after_the_position_it_follows_has_moved_writes_nothing(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    view = open_view(a)
    view.reset()
    sums = [1] * len(read_model.USAGE_COLUMNS)
    view.write(Page(usage={("M-X", 2023): list(sums)}, start=0), Tracking(a.name, 5))
    with pytest.raises(Overtaken, match=f"^{a.name}: the read model is no longer at 0$"):
        view.write(Page(usage={("M-X", 2023): list(sums)}, start=0), Tracking(a.name, 9))  # same events again
    assert tables(store, a)["member_usage"] == [("M-X", 2023, *sums)]  # not counted twice
    assert tables(store, a)["tracking"] == [(a.name, 5)]
    head = a.recorder.max_notification_id() or 0
    assert rebuild(a) == Progress(head, head)
    assert tables(store, a) == expected[A]
