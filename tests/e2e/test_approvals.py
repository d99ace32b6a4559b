"""Four eyes (复核, issue 19): a reversal whose fund payments are above the policy's
`[controls] approval_above` waits for a second person with the approver role, takes effect once
when approved (recorded with both people), and never by its maker's own approval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commands.cli import main
from tests.cli_store import claim_line, member_line
from tests.conftest import EXAMPLES

POLICY = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
MEMBER = member_line("AP-1")


def claim(setl_id: str, inscp: str) -> dict[str, Any]:
    return claim_line(setl_id, "AP-1", inscp)


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = {"DATABASE_URL": database_url}

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, list(args), env=env, input=stdin)
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
        return result

    folder = tmp_path_factory.mktemp("approvals")
    policy = folder / "policy.toml"
    policy.write_text(POLICY + '\n[controls]\napproval_above = "5000.00"\n', encoding="utf-8")
    run("db", "up")
    run("policy", "load", str(policy))
    run("members", "import", "-", stdin=json.dumps(MEMBER) + "\n")
    # Fund payments: 10,000.00 -> (10,000 - 800) * 90% = 8,280.00; 2,000.00 -> 1,080.00.
    lines = [claim("AP-BIG", "10000.00"), claim("AP-SMALL", "2000.00"), claim("AP-OTHER", "10000.00")]
    run("claims", "settle", "-", stdin="".join(json.dumps(c) + "\n" for c in lines))
    return run


def out(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def usage_basic(yibao: Any) -> str:
    return str(out(yibao("members", "usage", "AP-1", "--year", "2023", "--json"))["basic_paid"])


def test_a_reversal_under_the_threshold_takes_effect_at_once(yibao: Any) -> None:
    done = out(yibao("claims", "reverse", "AP-SMALL", "--operator", "maker", "--reason", "wrong patient"))
    assert (done["status"], done["hifp_pay"]) == ("reversed", "-1080.00")


def test_the_maker_can_never_approve_their_own_reversal(yibao: Any) -> None:
    asked = out(yibao("claims", "reverse", "AP-BIG", "--operator", "maker", "--reason", "duplicate bill"))
    assert {k: asked[k] for k in ("status", "request_id", "amount", "maker")} == {
        "status": "pending_approval", "request_id": "reverse-AP-BIG-v1", "amount": "8280.00", "maker": "maker",
    }  # fmt: skip
    assert usage_basic(yibao) == "16560.00"  # 8,280.00 twice: nothing reversed yet
    own = yibao("approvals", "approve", "reverse-AP-BIG-v1", "--operator", "maker", ok=False)
    assert own.stderr.startswith("error: maker_cannot_approve: maker made request reverse-AP-BIG-v1")
    # Asking again gives the same request, not a second one.
    assert out(yibao("claims", "reverse", "AP-BIG", "--operator", "maker", "--reason", "again"))["request_id"] == (
        "reverse-AP-BIG-v1"
    )


def test_an_approved_reversal_takes_effect_once_with_both_people_in_the_trace(yibao: Any) -> None:
    approved = out(yibao("approvals", "approve", "reverse-AP-BIG-v1", "--operator", "checker"))
    assert (approved["status"], approved["checker"]) == ("approved", "checker")
    assert approved["result"]["hifp_pay"] == "-8280.00"
    assert usage_basic(yibao) == "8280.00"  # only AP-OTHER left
    again = yibao("approvals", "approve", "reverse-AP-BIG-v1", "--operator", "checker", ok=False)
    assert again.stderr.startswith("error: request_decided:")
    trace = [json.loads(line) for line in yibao("trace", "AP-BIG", "--json").stdout.splitlines()]
    reversal = next(e for e in trace if e["type"].endswith("Reversed"))
    assert (reversal["operator"], reversal["approved_by"]) == ("maker", "checker")


def test_a_rejected_reversal_changes_nothing_and_may_be_asked_again(yibao: Any) -> None:
    yibao("claims", "reverse", "AP-OTHER", "--operator", "maker", "--reason", "typo")
    rejected = out(yibao("approvals", "reject", "reverse-AP-OTHER-v1", "--operator", "checker", "--reason", "bill ok"))
    assert rejected["status"] == "rejected"
    assert usage_basic(yibao) == "8280.00"
    assert (
        out(yibao("claims", "reverse", "AP-OTHER", "--operator", "maker", "--reason", "typo, really"))["request_id"]
        == "reverse-AP-OTHER-v1-2"
    )
    listed = [json.loads(line) for line in yibao("approvals", "list").stdout.splitlines()]
    assert [(r["request_id"], r["status"]) for r in listed] == [
        ("reverse-AP-BIG-v1", "approved"),
        ("reverse-AP-OTHER-v1", "rejected"),
        ("reverse-AP-OTHER-v1-2", "pending_approval"),
    ]  # fmt: skip


def test_once_users_are_registered_only_an_approver_approves(yibao: Any) -> None:
    yibao("users", "add", "op-1", "--role", "operator", stdin="a long password\n")
    yibao("users", "add", "ap-1", "--role", "approver", stdin="a long password\n")
    by_operator = yibao("approvals", "approve", "reverse-AP-OTHER-v1-2", "--operator", "op-1", ok=False)
    assert by_operator.stderr.startswith("error: not_allowed: op-1 is registered as operator, which may not approve")
    stranger = yibao("approvals", "approve", "reverse-AP-OTHER-v1-2", "--operator", "checker", ok=False)
    assert stranger.stderr.startswith("error: unknown_user: no user checker")
    assert out(yibao("approvals", "approve", "reverse-AP-OTHER-v1-2", "--operator", "ap-1"))["status"] == "approved"
    assert usage_basic(yibao) == "0.00"


def test_the_store_verifies_clean_after_requests_approvals_and_rejections(yibao: Any) -> None:
    assert yibao("verify").exit_code == 0


def test_a_correction_above_the_threshold_waits_and_is_made_once_approved(yibao: Any, tmp_path: Path) -> None:
    yibao("claims", "settle", "-", stdin=json.dumps(claim("AP-FIX", "10000.00")) + "\n")
    fixed = tmp_path / "fix.jsonl"
    fixed.write_text(json.dumps(claim("AP-FIX", "9000.00")) + "\n", encoding="utf-8")
    held = out(yibao("claims", "correct", str(fixed), "--operator", "op-1", "--reason", "price list"))
    assert {k: held[k] for k in ("status", "request_id", "amount", "maker")} == {
        "status": "pending_approval", "request_id": "reverse-AP-FIX-v1".replace("reverse", "correct"),
        "amount": "8280.00", "maker": "op-1",
    }  # fmt: skip
    assert usage_basic(yibao) == "8280.00"  # still the first version
    approved = out(yibao("approvals", "approve", "correct-AP-FIX-v1", "--operator", "ap-1"))
    # The new version: (9,000 - 800) * 90% = 7,380.00, made by op-1, approved by ap-1.
    assert (approved["result"]["status"], approved["result"]["hifp_pay"], approved["result"]["version"]) == (
        "settled", "7380.00", 2,
    )  # fmt: skip
    assert usage_basic(yibao) == "7380.00"
    trace = [json.loads(line) for line in yibao("trace", "AP-FIX", "--json").stdout.splitlines()]
    own = [e for e in trace if e["type"].startswith("Settlement.")]
    assert [(e["type"], e["operator"], e.get("approved_by")) for e in own] == [
        ("Settlement.Settled", None, None),
        ("Settlement.Reversed", "op-1", "ap-1"),
        ("Settlement.Resettled", "op-1", "ap-1"),
    ]
    assert yibao("verify").exit_code == 0
