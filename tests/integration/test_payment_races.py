"""`finance pay` in one process racing `claims reverse`, `claims correct` and `finance deduct` in
another, round after round, on one hospital (issue 17 item 2).

Each round settles new claims, then starts both processes at the same moment (a barrier, then a
small random delay on each side): the payer pays everything the hospital is owed; the other
process reverses a claim of the round and one paid in the round before, corrects a third and
reduces a fourth. After every round the whole event log is replayed through a model of what a
payment may pay, independent of the application's code:

- a payment pays, fund by fund, exactly what the journal owed at the position it records: the
  versions whose events are at or before it, less their deductions recorded by then, neither
  reversed by then nor paid before; never a version reversed, or deducted from, before the
  payment was committed and after that position (so no reversed settlement is paid);
- a reversal owes back exactly what payments committed before it had paid of its version, and a
  deduction is after payment exactly when a payment committed before it had paid the version;
- the books to the fen: what is payable to the hospital is what stands unpaid and never below
  zero; what is receivable is what was owed back and deducted after payment; and
  paid + payable - receivable equals what the settlements in force owe the hospital, taken from
  the settlement aggregates (not the journal).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.region import RegionApplication
from core.ledger import PAYABLE_TO_HOSPITALS, RECEIVABLE_FROM_HOSPITALS
from core.money import format_yuan
from core.records import MemberRecord, parse_claim
from projections.read_model import catch_up
from store.app import Store
from tests.conftest import EXAMPLES, example_region

REGION = "330109"
HOSPITAL = "H-RACE"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"

ROUNDS = 40
CLAIMS_PER_ROUND = 4  # reversed, corrected, reduced, left alone
MEMBERS = 8
JITTER_MS_MAX = 40


def claim(setl_id: str, psn_no: str, day: int, inscp_fen: int) -> dict[str, Any]:
    """An inpatient claim at a level-1 hospital: basic pays 90% above the 800.00 deductible."""
    return {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": HOSPITAL, "hosp_lv": 1, "med_type": "21",
        "setl_time": (dt.date(2023, 1, 1) + dt.timedelta(days=day)).isoformat(),
        "medfee_sumamt": format_yuan(inscp_fen), "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": format_yuan(inscp_fen),
    }  # fmt: skip


# --- the two racing processes ------------------------------------------------------------------------


class Retries(logging.Handler):
    """Counts the application's retry log lines (a sum read again, a save lost to a writer)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


def _racer(url: str, role: str, barrier: Any, tasks: Any, results: Any, seed: int) -> None:
    """A process that runs `yibao` commands (the CLI's own code, in this process) for each round
    it is given, starting when the other racer does."""
    from click.testing import CliRunner

    from commands.cli import main

    os.environ["DATABASE_URL"] = url
    retries = Retries()
    logger = logging.getLogger("app.region")
    logger.addHandler(retries)
    logger.setLevel(logging.INFO)
    rng = random.Random(seed)
    runner = CliRunner()
    while (commands := tasks.get()) is not None:
        barrier.wait()
        before = retries.count
        done = []
        for args in commands:
            time.sleep(rng.uniform(0, JITTER_MS_MAX) / 1000)
            outcome = runner.invoke(main, args, catch_exceptions=True)
            done.append((args[:2], outcome.exit_code, outcome.stdout, outcome.stderr))
        results.put((role, done, retries.count - before))


# --- the model ---------------------------------------------------------------------------------------


@dataclass
class Version:
    position: int
    owed: dict[str, int]  # fund -> fen the version owes the hospital
    posted_on: str
    reversed_at: int | None = None
    paid_at: int | None = None  # own position of the payment that paid it
    deductions: list[tuple[int, str, int, bool]] = field(default_factory=list)  # (position, fund, fen, after)

    def due(self, position: int) -> dict[str, int]:
        """What a payment summed at `position` owes for this version, if it stands then."""
        out = dict(self.owed)
        for at, fund, amount, after in self.deductions:
            if at <= position and not after:
                out[fund] = out.get(fund, 0) - amount
        return out


