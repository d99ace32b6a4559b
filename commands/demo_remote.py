"""The demo's 异地就医: members of the demo's district treated at the neighbouring region's
hospitals, and members who moved there treated back at the district's, settled each month in
the region that insures them, relayed to the region of treatment, and cleared (清分) between the
two regions after each month, with the account balances of July's transfers. One claim treated
elsewhere is reversed after it was cleared and paid, so December's clearing carries it back.
Deterministic for a scenario: a second run settles nothing again and clears nothing twice."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import click
from psycopg import sql

from app.clearing_between_regions import clear_between_regions
from app.region import RegionApplication
from commands.synthetic import Member, Scenario, hospitals, members
from core.ledger import DUE_TO_REGIONS
from core.money import format_yuan
from core.records import Claim, parse_claim
from projections.read_model import catch_up, reading
from projections.region_dues import dues_reader

OPERATOR = "demo"
TREATED_AWAY_EVERY = 50  # every 50th member who stays is treated once at a hospital of the other region
TREATED_BACK_EVERY = 4  # every 4th resident who moved is treated once back in the district (Aug-Nov)
REVERSED_MONTH = 3  # the first claim treated away in March is reversed in December, after its clearing


def settle_month(store: Any, home: RegionApplication, away: RegionApplication, scenario: Scenario,
                 movers: frozenset[str], month: int) -> None:  # fmt: skip
    """The month's claims treated in the other region, each settled where the member is insured;
    in December the reversal; then the month's clearing between the regions, on the 3rd of the
    next month (before the hospitals are paid on the 5th)."""
    home.settle_claims([c for m, c in _treated_away(scenario, movers, away.region) if c.setl_time.month == month])
    away.settle_claims([c for m, c in _treated_back(scenario, movers, home.region) if c.setl_time.month == month])
    if month == 12:
        setl_id = _reversed(scenario, movers, away.region)
        found = home.settlement(setl_id)
        if found is not None and not found.reversed:
            home.reverse(setl_id, operator=OPERATOR, reason="重复结算: 撤销", on_date=dt.date(scenario.year, 12, 15))
    cleared_on = dt.date(scenario.year + month // 12, month % 12 + 1, 3)
    clear_between_regions(store, f"{scenario.year}-{month:02d}", read_dues=dues_reader(), on_date=cleared_on,
                          operator=OPERATOR)  # fmt: skip


def _treated_away(scenario: Scenario, movers: frozenset[str], there: str) -> list[tuple[Member, Claim]]:
    rng = random.Random(scenario.seed + 61)
    staying = [m for m in members(scenario) if m.psn_no not in movers]
    places = [(f"H{there[-3:]}{i:03d}", 3 if i == 1 else 2) for i in range(1, 5)]
    out = []
    for n, m in enumerate(staying[TREATED_AWAY_EVERY // 2 :: TREATED_AWAY_EVERY], start=1):
        code, level = places[n % len(places)]
        day = dt.date(scenario.year, rng.randint(1, 12), rng.randint(1, 28))
        out.append((m, _claim(f"YD{scenario.region}{scenario.year}{n:05d}", m, code, level, there, day,
                              rng.randint(200_000, 3_000_000))))  # fmt: skip
    return out


def _treated_back(scenario: Scenario, movers: frozenset[str], home: str) -> list[tuple[Member, Claim]]:
    """Residents only: their claims have no account part, which the new region's young account
    fund could not advance."""
    rng = random.Random(scenario.seed + 62)
    moved = [m for m in members(scenario) if m.psn_no in movers and m.insutype == "390"]
    places = [p for p in hospitals(scenario) if p[1] == 2][:4]
    out = []
    for n, m in enumerate(moved[::TREATED_BACK_EVERY], start=1):
        code, level = places[n % len(places)]
        day = dt.date(scenario.year, rng.randint(8, 11), rng.randint(1, 28))
        out.append((m, _claim(f"YB{scenario.region}{scenario.year}{n:05d}", m, code, level, home, day,
                              rng.randint(200_000, 1_500_000))))  # fmt: skip
    return out


def advance_for_treated_back(scenario: Scenario, movers: frozenset[str]) -> int:
    """What the neighbouring region may have to pay the district, at most, for the members treated
    back there (their claims in full): added to its resident funds' balances brought forward, so
    that a month whose clearing it pays does not overdraw a region modelled for a few members."""
    return sum(c.medfee_sumamt for _, c in _treated_back(scenario, movers, scenario.region))


def _reversed(scenario: Scenario, movers: frozenset[str], there: str) -> str:
    return next(c.setl_id for _, c in _treated_away(scenario, movers, there) if c.setl_time.month == REVERSED_MONTH)


def _claim(setl_id: str, m: Member, code: str, level: int, there: str, day: dt.date, inscp: int) -> Claim:
    yuan = format_yuan(inscp)
    return parse_claim({
        "setl_id": setl_id, "psn_no": m.psn_no, "fixmedins_code": code, "hosp_lv": level, "med_type": "21",
        "setl_time": day.isoformat(), "medfee_sumamt": yuan, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": yuan, "mdtrtarea_admvs": there,
    })  # fmt: skip


def print_summary(home: RegionApplication, away: RegionApplication, year: int) -> None:
    """Both directions' claims and amounts from the two journals, and the clearings from the
    district's books: how many, what it paid net, and December's, cleared on 3 January."""
    mine, theirs = _owed(home, away.region), _owed(away, home.region)
    click.echo(
        f"  异地就医 treated in {away.region}: {mine['claims']:,} claims of {home.region}'s members, "
        f"{format_yuan(mine['owed'])} owed to {away.region} ({mine['reversals']:,} reversed after clearing); "
        f"treated back in {home.region}: {theirs['claims']:,} claims of members who moved, "
        f"{format_yuan(theirs['owed'])}"
    )
    book = home.region_clearings(away.region)
    cleared = list(book.cleared.values()) if book is not None else []
    net = sum(c.dues.net for c in cleared)
    december = [c.dues for c in cleared if c.month == f"{year}-12"]
    last = (f"December's, on {year + 1}-01-03: {format_yuan(sum(sum(d.owed_to.values()) for d in december))} to "
            f"{away.region}, {format_yuan(sum(sum(d.owed_by.values()) for d in december))} from it")  # fmt: skip
    click.echo(f"  清分 with {away.region}: {len(cleared):,} monthly clearings, {format_yuan(net)} paid net by "
               f"{home.region} (异地就医 and the account balances transferred); {last}")  # fmt: skip


def _owed(app: RegionApplication, other: str) -> dict[str, int]:
    catch_up(app)
    with reading(app) as (curs, schema):
        curs.execute(
            sql.SQL(_FIGURES).format(sql.Identifier(schema, "journal")), {"other": other, "to": DUE_TO_REGIONS}
        )
        row = curs.fetchone()
    return {name: int(row[name]) for name in ("claims", "owed", "reversals")}


_FIGURES = """
SELECT
  count(DISTINCT ref) FILTER (WHERE kind = 'settlement') AS claims,
  coalesce(-sum(amount) FILTER (WHERE kind IN ('settlement', 'correction', 'reversal')), 0) AS owed,
  count(DISTINCT ref) FILTER (WHERE kind = 'reversal') AS reversals
FROM {} WHERE account = %(to)s AND party = %(other)s
"""
