"""The demo's year of issue 21's flows: the 定点 registry with a suspension and a termination,
零星报销 paid to members, maternity admissions and allowances, and the year-end payment to
members (`finance pay-members`). Deterministic for a scenario: a second run records nothing."""

from __future__ import annotations

import datetime as dt
import random
from importlib import resources
from typing import Any

import click
from psycopg import sql

from app.region import RegionApplication
from commands.synthetic import Member, Scenario, hospitals, members
from core.funds import OPENING, entry
from core.institution import Institution
from core.ledger import BENEFIT_EXPENSE, MATERNITY_FUND, PAYABLE_TO_MEMBERS
from core.maternity import AllowanceFacts
from core.money import format_yuan
from core.policy import parse_policy
from core.records import Claim, parse_claim
from projections import statements
from projections.read_model import catch_up, reading

OPERATOR = "demo"
MEMBER_PAYEE_EVERY = 400  # every 400th member is reimbursed by hand once (零星报销)
MATERNITY_EVERY = 90  # every 90th employee has a baby in the year
LEAVE_DAYS = 98  # 产假: the statutory 98 days
WAGE_BASE_YUAN = (3_500, 8_500)  # the employer's average monthly wage, as in commands.synthetic


def register_institutions(app: RegionApplication, scenario: Scenario) -> tuple[str, str]:
    """Every hospital of the scenario and one pharmacy, from 1 January; the last clinic is
    suspended for November (飞行检查) and the one before it loses its agreement on 1 December
    (解除协议): their claims of those days are rejected by name. The two codes."""
    year = scenario.year
    places = [
        Institution(code, f"demo hospital {code}", "hospital", level, scenario.region, f"{year}-01-01")
        for code, level in hospitals(scenario)
    ]
    pharmacy = Institution(f"P{scenario.region[-3:]}001", "demo pharmacy", "pharmacy", 0, scenario.region,
                           f"{year}-01-01")  # fmt: skip
    app.register_institutions([*places, pharmacy], operator=OPERATOR)
    suspended, terminated = places[-1].fixmedins_code, places[-2].fixmedins_code
    app.suspend_institution(suspended, begin=dt.date(year, 11, 1), end=dt.date(year, 11, 30),
                            reason="飞行检查: 暂停医保结算", operator=OPERATOR)  # fmt: skip
    app.terminate_institution(terminated, on_date=dt.date(year, 12, 1), reason="欺诈骗保: 解除协议", operator=OPERATOR)
    return suspended, terminated


def maternity_opening_balance(scenario: Scenario, movers: frozenset[str]) -> int:
    """The maternity fund's balance brought forward: one and a half years of the year's maternity
    payments (admissions at most their cap, allowances in full), so it ends the year with about
    six months of payment capacity."""
    raw = (resources.files("commands") / "data" / "demo-policy-2023.toml").read_bytes()
    policy_cap = parse_policy(raw).maternity["52"].annual_cap
    mothers = _mothers(scenario, movers)
    yearly = sum(policy_cap + LEAVE_DAYS * wage for _, wage, _ in mothers)
    return yearly * 3 // 2


def settle_year_end(app: RegionApplication, scenario: Scenario, movers: frozenset[str]) -> None:
    """零星报销 and maternity claims of the year, the allowances, then (31 December) the payment
    of everything owed to members. `movers` (insured elsewhere from July) are left out."""
    mothers = _mothers(scenario, movers)
    claims = [*_member_payee_claims(scenario, movers), *(claim for _, _, claim in mothers)]
    app.settle_claims(claims)
    year = scenario.year
    for psn_no, wage, claim in mothers:
        on = claim.setl_time + dt.timedelta(days=LEAVE_DAYS)
        app.grant_allowance(AllowanceFacts(f"MA-{psn_no}-{year}", psn_no, LEAVE_DAYS, wage,
                                           min(on, dt.date(year, 12, 31)).isoformat(), OPERATOR))  # fmt: skip
    through = dt.date(year, 12, 31)
    app.pay_members(f"PAY-MEMBERS-{year}", read_owed=statements.owed_reader(app, through, members=True),
                    through=through, paid_on=through, operator=OPERATOR)  # fmt: skip


