"""The hash-chain status a settlement's trace shows (projections/trace.py chain_status)."""

from __future__ import annotations

from app.region import RegionApplication
from projections.trace import chain_status, trace_settlement
from store.app import Store
from tests.integration.test_projections_and_verify import app, triggers_off  # noqa: F401 (the fixture)


def test_a_traces_events_are_intact_until_one_is_changed(app: RegionApplication, store: Store) -> None:  # noqa: F811
    events = trace_settlement(app, "S-1")
    assert events
    positions = [e["position"] for e in events]
    assert {p: ok for p, (ok, _) in chain_status(app, positions).items()} == dict.fromkeys(positions, True)
    changed = positions[0]
    with triggers_off(store) as conn:
        state = conn.execute("SELECT state FROM region_330109.events WHERE notification_id = %s", (changed,)).fetchone()
        assert state is not None
        conn.execute(
            "UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (state[0] + b" ", changed)
        )
        try:
            status = chain_status(app, positions)
        finally:
            conn.execute("UPDATE region_330109.events SET state = %s WHERE notification_id = %s", (state[0], changed))
    assert status[changed] == (False, "CHANGED: its own digest does not match its columns")
    assert all(ok for p, (ok, _) in status.items() if p != changed)
    assert all(ok for ok, _ in chain_status(app, positions).values())
