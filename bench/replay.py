"""Replay: rebuilding the read model from the event log, and loading one long aggregate.

    .venv/bin/python -m bench.replay [--claims 100000] [--runs 3] [--member-claims 1000]
    .venv/bin/python -m bench.replay --events 5000000 [--runs 3]

A fresh database gets a synthetic region-year settled in bulk; then
- the read model (journal, settlements, member usage, transfers) is rebuilt from the first
  event `--runs` times: events per second of the whole log;
- one member settles `--member-claims` claims, so their member-year has that many events, and
  the aggregate is loaded (read and replayed) 50 times: median and max milliseconds per load.

With `--events N` the log is a region-year of real settled claims (about 3.2 events a claim:
the settlement, the member-year's accumulation, the account; plus members and contributions),
large enough for at least N events. It is settled once, in bulk, into a database kept under a
stable name (`bench_replay_log_<claims>`; built under another name and renamed only when
complete, so an interrupted build is never reused); later runs find it and only rebuild. The
rebuilds run in that database (a rebuild starts by emptying the read model), and the long
member-year is not measured. Drop it with `DROP DATABASE` when done.

Each run says the CPU it took, here and in the server. On 5,303,596 events (2 cores, a4d25f3):
about 41 CPU-s here and 45 in the server backends per rebuild (checkpointer and WAL writer not
counted), where 150,000 events/s would leave 35 s x 2 cores = 71 CPU-s. Each stage alone, on
that log: reading the 3,636,040 events that build rows (4.31 GB of stored state, 2.2 KB a
settlement) 18.2 s; decoding them and building the rows 16.0 s; copying the 5,076,996 journal
rows 8.7 s with the primary key only, 26.2 s with the journal's secondary indexes but the one by
party (19.6 s without the one by reference, which a rebuild now drops: migration 0009);
building the three indexes a rebuild drops 7.7 s after its last page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.figures import figure, machine
from bench.settle import settled_region
from commands.synthetic import Scenario
from core.records import MemberRecord, decode_line, parse_claim
from projections.read_model import rebuild
from store.app import Store
from store.server import ServerLocation, locate, with_dbname

EVENTS_PER_CLAIM = 3.0  # a little under what a settled region-year holds (3.18 with members and contributions)


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


def server_cpu(app: object) -> float | None:
    """CPU seconds so far of the server processes serving this database (their /proc entries:
    a server on this machine, readable by this user), or None where they cannot be read."""
    with app.factory.datastore.transaction(commit=False) as curs:  # type: ignore[attr-defined]
        pids = [row["pid"] for row in curs.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()]  # fmt: skip
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total


def rebuilds(app: object, runs: int) -> tuple[int, list[float]]:
    """Rebuild the read model `runs` times: (events in the log, events per second of each run).
    Each run also says the CPU seconds it took here (every thread) and in the server processes
    serving the database (those alive at its end, as far as /proc shows them: not the
    checkpointer or WAL writer), against its wall time times the cores."""
    events = app.recorder.max_notification_id() or 0  # type: ignore[attr-defined]
    rates = []
    for run in range(runs):
        server_before = server_cpu(app)
        cpu = time.process_time()
        began = time.perf_counter()
        rebuild(app)  # type: ignore[arg-type]
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu
        server_after = server_cpu(app)
        rates.append(events / seconds)
        used = f"CPU {cpu:.1f} s here"
        if server_before is not None and server_after is not None:
            used += f" + {server_after - server_before:.1f} s in the server"
        print(
            f"run {run + 1}: read model rebuilt from {events:,} events in {seconds:.1f} s "
            f"= {events / seconds:,.0f} events/s ({used}, of {seconds * (os.cpu_count() or 1):.0f} s on "
            f"{os.cpu_count()} cores)",
            flush=True,
        )
    return events, rates


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def settled_log(server: ServerLocation, events: int) -> tuple[str, Scenario]:
    """The kept database of a settled region-year of at least `events` events: built if missing."""
    claims = math.ceil(events / EVENTS_PER_CLAIM)
    scenario = Scenario(members=max(1_000, claims // 10), claims=claims, seed=17)
    name = f"bench_replay_log_{claims}"
    if database_exists(server.url, name):
        print(f"reusing the settled log in database {name} ({claims:,} claims, {scenario.members:,} members)")
        return name, scenario
    building = f"{name}_building"
    print(f"building database {name}: {claims:,} claims of {scenario.members:,} members settled in bulk", flush=True)
    began = time.perf_counter()
    with settled_region(server, scenario, building, keep=True) as (store, _, count, seconds):
        head = store.region(scenario.region).recorder.max_notification_id() or 0
    print(f"settled {count:,} claims in {seconds:.0f} s ({count / seconds:,.0f} claims/s): {head:,} events", flush=True)
    with psycopg.connect(with_dbname(server.url, building), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")  # hint bits and statistics once, not in the first timed run
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
    print(f"kept as database {name} (built in {time.perf_counter() - began:.0f} s); later runs reuse it")
    return name, scenario


def main_events(server: ServerLocation, events_wanted: int, runs: int) -> None:
    name, scenario = settled_log(server, events_wanted)
    store = Store(ServerLocation(kind="external", url=with_dbname(server.url, name)))
    try:
        store.migrate()  # a log kept by an older version gets the newer read model's schema
        events, rates = rebuilds(store.region(scenario.region), runs)
    finally:
        store.close()
    if events < events_wanted:
        raise SystemExit(f"database {name} holds {events:,} events, fewer than {events_wanted:,}")
    print()
    print(f"{machine(server.describe())}; database {name} (kept)")
    print(figure(f"read model rebuild from {events:,} events", rates, "events/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--member-claims", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=None, help="rebuild a kept log of at least this many events")
    args = parser.parse_args()
    server = locate()
    if args.events is not None:
        main_events(server, args.events, args.runs)
        return
    scenario = Scenario(members=max(1_000, args.claims // 10), claims=args.claims, seed=17)
    with settled_region(server, scenario, f"bench_replay_{os.getpid()}") as (store, _, _, _):
        app = store.region(scenario.region)
        events, rates = rebuilds(app, args.runs)
        psn_no = long_member_year(app, args.member_claims)
        loads = []
        for _ in range(50):
            began = time.perf_counter()
            member_year = app.member_year(psn_no, 2023)
            loads.append((time.perf_counter() - began) * 1000)
        assert member_year is not None
    print()
    print(machine(server.describe()))
    print(figure(f"read model rebuild from {events:,} events", rates, "events/s"))
    print(figure(f"load of a member-year of {member_year.version:,} events", loads, "ms", digits=1))


if __name__ == "__main__":
    main()
