"""Migration 0009 on a database that was at 0008.

Three regions reach 0008, then 0009 is applied (one `migrate`) with each in a different state:
- C: no full run, the old `journal_by_party (party, fund, account)` in place: replaced by `(party)`;
- B: a full run stopped after its first page (0007's function dropped journal_by_party and
  settlements_by_member, not journal_by_ref): 0009 builds nothing there, the next catch-up
  carries the run on and ends with every index as 0009 defines it, and the rows of a rebuild;
- A: a full run in progress while 0009 is applied (from its first page's callback): it ends with
  every index as 0009 defines it, and the rows of a rebuild.
Afterwards the functions still run as yibao_app (grants kept) and a fresh rebuild drops the three.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.region import RegionApplication
from projections.read_model import Progress, catch_up, rebuild
from store import migrate
from store.app import Store
from tests.integration.test_rebuild_full_run import ALWAYS, DROPPED, Stop, full_runs
from tests.integration.test_rebuild_lean import A, B, app, expected, logs, tables

__all__ = ["app", "expected", "logs"]  # fixtures

C = "330111"
REAL_LOAD = migrate.load_migrations


def at_0008(scope: str) -> list[migrate.Migration]:
    """0001..0008, and 0020: the current read model writes the table 0020 makes (so the newest
    version recorded is 20, though 0009 is not applied)."""
    found = REAL_LOAD(scope)
    return [*found[:8], *(m for m in found if m.name == "settlement_lines")] if scope == "region" else found


@pytest.fixture(scope="module", autouse=True)
def before_0009() -> Iterator[pytest.MonkeyPatch]:
    """Every region of this module is created and filled at 0008 (autouse: before `store`'s regions)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(migrate, "load_migrations", at_0008)
        yield mp


def defs(store: Store, region: str) -> dict[str, str]:
    """Every index of the read model's tables, with the schema taken out of its definition."""
    schema = f"region_{region}"
    with store.connect_admin() as conn:
        rows = conn.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes WHERE schemaname = %s "
            "AND tablename IN ('journal', 'settlements', 'member_usage', 'transfers')",
            (f"{schema}.", schema),
        ).fetchall()
    return dict(rows)


def plain(indexes: dict[str, str]) -> dict[str, str]:
    return {name: d.replace(f"region_{A}.", "") for name, d in indexes.items()}


OLD_PARTY = "CREATE INDEX journal_by_party ON journal USING btree (party, fund, account)"


def test_0009_applied_to_regions_at_0008_in_every_state_of_a_full_run(
    store: Store,
    logs: tuple[RegionApplication, ...],
    expected: dict[str, Any],
    before_0009: pytest.MonkeyPatch,
) -> None:
    a, b = logs
    store.add_region(C)
    assert store.status().region_versions == {A: 20, B: 20, C: 20}  # 0001..0008 and 0020
    for region in (A, B, C):
        assert defs(store, region)["journal_by_party"] == OLD_PARTY

    # B: a full run of 0007's function stopped after its first page.
    def stop(progress: Progress) -> None:
        raise Stop

    with pytest.raises(Stop):
        rebuild(b, page_size=1, on_page=stop)  # B has few events: one a page
    assert full_runs(store, B) == [b.name]
    assert "journal_by_party" not in defs(store, B) and "settlements_by_member" not in defs(store, B)
    assert "journal_by_ref" in defs(store, B)  # 0007 kept it

    # A: 0009 is applied while A's full run is between two pages.
    applied: list[migrate.SchemaStatus] = []

    def apply_0009(progress: Progress) -> None:
        if not applied:
            before_0009.undo()
            applied.append(store.migrate())

    head = a.recorder.max_notification_id() or 0
    assert rebuild(a, page_size=3, on_page=apply_0009) == Progress(head, head)
    latest = REAL_LOAD("region")[-1].version  # 0009 and every later migration
    assert applied and applied[0].is_current and applied[0].region_versions == {A: latest, B: latest, C: latest}

    # C: replaced in place.
    assert defs(store, C) == plain({**ALWAYS, **DROPPED})
    # A: the run that began under 0007's list ends with 0009's definitions.
    assert defs(store, A) == plain({**ALWAYS, **DROPPED})
    assert tables(store, a) == expected[A]
    # B: 0009 built nothing while its run is recorded; the next catch-up carries it on.
    assert "journal_by_party" not in defs(store, B) and full_runs(store, B) == [b.name]
    head_b = b.recorder.max_notification_id() or 0
    assert catch_up(b, page_size=4) == Progress(head_b, head_b)
    assert full_runs(store, B) == []
    assert defs(store, B) == plain({**ALWAYS, **DROPPED})
    assert tables(store, b) == expected[B]


def test_after_0009_the_owner_rights_functions_still_serve_the_app_and_drop_the_three(
    store: Store, logs: tuple[RegionApplication, ...], expected: dict[str, Any]
) -> None:
    a = logs[0]
    assert store.status().region_versions[A] == REAL_LOAD("region")[-1].version  # after the test above
    with store.connect_admin() as conn:
        granted = conn.execute(
            "SELECT has_function_privilege('yibao_app', %s, 'EXECUTE'), "
            "has_function_privilege('yibao_app', %s, 'EXECUTE'), "
            "has_function_privilege('yibao_auditor', %s, 'EXECUTE'), "
            "(SELECT prosecdef FROM pg_proc WHERE oid = %s::regprocedure)",
            (
                f"region_{A}.drop_read_model_indexes()",
                f"region_{A}.ensure_read_model_indexes()",
                f"region_{A}.drop_read_model_indexes()",
                f"region_{A}.ensure_read_model_indexes()",
            ),
        ).fetchone()
        listed = conn.execute(f"SELECT index_name, columns FROM region_{A}.read_model_dropped_indexes()").fetchall()  # noqa: S608
    assert granted == (True, True, False, True)
    assert sorted(listed) == [("journal_by_party", "(party)"), ("journal_by_ref", "(ref)"),
                              ("settlements_by_member", "(psn_no, year)")]  # fmt: skip
    during: list[dict[str, str]] = []
    head = a.recorder.max_notification_id() or 0
    assert rebuild(a, page_size=3, on_page=lambda p: during.append(defs(store, A))) == Progress(head, head)
    assert during[0] == plain(ALWAYS)  # all three dropped for the pages (run as yibao_app)
    assert defs(store, A) == plain({**ALWAYS, **DROPPED})
    assert tables(store, a) == expected[A]


def test_a_region_added_at_0009_has_journal_by_party_on_the_party_alone(
    store: Store, before_0009: pytest.MonkeyPatch
) -> None:
    """The state the migrations leave, before any rebuild (test_rebuild_full_run's first assertion
    says "as the migrations built them", but its fixture `app` has already run a rebuild, which
    drops and rebuilds the three indexes: the suite passes with 0009's DO block deleted)."""
    before_0009.undo()  # 0009 available (already so after the first test)
    fresh = "330112"
    store.add_region(fresh)
    assert defs(store, fresh) == plain({**ALWAYS, **DROPPED})
