"""The same claims file gives byte-identical results across changes of the code's structure.

`tests/data/golden` holds a synthetic region-year (300 members, 3,000 claims, the demo's policy).
The digest below was first of the results of `claims settle` at b022322, before the redesign into
core/app/bulk: a change meant to keep behaviour must keep it; a change of the output contract
changes it here, and its commit says why. Changed by issue 19: results carry the national names
(insutype, med_type, clr_type, setl_time, hifob_pay, setldetail, refd_setl_flag).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.server import ServerLocation, create_database, drop_database
from tests.cli_store import yibao
from tests.conftest import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "data" / "golden"
RESULTS_SHA256 = "132783dc6b0274bd4cec29597d9fbe3c70c9bda83824173b87a53ee0bc2e7dfe"


@pytest.fixture
def url(server: ServerLocation, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t_golden_{request.node.name[-20:]}_{os.getpid()}".lower()
    url = create_database(server.url, name)
    yibao(url, "db", "up")
    yibao(url, "policy", "load", str(GOLDEN / "policy.toml"))
    yibao(url, "members", "import", str(GOLDEN / "members.jsonl"))
    yibao(url, "contributions", "import", str(GOLDEN / "contributions.jsonl"))
    yield url
    drop_database(server.url, name)


@pytest.mark.parametrize("options", [[], ["--workers", "2", "--grouped"]], ids=["default", "workers-grouped"])
def test_the_golden_claims_settle_to_the_same_bytes(url: str, options: list[str], tmp_path: Path) -> None:
    out = tmp_path / "settled.jsonl"
    command = [sys.executable, "-m", "commands", "claims", "settle", str(GOLDEN / "claims.jsonl"), "--out", str(out)]
    done = subprocess.run([*command, *options], env={**os.environ, "DATABASE_URL": url}, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == RESULTS_SHA256
