"""`claims correct` run again on the same file corrects once (a retry after a crash, or not).

Each line's correction records the file's hash and its line (as `claims settle` does), so a
second run answers each line as the first did and writes nothing; the same correction in
another file is a new correction (version 3).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from click.testing import CliRunner

from commands.cli import main

MEMBER = (
    '{"psn_no": "P-CORR", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none",'
    ' "chronic": false, "supplementary": [], "valid_from": "2023-01-01"}'
)


def claim(total: str) -> str:
    return (
        f'{{"setl_id": "S-CORR", "psn_no": "P-CORR", "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "21",'
        f' "setl_time": "2023-03-01", "medfee_sumamt": "{total}", "fulamt_ownpay_amt": "0.00",'
        f' "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "{total}"}}\n'
    )


def test_a_correction_file_run_again_corrects_once(cli_env: dict[str, str], tmp_path: Path) -> None:
    def yibao(*args: str, stdin: str | None = None) -> str:
        result = CliRunner().invoke(main, list(args), env=cli_env, input=stdin)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    yibao("db", "up")
    yibao("policy", "load", str(resources.files("commands") / "data" / "demo-policy-2023.toml"))
    yibao("members", "import", "-", stdin=MEMBER + "\n")
    assert json.loads(yibao("claims", "settle", "-", stdin=claim("10000.00")))["status"] == "settled"
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text(claim("9000.00"))
    args = ("claims", "correct", str(corrections), "--operator", "op-1", "--reason", "hospital resubmitted")

    first = yibao(*args)
    events = len(yibao("trace", "S-CORR", "--json").splitlines())
    again = yibao(*args)

    assert again == first
    assert (json.loads(first)["status"], json.loads(first)["version"]) == ("settled", 2)
    assert json.loads(first)["medfee_sumamt"] == "9000.00"
    assert len(yibao("trace", "S-CORR", "--json").splitlines()) == events  # nothing written
    # The same correction in another file (or on stdin) is corrected again: a new version.
    elsewhere = yibao("claims", "correct", "-", "--operator", "op-1", "--reason", "again", stdin=claim("9000.00"))
    assert json.loads(elsewhere)["version"] == 3
    # The first file run again after that still answers as its first run, and writes nothing;
    # so does a file that corrects one claim twice (two versions), run again.
    events = len(yibao("trace", "S-CORR", "--json").splitlines())
    assert yibao(*args) == first
    assert len(yibao("trace", "S-CORR", "--json").splitlines()) == events
    twice = tmp_path / "twice.jsonl"
    twice.write_text(claim("8000.00") + claim("7000.00"))
    again_args = ("claims", "correct", str(twice), "--operator", "op-1", "--reason", "two steps")
    two = yibao(*again_args)
    assert [json.loads(line)["version"] for line in two.splitlines()] == [4, 5]
    events = len(yibao("trace", "S-CORR", "--json").splitlines())
    assert yibao(*again_args) == two
    assert len(yibao("trace", "S-CORR", "--json").splitlines()) == events
