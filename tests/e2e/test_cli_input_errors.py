"""Bad input through the CLI: named one-line errors, rejects with line numbers, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.cli import main
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"

GOOD = {
    "setl_id": "E-1", "psn_no": "Q-1", "fixmedins_code": "H9", "hosp_lv": 2, "med_type": "21",
    "setl_time": "2023-05-01", "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
    "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00",
}  # fmt: skip


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def env(database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    assert run(env, "db", "up")[0] == 0
    assert run(env, "policy", "load", str(POLICY))[0] == 0
    member = {"psn_no": "Q-1", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none",
              "valid_from": "2023-01-01"}  # fmt: skip
    code, out, _ = run(env, "members", "import", "-", stdin=json.dumps(member) + "\n")
    assert (code, out.strip()) == (0, "members: 1 lines: 1 recorded")
    return env


def test_bad_lines_are_rejected_with_their_line_number_and_good_lines_around_them_settle(
    env: dict[str, str], tmp_path: Path
) -> None:
    lines = [
        json.dumps(GOOD),
        "this is not json",
        json.dumps({**GOOD, "setl_id": "E-2", "medfee_sumamt": "10000.005"}),
        json.dumps({**GOOD, "setl_id": "E-3", "setl_time": "2023-02-30"}),
        json.dumps({**GOOD, "setl_id": "E-4", "surprise": 1}),
        "",
        json.dumps({**GOOD, "setl_id": "E-5", "inscp_scp_amt": "9000.00", "fulamt_ownpay_amt": "1000.00"}),
    ]
    rejects = tmp_path / "rejects.jsonl"
    code, out, _ = run(env, "claims", "settle", "-", "--rejects", str(rejects), stdin="\n".join(lines) + "\n")
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("settled", None),
        ("rejected", "not_json"),
        ("rejected", "amount_too_precise"),
        ("rejected", "bad_setl_time"),
        ("rejected", "unknown_field"),
        ("rejected", "empty_line"),
        ("settled", None),
    ]
    # resident, inpatient level 2: (10000 - 800) * 80% = 7360
    assert results[0]["hifp_pay"] == "7360.00"
    logged = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in logged] == [
        (2, "not_json"), (3, "amount_too_precise"), (4, "bad_setl_time"), (5, "unknown_field"), (6, "empty_line"),
    ]  # fmt: skip


def test_a_bad_policy_file_is_a_one_line_error_naming_the_key(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(POLICY.read_text().replace('annual_cap = "500000.00"', 'annual_cap = "lots"'), encoding="utf-8")
    code, out, err = run(env, "policy", "load", str(bad))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: invalid_policy: ")
    assert "basic.390.annual_cap" in err


def test_reversing_an_unknown_settlement_or_without_a_reason_is_refused(env: dict[str, str]) -> None:
    code, _, err = run(env, "claims", "reverse", "NOPE", "--reason", "x", "--operator", "op")
    assert (code, err.strip()) == (1, "error: unknown_settlement: no settlement NOPE")
    code, _, err = run(env, "claims", "reverse", "E-1", "--operator", "op")
    assert code == 2 and "--reason" in err
    code, _, err = run(env, "claims", "reverse", "E-1", "--reason", " ", "--operator", "op")
    assert (code, err.strip()) == (1, "error: missing_reason: --reason must not be empty")


def test_members_import_reports_rejects_on_stderr_and_counts_on_stdout(env: dict[str, str]) -> None:
    lines = [
        json.dumps(
            {
                "psn_no": "Q-2",
                "insuplc_admdvs": "330109",
                "insutype": "390",
                "assist_category": "dibao",
                "valid_from": "2023-01-01",
            }
        ),
        json.dumps(
            {
                "psn_no": "Q-3",
                "insuplc_admdvs": "999999",
                "insutype": "390",
                "assist_category": "none",
                "valid_from": "2023-01-01",
            }
        ),
        json.dumps(
            {
                "psn_no": "Q-4",
                "insuplc_admdvs": "330109",
                "insutype": "320",
                "assist_category": "none",
                "valid_from": "2023-01-01",
            }
        ),
    ]
    code, out, err = run(env, "members", "import", "-", stdin="\n".join(lines) + "\n")
    assert code == 0
    assert out.strip() == "members: 3 lines: 1 recorded, 2 rejected"
    rejected = [json.loads(line) for line in err.splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [(2, "unknown_region"), (3, "bad_insutype")]


def test_hostile_lines_are_each_rejected_by_name_and_the_good_ones_around_them_settle(
    env: dict[str, str], tmp_path: Path
) -> None:
    good = [json.dumps({**GOOD, "setl_id": f"H-{i}"}).encode() for i in range(3)]
    hostile = [
        b"\xff\xfe not utf-8",
        b"\x00\x01\x02\x1b[31m",
        b"{" * 70_000,  # a very long line: cut and rejected without reading it whole
        json.dumps({**GOOD, "setl_id": "H-x", "medfee_sumamt": 0}).encode().replace(b": 0", b": 1e400"),
        json.dumps({**GOOD, "setl_id": "H-z", "medfee_sumamt": 0}).encode().replace(b": 0", b": 1e" + b"9" * 20),
        json.dumps({**GOOD, "setl_id": "H-y", "hosp_lv": 2.0}).encode(),
        json.dumps({**GOOD, "setl_id": "\u202e\u0000evil"}).encode(),
        b"[" * 3000 + b"]" * 3000,
    ]
    blank = [b""] * 200_000  # a file of many blank lines is slow to read, never a hang
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join([good[0], *hostile, good[1], *blank, good[2]]) + b"\n")
    code, out, _ = run(env, "claims", "settle", str(path))
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == 3 + len(hostile) + len(blank)
    assert [r["status"] for r in (results[0], results[9], results[-1])] == ["settled"] * 3
    assert [r["reason"] for r in results[1:9]] == [
        "not_utf8", "not_json", "line_too_long", "amount_too_large", "not_json", "bad_hosp_lv", "bad_setl_id",
        "not_json",
    ]  # fmt: skip
    assert results[5]["detail"] == "not JSON: a number too large or too small to read"  # its exponent: 20 digits
    assert {r["reason"] for r in results[10:-1]} == {"empty_line"}


@pytest.mark.parametrize("how", [(), ("--grouped",), ("--workers", "2")], ids=["streamed", "grouped", "workers"])
def test_a_line_too_long_is_rejected_with_its_whole_length_not_the_part_read(
    env: dict[str, str], tmp_path: Path, how: tuple[str, ...]
) -> None:
    long = b'{"setl_id": "' + b"x" * 200_000 + b'"}'  # 200,015 bytes; the reader holds 65,537 of it
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + long + b"\r\n" + long + b"\n" + long)  # BOM, CRLF, LF, no line end

    code, out, _ = run(env, "claims", "settle", str(path), *how)

    assert code == 0
    assert [json.loads(line)["detail"] for line in out.splitlines()] == ["line of 200015 bytes exceeds 65536"] * 3


def test_an_empty_claims_file_settles_nothing_and_succeeds(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert run(env, "claims", "settle", str(path)) == (0, "", "")


@pytest.mark.parametrize("options", [(), ("--grouped",)], ids=["in file order", "grouped"])
def test_a_file_that_starts_with_a_byte_order_mark_settles_its_first_line(
    env: dict[str, str], tmp_path: Path, options: tuple[str, ...]
) -> None:
    # Windows editors save UTF-8 with a byte order mark; it is not part of the first line's JSON.
    path = tmp_path / "bom.jsonl"
    setl_id = f"E-BOM-{len(options)}"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({**GOOD, "setl_id": setl_id}).encode() + b"\r\n")
    code, out, err = run(env, "claims", "settle", str(path), *options)
    assert (code, err) == (0, "")
    assert (json.loads(out)["setl_id"], json.loads(out)["status"]) == (setl_id, "settled")
    # A mark anywhere else is not skipped: that line is not JSON.
    path.write_bytes(b"\n\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert [json.loads(line)["reason"] for line in run(env, "claims", "settle", str(path))[1].splitlines()] == [
        "empty_line", "not_json",
    ]  # fmt: skip


def test_a_usage_error_is_one_named_line(env: dict[str, str]) -> None:
    # SPEC 7: errors exit non-zero with a one-line named reason on stderr (not click's usage block).
    code, _, err = run(env, "finance", "deduct", "--region", "330109")
    assert code == 2
    assert err.startswith("error: usage: Missing argument '{refuse|reduce}'. Choose from: refuse, reduce (`")
    assert err.endswith(" finance deduct --help` explains)\n") and err.count("\n") == 1  # `yibao` when installed
    code, _, err = run(env, "claims", "settle", "/nonexistent/claims.jsonl")
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith("error: usage: Invalid value for 'FILE': '/nonexistent/claims.jsonl': No such file")
    # A group given no command still shows its help (click's NoArgsIsHelpError is a usage error).
    result = CliRunner().invoke(main, ["claims"], env=env)
    assert "Usage:" in result.output and "settle" in result.output and "error:" not in result.output
