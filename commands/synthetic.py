"""A synthetic region-year for the demo and the benchmarks: members, contributions, claims.

Deterministic for a seed. Amounts are generated in fen (integers) and written as yuan strings,
like the files hospitals and the tax bureau send. Claims are sorted by date.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
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


# The year's financing (筹资), calibrated on a district of the national 2023 figures, in fen.
RESIDENT_INDIVIDUAL = 38_000  # a resident's own contribution: 380 yuan (none for tekun and dibao)
RESIDENT_SUBSIDY = 64_000  # the fiscal subsidy per resident (财政补助): 640 yuan
WAGE_BASE_YUAN = (3_500, 8_500)  # an employee's monthly contribution base (缴费基数)
EMPLOYER_RATE_BP, EMPLOYEE_RATE_BP = 800, 200  # 8% by the employer, 2% by the employee
# Since the 2021 reform (国办发〔2021〕14号) the employee's own 2% goes to the individual account
# and all of the employer's 8% to the pooling fund.
HMB_PREMIUM = 6_400  # the city supplementary product (惠民保): 64 yuan a year
ASSISTANCE_SUBSIDY = 42_000  # medical assistance (医疗救助) financed by the government per assisted member
# Balances brought forward from the years before (期初结余), per insured person of the scheme.
OPENING_PER_CAPITA = {"310100": 285_000, "330100": 3_600, "390100": 45_000, "390200": 2_400, "610100": 20_800,
                      "HMB": 3_500}  # fmt: skip


def contribution_lines(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    """Each line says who paid (`source`): residents pay once a year and the government adds its
    subsidy; employers and employees pay half-yearly, the employee's part to the account."""
    rng = random.Random(s.seed + 2)
    for m in people:
        small: list[tuple[str, int, str]] = []  # the smaller funds are financed per person
        if m.supplementary:
            small.append(("HMB", HMB_PREMIUM, "individual"))
        if m.assist_category != "none":
            small.append(("610100", ASSISTANCE_SUBSIDY, "fiscal_subsidy"))
        if m.insutype == "390":
            if m.assist_category not in ("tekun", "dibao"):  # these categories pay nothing themselves
                small.append(("390100", RESIDENT_INDIVIDUAL, "individual"))
            small.append(("390100", RESIDENT_SUBSIDY, "fiscal_subsidy"))
        for fund, amount, source in small:
            yield {
                "contrib_id": f"C-{m.psn_no}-{s.year}-{fund}-{source}", "psn_no": m.psn_no, "fund": fund,
                "paid_date": f"{s.year}-01-{10 if fund == '390100' else 20}", "amount": format_yuan(amount),
                "source": source,
            }  # fmt: skip
        if m.insutype == "310":
            carried = rng.randint(0, 4_000) * 100  # the account's balance from the years before, brought in
            yield {
                "contrib_id": f"C-{m.psn_no}-{s.year}-carried", "psn_no": m.psn_no, "fund": "310100",
                "paid_date": f"{s.year}-01-01", "amount": format_yuan(carried), "acct_amount": format_yuan(carried),
                "source": "individual",
            }  # fmt: skip
            half_year_base = rng.randint(*WAGE_BASE_YUAN) * 100 * 6  # fen
            for half in range(2):
                paid = {"paid_date": f"{s.year}-{half * 6 + 1:02d}-15"}
                employer = half_year_base * EMPLOYER_RATE_BP // 10_000
                employee = half_year_base * EMPLOYEE_RATE_BP // 10_000
                yield {
                    "contrib_id": f"C-{m.psn_no}-{s.year}H{half + 1}-employer", "psn_no": m.psn_no, "fund": "310100",
                    **paid, "amount": format_yuan(employer), "source": "employer",
                }  # fmt: skip
                yield {
                    "contrib_id": f"C-{m.psn_no}-{s.year}H{half + 1}-individual", "psn_no": m.psn_no,
                    "fund": "310100", **paid, "amount": format_yuan(employee), "acct_amount": format_yuan(employee),
                    "source": "individual",
                }  # fmt: skip


