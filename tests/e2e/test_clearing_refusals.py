"""`clearing run` refusing one pair of regions and clearing the others: a region whose bank cannot
pay its side (the second of its pair, whose side is recorded through the relay and could not be
refused afterwards), a date before what it clears; and the trace of a claim whose correction
moved it from one region of treatment to another."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli_store import coded_runner, jsonl, lines
from tests.conftest import EXAMPLES
from tests.e2e.test_remote_care_commands import claim, institution, member

A, B, C = "330109", "330110", "330111"


@pytest.fixture(scope="module")
def run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = coded_runner(database_url)
    folder = tmp_path_factory.mktemp("refusals")
    run("db", "up")
    for code in (A, B, C):
        policy = folder / f"policy-{code}.toml"
        text = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
        policy.write_text(text.replace(f'region = "{A}"', f'region = "{code}"'), encoding="utf-8")
        run("policy", "load", str(policy))
    run("members", "import", "-", stdin=jsonl([member("PA", A), member("PB", B), member("PC", C)]))
    contributions = [
        {"contrib_id": f"C-{p}", "psn_no": p, "fund": "390100", "paid_date": "2023-01-10", "amount": amount}
        for p, amount in (("PA", "90000.00"), ("PB", "90000.00"), ("PC", "100.00"))
    ]
    run("contributions", "import", "-", stdin=jsonl(contributions))  # fmt: skip
    run("institutions", "import", "-", "--operator", "registrar", stdin=jsonl([institution("HA", A)]))
    settled = lines(run("claims", "settle", "-", stdin=jsonl([
        claim("C1", "PC", "HA", A, "5000.00", "2023-03-10"),  # C owes A (5,000 - 800) x 80% = 3,360.00
        claim("B1", "PB", "HA", A, "1800.00", "2023-03-12"),  # B owes A 800.00
    ])))  # fmt: skip
    assert [s["status"] for s in settled] == ["settled", "settled"]
    return run


def test_a_pair_whose_paying_region_lacks_the_money_is_refused_and_the_other_pairs_are_cleared(run: Any) -> None:
    done = run("clearing", "run", "--month", "2023-03", "--date", "2023-04-03", "--operator", "fin", code=1)
    by_pair = {(p["first"], p["second"]): p for p in lines(done)}
    assert by_pair[(A, B)]["status"] == "cleared" and by_pair[(A, B)]["net"] == "800.00"
    assert by_pair[(B, C)]["status"] == "nothing_to_clear"
    refused = by_pair[(A, C)]
    assert (refused["status"], refused["reason"]) == ("refused", "insufficient_fund_balance")
    assert refused["detail"].startswith(f"region {C}: fund 390100 has 100.00 in the bank on 2023-04-03")
    assert "1 of 3 pairs of regions refused" in done.stderr
    [dues] = [d for d in lines(run("clearing", "dues")) if (d["first"], d["second"]) == (A, C)]
    assert (dues[f"owed_to_{A}"], dues["payer"]) == ("3360.00", C)  # nothing recorded for the pair
    assert "OK" in run("verify").stdout.splitlines()[-1]


def test_a_clearing_dated_before_the_month_it_clears_is_refused_by_name(run: Any) -> None:
    run("claims", "settle", "-", stdin=jsonl([claim("B2", "PB", "HA", A, "1800.00", "2023-05-20")]))
    done = run("clearing", "run", "--month", "2023-05", "--date", "2023-05-10", "--operator", "fin", code=1)
    [refused] = [p for p in lines(done) if (p["first"], p["second"]) == (A, B)]
    assert refused["reason"] == "clearing_date_before_its_dues"
    [dues] = [d for d in lines(run("clearing", "dues")) if (d["first"], d["second"]) == (A, B)]
    assert dues[f"owed_to_{A}"] == "800.00"


def test_the_trace_keeps_the_first_region_of_treatment_after_a_correction_moved_the_claim(run: Any) -> None:
    run("institutions", "import", "-", "--operator", "registrar", stdin=jsonl([institution("HC", C)]))
    moved = claim("B3", "PB", "HA", A, "1800.00", "2023-06-02")
    run("claims", "settle", "-", stdin=jsonl([moved]))
    corrected = {**moved, "fixmedins_code": "HC", "mdtrtarea_admvs": C}
    run("claims", "correct", "-", "--reason", "wrong hospital", "--operator", "clerk", stdin=jsonl([corrected]))
    traced = [(e["region"], e["type"]) for e in map(json.loads, run("trace", "B3", "--json").stdout.splitlines())]
    assert [t for t in traced if t[1].startswith("HospitalAccount")] == [
        (A, "HospitalAccount.RemoteSettled"), (A, "HospitalAccount.RemoteReversed"),
        (C, "HospitalAccount.RemoteSettled"),
    ]  # fmt: skip
