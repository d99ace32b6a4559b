"""`yibao transfers ...` and `yibao family ...` through the CLI, including a process killed between
the two regions' commits (SIGKILL at a named failpoint) and run again: completed exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from commands.cli import main
from tests.conftest import EXAMPLES

A, B = "330109", "330110"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"
MEMBERS = {  # psn_no -> account balance funded (yuan)
    "E-SMALL": "800.00", "E-BIG": "4321.09", "E-REJ": "1500.00", "E-CRASH1": "200.00", "E-CRASH2": "1200.00",
    "E-BOSS": "100.00",
}  # fmt: skip


class Yibao:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args))

    def killed(self, failpoint: str, *args: str) -> None:
        """Run a command in its own process, which must die at `failpoint`."""
        env = {**os.environ, **self.env, "YIBAO_FAILPOINT": failpoint}
        done = subprocess.run([sys.executable, "-m", "commands", *args], env=env, capture_output=True, timeout=120)
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def jsonl(lines: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Yibao:
    cli = Yibao({"DATABASE_URL": database_url})
    folder = tmp_path_factory.mktemp("transfers")
    cli.ok("db", "up")
    for code in (A, B):
        policy = folder / f"policy-{code}.toml"
        policy.write_text(POLICY_FILE.read_text(encoding="utf-8").replace(f'region = "{A}"', f'region = "{code}"'))
        cli.ok("policy", "load", str(policy))
    members = [
        {"psn_no": p, "insuplc_admdvs": A, "insutype": "310", "assist_category": "none", "valid_from": "2023-01-01"}
        for p in MEMBERS
    ] + [{"psn_no": "E-KID", "insuplc_admdvs": A, "insutype": "390", "assist_category": "none",
          "valid_from": "2023-01-01"}]  # fmt: skip
    cli.ok("members", "import", str(jsonl(members, folder / "members.jsonl")))
    contributions = [
        {"contrib_id": f"C-{p}", "psn_no": p, "fund": "310100", "paid_date": "2023-01-10", "amount": "9000.00",
         "acct_amount": yuan}
        for p, yuan in MEMBERS.items()
    ]  # fmt: skip
    cli.ok("contributions", "import", str(jsonl(contributions, folder / "contributions.jsonl")))
    return cli


def start(yibao: Yibao, psn_no: str, transfer_id: str, *more: str) -> dict[str, Any]:
    return yibao.json(
        "transfers", "start", psn_no, "--to", B, "--date", "2023-07-01", "--transfer-id", transfer_id,
        "--operator", "clerk-1", "--requested-on", "2023-07-03", *more,
    )  # fmt: skip


def test_a_small_transfer_completes_at_once_and_repeating_the_command_records_nothing(yibao: Yibao) -> None:
    out = start(yibao, "E-SMALL", "TR-S")
    assert out == {
        "transfer_id": "TR-S", "psn_no": "E-SMALL", "from_region": A, "to_region": B, "transfer_date": "2023-07-01",
        "balance": "800.00", "contribution_years": [2023], "review_required": False, "status": "completed",
        "recorded": True,
    }  # fmt: skip
    again = start(yibao, "E-SMALL", "TR-S")
    assert (again["status"], again["recorded"]) == ("completed", False)


def test_a_large_transfer_waits_is_listed_approved_and_shown_with_its_events(yibao: Yibao) -> None:
    assert start(yibao, "E-BIG", "TR-B")["status"] == "pending_review"
    pending = [json.loads(line) for line in yibao.ok("transfers", "list", "--status", "pending_review").splitlines()]
    assert [(t["transfer_id"], t["balance"], t["status"]) for t in pending] == [("TR-B", "4321.09", "pending_review")]
    approved = yibao.json("transfers", "approve", "TR-B", "--operator", "chief-2", "--date", "2023-07-04")
    assert approved["status"] == "completed"
    shown = yibao.json("transfers", "show", "TR-B")
    steps = [(e["region"], e["type"], e["operator"]) for e in shown["events"]]
    assert steps == [  # in each region's log order; the account movements name the transfer
        (A, "IndividualAccount.Debited", None),
        (A, "Transfer.Started", "clerk-1"),
        (A, "Transfer.Released", "chief-2"),
        (A, "Transfer.Completed", None),
        (B, "IndividualAccount.Credited", None),
        (B, "TransferIn.Received", "clerk-1"),
    ]
    received = next(e for e in shown["events"] if e["type"] == "TransferIn.Received")
    assert received["postings"] == [
        {"fund": "310200", "account": "due_to_regions", "party": A, "amount": "4321.09"},
        {"fund": "310200", "account": "individual_accounts", "party": "E-BIG", "amount": "-4321.09"},
    ]
    report = yibao.json("report", "transfers", "--region", B, "--year", "2023", "--as-of", "2023-12-31")
    july = next(m for m in report["months"] if m["month"] == "2023-07")
    assert july["in"] >= 2 and report["in_transit"] == "0.00"


def test_a_rejected_transfer_returns_the_balance(yibao: Yibao) -> None:
    assert start(yibao, "E-REJ", "TR-R")["status"] == "pending_review"
    out = yibao.json("transfers", "reject", "TR-R", "--operator", "chief-2", "--reason", "moved back")
    assert out["status"] == "rejected"
    refused = yibao.run("transfers", "approve", "TR-R", "--operator", "chief-2")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: transfer_rejected:")
    missing = yibao.run("transfers", "reject", "TR-R", "--operator", "chief-2", "--reason", " ")
    assert missing.exit_code == 1 and "missing_reason" in missing.stderr
    unknown = yibao.run("transfers", "approve", "TR-NONE", "--operator", "chief-2")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: unknown_transfer:")


@pytest.mark.parametrize(
    ("psn_no", "transfer_id", "failpoint", "first_run_left"),
    [
        ("E-CRASH1", "TR-C1", "relay.before_arrival", {"received": ["TR-C1"], "completed": ["TR-C1"]}),
        ("E-CRASH2", "TR-C2", "relay.after_arrival", {"received": [], "completed": ["TR-C2"]}),
    ],
)
def test_a_process_killed_between_the_two_regions_is_completed_exactly_once_by_running_it_again(
    yibao: Yibao, psn_no: str, transfer_id: str, failpoint: str, first_run_left: dict[str, list[str]]
) -> None:
    args = ["transfers", "start", psn_no, "--to", B, "--date", "2023-07-01", "--transfer-id", transfer_id]
    if psn_no == "E-CRASH2":  # over 1,000 yuan: the crash comes with the approval
        yibao.ok(*args, "--operator", "clerk-1")
        args = ["transfers", "approve", transfer_id, "--operator", "chief-2"]
    yibao.killed(failpoint, *args)
    assert yibao.json("transfers", "show", transfer_id)["status"] == "released"  # the releasing side committed
    assert yibao.json("transfers", "relay") == first_run_left
    assert yibao.json("transfers", "relay") == {"received": [], "completed": []}
    shown = yibao.json("transfers", "show", transfer_id)
    assert shown["status"] == "completed"
    assert [e["type"] for e in shown["events"]].count("TransferIn.Received") == 1
    usage = yibao.run("verify")
    assert usage.exit_code == 0, usage.stdout


def test_family_binding_commands_record_who_bound_and_unbound(yibao: Yibao) -> None:
    bound = yibao.json("family", "bind", "E-KID", "--employee", "E-BOSS", "--operator", "clerk-1", "--reason", "child")
    assert bound == {"psn_no": "E-KID", "employee": "E-BOSS", "status": "recorded"}
    again = yibao.json("family", "bind", "E-KID", "--employee", "E-BOSS", "--operator", "clerk-1", "--reason", "child")
    assert again["status"] == "unchanged"
    unbound = yibao.json("family", "unbind", "E-KID", "--operator", "clerk-1", "--reason", "adult")
    assert unbound == {"psn_no": "E-KID", "employee": None, "status": "recorded"}
    refused = yibao.run("family", "bind", "E-KID", "--employee", "E-KID", "--operator", "c", "--reason", "r")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: bad_family_of:")