@dataclass
class Books:
    versions: dict[tuple[str, int], Version] = field(default_factory=dict)
    paid: Counter[str] = field(default_factory=Counter)
    owed_back: Counter[str] = field(default_factory=Counter)
    deducted_after: Counter[str] = field(default_factory=Counter)
    payments: int = 0

    def unpaid(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for v in self.versions.values():
            if v.reversed_at is None and v.paid_at is None:
                out.update(v.due(1 << 62))
        return out


def _hospital_owed(facts: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in facts.postings:
        if p.account == PAYABLE_TO_HOSPITALS and p.party == HOSPITAL:
            out[p.fund] -= p.amount
    return dict(out)


def replay(app: RegionApplication, through: str) -> Books:
    """The whole log, through the model; every rule of the module docstring asserted on the way."""
    books = Books()
    current: dict[str, int] = {}
    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    for n in notifications:
        event = app.mapper.to_domain_event(n)
        kind = type(event).__qualname__
        if kind in ("Settlement.Settled", "Settlement.Resettled"):
            facts = event.facts  # type: ignore[attr-defined]
            if facts.claim["fixmedins_code"] == HOSPITAL:
                books.versions[(facts.setl_id, facts.version)] = Version(n.id, _hospital_owed(facts), facts.posted_on)
                current[facts.setl_id] = facts.version
        elif kind == "Settlement.Reversed":
            version = books.versions[(event.setl_id, event.setl_version)]  # type: ignore[attr-defined]
            version.reversed_at = n.id
        elif kind == "HospitalAccount.OwedBack":
            version = books.versions[(event.setl_id, event.setl_version)]  # type: ignore[attr-defined]
            expected = {f: a for f, a in version.owed.items() if a} if version.paid_at is not None else {}
            assert dict(event.amounts) == expected, (n.id, event)  # type: ignore[attr-defined]
            books.owed_back.update(event.amounts)  # type: ignore[attr-defined]
        elif kind == "HospitalAccount.Deducted":
            version = books.versions[(event.setl_id, current[event.setl_id])]  # type: ignore[attr-defined]
            assert event.after_payment == (version.paid_at is not None), (n.id, event)  # type: ignore[attr-defined]
            version.deductions.append((n.id, event.fund, event.amount, event.after_payment))  # type: ignore[attr-defined]
            if event.after_payment:  # type: ignore[attr-defined]
                books.deducted_after[event.fund] += event.amount  # type: ignore[attr-defined]
        elif kind == "HospitalAccount.Paid":
            _check_payment(books, n.id, event, through)
    return books


def _check_payment(books: Books, own: int, event: Any, through: str) -> None:
    summed_at = getattr(event, "position", None)
    summed_at = own if summed_at is None else summed_at  # a payment recorded without one: its own
    due: Counter[str] = Counter()
    paying = []
    for key, v in books.versions.items():
        if v.position <= summed_at and v.paid_at is None and v.posted_on <= through:
            if v.reversed_at is not None and v.reversed_at <= summed_at:
                continue
            # Reversed, or deducted from, after the sum was read and before the payment was
            # committed: the payment would pay what no longer stands.
            assert v.reversed_at is None, f"payment {event.payment_id} paid {key}, reversed at {v.reversed_at}"
            late = [d for d in v.deductions if summed_at < d[0]]
            assert not late, f"payment {event.payment_id} paid {key} without its deduction at {late[0][0]}"
            due.update(v.due(summed_at))
            paying.append(v)
    assert dict(event.amounts) == {f: a for f, a in sorted(due.items()) if a > 0}, event.payment_id
    for v in paying:
        v.paid_at = own
    books.paid.update(event.amounts)
    books.payments += 1


def journal_balances(app: RegionApplication) -> dict[str, Counter[str]]:
    catch_up(app)
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    out: dict[str, Counter[str]] = {PAYABLE_TO_HOSPITALS: Counter(), RECEIVABLE_FROM_HOSPITALS: Counter()}
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT account, fund, sum(amount) AS total FROM region_330109.journal WHERE party = %s "
            "AND account IN (%s, %s) GROUP BY account, fund",
            (HOSPITAL, PAYABLE_TO_HOSPITALS, RECEIVABLE_FROM_HOSPITALS),
        )
        for row in curs.fetchall():
            # a liability is a credit (negative), an asset a debit
            sign = -1 if row["account"] == PAYABLE_TO_HOSPITALS else 1
            out[row["account"]][row["fund"]] = sign * int(row["total"])
    return out


def in_force(app: RegionApplication, setl_ids: list[str]) -> Counter[str]:
    """What the settlements in force owe the hospital, from their aggregates, net of deductions."""
    total: Counter[str] = Counter()
    for setl_id in setl_ids:
        settlement = app.settlement(setl_id)
        assert settlement is not None
        if not settlement.reversed:
            total.update(_hospital_owed(settlement.current))
    account = app.hospital_account(HOSPITAL)
    if account is not None:
        for (_, fund), amount in account.deducted.items():
            total[fund] -= amount
    return total


def check_books(app: RegionApplication, books: Books, setl_ids: list[str]) -> None:
    balances = journal_balances(app)
    payable, receivable = balances[PAYABLE_TO_HOSPITALS], balances[RECEIVABLE_FROM_HOSPITALS]
    funds = set(payable) | set(receivable) | set(books.paid)
    for fund in sorted(funds):
        assert payable[fund] >= 0 and receivable[fund] >= 0, (fund, payable, receivable)
        assert payable[fund] == books.unpaid()[fund], (fund, payable, books.unpaid())
        assert receivable[fund] == books.owed_back[fund] + books.deducted_after[fund], (fund, receivable)
        assert books.paid[fund] + payable[fund] - receivable[fund] == in_force(app, setl_ids)[fund], fund


# --- the test ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    region = example_region(store, REGION, overdraft=True)
    common: dict[str, Any] = dict(
        insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False, supplementary=(),
        valid_from=dt.date(2023, 1, 1), family_of=None,
    )  # fmt: skip
    records = [MemberRecord(psn_no=f"M-RACE-{i}", **common) for i in range(MEMBERS)]
    assert {o.status for o in region.import_members(records)} == {"recorded"}
    return region


def test_a_payment_racing_reversals_corrections_and_deductions_never_pays_what_no_longer_stands(
    app: RegionApplication, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(17)
    through = (dt.date.today() + dt.timedelta(days=1)).isoformat()  # corrections are posted today
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    tasks = {role: context.Queue() for role in ("payer", "operator")}
    results = context.Queue()
    racers = [
        context.Process(target=_racer, args=(database_url, role, barrier, tasks[role], results, seed))
        for seed, role in enumerate(tasks)
    ]
    for racer in racers:
        racer.start()
    setl_ids: list[str] = []
    retried = Counter[str]()
    try:
        for r in range(ROUNDS):
            ids = [f"RACE-{r:02d}-{k}" for k in range(CLAIMS_PER_ROUND)]
            raw = [
                claim(
                    setl_id, f"M-RACE-{rng.randrange(MEMBERS)}", rng.randrange(300), rng.randrange(500_000, 3_000_000)
                )
                for setl_id in ids
            ]
            outcomes = app.settle_claims([parse_claim(c) for c in raw])
            assert [o.status for o in outcomes] == ["settled"] * CLAIMS_PER_ROUND
            setl_ids += ids
            corrected = tmp_path / f"correct-{r}.jsonl"
            smaller = raw[1] | {"medfee_sumamt": "3000.00", "inscp_scp_amt": "3000.00"}
            corrected.write_text(json.dumps(smaller) + "\n", encoding="utf-8")
            operator = [
                ["claims", "reverse", ids[0], "--reason", "billed twice", "--operator", "op-1"],
                ["claims", "correct", str(corrected), "--reason", "resubmitted", "--operator", "op-1"],
                ["finance", "deduct", "reduce", "--region", REGION, "--setl-id", ids[2], "--fund", "390100",
                 "--amount", "100.00", "--deduction-id", f"DED-{r}", "--operator", "auditor-1", "--reason", "audit"],
            ]  # fmt: skip
            if r > 0:  # paid in the round before (or not, if that round's payment lost): owed back
                operator.insert(
                    1, ["claims", "reverse", f"RACE-{r - 1:02d}-3", "--reason", "void", "--operator", "op-2"]
                )
            tasks["operator"].put(operator)
            tasks["payer"].put(
                [["finance", "pay", "--region", REGION, "--hospital", HOSPITAL, "--through", through,
                  "--paid-on", through, "--payment-id", f"PAY-{r:02d}", "--operator", "fin-1"]]
            )  # fmt: skip
            for _ in range(2):
                role, done, retries = results.get(timeout=120)
                retried[role] += retries
                for command, exit_code, stdout, stderr in done:
                    assert exit_code == 0, (r, role, command, stdout, stderr)
            check_books(app, replay(app, through), setl_ids)
    finally:
        for queue in tasks.values():
            queue.put(None)
        for racer in racers:
            racer.join(timeout=60)
    books = replay(app, through)
    assert books.payments == ROUNDS
    assert any(v.reversed_at is not None and v.paid_at is not None for v in books.versions.values())  # owed back
    assert any(v.reversed_at is not None and v.paid_at is None for v in books.versions.values())  # before payment
    print(f"\n{ROUNDS} rounds, {len(setl_ids)} claims; retries: {dict(retried)}")
