"""`yibao demo`: the main job — a synthetic region-year settled end to end, then its books.

Members, contributions and about 200,000 claims over twelve months from a few dozen hospitals
are generated (deterministically), settled month by month, hospitals are paid monthly, members
newly recognised as illness_poverty get look-back assistance, auditors refuse and reduce some
payments, recoveries and fines come in, a few settlements are reversed. Then the read model
catches up and the balance sheet and a summary are printed. Running it again changes nothing:
every step is idempotent, so the second run reports every claim as a duplicate.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import click
import msgspec

from app.region import RegionApplication
from app.transfer_relay import relay
from bulk import batch
from bulk.collector import after_settled_batch
from bulk.lines import read_lines
from commands import demo_payees, demo_remote
from commands.context import CliContext
from core.errors import YibaoError
from core.funds import INTEREST, OPENING, entry
from core.ledger import INDIVIDUAL_ACCOUNT_FUND
from core.money import format_yuan
from core.policy import parse_policy
from core.transfer import PENDING_REVIEW, REJECTED, RELEASED
from projections import balance_sheet as bs
from projections import statements
from projections.read_model import catch_up, reading
from store.app import Store
from store.server import ServerLocation, yibao_home

OPERATOR = "demo"
RECEIVING = "330110"  # the region the demo's movers transfer to
MOVER_EVERY = 97  # every 97th member moves on 1 July
BATCH_LINES = 2000  # per transaction: larger batches amortise the per-transaction round trips
INTEREST_BP_QUARTER = 38  # 1.5% a year, paid quarterly: 0.38% of the balance
VERSION = 3  # of the synthetic files: a demo folder of another version is generated anew


class Steps:
    """Progress lines on stderr: what is being done, how many, how fast."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def say(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}", err=True)

    def count(self, label: str, n: int, total: int | None = None) -> None:
        if self.tty:
            of = f"/{total:,}" if total else ""
            click.echo(f"\r[{time.monotonic() - self.started:6.1f}s] {label}: {n:,}{of}", err=True, nl=False)


def _lines_of_month(path: Path, year: int) -> Iterator[tuple[int, list[tuple[int, bytes]]]]:
    """The claim file (sorted by date) cut into months."""
    month, lines = 1, list[tuple[int, bytes]]()
    with path.open("rb") as stream:
        for line_no, raw in read_lines(stream):
            date_at = raw.index(b'"setl_time":"') + len(b'"setl_time":"')  # our own generated file
            claim_month = int(raw[date_at + 5 : date_at + 7])
            while claim_month > month:
                yield month, lines
                month, lines = month + 1, []
            lines.append((line_no, raw))
    while month <= 12:
        yield month, lines
        month, lines = month + 1, []


@click.command("demo")
@click.option("--members", "member_count", type=int, default=20_000, show_default=True)
@click.option("--claims", "claim_count", type=int, default=200_000, show_default=True)
@click.option("--seed", type=int, default=20231231, show_default=True)
@click.pass_obj
def demo(obj: CliContext, member_count: int, claim_count: int, seed: int) -> None:
    """Generate a synthetic region-year and settle it end to end; print the balance sheet."""
    from commands.synthetic import Scenario

    steps = Steps()
    scenario = Scenario(members=member_count, claims=claim_count, seed=seed)
    steps.say(f"database: {obj.location.describe()}")
    app, receiving = _regions(obj)
    folder = yibao_home() / "demo" / f"{scenario.region}-{scenario.year}-{member_count}-{claim_count}-{seed}-v{VERSION}"
    year = _Year(obj, app, receiving, scenario, folder, steps)
    year.run()
    _reverse_some(app, scenario.year, steps)
    steps.say("catching up the read model")
    catch_up(app)
    steps.say("done")
    _print_summary(app, receiving, scenario.year, year.settled, year.moved,
                   lambda: _flows(app, receiving, year, scenario.year))  # fmt: skip


