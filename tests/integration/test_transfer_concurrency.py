"""Claims settling in both regions while transfers start, are approved and relayed: nothing lost.

Two `yibao claims settle` processes (one file per region) and two `yibao transfers relay` loops
run while this process starts a transfer for every member of region A and approves the large
ones. Claims for A's members are dated before the transfer date (they settle in A, racing the
transfer for the same account); claims for B's own members settle in B. Afterwards every claim
is settled exactly once, every transfer is completed once, every fen of every account is where
the settlements and transfers put it, and both regions verify.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.region import RegionApplication
from app.transfer_relay import relay
from core.records import MemberRecord, parse_contribution
from core.transfer import COMPLETED, PENDING_REVIEW
from projections.verify import verify_region
from store.app import Store
from tests.conftest import example_region

A, B = "330109", "330110"
MOVERS, STAYERS, CLAIMS_EACH = 24, 12, 8
TRANSFER_DATE = dt.date(2023, 7, 1)


def account_yuan(i: int) -> str:
    return "1500.00" if i % 4 == 0 else "600.00"  # every fourth waits for approval


def claim(setl_id: str, psn_no: str, day: dt.date, total: str) -> str:
    return json.dumps(
        {"setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H7", "hosp_lv": 2, "med_type": "11",
         "setl_time": day.isoformat(), "medfee_sumamt": total, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
         "preselfpay_amt": "0.00", "inscp_scp_amt": total}
    )  # fmt: skip


@pytest.fixture(scope="module")
def regions(store: Store) -> tuple[RegionApplication, RegionApplication]:
    a, b = example_region(store, A), example_region(store, B)
    for app, prefix, count in ((a, "MV", MOVERS), (b, "ST", STAYERS)):
        records = [
            MemberRecord(
                psn_no=f"{prefix}-{i}", insuplc_admdvs=app.region, insutype="310", assist_category="none",
                chronic=False, supplementary=(), valid_from=dt.date(2023, 1, 1),
            )
            for i in range(count)
        ]  # fmt: skip
        app.import_members(records)
        app.import_contributions(
            [
                parse_contribution(
                    {
                        "contrib_id": f"C-{prefix}-{i}",
                        "psn_no": f"{prefix}-{i}",
                        "fund": "310100",
                        "paid_date": "2023-01-05",
                        "amount": "9000.00",
                        "acct_amount": account_yuan(i),
                    }
                )
                for i in range(count)
            ]
        )
    return a, b


def spawn(database_url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "commands", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_claims_in_both_regions_and_transfers_at_the_same_time_lose_nothing(
    store: Store, regions: tuple[RegionApplication, RegionApplication], database_url: str, tmp_path: Path
) -> None:
    a, b = regions
    files = {}
    for prefix, count in (("MV", MOVERS), ("ST", STAYERS)):
        lines = [
            claim(f"{prefix}-S{i}-{k}", f"{prefix}-{i}", dt.date(2023, 2, 1) + dt.timedelta(days=17 * k), "410.00")
            for i in range(count)  # member by member: the later movers' claims settle after their transfer
            for k in range(CLAIMS_EACH)
        ]
        files[prefix] = tmp_path / f"{prefix}.jsonl"
        files[prefix].write_text("\n".join(lines) + "\n", encoding="utf-8")

    outs = {p: tmp_path / f"{p}.out" for p in files}
    settlers = [
        spawn(database_url, "claims", "settle", str(files[p]), "--out", str(outs[p]), "--batch-size", "6")
        for p in files
    ]
    deadline = time.monotonic() + 60
    while not (outs["MV"].exists() and outs["MV"].stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)  # start the transfers once the claims of the movers are being settled
    relays = [spawn(database_url, "transfers", "relay") for _ in range(2)]
    for i in range(MOVERS):
        state = a.start_transfer(
            f"TR-MV-{i}", psn_no=f"MV-{i}", to_region=B, transfer_date=TRANSFER_DATE, operator="clerk",
            requested_on=dt.date(2023, 7, 2),
        )  # fmt: skip
        if state.status == PENDING_REVIEW:  # what is left of 1,500.00 after the claims settled so far
            a.review_transfer(f"TR-MV-{i}", approve=True, operator="chief", reason="ok", on_date=dt.date(2023, 7, 3))
        if i % 6 == 5:
            relays.append(spawn(database_url, "transfers", "relay"))
    for process in settlers + relays:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
    relay(store)

    # Every claim settled, exactly once, in the region of its date.
    for prefix, count in (("MV", MOVERS), ("ST", STAYERS)):
        results = [json.loads(line) for line in (tmp_path / f"{prefix}.out").read_text().splitlines()]
        assert len(results) == count * CLAIMS_EACH
        assert {r["status"] for r in results} == {"settled"}, [r for r in results if r["status"] != "settled"][:3]
        home = a if prefix == "MV" else b
        other = b if prefix == "MV" else a
        for r in results[:: count // 3]:
            assert home.settlement(r["setl_id"]) is not None and other.settlement(r["setl_id"]) is None

    # Every transfer completed once; every fen of each mover's account is accounted for.
    moved_whole = 0
    for i in range(MOVERS):
        psn = f"MV-{i}"
        transfer = a.transfer(f"TR-MV-{i}")
        assert transfer is not None and transfer.status == COMPLETED
        paid_in_a = sum(a.settlement(f"MV-S{i}-{k}").current.amounts["acct_pay"] for k in range(CLAIMS_EACH))
        funded = 150_000 if account_yuan(i) == "1500.00" else 60_000
        assert paid_in_a + transfer.facts.balance == funded
        moved_whole += transfer.facts.balance == funded
        assert a.account_balance(psn) == 0
        assert b.account_balance(psn) == transfer.facts.balance
        assert b.transfer_in(f"TR-MV-{i}", A) is not None
    print(f"{moved_whole} of {MOVERS} transfers moved the whole balance (claims settled after them)")
    for app in regions:
        findings = verify_region(app)
        assert findings.problems == [], findings.problems
