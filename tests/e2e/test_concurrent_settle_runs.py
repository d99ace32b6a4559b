"""Four `yibao claims settle FILE --out F` runs at once, over files that share members, account
owners and family accounts (SPEC 7; issue 17 item 5): every run ends with exit 0 and one result
line per input line, every setl_id is settled exactly once, and what does not depend on the
order of arrival agrees with one sequential run of every claim: each member's basic fund pays its
annual cap, each account owner's account pays out exactly what was allocated to it (and never
goes below zero), and `yibao verify` finds nothing wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from core.ledger import INDIVIDUAL_ACCOUNTS
from core.money import format_yuan, parse_yuan
from store.server import ServerLocation, create_database, drop_database
from tests.conftest import EXAMPLES, REPO_ROOT

REGION = "330109"
YEAR = 2023
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"

PROCESSES = 4
EMPLOYEES = 8  # each with an individual account of ACCOUNT_YUAN
DEPENDENTS_PER_EMPLOYEE = 2  # residents whose claims the employee's account pays (家庭共济)
RESIDENTS = 8  # residents with no account, half of them assisted
CLAIMS_PER_MEMBER = 150  # 112 large inpatient stays (every annual cap binds) and 38 outpatient visits
ACCOUNT_YUAN = "3000.00"
ANNUAL_CAP = {"310": parse_yuan("600000.00"), "390": parse_yuan("500000.00")}  # policy-330109-2023.toml


def members() -> list[dict[str, Any]]:
    """Employees first (a family_of names an employee recorded before it), then their dependents."""
    out: list[dict[str, Any]] = []
    common = {"insuplc_admdvs": REGION, "chronic": False, "supplementary": [], "valid_from": f"{YEAR}-01-01"}
    for e in range(EMPLOYEES):
        out.append({"psn_no": f"E{e}", "insutype": "310", "assist_category": "none", **common})
    for e in range(EMPLOYEES):
        for d in range(DEPENDENTS_PER_EMPLOYEE):
            out.append(
                {"psn_no": f"E{e}-D{d}", "insutype": "390", "assist_category": "none", "family_of": f"E{e}", **common}
            )
    categories = ["none", "dibao", "none", "tekun"]
    for r in range(RESIDENTS):
        out.append({"psn_no": f"R{r}", "insutype": "390", "assist_category": categories[r % 4], **common})
    return out


def claim_pool(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pool = []
    for member in members():
        for i in range(CLAIMS_PER_MEMBER):
            inpatient = i < CLAIMS_PER_MEMBER * 3 // 4
            inscp = rng.randrange(15_000_000, 30_000_000) if inpatient else rng.randrange(200_000, 400_000)
            fulamt = rng.randrange(0, inscp // 10)
            pool.append(
                {
                    "setl_id": f"{member['psn_no']}-S{i:02d}",
                    "psn_no": member["psn_no"],
                    "fixmedins_code": f"H{rng.randrange(3)}",
                    "hosp_lv": rng.randint(1, 3),
                    "med_type": "21" if inpatient else "11",
                    "setl_time": (dt.date(YEAR, 1, 2) + dt.timedelta(days=rng.randrange(360))).isoformat(),
                    "medfee_sumamt": format_yuan(inscp + fulamt),
                    "fulamt_ownpay_amt": format_yuan(fulamt),
                    "overlmt_selfpay": "0.00",
                    "preselfpay_amt": "0.00",
                    "inscp_scp_amt": format_yuan(inscp),
                }
            )
    return pool


def overlapping_files(pool: list[dict[str, Any]], folder: Path, seed: int) -> list[list[dict[str, Any]]]:
    """Each claim in 2..4 of the runs' files, each file shuffled: every member's claims are in
    every file, and every setl_id in more than one."""
    rng = random.Random(seed)
    inputs: list[list[dict[str, Any]]] = [[] for _ in range(PROCESSES)]
    for claim in pool:
        for k in rng.sample(range(PROCESSES), rng.randint(2, PROCESSES)):
            inputs[k].append(claim)
    for k, lines in enumerate(inputs):
        rng.shuffle(lines)
        (folder / f"claims-{k}.jsonl").write_text("".join(json.dumps(c) + "\n" for c in lines), encoding="utf-8")
    return inputs


def yibao(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "commands", *args], cwd=REPO_ROOT, env={**os.environ, "DATABASE_URL": url},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


def prepared(server: ServerLocation, name: str, folder: Path) -> str:
    url = create_database(server.url, name)
    members_file = folder / "members.jsonl"
    members_file.write_text("".join(json.dumps(m) + "\n" for m in members()), encoding="utf-8")
    contributions = folder / "contributions.jsonl"
    paid = {"fund": "310100", "paid_date": f"{YEAR}-01-10", "amount": "6000.00", "acct_amount": ACCOUNT_YUAN}
    contributions.write_text(
        "".join(json.dumps({"contrib_id": f"C-E{e}", "psn_no": f"E{e}", **paid}) + "\n" for e in range(EMPLOYEES)),
        encoding="utf-8",
    )
    yibao(url, "db", "up")
    yibao(url, "policy", "load", str(POLICY_FILE))
    yibao(url, "members", "import", str(members_file))
    yibao(url, "contributions", "import", str(contributions))
    return url


def totals(url: str) -> dict[str, Any]:
    """What does not depend on the order claims arrived in: the settled setl_ids, each member's
    basic fund payments, each account's payments out (own and family), and the accounts' balances."""
    yibao(url, "projections", "run")
    schema = f"region_{REGION}"
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            sql.SQL("SELECT setl_id, psn_no, status, hifp_pay, acct_pay, acct_mulaid_pay FROM {}").format(
                sql.Identifier(schema, "settlements")
            )
        ).fetchall()
        balances = conn.execute(
            sql.SQL("SELECT party, sum(amount) AS balance FROM {} WHERE account = %s GROUP BY party").format(
                sql.Identifier(schema, "journal")
            ),
            (INDIVIDUAL_ACCOUNTS,),
        ).fetchall()
    basic: Counter[str] = Counter()
    accounts: Counter[str] = Counter()
    for row in rows:
        assert row["status"] == "settled", row
        basic[row["psn_no"]] += row["hifp_pay"]
        accounts[row["psn_no"].split("-")[0]] += row["acct_pay"] + row["acct_mulaid_pay"]
    return {
        "settled": sorted(row["setl_id"] for row in rows),
        "basic": dict(basic),
        "account_payments": {k: v for k, v in accounts.items() if v},
        "balances": {row["party"]: -int(row["balance"]) for row in balances},
    }


def test_four_runs_over_files_sharing_members_and_family_accounts_all_finish_and_settle_each_claim_once(
    server: ServerLocation, tmp_path: Path
) -> None:
    pool = claim_pool(seed=5)
    inputs = overlapping_files(pool, tmp_path, seed=6)
    occurrences = Counter(c["setl_id"] for lines in inputs for c in lines)
    assert sum(occurrences.values()) > 2 * len(pool)
    names = {kind: f"t_settle_runs_{kind}_{os.getpid()}" for kind in ("concurrent", "sequential")}
    try:
        url = prepared(server, names["concurrent"], tmp_path)
        env = {**os.environ, "DATABASE_URL": url}
        settle = [sys.executable, "-m", "commands", "claims", "settle"]
        runs = [
            subprocess.Popen(
                [*settle, str(tmp_path / f"claims-{k}.jsonl"), "--out", str(tmp_path / f"out-{k}.jsonl")],
                cwd=REPO_ROOT,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(PROCESSES)
        ]
        errors = [run.communicate(timeout=600)[1] for run in runs]
        assert [run.returncode for run in runs] == [0] * PROCESSES, errors

        statuses: dict[str, Counter[str]] = defaultdict(Counter)
        results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for k, lines in enumerate(inputs):
            output = [json.loads(x) for x in (tmp_path / f"out-{k}.jsonl").read_text(encoding="utf-8").splitlines()]
            assert [r["setl_id"] for r in output] == [c["setl_id"] for c in lines]  # one line per input, in order
            for result in output:
                statuses[result["setl_id"]][result["status"]] += 1
                results[result["setl_id"]].append({k: v for k, v in result.items() if k != "status"})
        for setl_id, counts in statuses.items():
            assert counts == Counter({"settled": 1, "duplicate": occurrences[setl_id] - 1}), setl_id
            assert all(r == results[setl_id][0] for r in results[setl_id]), setl_id
        assert json.loads(yibao(url, "verify", "--json").stdout)["problems"] == []
        concurrent = totals(url)

        reference = prepared(server, names["sequential"], tmp_path)
        everything = tmp_path / "all.jsonl"
        everything.write_text("".join(json.dumps(c) + "\n" for c in pool), encoding="utf-8")
        yibao(reference, "claims", "settle", str(everything), "--out", str(tmp_path / "all.out"))
        sequential = totals(reference)
    finally:
        for name in names.values():
            drop_database(server.url, name)

    assert concurrent["settled"] == sorted(c["setl_id"] for c in pool)  # each once, in the store
    assert concurrent == sequential
    for member in members():
        assert concurrent["basic"][member["psn_no"]] == ANNUAL_CAP[member["insutype"]], member["psn_no"]
    assert concurrent["account_payments"] == {f"E{e}": parse_yuan(ACCOUNT_YUAN) for e in range(EMPLOYEES)}
    assert all(balance >= 0 for balance in concurrent["balances"].values())