def opening_balances(people: list[Member]) -> dict[str, int]:
    """fund -> the balance it brings from the years before: a per-capita figure times the members
    of the scheme (or of the product) it serves."""
    employees = sum(m.insutype == "310" for m in people)
    served = {
        "310100": employees, "330100": employees, "390100": len(people) - employees,
        "390200": len(people) - employees, "610100": sum(m.assist_category != "none" for m in people),
        "HMB": sum(m.supplementary for m in people),
    }  # fmt: skip
    return {fund: OPENING_PER_CAPITA[fund] * served[fund] for fund in sorted(served) if served[fund]}


# Use of care: how often a member is settled for (employees, many of them retired, more than
# residents; members registered for chronic care more) and the share of inpatient stays. Every
# SERIOUSLY_ILL_EVERY-th member has a catastrophic stay, what serious-illness insurance is for:
# spread evenly, so that even a small demo has its share of them.
CLAIM_WEIGHT = {"310": 8.0, "390": 1.0}
CHRONIC_WEIGHT = 2.0
INPATIENT_SHARE = 0.012
SERIOUSLY_ILL_EVERY = 100
CATASTROPHIC_MEDIAN_LOG = {"310": 12.4, "390": 11.5}  # employees' ~240,000 yuan, residents' ~100,000
OUTPATIENT_FEN = (2_000, 30_000)


def _claim_amount(rng: random.Random, m: Member, places: list[tuple[str, int]]) -> tuple[str, tuple[str, int], int]:
    roll = rng.random()
    if roll < INPATIENT_SHARE:
        return "21", rng.choice(places[: len(places) // 2]), int(rng.lognormvariate(8.9, 0.7) * 100)  # ~7,300 yuan
    if roll < INPATIENT_SHARE + 0.25 and m.chronic:
        return "14", rng.choice(places), rng.randint(10_000, 120_000)
    return "11", rng.choice(places), rng.randint(*OUTPATIENT_FEN)


def _seriously_ill(people: list[Member]) -> list[Member]:
    """Every SERIOUSLY_ILL_EVERY-th member of each group that the funds tell apart (scheme,
    supplementary product, assistance), so that each fund has its share of them."""
    groups: dict[tuple[str, bool, bool], list[Member]] = {}
    for m in people:
        groups.setdefault((m.insutype, m.supplementary, m.assist_category != "none"), []).append(m)
    return [m for _, group in sorted(groups.items()) for m in group[SERIOUSLY_ILL_EVERY // 2 :: SERIOUSLY_ILL_EVERY]]


def claim_lines(s: Scenario, people: list[Member]) -> Iterator[dict[str, object]]:
    rng = random.Random(s.seed + 3)
    places = hospitals(s)
    start = dt.date(s.year, 1, 1)
    days = (dt.date(s.year, 12, 31) - start).days + 1
    dated = sorted((rng.randrange(days), i) for i in range(s.claims))
    weights = list(itertools.accumulate(
        CLAIM_WEIGHT[m.insutype] * (CHRONIC_WEIGHT if m.chronic else 1.0) for m in people
    ))  # fmt: skip
    seriously_ill = _seriously_ill(people)
    slots = rng.sample(range(s.claims), min(len(seriously_ill), s.claims))
    catastrophic = dict(zip(slots, seriously_ill, strict=False))
    for n, (day, _) in enumerate(dated):
        if n in catastrophic:  # months of care at a level-3 hospital
            m, med_type = catastrophic[n], "21"
            total = int(rng.lognormvariate(CATASTROPHIC_MEDIAN_LOG[m.insutype], 0.25) * 100)
            hospital = places[rng.randrange(max(1, len(places) // 6))]
        else:
            m = people[bisect.bisect(weights, rng.random() * weights[-1])]
            med_type, hospital, total = _claim_amount(rng, m, places)
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
