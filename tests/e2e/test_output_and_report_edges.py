"""Small edges through the CLI, each a named one-line error and nothing lost: an output file that
cannot be written, a claim dated before the member's first record, a numeric setl_id, and a
report over a read model whose books were changed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from commands.cli import main
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"


def claim(setl_id: Any, setl_time: str = "2023-05-01", psn_no: str = "Q-1") -> dict[str, Any]:
    return {"setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H9", "hosp_lv": 2, "med_type": "21",
            "setl_time": setl_time, "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00",
            "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00"}  # fmt: skip


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


@pytest.fixture(scope="module")
def env(database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    assert run(env, "db", "up").exit_code == 0
    assert run(env, "policy", "load", str(POLICY)).exit_code == 0
    member = {"psn_no": "Q-1", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none",
              "valid_from": "2023-01-01"}  # fmt: skip
    assert run(env, "members", "import", "-", stdin=json.dumps(member) + "\n").exit_code == 0
    return env


def claims_file(tmp_path: Path, *claims: dict[str, Any]) -> str:
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    return str(path)


def status_on_stdin(env: dict[str, str], setl_id: str) -> str:
    """`settled` if the claim was never settled before, `duplicate` if it was."""
    result = run(env, "claims", "settle", "-", stdin=json.dumps(claim(setl_id)) + "\n")
    return str(json.loads(result.stdout)["status"])


@pytest.mark.parametrize("option", ["--out", "--rejects"])
@pytest.mark.parametrize("where", ["a directory", "in no directory"])
def test_an_unwritable_results_file_is_refused_by_name_before_any_claim_is_settled(
    env: dict[str, str], tmp_path: Path, option: str, where: str
) -> None:
    setl_id = f"W-{option[2:]}-{len(where)}"
    target = tmp_path if where == "a directory" else tmp_path / "nowhere" / "out.jsonl"
    problem = "it is a directory" if where == "a directory" else f"there is no directory {tmp_path / 'nowhere'}"

    result = run(env, "claims", "settle", claims_file(tmp_path, claim(setl_id)), option, str(target))

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot_write_file: {option} {target}: {problem} (nothing was done)\n"
    assert status_on_stdin(env, setl_id) == "settled"  # not settled by the refused run


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_results_file_in_a_read_only_directory_is_refused_before_any_claim_is_settled(
    env: dict[str, str], tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = run(env, "claims", "settle", claims_file(tmp_path, claim("W-RO")), "--out", str(locked / "out.jsonl"))
    assert (result.exit_code, result.stderr.startswith("error: cannot_write_file: --out ")) == (1, True)
    assert status_on_stdin(env, "W-RO") == "settled"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_results_that_cannot_be_written_after_settling_lose_nothing_and_the_error_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    claims = claims_file(tmp_path, claim("W-FULL"))

    full = run(env, "claims", "settle", claims, "--out", "/dev/full")

    assert full.exit_code == 1
    assert full.stderr.startswith("error: file_error: No space left on device (writing the results): ")
    assert "every claim settled before it is recorded" in full.stderr and len(full.stderr.splitlines()) == 1
    again = run(env, "claims", "settle", claims)  # the same file: answered as the stopped run settled it
    assert json.loads(again.stdout)["status"] == "settled"
    assert status_on_stdin(env, "W-FULL") == "duplicate"


def test_report_and_dump_files_that_cannot_be_written_are_refused_by_name(env: dict[str, str], tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere" / "sheet.csv"
    for args in (
        ("report", "balance-sheet", "--region", "330109", "--format", "csv", "--out", str(nowhere)),
        ("report", "balance-sheet", "--region", "330109", "--format", "xlsx", "--out", str(tmp_path)),
        ("db", "dump", str(nowhere)),
    ):
        result = run(env, *args)
        assert (result.exit_code, result.stderr.count("\n")) == (1, 1), result.stderr
        assert result.stderr.startswith(f"error: cannot_write_file: {'FILE' if args[0] == 'db' else '--out'} ")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_report_that_fills_the_disk_is_one_named_error_and_nothing_after_it(
    env: dict[str, str], database_url: str, fmt: str
) -> None:
    # A process of its own: what an unfinished file says as the interpreter ends is seen too.
    args = ["report", "balance-sheet", "--region", "330109", "--as-of", "2023-12-31", "--format", fmt]
    result = subprocess.run(
        [sys.executable, "-m", "commands", *args, "--out", "/dev/full"], capture_output=True, text=True,
        env={**os.environ, "DATABASE_URL": database_url}, timeout=120, check=False,
    )  # fmt: skip

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: cannot_write_file: --out /dev/full: No space left on device\n"


def test_a_claim_before_the_members_first_record_names_the_date_and_a_numeric_setl_id_is_echoed(
    env: dict[str, str], tmp_path: Path
) -> None:
    lines = [claim("B-EARLY", "2022-12-31"), claim("B-NOBODY", psn_no="NOBODY"), claim(123), claim(12345.0)]

    result = run(env, "claims", "settle", claims_file(tmp_path, *lines))

    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0] == {
        "setl_id": "B-EARLY", "psn_no": "Q-1", "status": "rejected", "reason": "no_member_record_on_date",
        "detail": "member Q-1 has no record on 2022-12-31: the first is valid from 2023-01-01",
    }  # fmt: skip
    assert out[1] == {"setl_id": "B-NOBODY", "psn_no": "NOBODY", "status": "rejected", "reason": "unknown_member"}
    assert (out[2]["setl_id"], out[2]["reason"]) == (123, "bad_setl_id")
    assert '"setl_id":123,' in result.stdout.splitlines()[2]
    assert result.stdout.splitlines()[3].startswith('{"setl_id":12345.0,"psn_no":"Q-1","status":"rejected",')
    assert out[3]["reason"] == "bad_setl_id"


def test_a_balance_sheet_over_a_journal_changed_by_hand_names_the_entry_instead_of_a_traceback(
    env: dict[str, str], database_url: str
) -> None:
    assert run(env, "claims", "settle", "-", stdin=json.dumps(claim("T-1")) + "\n").exit_code == 0
    assert run(env, "report", "balance-sheet", "--region", "330109", "--as-of", "2023-12-31").exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:  # a superuser, outside yibao
        (entry,) = conn.execute("SELECT notification_id FROM region_330109.journal WHERE ref = 'T-1' AND leg = 0")
        conn.execute("UPDATE region_330109.journal SET amount = amount + 1 WHERE ref = 'T-1' AND leg = 0")
    try:
        result = run(env, "report", "balance-sheet", "--region", "330109", "--as-of", "2023-12-31")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE region_330109.journal SET amount = amount - 1 WHERE ref = 'T-1' AND leg = 0")

    assert (result.exit_code, result.stdout, result.stderr.count("\n")) == (1, "", 1)
    assert result.stderr.startswith("error: read_model_inconsistent: region 330109 fund 390100 as of 2023-12-31: ")
    assert f"journal entries (notification_id) not balanced: {entry[0]} (legs 0,1);" in result.stderr
    assert "Traceback" not in result.stderr
