"""A synthetic region-year for the demo and the benchmarks: members, contributions, claims.

Deterministic for a seed. Amounts are generated in fen (integers) and written as yuan strings,
like the files hospitals and the tax bureau send. Claims are sorted by date.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from core.money import format_yuan

if TYPE_CHECKING:
    from store.app import Store

_ENCODER = msgspec.json.Encoder()
CATEGORY_WEIGHTS = (
    ("none", 880), ("tekun", 15), ("dibao", 40), ("dibian", 25), ("disabled", 25), ("illness_poverty", 15),
)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    region: str = "330109"
    year: int = 2023
    members: int = 20_000
    claims: int = 200_000
    hospitals: int = 36
    seed: int = 20231231


@dataclass(frozen=True)
class Member:
    psn_no: str
    insutype: str
    assist_category: str
    chronic: bool
    supplementary: bool
    family_of: str | None


def hospitals(s: Scenario) -> list[tuple[str, int]]:
    """(code, level): a few level-3 hospitals, more level 2, many level 1 clinics."""
    out = []
    for i in range(s.hospitals):
        level = 3 if i < s.hospitals // 6 else 2 if i < s.hospitals // 2 else 1
        out.append((f"H{s.region[-3:]}{i + 1:03d}", level))
    return out


def members(s: Scenario) -> list[Member]:
    rng = random.Random(s.seed)
    categories = [c for c, _ in CATEGORY_WEIGHTS]
    weights = [w for _, w in CATEGORY_WEIGHTS]
    out: list[Member] = []
    employees: list[str] = []
    for i in range(s.members):
        psn_no = f"{s.region}{i + 1:08d}"
        employee = rng.random() < 0.45
        category = "none" if employee else rng.choices(categories, weights)[0]
        family_of = None
        if not employee and employees and rng.random() < 0.06:
            family_of = rng.choice(employees)
        out.append(
            Member(
                psn_no=psn_no, insutype="310" if employee else "390", assist_category=category,
                chronic=rng.random() < 0.1, supplementary=rng.random() < 0.3, family_of=family_of,
            )
        )  # fmt: skip
        if employee:
            employees.append(psn_no)
    return out


def member_lines(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    for m in people:
        # illness_poverty members are recognised mid-year: before that they are `none`,
        # which exercises look-back assistance (因病致贫).
        first = "none" if m.assist_category == "illness_poverty" else m.assist_category
        record: dict[str, object] = {
            "psn_no": m.psn_no, "insuplc_admdvs": s.region, "insutype": m.insutype, "assist_category": first,
            "chronic": m.chronic, "supplementary": [s.year] if m.supplementary else [],
            "valid_from": f"{s.year}-01-01",
        }  # fmt: skip
        if m.family_of:
            record["family_of"] = m.family_of
        yield record


def recognitions(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    """The mid-year change records of illness_poverty members."""
    rng = random.Random(s.seed + 1)
    for m in people:
        if m.assist_category == "illness_poverty":
            yield {
                "psn_no": m.psn_no, "insuplc_admdvs": s.region, "insutype": m.insutype,
                "assist_category": "illness_poverty", "chronic": m.chronic,
                "supplementary": [s.year] if m.supplementary else [],
                "valid_from": f"{s.year}-{rng.randint(7, 9):02d}-01",
                **({"family_of": m.family_of} if m.family_of else {}),
            }  # fmt: skip


def contribution_lines(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    """Employees pay half-yearly (part to the individual account), residents once a year."""
    rng = random.Random(s.seed + 2)
    for m in people:
        # The smaller funds are financed per person: the supplementary product by premiums,
        # assistance by the government. (Serious-illness insurance is financed from the basic
        # funds by transfers this synthetic year does not model.)
        small: list[tuple[str, int]] = []
        if m.supplementary:
            small.append(("HMB", 15_000))
        if m.assist_category != "none":
            small.append(("610100", 250_000))
        for fund, amount in small:
            yield {
                "contrib_id": f"C-{m.psn_no}-{s.year}-{fund}", "psn_no": m.psn_no, "fund": fund,
                "paid_date": f"{s.year}-01-20", "amount": format_yuan(amount),
            }  # fmt: skip
        if m.insutype == "310":
            base = rng.randint(12_000, 30_000) * 100 // 2  # fen per half year (employer + employee)
            for half in range(2):
                yield {
                    "contrib_id": f"C-{m.psn_no}-{s.year}H{half + 1}", "psn_no": m.psn_no, "fund": "310100",
                    "paid_date": f"{s.year}-{half * 6 + 1:02d}-15", "amount": format_yuan(base),
                    "acct_amount": format_yuan(base * 30 // 100),
                }  # fmt: skip
        else:
            personal = 0 if m.assist_category in ("tekun", "dibao") else 38_000  # these categories pay nothing
            yield {
                "contrib_id": f"C-{m.psn_no}-{s.year}", "psn_no": m.psn_no, "fund": "390100",
                "paid_date": f"{s.year}-01-10", "amount": format_yuan(personal + 202_000),  # + government subsidy
            }  # fmt: skip


def claim_lines(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    rng = random.Random(s.seed + 3)
    places = hospitals(s)
    start = dt.date(s.year, 1, 1)
    days = (dt.date(s.year, 12, 31) - start).days + 1
    dated = sorted((rng.randrange(days), i) for i in range(s.claims))
    for n, (day, _) in enumerate(dated):
        m = people[rng.randrange(len(people))]
        roll = rng.random()
        if roll < 0.05:
            med_type, hospital = "21", rng.choice(places[: len(places) // 2])
            total = int(rng.lognormvariate(8.7, 0.8) * 100)  # median ~6,000 yuan
        elif roll < 0.17 and m.chronic:
            med_type, hospital = "14", rng.choice(places)
            total = rng.randint(10_000, 150_000)
        else:
            med_type, hospital = "11", rng.choice(places)
            total = rng.randint(3_000, 40_000)
        total = max(total, 1_000)
        fulamt = total * rng.randint(0, 12) // 100
        overlmt = total * rng.randint(0, 3) // 100
        preself = total * rng.randint(0, 6) // 100
        yield {
            "setl_id": f"S{s.region}{s.year}{n + 1:08d}", "psn_no": m.psn_no, "fixmedins_code": hospital[0],
            "hosp_lv": hospital[1], "med_type": med_type, "setl_time": (start + dt.timedelta(days=day)).isoformat(),
            "medfee_sumamt": format_yuan(total), "fulamt_ownpay_amt": format_yuan(fulamt),
            "overlmt_selfpay": format_yuan(overlmt), "preselfpay_amt": format_yuan(preself),
            "inscp_scp_amt": format_yuan(total - fulamt - overlmt - preself),
        }  # fmt: skip


def write_jsonl(path: Path, rows: Iterator[dict[str, object]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(_ENCODER.encode(row).decode() + "\n")
            count += 1
    return count


def generate(s: Scenario, folder: Path, *, claims: bool = True) -> None:
    """Write the scenario's files into `folder` (the claims file last, and only complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    people = members(s)
    write_jsonl(folder / "members.jsonl", member_lines(s, people))
    write_jsonl(folder / "recognitions.jsonl", recognitions(s, people))
    write_jsonl(folder / "contributions.jsonl", contribution_lines(s, people))
    if claims:
        generate_claims(s, folder)


def generate_claims(s: Scenario, folder: Path) -> None:
    partial = folder / "claims.jsonl.partial"
    write_jsonl(partial, claim_lines(s, members(s)))
    partial.rename(folder / "claims.jsonl")  # a crash never leaves a short claims file behind


def load(store: Store, files: Path, year: int = 2023) -> int:
    """Record the demo policy (for `year`), then import the members and contributions that
    `generate` wrote into `files`: a region-year ready for its claims (benchmarks and tests).
    Returns how many lines were rejected."""
    from importlib import resources

    from bulk import batch
    from bulk.lines import read_lines
    from core.policy import parse_policy

    raw = (resources.files("commands") / "data" / "demo-policy-2023.toml").read_bytes()
    raw = raw.replace(b"year = 2023", f"year = {year}".encode())
    policy = parse_policy(raw)
    store.ensure_region(policy.region).record_policy(policy.year, policy.content_hash, raw.decode())
    rejected = 0
    for importer, file in (
        (batch.import_members, "members.jsonl"),
        (batch.import_contributions, "contributions.jsonl"),
    ):
        with (files / file).open("rb") as stream:
            rejected += sum(result.rejected for result in importer(store, read_lines(stream), batch_size=2000))
    return rejected
