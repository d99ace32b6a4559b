"""The floor: the CPU a claim needs for the parts of settling it that cannot be left out.

    .venv/bin/python -m bench.floor [--members 10000] [--claims 50000] [--target 20000]

A fresh database gets a synthetic region-year, settled in bulk as `claims settle` does. Then,
in this one process, each part of a claim's settlement that every design must do in Python is
timed alone over all of its claims (CPU time, median of 5 passes):
- parsing and checking the claim line (SPEC 3.2: named rejections);
- the tier rules (SPEC 4: the computation itself);
- the claim's content hash (a duplicate with other content is refused);
- the postings (the balanced journal entry);
- encoding the events it appends and chaining their tamper-evidence hashes, for the events the
  settled file produced (a settlement, its member-year's accumulation, its account's debit and
  the member-years opened);
- rendering its result line (SPEC 4.2).

Their sum is a floor for yibao's own CPU per claim: it leaves out reading the aggregates, the
library's aggregate machinery, routing, batching and the worker processes. On two cores,
`--target` claims/s leaves 2 x 1,000,000 / target microseconds of CPU per claim for yibao and
the database together; `bench.cli_settle` prints how much of it the database takes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from importlib import resources

import app.region  # noqa: F401  (registers every event class with the codec)
from bench.settle import settled_region
from bulk.lines import dumps, read_lines
from commands.synthetic import Scenario
from core.codec import EventMapper
from core.ledger import settlement_postings
from core.policy import parse_policy
from core.records import content_hash_of, decode_line, parse_claim, parse_member
from core.results import settlement_result
from core.settlement import Settlement
from core.tiers import ClaimAmounts, MemberTerms, YearToDate, compute_settlement
from store.chain import GENESIS_HASH, event_hash
from store.server import locate


def cpu_per_item(work: Callable[[], object], items: int, passes: int = 5) -> float:
    """Median CPU microseconds per item of `work` (which handles `items` items)."""
    times = []
    for _ in range(passes):
        began = time.process_time()
        work()
        times.append((time.process_time() - began) / items * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--target", type=int, default=20_000, help="claims per second to compare with")
    args = parser.parse_args()
    server = locate()
    scenario = Scenario(members=args.members, claims=args.claims, seed=23)
    with settled_region(server, scenario, f"bench_floor_{os.getpid()}") as (store, files, settled, _):
        app = store.region(scenario.region)
        stored = app.recorder.select_notifications(1, (app.recorder.max_notification_id() or 0) + 1)
        with (files / "claims.jsonl").open("rb") as stream:
            lines = [raw for _, raw in read_lines(stream)]
        with (files / "members.jsonl").open("rb") as stream:
            members = {m.psn_no: m for m in (parse_member(decode_line(raw)) for _, raw in read_lines(stream))}
    raw_policy = (resources.files("commands") / "data" / "demo-policy-2023.toml").read_bytes()
    policy = parse_policy(raw_policy.replace(b"year = 2023", f"year = {scenario.year}".encode()))
    claims = [parse_claim(decode_line(raw)) for raw in lines]
    n = len(claims)

    def rule_inputs(claim: object) -> tuple[ClaimAmounts, MemberTerms]:
        c, r = claim, members[claim.psn_no]  # type: ignore[attr-defined]
        amounts = ClaimAmounts(
            med_type=c.med_type, hosp_lv=c.hosp_lv, medfee_sumamt=c.medfee_sumamt,  # type: ignore[attr-defined]
            fulamt_ownpay_amt=c.fulamt_ownpay_amt, overlmt_selfpay=c.overlmt_selfpay,  # type: ignore[attr-defined]
            preselfpay_amt=c.preselfpay_amt, inscp_scp_amt=c.inscp_scp_amt,  # type: ignore[attr-defined]
        )  # fmt: skip
        terms = MemberTerms(
            insutype=r.insutype, assist_category=r.assist_category, chronic=r.chronic,
            supplementary_enrolled=c.year in r.supplementary,  # type: ignore[attr-defined]
        )  # fmt: skip
        return amounts, terms

    # Each claim against its member-year as it stood before it (file order), as when settled.
    inputs, standing = [], {}
    for c in claims:
        amounts, terms = rule_inputs(c)
        ytd = standing.get((c.psn_no, c.year), YearToDate())
        inputs.append((amounts, terms, ytd))
        standing[(c.psn_no, c.year)] = ytd.plus(compute_settlement(amounts, terms, policy, ytd).delta)
    mapper = EventMapper()
    # The events settling appended: those of the claims' aggregates after the region was loaded.
    claim_topics = {
        "Settlement.Settled", "MemberYear.Opened", "MemberYear.ClaimApplied", "IndividualAccount.Debited",
    }  # fmt: skip
    events = [mapper.to_domain_event(s) for s in stored if s.topic in claim_topics]
    facts = [e.facts for e in events if isinstance(e, Settlement.Settled)]

    def parse() -> None:
        for raw in lines:
            parse_claim(decode_line(raw))

    def rules() -> None:
        for amounts, terms, ytd in inputs:
            compute_settlement(amounts, terms, policy, ytd)

    def content_hashes() -> None:
        for claim in claims:
            content_hash_of(claim.to_dict())

    def postings() -> None:
        for f in facts:
            settlement_postings(
                insutype=f.insutype, hospital=f.claim["fixmedins_code"], amounts=f.amounts, account_psn=f.account_psn
            )

    def encode() -> None:
        previous = GENESIS_HASH
        for position, event in enumerate(events, 1):
            previous = event_hash(previous, mapper.to_stored_event(event), position, 0, False)

    def render() -> None:
        for f in facts:
            dumps(settlement_result(f, "settled"))

    parts = {
        "parse and check the claim line": cpu_per_item(parse, n),
        "tier rules": cpu_per_item(rules, n),
        "content hash": cpu_per_item(content_hashes, n),
        "postings": cpu_per_item(postings, len(facts)),
        f"encode {len(events) / len(facts):.2f} events and chain their hashes": cpu_per_item(encode, len(facts)),
        "render the result line": cpu_per_item(render, len(facts)),
    }
    appended = Counter(s.topic for s in stored if s.topic in claim_topics)
    print(f"{n:,} claims of {args.members:,} members, {settled:,} settled; {len(events):,} events appended:")
    print("  " + ", ".join(f"{topic} {count:,}" for topic, count in appended.items()))
    for label, value in parts.items():
        print(f"{label:>45}: {value:6.1f} µs a claim")
    floor = sum(parts.values())
    budget = (os.cpu_count() or 1) * 1e6 / args.target
    print(f"{'floor of yibao CPU a claim':>45}: {floor:6.1f} µs")
    print(
        f"{args.target:,} claims/s on {os.cpu_count()} cores leaves {budget:.0f} µs of CPU a claim for yibao and "
        f"the database together; the floor alone allows at most {(os.cpu_count() or 1) * 1e6 / floor:,.0f} claims/s"
    )


if __name__ == "__main__":
    main()
