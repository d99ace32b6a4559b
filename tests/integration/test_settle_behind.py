"""Bulk settlement with each batch's save in flight while the next is computed
(`bulk.save_behind.SettlingBehind`): the answers and the books are those of settling one
claim per transaction, whatever the number of aggregates the process keeps between batches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulk import batch
from bulk.kept import RecentAggregates
from bulk.lines import read_lines
from commands.synthetic import Scenario, generate, load
from projections.verify import verify_region
from store.app import Store
from store.server import ServerLocation, create_database, drop_database

SCENARIO = Scenario(members=60, claims=1_200, hospitals=6, seed=5)  # twenty claims a member


def loaded_store(server: ServerLocation, name: str, files: Path) -> Store:
    store = Store(ServerLocation(kind="external", url=create_database(server.url, name)))
    store.migrate()
    assert load(store, files) == 0
    return store


def settled(store: Store, files: Path, batch_size: int) -> list[dict[str, Any]]:
    with (files / "claims.jsonl").open("rb") as stream:
        return [r.output for r in batch.settle_lines(store, read_lines(stream), batch_size=batch_size)]


@pytest.fixture(scope="module")
def one_by_one(server: ServerLocation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list]]:
    files = tmp_path_factory.mktemp("behind")
    generate(SCENARIO, files)
    name = f"t_behind_ref_{os.getpid()}"
    with loaded_store(server, name, files) as store:
        reference = settled(store, files, batch_size=1)
    yield files, reference
    drop_database(server.url, name)


@pytest.mark.parametrize("kept", [40_000, 25], ids=["default cache", "cache smaller than a batch"])
def test_batches_saved_behind_settle_exactly_as_one_claim_per_transaction(
    server: ServerLocation, one_by_one: tuple[Path, list], kept: int
) -> None:
    files, reference = one_by_one
    assert sum(r["status"] == "settled" for r in reference) == SCENARIO.claims
    name = f"t_behind_{kept}_{os.getpid()}"
    try:
        with loaded_store(server, name, files) as store:
            app = store.region(SCENARIO.region)
            app.kept = RecentAggregates(kept)  # 25: the next batch reads most of what the last one changed
            recorder_class = type(app.recorder)
            insert_events = recorder_class.insert_events

            def slow_insert(self: Any, *args: Any, **kwargs: Any) -> Any:
                if self is app.recorder:
                    time.sleep(0.05)  # a slow commit: a line given before it would not be seen below
                return insert_events(self, *args, **kwargs)

            recorder_class.insert_events = slow_insert  # type: ignore[method-assign]
            try:
                with Store(store.location) as elsewhere, (files / "claims.jsonl").open("rb") as stream:
                    reader = elsewhere.region(SCENARIO.region)
                    results = []
                    for result in batch.settle_lines(store, read_lines(stream), batch_size=100):
                        # A line is given only once its settlement is committed: another process sees it.
                        assert reader.settlement(result.output["setl_id"]) is not None
                        results.append(result.output)
            finally:
                recorder_class.insert_events = insert_events  # type: ignore[method-assign]
            assert results == reference
            assert verify_region(app).problems == []
    finally:
        drop_database(server.url, name)
