"""The console's cheap reads on PostgreSQL (projections/console_reads.py): pending approvals and
reconciliations read from their own events through region migration 0031's index, equal to
what the aggregates say; and `yibao verify` runs recorded in yibao.verify_runs (global 0031)
without changing what verify reports.

Amounts from policy-330109-2023.toml: a resident's inpatient claim of 10,000.00 at a level-1
hospital pays basic (10,000 - 800) * 90% = 8,280.00; one of 2,000.00 pays 1,080.00. The policy
here asks a second person for any reversal whose fund payments are above 5,000.00.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from app.region import RegionApplication
from commands.cli import main
from core.approval import ApprovalRequest
from core.policy import parse_policy
from projections.console_reads import approval_rows, newest_event_at, pending_summary, reconciliation_rows
from projections.read_model import reading
from store.app import Store
from store.verify_runs import VerifyRuns
from tests.conftest import EXAMPLES
from tests.integration.test_finance_operations import settle

REGION = "330109"


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    text = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
    text += '\n[controls]\napproval_above = "5000.00"\n'
    store.add_region(REGION)
    region = store.region(REGION)
    region.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    settle(region, "CR-BIG", "CR-1", "H001", "2023-03-01", "10000.00")
    settle(region, "CR-OTHER", "CR-1", "H001", "2023-03-02", "10000.00")
    settle(region, "CR-THIRD", "CR-2", "H001", "2023-03-03", "10000.00")
    settle(region, "CR-SMALL", "CR-2", "H001", "2023-03-04", "2000.00")
    for setl_id in ("CR-BIG", "CR-OTHER", "CR-THIRD"):
        asked = region.reverse(setl_id, operator="maker", reason="duplicate bill")
        assert isinstance(asked, ApprovalRequest)
    region.reverse("CR-SMALL", operator="maker", reason="wrong patient")  # under the threshold: no request
    region.decide_request("reverse-CR-OTHER-v1", checker="checker", approve=True)
    region.decide_request("reverse-CR-THIRD-v1", checker="checker", approve=False, reason="not a duplicate")
    return region


def _described(requests: list[Any]) -> list[tuple[str, str, int, str, str, str | None]]:
    return [(r.request_id, str(r.status), r.amount, r.maker, r.reason, r.checker) for r in requests]


def test_pending_approvals_are_counted_with_their_amount_from_the_events(app: RegionApplication) -> None:
    with reading(app) as (curs, schema):
        assert pending_summary(curs, schema) == (1, 828_000)
        pending = approval_rows(curs, schema, status="pending")
    assert _described(pending) == [("reverse-CR-BIG-v1", "pending", 828_000, "maker", "duplicate bill", None)]
    assert (pending[0].kind, pending[0].subject, pending[0].subject_version) == ("reverse", "CR-BIG", 1)


def test_the_read_of_every_request_equals_the_aggregates(app: RegionApplication) -> None:
    with reading(app) as (curs, schema):
        rows = approval_rows(curs, schema)
        approved = approval_rows(curs, schema, status="approved")
    assert _described(sorted(rows, key=lambda r: r.request_id)) == _described(app.approval_requests())
    assert _described(approved) == [("reverse-CR-OTHER-v1", "approved", 828_000, "maker", "duplicate bill", "checker")]


def test_requests_are_paged_by_position(app: RegionApplication) -> None:
    with reading(app) as (curs, schema):
        first = approval_rows(curs, schema, rows=2)
        rest = approval_rows(curs, schema, after=first[-1].position, rows=2)
    assert [r.request_id for r in first + rest] == ["reverse-CR-BIG-v1", "reverse-CR-OTHER-v1", "reverse-CR-THIRD-v1"]


def _plan(curs: Any, query: str) -> str:
    curs.execute("SET LOCAL enable_seqscan = off")  # a small table would be scanned anyway: ask for the index
    return "\n".join(row["QUERY PLAN"] for row in curs.execute("EXPLAIN " + query).fetchall())


def test_the_reads_find_their_events_by_index_not_by_reading_the_log(app: RegionApplication) -> None:
    with reading(app) as (curs, schema):
        for topic in ("ApprovalRequest.Requested", "Reconciliation.Rechecked"):
            plan = _plan(curs, f"SELECT notification_id FROM {schema}.events WHERE topic = '{topic}'")  # noqa: S608
            assert "events_console_reads" in plan, plan


def test_a_reconciliation_shows_its_latest_answer_in_the_years_it_covers(app: RegionApplication) -> None:
    key = {"kind": "totals", "file_sha256": "ab" * 32, "hospital": "H001", "begin": "2023-03-01", "end": "2023-03-31"}
    assert app.record_reconciliation(operator="fin-1", on_date=dt.date(2023, 4, 2), result={"stmt_rslt": "1"}, **key)
    assert app.record_reconciliation(operator="fin-2", on_date=dt.date(2023, 4, 9), result={"stmt_rslt": "0"}, **key)
    other = {**key, "hospital": "H002", "begin": "2022-12-01", "end": "2022-12-31"}
    assert app.record_reconciliation(operator="fin-1", on_date=dt.date(2023, 1, 5), result={"stmt_rslt": "1"}, **other)
    with reading(app) as (curs, schema):
        found = reconciliation_rows(curs, schema, 2023)
        earlier = reconciliation_rows(curs, schema, 2022)
    shown = ("hospital", "kind", "begin", "end", "stmt_rslt", "on_date", "operator")
    assert [{k: r[k] for k in shown} for r in found] == [
        {"hospital": "H001", "kind": "totals", "begin": "2023-03-01", "end": "2023-03-31", "stmt_rslt": "0",
         "on_date": "2023-04-09", "operator": "fin-2"},
    ]  # fmt: skip
    assert [(r["hospital"], r["stmt_rslt"]) for r in earlier] == [("H002", "1")]


def _verify(database_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["verify", "--json", *args], env={"DATABASE_URL": database_url})


def test_each_verify_run_is_recorded_with_what_it_found_and_how_far(
    app: RegionApplication, store: Store, database_url: str
) -> None:
    result = _verify(database_url, "--operator", "auditor-7")
    assert result.exit_code == 0, result.stderr
    with store.connect_admin() as conn:
        run = VerifyRuns(conn).latest([REGION])[REGION]
    with reading(app) as (curs, schema):
        newest = newest_event_at(curs, schema)
    head = app.region_log.max_notification_id()
    assert (run.ran_by, run.ran_by_known, run.ok, run.problems, run.first_problem) == ("auditor-7", True, True, 0,
                                                                                       None)  # fmt: skip
    assert (run.position, run.checked["events"]) == (head, head)
    assert newest is not None and run.at >= newest
    # The record is outside the region's log: verify finds the chain as it was.
    again = _verify(database_url, "--operator", "auditor-7")
    assert (again.exit_code, again.stdout) == (0, result.stdout)
    assert app.region_log.max_notification_id() == head


def test_a_verify_run_that_cannot_be_recorded_reports_and_exits_as_before(
    app: RegionApplication, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _verify(database_url)

    def refuse(*_: Any, **__: Any) -> None:
        raise psycopg.errors.InsufficientPrivilege("permission denied for table verify_runs")

    monkeypatch.setattr(VerifyRuns, "record", refuse)
    result = _verify(database_url)
    assert (result.exit_code, result.stdout) == (expected.exit_code, expected.stdout)
    assert result.stderr == "warning: verify_not_recorded: permission denied for table verify_runs\n"


def test_the_latest_run_of_a_region_is_its_last_recorded(store: Store) -> None:
    with store.connect_admin() as conn:
        runs = VerifyRuns(conn)
        runs.record(ran_by="a", ran_by_known=False, region="999901", problems=["x", "y"], position=7,
                    checked={"events": 7})  # fmt: skip
        runs.record(ran_by="b", ran_by_known=True, region="999901", problems=["event at position 3 was changed"],
                    position=9, checked={"events": 9})  # fmt: skip
        latest = runs.latest(["999901", "999902"])
    assert list(latest) == ["999901"]
    run = latest["999901"]
    assert (run.ran_by, run.ok, run.problems, run.first_problem, run.position) == (
        "b", False, 1, "event at position 3 was changed", 9,
    )  # fmt: skip


def test_a_run_without_operator_or_login_name_is_recorded_as_unknown(
    app: RegionApplication, store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_name)
    result = _verify(database_url)
    assert (result.exit_code, result.stderr) == (0, "")
    with store.connect_admin() as conn:
        run = VerifyRuns(conn).latest([REGION])[REGION]
    assert (run.ran_by, run.ok) == ("unknown", True)