def _member_payee_claims(scenario: Scenario, movers: frozenset[str]) -> list[Claim]:
    rng = random.Random(scenario.seed + 21)
    out = []
    staying = [m for m in members(scenario) if m.psn_no not in movers]
    for n, m in enumerate(staying[MEMBER_PAYEE_EVERY // 2 :: MEMBER_PAYEE_EVERY], start=1):
        inscp = rng.randint(50_000, 1_500_000)  # 500 to 15,000 yuan, paid in full by the member
        # Dated in December, when they are settled: the audits of the year pick from what is
        # settled by then, so a second run audits the same settlements.
        day = dt.date(scenario.year, 12, rng.randint(1, 28))
        out.append(_claim(f"ZX{scenario.region}{scenario.year}{n:05d}", m, "21", "ABROAD", 1, day, inscp,
                          payee="member"))  # fmt: skip
    return out


def _mothers(scenario: Scenario, movers: frozenset[str]) -> list[tuple[str, int, Claim]]:
    """(psn_no, daily wage in fen, admission claim) of the employees who have a baby this year."""
    rng = random.Random(scenario.seed + 51)
    employees = [m for m in members(scenario) if m.insutype == "310" and m.psn_no not in movers]
    places = [p for p in hospitals(scenario) if p[1] == 2][:4]
    out = []
    for n, m in enumerate(employees[MATERNITY_EVERY // 2 :: MATERNITY_EVERY], start=1):
        code, level = places[n % len(places)]
        claim = _claim(f"MA{scenario.region}{scenario.year}{n:05d}", m, "52", code, level,
                       _day(rng, scenario.year, last_month=9), rng.randint(300_000, 900_000))  # fmt: skip
        daily_wage = rng.randint(*WAGE_BASE_YUAN) * 100 // 30
        out.append((m.psn_no, daily_wage, claim))
    return out


def _day(rng: random.Random, year: int, last_month: int = 12) -> dt.date:
    return dt.date(year, rng.randint(1, last_month), rng.randint(1, 28))


def _claim(setl_id: str, m: Member, med_type: str, code: str, level: int, day: dt.date, inscp: int,
           payee: str | None = None) -> Claim:  # fmt: skip
    yuan = format_yuan(inscp)
    raw: dict[str, Any] = {
        "setl_id": setl_id, "psn_no": m.psn_no, "fixmedins_code": code, "hosp_lv": level, "med_type": med_type,
        "setl_time": day.isoformat(), "medfee_sumamt": yuan, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": yuan,
    }  # fmt: skip
    return parse_claim({**raw, "payee": payee} if payee else raw)


def opening_entry(scenario: Scenario, movers: frozenset[str]) -> Any:
    return entry(OPENING, f"OPEN-{scenario.region}-{scenario.year}-{MATERNITY_FUND}", fund=MATERNITY_FUND,
                 amount=maternity_opening_balance(scenario, movers), on_date=dt.date(scenario.year, 1, 1),
                 reason="期初结余 (上年结转)", operator=OPERATOR)  # fmt: skip


def print_summary(app: RegionApplication, suspended: str, terminated: str, year: int, refused: dict[str, int]) -> None:
    """The year's figures of these flows, from the journal (the same on a second run); `refused`:
    the claim lines of this run rejected by the registry, by reason."""
    catch_up(app)
    with reading(app) as (curs, schema):
        curs.execute(sql.SQL(_FIGURES).format(sql.Identifier(schema, "journal")), _FIGURE_PARAMS)
        f = curs.fetchone()
    click.echo(
        f"  定点 registry: {suspended} suspended in November, {terminated} terminated from {year}-12-01; claim lines "
        f"refused there: {refused.get('institution_suspended', 0):,} suspended, "
        f"{refused.get('institution_terminated', 0):,} terminated"
    )
    yuan = {name: format_yuan(int(f[name])) for name in ("zx_owed", "births_paid", "allowance_paid", "paid")}
    click.echo(f"  零星报销 owed to members: {f['zx_n']:,} claims, {yuan['zx_owed']}")
    click.echo(f"  maternity 生育 (fund {MATERNITY_FUND}): {f['births']:,} admissions {yuan['births_paid']}, "
               f"{f['allowances']:,} allowances 生育津贴 {yuan['allowance_paid']}")  # fmt: skip
    click.echo(f"  paid to members (finance pay-members, with look-back assistance): {yuan['paid']}")


_FIGURES = """
SELECT
  count(DISTINCT ref) FILTER (WHERE kind = 'settlement' AND account = %(payable)s) AS zx_n,
  coalesce(-sum(amount) FILTER (WHERE kind = 'settlement' AND account = %(payable)s), 0) AS zx_owed,
  count(DISTINCT ref) FILTER (WHERE kind = 'settlement' AND account = %(expense)s AND fund = %(fund)s) AS births,
  coalesce(sum(amount) FILTER (WHERE kind = 'settlement' AND account = %(expense)s AND fund = %(fund)s), 0)
    AS births_paid,
  count(DISTINCT ref) FILTER (WHERE kind = 'maternity_allowance' AND account = %(expense)s) AS allowances,
  coalesce(sum(amount) FILTER (WHERE kind = 'maternity_allowance' AND account = %(expense)s), 0) AS allowance_paid,
  coalesce(sum(amount) FILTER (WHERE kind = 'member_payment' AND account = %(payable)s), 0) AS paid
FROM {} WHERE account IN (%(payable)s, %(expense)s)
"""
_FIGURE_PARAMS = {"payable": PAYABLE_TO_MEMBERS, "expense": BENEFIT_EXPENSE, "fund": MATERNITY_FUND}
