"""Test fixtures: real PostgreSQL always — DATABASE_URL when set, else the embedded server.

Each test module gets its own freshly created database on that server, dropped afterwards.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.region import RegionApplication
from core.ledger import FUNDS
from core.policy import parse_policy
from store.app import Store
from store.server import ServerLocation, create_database, drop_database, locate

REPO_ROOT = Path(__file__).resolve().parents[1]


# The worked examples the tests replay: the repository's own copy of the public worked year.
EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="session")
def server() -> ServerLocation:
    if not os.environ.get("DATABASE_URL") and not os.environ.get("YIBAO_HOME"):
        # A home of the test suite's own, reused across runs, never the user's data.
        os.environ["YIBAO_HOME"] = str(Path(tempfile.gettempdir()) / "yibao-test-home")
    return locate()


@pytest.fixture(scope="module")
def database_url(server: ServerLocation, request: pytest.FixtureRequest) -> Iterator[str]:
    name = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])
    dbname = f"t_{name}_{os.getpid()}"[:63]
    url = create_database(server.url, dbname)
    yield url
    drop_database(server.url, dbname)


@pytest.fixture(scope="module")
def location(database_url: str) -> ServerLocation:
    return ServerLocation(kind="external", url=database_url)


@pytest.fixture(scope="module")
def store(location: ServerLocation) -> Iterator[Store]:
    with Store(location) as opened:
        opened.migrate()
        yield opened


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    """Environment for driving the CLI against this module's database."""
    return {"DATABASE_URL": database_url}


def example_region(store: Store, region: str = "330109", *, overdraft: bool = False) -> RegionApplication:
    """A region of `store` with the example policy of 2023 (policy-330109-2023.toml, for `region`); with
    `overdraft`, every fund may pay beyond its bank balance (for tests of what a payment pays, not
    of whether the fund holds it)."""
    text = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
    text = text.replace('region = "330109"', f'region = "{region}"')
    if overdraft:
        text += f"\n[controls]\noverdraft_allowed = {list(FUNDS)!r}\n".replace("'", '"')
    store.add_region(region)
    app = store.region(region)
    app.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    return app
