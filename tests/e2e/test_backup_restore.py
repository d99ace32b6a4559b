"""`yibao db dump` / `db restore`: a restored store passes verify and settles on as before."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.cli import main
from store.server import ServerLocation, create_database, drop_database
from tests.conftest import EXAMPLES


def yibao(url: str, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": url}, input=stdin)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def second_database(server: ServerLocation) -> Iterator[str]:
    name = f"t_restore_{os.getpid()}"
    url = create_database(server.url, name)
    yield url
    drop_database(server.url, name)


def claim(setl_id: str, medfee: str) -> str:
    return json.dumps({
        "setl_id": setl_id, "psn_no": "P-A", "fixmedins_code": "H001", "hosp_lv": 3, "med_type": "21",
        "setl_time": "2023-03-02", "medfee_sumamt": medfee, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": medfee,
    }) + "\n"  # fmt: skip


def test_a_restored_store_passes_verify_and_settles_on_as_before(
    database_url: str, second_database: str, tmp_path: Path
) -> None:
    yibao(database_url, "db", "up")
    yibao(database_url, "policy", "load", str(EXAMPLES / "policy-330109-2023.toml"))
    yibao(database_url, "members", "import", str(EXAMPLES / "basic-year" / "members.jsonl"))
    first = json.loads(yibao(database_url, "claims", "settle", "-", stdin=claim("B-1", "20000.00")))
    backup = tmp_path / "store.dump"
    assert "dumped to" in yibao(database_url, "db", "dump", str(backup))

    refused = CliRunner().invoke(main, ["db", "restore", str(backup)], env={"DATABASE_URL": second_database})
    assert refused.exit_code == 1 and "confirmation_required" in refused.stderr
    yibao(second_database, "db", "restore", str(backup), "--yes")
    assert "OK" in yibao(second_database, "verify")
    # The restored store knows B-1 (a duplicate) and settles the next claim on the same accumulators.
    again = json.loads(yibao(second_database, "claims", "settle", "-", stdin=claim("B-1", "20000.00")))
    assert again["status"] == "duplicate" and again["hifp_pay"] == first["hifp_pay"]
    second = json.loads(yibao(second_database, "claims", "settle", "-", stdin=claim("B-2", "20000.00")))
    # dibao member, level 3 inpatient: (20000 - 800) * 70% = 13440 each time
    assert (first["hifp_pay"], second["hifp_pay"]) == ("13440.00", "13440.00")
    usage = json.loads(yibao(second_database, "members", "usage", "P-A", "--year", "2023", "--json"))
    assert usage["basic_paid"] == "26880.00"
    assert "OK" in yibao(second_database, "verify")