def _regions(obj: CliContext) -> tuple[RegionApplication, RegionApplication]:
    """The demo's district under the demo policy, and a neighbouring region under the same rules
    that some members transfer to (转移接续)."""
    obj.store.migrate()
    policy_raw = (resources.files("commands") / "data" / "demo-policy-2023.toml").read_bytes()
    policy = parse_policy(policy_raw)
    app = obj.store.ensure_region(policy.region)
    app.record_policy(policy.year, policy.content_hash, policy_raw.decode("utf-8"))
    # The accounts of members who arrive there come as a balance due from this region until the
    # two funds clear (清算, not modelled): its individual-account fund may overdraw until then, as
    # the demo policy allows (commands/data/demo-policy-2023.toml).
    receiving_raw = policy_raw.replace(f'region = "{policy.region}"'.encode(), f'region = "{RECEIVING}"'.encode())
    receiving = obj.store.ensure_region(RECEIVING)
    receiving.record_policy(policy.year, parse_policy(receiving_raw).content_hash, receiving_raw.decode("utf-8"))
    return app, receiving


class _Year:
    """The demo's year, month by month: members, contributions as they are paid, claims, payments,
    interest, audits, look-back recognitions and the transfers of July."""

    def __init__(
        self, obj: CliContext, app: RegionApplication, receiving: RegionApplication, scenario: Any, folder: Path,
        steps: Steps,
    ) -> None:  # fmt: skip
        self.obj, self.app, self.receiving, self.scenario, self.folder, self.steps = (
            obj, app, receiving, scenario, folder, steps
        )  # fmt: skip
        self.settled: dict[str, int] = {}
        self.moved: dict[str, int] = {}
        self.refused: dict[str, int] = {}  # claim lines rejected by the 定点 registry, by reason
        self.registry: tuple[str, str] = ("", "")  # the suspended and the terminated institution
        self.movers: frozenset[str] | None = None

    def run(self) -> None:
        claims_writer = self._generate()
        with (self.folder / "members.jsonl").open("rb") as stream:
            self._run_file("members", batch.import_members(self.obj.store, read_lines(stream), batch_size=BATCH_LINES))
        self._contributions(range(1, 7))
        _finance(self.app, self.receiving, self.scenario, self.folder, self.steps)
        self.app.record_fund_entries([demo_payees.opening_entry(self.scenario, self._movers())])
        self.registry = demo_payees.register_institutions(self.app, self.scenario)
        if claims_writer is not None:
            claims_writer.join()
            if claims_writer.exitcode != 0:
                raise YibaoError("generating the synthetic claims failed", reason="demo_failed")
        follower = ProjectionFollower(self.obj.location.url, self.app.region)
        try:
            for month, lines in _lines_of_month(self.folder / "claims.jsonl", self.scenario.year):
                self._month(month, lines)
        finally:
            follower.close()

    def _generate(self) -> Any:
        """The synthetic files, once: the claims written by another process while members and
        contributions load (that process, or None when the files are there)."""
        from commands.synthetic import generate, generate_claims

        if (self.folder / "claims.jsonl").exists():
            return None
        scenario = self.scenario
        self.steps.say(f"generating {scenario.members:,} members and {scenario.claims:,} claims into {self.folder}")
        generate(self.scenario, self.folder, claims=False)
        writer = multiprocessing.get_context("spawn").Process(target=generate_claims, args=(self.scenario, self.folder))
        writer.start()
        return writer

    def _month(self, month: int, lines: list[tuple[int, bytes]]) -> None:
        year, store = self.scenario.year, self.obj.store
        if month == 7:
            self._contributions(range(7, 13))
        settling = batch.settle_lines(store, iter(lines), batch_size=BATCH_LINES, after_batch=after_settled_batch)
        for status, n in self._run_file(f"claims {year}-{month:02d}", settling).items():
            self.settled[status] = self.settled.get(status, 0) + n
        if month == 9:  # recognitions dated July-September: look back over the months before
            with (self.folder / "recognitions.jsonl").open("rb") as stream:
                self._run_file("illness_poverty recognitions", batch.import_members(store, read_lines(stream)))
        if month == 12:  # 零星报销 and maternity of the year, and the payment to members
            demo_payees.settle_year_end(self.app, self.scenario, self._movers())
        demo_remote.settle_month(store, self.app, self.receiving, self.scenario, self._movers(), month)
        for region_app in (self.app, self.receiving):
            _pay_hospitals(region_app, year, month)
            if month % 3 == 0:
                _interest(region_app, year, month)
        if month in (6, 12):
            _audit(self.app, year, month, self.steps)
        if month == 6:  # members moving away from July: their later claims settle in the new region
            self.moved = _transfer_some(store, self.app, self.receiving, self.folder, year, self.steps)
            # the receiving region's serious-illness financing: for the members who arrived
            self.receiving.finance_serious_illness(year, operator=OPERATOR, on_date=dt.date(year, 7, 1))

    def _movers(self) -> frozenset[str]:
        if self.movers is None:
            self.movers = frozenset(_movers(self.folder))
        return self.movers

    def _contributions(self, months: range) -> None:
        """Contributions are recorded as they are paid: a month's before its claims are settled."""
        with (self.folder / "contributions.jsonl").open("rb") as stream:
            lines = (line for line in read_lines(stream) if _paid_month(line[1]) in months)
            self._run_file(f"contributions paid in months {months[0]}-{months[-1]}",
                           batch.import_contributions(self.obj.store, lines, batch_size=BATCH_LINES))  # fmt: skip

    def _run_file(self, label: str, results: Iterator[batch.LineResult]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n, result in enumerate(results, start=1):
            counts[result.status] = counts.get(result.status, 0) + 1
            reason = result.output.get("reason") if result.status == "rejected" else None
            if reason in ("institution_suspended", "institution_terminated"):
                self.refused[reason] = self.refused.get(reason, 0) + 1
            if n % 5000 == 0:
                self.steps.count(label, n)
        if self.steps.tty:
            click.echo("", err=True)
        self.steps.say(f"{label}: {counts}")
        return counts


def _flows(app: RegionApplication, receiving: RegionApplication, done: _Year, year: int) -> None:
    """The summary lines of the payees, the registry, and 异地就医 between the two regions."""
    demo_payees.print_summary(app, *done.registry, year, done.refused)
    demo_remote.print_summary(app, receiving, year)


def _print_summary(
    app: RegionApplication, receiving: RegionApplication, year: int, settled: dict[str, int], moved: dict[str, int],
    flows: Callable[[], None],
) -> None:  # fmt: skip
    as_of = dt.date(year, 12, 31)
    with reading(app) as (curs, schema):
        sheet = bs.balance_sheet(curs, schema, app.region, as_of)
        coverage = statements.coverage(curs, schema, year)
        totals = statements.payer_totals(curs, schema)
    click.echo(bs.render_table(sheet))
    click.echo("")
    click.echo(f"Summary 汇总 — region {app.region}, year {year}")
    click.echo(bs.render_statement(sheet, indent="  "))
    outcomes = ", ".join(f"{n:,} {status}" for status, n in sorted(settled.items()))
    click.echo(f"  claim lines in this run: {sum(settled.values()):,} ({outcomes})")
    if settled.get("duplicate"):
        click.echo("  (a repeated run records nothing new: settled claims come back as duplicates, reversed ones")
        click.echo("   as rejected: settlement_reversed)")
    click.echo(f"  settlements in force: {totals['settlements']:,}")
    for label, key in (
        ("basic pooling funds 基本医保统筹", "basic"), ("serious illness 大病保险", "serious"),
        ("medical assistance 医疗救助", "assistance"), ("supplementary 惠民保", "supplementary"),
        ("charity 慈善", "charity"), ("individual accounts 个人账户", "accounts"),
    ):  # fmt: skip
        click.echo(f"  paid by {label}: {format_yuan(totals[key])}")
    click.echo("  comprehensive coverage ratio 综合保障率 of assisted members:")
    for row in coverage:
        if row["assist_category"] != "none":
            click.echo(f"    {row['assist_category']:16} {row['coverage_ratio']:>8}  ({row['claims']:,} claims)")
    catch_up(receiving)
    with reading(receiving) as (curs, schema):
        received = statements.payer_totals(curs, schema)["settlements"]
    click.echo(
        f"  transfers 转移接续 to {RECEIVING} on {year}-07-01: {moved.get('transfers', 0):,} "
        f"({moved.get('released', 0):,} at once, {moved.get('approved', 0):,} approved, "
        f"{moved.get('rejected', 0):,} rejected), {format_yuan(moved.get('balance', 0))} of account balances moved; "
        f"{received:,} of their later claims settled in {RECEIVING}"
    )
    flows()
    click.echo("  to open the console on this data (docs/console.md): yibao users add NAME --role auditor, then")
    click.echo("  yibao serve, and log in at http://127.0.0.1:8000/ as NAME")


class ProjectionFollower:
    """A process that keeps the read model caught up while claims are being settled, as a
    projection runner would in production; it uses the CPU the settling process leaves idle.
    Catch-ups in this process then only have the last few pages left."""

    def __init__(self, url: str, region: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.process = context.Process(target=_follow, args=(url, region, self.stop_event), daemon=True)
        self.process.start()

    def close(self) -> None:
        self.stop_event.set()
        self.process.join(timeout=60)


def _follow(url: str, region: str, stop: Any) -> None:
    gc.set_threshold(100_000, 50, 100)  # see commands/cli.py
    with Store(ServerLocation(kind="external", url=url)) as store:
        app = store.region(region)
        while not stop.is_set():
            if catch_up(app).behind == 0:
                stop.wait(0.5)


def _paid_month(raw: bytes) -> int:
    at = raw.index(b'"paid_date":"') + len(b'"paid_date":"')  # our own generated file
    return int(raw[at + 5 : at + 7])


def _movers(folder: Path) -> list[str]:
    """Every 97th member moves to the neighbouring region on 1 July (the recognised stay)."""
    with (folder / "recognitions.jsonl").open("rb") as stream:  # their new records are this region's
        recognised = {msgspec.json.decode(raw)["psn_no"] for _, raw in read_lines(stream)}
    with (folder / "members.jsonl").open("rb") as stream:
        members = [msgspec.json.decode(raw) for _, raw in read_lines(stream)]
    return [m["psn_no"] for m in members if m["psn_no"] not in recognised][::MOVER_EVERY]


def _finance(app: RegionApplication, receiving: RegionApplication, scenario: Any, folder: Path, steps: Steps) -> None:
    """The funds' balances brought forward (期初结余) on 1 January, and the serious-illness
    financing (大病保险筹资划转) at the end of January, after the month's contributions. The
    neighbouring region is modelled only for the members who move there: its balances are those
    of a district like this one for twice that many members (few people: a margin for chance)."""
    from commands.synthetic import members, opening_balances

    people = members(scenario)
    moving = set(_movers(folder))
    opening_day = dt.date(scenario.year, 1, 1)
    for region_app, balances in (
        (app, opening_balances(people)),
        (receiving, _receiving_balances(scenario, people, frozenset(moving))),
    ):
        region_app.record_fund_entries([
            entry(OPENING, f"OPEN-{region_app.region}-{scenario.year}-{fund}", fund=fund, amount=amount,
                  on_date=opening_day, reason="期初结余 (上年结转)", operator=OPERATOR)
            for fund, amount in balances.items() if amount
        ])  # fmt: skip
    done = app.finance_serious_illness(scenario.year, operator=OPERATOR, on_date=dt.date(scenario.year, 1, 31))
    steps.say("financing: " + "; ".join(facts.reason for facts, _ in done))


def _receiving_balances(scenario: Any, people: list[Any], moving: frozenset[str]) -> dict[str, int]:
    """A district's balances for twice as many members as move there, and in its resident funds
    what it may pay back for the members treated back in this district (commands.demo_remote)."""
    from commands.synthetic import opening_balances

    balances = {f: a * 2 for f, a in opening_balances([m for m in people if m.psn_no in moving]).items()}
    advance = demo_remote.advance_for_treated_back(scenario, moving)
    for fund in ("390100", "390200", "610100"):
        balances[fund] = balances.get(fund, 0) + advance
    return balances


def _interest(app: RegionApplication, year: int, month: int) -> None:
    """Quarterly interest (利息收入, 结息日 the 21st): 1.5% a year on each fund's bank balance."""
    on = dt.date(year, month, 21)
    with reading(app) as (curs, schema):
        sheet = bs.balance_sheet(curs, schema, app.region, on - dt.timedelta(days=1))
    entries = [
        entry(INTEREST, f"INT-{app.region}-{year}Q{month // 3}-{f.fund}", fund=f.fund,
              amount=f.lines["bank"] * INTEREST_BP_QUARTER // 10_000, on_date=on, reason="利息收入", operator=OPERATOR)
        for f in sheet.funds
        if f.fund not in (INDIVIDUAL_ACCOUNT_FUND, "CHARITY") and f.lines["bank"] * INTEREST_BP_QUARTER >= 10_000
    ]  # fmt: skip
    app.record_fund_entries(entries)


def _pay_hospitals(app: RegionApplication, year: int, month: int) -> None:
    """Monthly 拨付: every hospital is paid what it is owed for the month, on the 5th of the next."""
    through = (dt.date(year + month // 12, month % 12 + 1, 1)) - dt.timedelta(days=1)
    app.pay_hospitals(
        None, payment_id=f"PAY-{year}{month:02d}", read_owed=statements.owed_reader(app, through), through=through,
        paid_on=through + dt.timedelta(days=5), operator=OPERATOR,
    )  # fmt: skip


def _audit(app: RegionApplication, year: int, month: int, steps: Steps) -> None:
    """Auditors refuse or reduce basic-fund payments on some large settlements; half the
    hospitals pay back, some are fined."""
    catch_up(app)
    with reading(app) as (curs, schema):
        rows = statements.large_settlements(
            curs, schema,
            start=dt.date(year, month - 5, 1), end=dt.date(year, month, 28), basic_paid_min=500_000, limit=400,
        )  # fmt: skip
    rows = rows[::4]
    on = dt.date(year, month, 28)
    recovered: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        fund = "310100" if row["insutype"] == "310" else "390100"
        kind = "refuse" if i % 3 == 0 else "reduce"
        amount = row["hifp_pay"] if kind == "refuse" else row["hifp_pay"] // 10
        result = app.deduct(
            f"AUD-{year}{month:02d}-{row['setl_id']}", setl_id=row["setl_id"], fund=fund, kind=kind, amount=amount,
            on_date=on, operator="auditor-1", reason="demo audit: not medically necessary" if kind == "refuse"
            else "demo audit: price above the catalogue",
        )  # fmt: skip
        if result.postings and result.postings[0].account == "receivable_from_hospitals" and i % 2 == 0:
            recovered[(row["hospital"], fund)] = recovered.get((row["hospital"], fund), 0) + amount
    for (hospital, fund), amount in recovered.items():
        app.recover(
            f"REC-{year}{month:02d}-{hospital}-{fund}", hospital=hospital, fund=fund, amount=amount,
            on_date=on + dt.timedelta(days=2), operator=OPERATOR,
        )  # fmt: skip
    for hospital, fund in list(recovered)[:3]:
        app.fine(
            f"FINE-{year}{month:02d}-{hospital}-{fund}", hospital=hospital, fund=fund, amount=1_000_000,
            on_date=on + dt.timedelta(days=2), operator=OPERATOR, reason="demo: repeated over-billing",
        )  # fmt: skip
    steps.say(f"audit {year}-{month:02d}: {len(rows)} deductions, {len(recovered)} recoveries")


def _transfer_some(
    store: Store, app: RegionApplication, receiving: RegionApplication, folder: Path, year: int, steps: Steps
) -> dict[str, int]:
    """Every 97th member moves to the neighbouring region on 1 July. Balances under 1,000 yuan
    (residents have no account) move at once; larger ones are approved, but every fifth is rejected. Then the
    relay carries them over. A second run finds every transfer recorded and changes nothing."""
    movers = _movers(folder)
    day = dt.date(year, 7, 1)
    counts = {"transfers": 0, "released": 0, "approved": 0, "rejected": 0, "balance": 0}
    for n, psn_no in enumerate(movers):
        transfer = f"TR-{year}-{psn_no}"
        state = app.start_transfer(
            transfer, psn_no=psn_no, to_region=receiving.region, transfer_date=day, operator=OPERATOR, requested_on=day
        )
        if state.status == PENDING_REVIEW:
            state = app.review_transfer(
                transfer, approve=n % 5 != 0, operator="demo-chief",
                reason="documents checked" if n % 5 else "demo: moved within the city instead", on_date=day,
            )  # fmt: skip
            counts["approved" if state.status == RELEASED else "rejected"] += 1
        elif state.facts.review_required:
            counts["approved" if state.status != REJECTED else "rejected"] += 1
        else:
            counts["released"] += 1
        counts["transfers"] += 1
        counts["balance"] += state.facts.balance if state.status != REJECTED else 0
    steps.say(f"transfers to {receiving.region}: {counts['transfers']} started")
    report = relay(store)
    steps.say(f"relay: {len(report.received)} received in {receiving.region}, {len(report.completed)} completed")
    return counts


def _reverse_some(app: RegionApplication, year: int, steps: Steps) -> None:
    """A few settlements are cancelled (撤销) by the hospital, through the operators."""
    count = 0
    for n in range(997, 200_000, 4_001):
        setl_id = f"S{app.region}{year}{n:08d}"
        settlement = app.settlement(setl_id)
        if settlement is not None and not settlement.reversed:
            app.reverse(
                setl_id, operator=OPERATOR, reason="demo: cancelled by the hospital", on_date=dt.date(year, 12, 30)
            )
            count += 1
    steps.say(f"reversed {count} settlements")
