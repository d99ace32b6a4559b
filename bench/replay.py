"""Replay: rebuilding the read model from the event log, and loading one long aggregate.

    .venv/bin/python -m bench.replay [--claims 100000] [--runs 3] [--member-claims 1000]

A fresh database gets a synthetic region-year settled in bulk; then
- the read model (journal, settlements, member usage, transfers) is rebuilt from the first
  event `--runs` times: events per second of the whole log;
- one member settles `--member-claims` claims, so their member-year has that many events, and
  the aggregate is loaded (read and replayed) 50 times: median and max milliseconds per load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from bench.figures import figure
from bench.settle import prepare, settle
from commands.synthetic import Scenario, generate
from core.records import MemberRecord, decode_line, parse_claim
from projections.read_model import rebuild
from store.server import drop_database, locate


def long_member_year(app: object, claims: int) -> str:
    psn_no = "BENCH-LONG"
    app.import_members(  # type: ignore[attr-defined]
        [
            MemberRecord(
                psn_no=psn_no, insuplc_admdvs=app.region, insutype="390", assist_category="none",  # type: ignore[attr-defined]
                chronic=False, supplementary=(), valid_from=dt.date(2023, 1, 1),
            )
        ]
    )  # fmt: skip
    lines = [
        parse_claim(
            decode_line(
                (
                    f'{{"setl_id": "BL-{i}", "psn_no": "{psn_no}", "fixmedins_code": "H1", "hosp_lv": 1,'
                    f' "med_type": "11", "setl_time": "2023-{1 + i % 12:02d}-10", "medfee_sumamt": "10.00",'
                    ' "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00",'
                    ' "inscp_scp_amt": "10.00"}'
                ).encode()
            )
        )
        for i in range(claims)
    ]
    for start in range(0, claims, 500):
        app.settle_claims(lines[start : start + 500])  # type: ignore[attr-defined]
    return psn_no


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--member-claims", type=int, default=1_000)
    args = parser.parse_args()
    server = locate()
    scenario = Scenario(members=max(1_000, args.claims // 10), claims=args.claims, seed=17)
    name = f"bench_replay_{os.getpid()}"
    with tempfile.TemporaryDirectory() as folder:
        files = Path(folder)
        generate(scenario, files)
        store = prepare(server, name, files)
        try:
            settle(store, files / "claims.jsonl", limit=None, batch_size=2_000)
            app = store.region(scenario.region)
            events = app.recorder.max_notification_id() or 0
            rates = []
            for run in range(args.runs):
                began = time.perf_counter()
                rebuild(app)
                seconds = time.perf_counter() - began
                rates.append(events / seconds)
                print(
                    f"run {run + 1}: read model rebuilt from {events:,} events in {seconds:.1f} s "
                    f"= {events / seconds:,.0f} events/s"
                )
            psn_no = long_member_year(app, args.member_claims)
            loads = []
            for _ in range(50):
                began = time.perf_counter()
                member_year = app.member_year(psn_no, 2023)
                loads.append((time.perf_counter() - began) * 1000)
            assert member_year is not None
        finally:
            store.close()
            drop_database(server.url, name)
    print()
    print(f"server: {server.describe()}; {os.cpu_count()} cores")
    print(figure(f"read model rebuild from {events:,} events", rates, "events/s"))
    print(figure(f"load of a member-year of {member_year.version:,} events", loads, "ms", digits=1))


if __name__ == "__main__":
    main()
