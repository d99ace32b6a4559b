"""Hospital statements, what the funds owe a hospital, and the coverage report (SPEC 6).

All figures come from the read model (journal and settlements tables) in fen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import sql

from app.region import RegionApplication
from core.hospital import OwedAt
from core.ledger import BASIC_FUNDS, PAYABLE_TO_HOSPITALS, PAYABLE_TO_MEMBERS, RECEIVABLE_FROM_HOSPITALS
from core.money import format_yuan
from projections.read_model import ReadModelInconsistent, catch_up, reading


def owed_to_hospital(curs: Any, schema: str, hospital: str, through: dt.date) -> dict[str, int]:
    """Per fund, what is owed to the hospital for everything posted up to `through`, net of every
    payment, deduction and reversal recorded by then."""
    return owed_to_hospitals(curs, schema, through, hospital=hospital).get(hospital, {})


def owed_at(curs: Any, schema: str, tracking_name: str, through: dt.date, *, members: bool = False) -> OwedAt:
    """What the funds owe every hospital up to `through`, summed at the read model's position
    (tracked as `tracking_name`): it is read first, and only journal rows at or before it are
    summed, so a page written meanwhile is left out and the sum is exactly that position's.
    A hospital payment records this position (core.hospital: what it paid is decided by it).
    With `members`, what is owed to members instead (core.member_payment)."""
    position = _position(curs, schema, tracking_name)
    _check_payables_balance(curs, schema, position)
    owed = owed_to_members if members else owed_to_hospitals
    return OwedAt(position, owed(curs, schema, through, at=position))


def _position(curs: Any, schema: str, tracking_name: str) -> int:
    """How far the read model (tracked as `tracking_name`) has followed the log."""
    curs.execute(
        sql.SQL("SELECT max(notification_id) AS position FROM {} WHERE application_name = %s").format(
            sql.Identifier(schema, "notification_tracking")
        ),
        (tracking_name,),
    )
    return int(curs.fetchone()["position"] or 0)


def _check_payables_balance(curs: Any, schema: str, position: int) -> None:
    """A payment is summed only from entries whose legs still balance: a journal row changed
    outside yibao would otherwise be paid (found by QA: one row edited by a superuser paid a
    hospital 1,000,000.00 more than it was owed)."""
    journal = sql.Identifier(schema, "journal")
    curs.execute(
        sql.SQL(
            "SELECT notification_id FROM {0} WHERE notification_id IN (SELECT notification_id FROM {0} "
            "WHERE account IN (%s, %s) AND notification_id <= %s) GROUP BY notification_id HAVING sum(amount) <> 0 "
            "ORDER BY notification_id LIMIT 11"
        ).format(journal),
        (PAYABLE_TO_HOSPITALS, PAYABLE_TO_MEMBERS, position),
    )
    unbalanced = [str(row["notification_id"]) for row in curs.fetchall()]
    if unbalanced:
        raise ReadModelInconsistent(
            f"journal entries (notification_id) not balanced: {', '.join(unbalanced[:10])}"
            f"{' and more' if len(unbalanced) > 10 else ''}; nothing paid: the read model was changed outside "
            "yibao (`yibao verify` checks it, `yibao projections rebuild` builds it again from the events)"
        )


def owed_reader(
    app: RegionApplication, through: dt.date, up_to_date: Callable[[RegionApplication], Any] = catch_up,
    *, members: bool = False,
) -> Callable[[], OwedAt]:  # fmt: skip
    """`RegionApplication.pay_hospitals`'s `read_owed`: the read model brought up to date, then
    `owed_at` (called again on each attempt of the payment)."""

    def read() -> OwedAt:
        up_to_date(app)
        with reading(app) as (curs, schema):
            return owed_at(curs, schema, app.name, through, members=members)

    return read


def owed_to_hospitals(
    curs: Any, schema: str, through: dt.date, *, hospital: str | None = None, at: int | None = None
) -> dict[str, dict[str, int]]:
    """hospital -> fund -> what is owed (positive amounts only), for one or every hospital:
    everything posted up to `through` that is payable to the hospital, less every payment made
    to it whatever its date (a payment made after `through` has paid that period already).
    A reversal counts with the version it reverses, whatever its own date: it is posted on the
    day it is made, so a payment for the period of a claim reversed since must not pay it.
    With `at`, only the journal rows of events at or before that position count."""
    return _owed(curs, schema, PAYABLE_TO_HOSPITALS, "hospital_payment", through, party=hospital, at=at)


def owed_to_members(curs: Any, schema: str, through: dt.date, *, at: int | None = None) -> dict[str, dict[str, int]]:
    """psn_no -> fund -> what is owed to the member (零星报销, look-back assistance, maternity
    allowances), as `owed_to_hospitals` sums it for hospitals; negative where the member owes a
    fund money back (core.member_payment nets each member's funds)."""
    return _owed(curs, schema, PAYABLE_TO_MEMBERS, "member_payment", through, at=at, positive_only=False)


def _owed(
    curs: Any, schema: str, account: str, payment_kind: str, through: dt.date, *, party: str | None = None,
    at: int | None = None, positive_only: bool = True,
) -> dict[str, dict[str, int]]:  # fmt: skip
    journal = sql.Identifier(schema, "journal")
    where = sql.SQL(
        "j.account = %s AND (j.posted_on <= %s OR j.kind = %s OR (j.kind IN ('reversal', 'remote_reversal') AND ("
        "SELECT v.posted_on FROM {} v WHERE v.ref = j.ref AND v.kind IN ('settlement', 'correction', "
        "'remote_settlement') AND (v.kind = 'remote_settlement') = (j.kind = 'remote_reversal') "
        "AND v.notification_id < j.notification_id ORDER BY v.notification_id DESC LIMIT 1) <= %s))"
    ).format(journal)
    params: list[Any] = [account, through, payment_kind, through]
    if at is not None:
        where = sql.SQL("j.notification_id <= %s AND ") + where
        params.insert(0, at)
    if party is not None:
        where = sql.SQL("j.party = %s AND ") + where
        params.insert(0, party)
    curs.execute(
        sql.SQL("SELECT j.party, j.fund, -sum(j.amount) AS owed FROM {} j WHERE {} GROUP BY j.party, j.fund").format(
            journal, where
        ),
        params,
    )
    owed: dict[str, dict[str, int]] = {}
    for row in curs.fetchall():
        amount = int(row["owed"])
        if amount > 0 or (amount and not positive_only):
            owed.setdefault(row["party"], {})[row["fund"]] = amount
    return owed


def hospital_statement(curs: Any, schema: str, hospital: str, year: int, budget: int | None) -> dict[str, Any]:
    """Settled by fund, deductions, payments and recoveries within the year; outstanding and
    receivable as balances at its end; budget use of the year."""
    funds = _fund_lines(curs, schema, [hospital], year).get(hospital, {})
    used = sum(basic_use(funds).values())
    return {
        "hospital": hospital,
        "year": year,
        "funds": {fund: {k: format_yuan(v) for k, v in line.items()} for fund, line in sorted(funds.items())},
        "budget": None if budget is None else format_yuan(budget),
        "budget_used": format_yuan(used),
        "budget_used_ratio": None if not budget else str((Decimal(used) / budget * 100).quantize(Decimal("0.1"))) + "%",
    }


def basic_use(funds: dict[str, dict[str, int]]) -> dict[str, int]:
    """Per basic fund, what it paid the hospital in the year net of deductions: the use of its
    total budget (总额预算)."""
    return {fund: line["settled"] - line["deducted"] for fund, line in funds.items() if fund in BASIC_FUNDS}


def budget_reader(
    app: RegionApplication, year: int, up_to_date: Callable[[RegionApplication], Any] = catch_up
) -> Callable[[list[str]], tuple[int, dict[str, dict[str, int]]]]:
    """`RegionApplication.settle_budgets`'s `read_use`: the read model brought up to date, then
    `budget_use_at` (called again on each attempt)."""

    def read(hospitals: list[str]) -> tuple[int, dict[str, dict[str, int]]]:
        up_to_date(app)
        with reading(app) as (curs, schema):
            return budget_use_at(curs, schema, app.name, hospitals, year)

    return read


def budget_use_at(curs: Any, schema: str, tracking_name: str, hospitals: list[str], year: int) -> tuple[int, dict]:
    """The read model's position and, summed at it, each hospital's `basic_use` of `year` (one
    query for them all)."""
    position = _position(curs, schema, tracking_name)
    lines = _fund_lines(curs, schema, hospitals, year, at=position)
    return position, {code: basic_use(lines.get(code, {})) for code in hospitals}


def _fund_lines(
    curs: Any, schema: str, hospitals: list[str], year: int, *, at: int | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """Per hospital and fund: settled, deducted, paid and recovered within the year; outstanding
    and receivable at its end (with `at`, of the journal rows at or before that position)."""
    bound = sql.SQL("") if at is None else sql.SQL("AND notification_id <= {} ").format(sql.Literal(at))
    curs.execute(
        sql.SQL(
            "SELECT party, fund, account, kind, posted_on >= %s AS in_year, sum(amount) AS total FROM {} "
            "WHERE party = ANY(%s) AND account IN (%s, %s) AND posted_on <= %s {}"
            "GROUP BY party, fund, account, kind, in_year"
        ).format(sql.Identifier(schema, "journal"), bound),
        (dt.date(year, 1, 1), hospitals, PAYABLE_TO_HOSPITALS, RECEIVABLE_FROM_HOSPITALS, dt.date(year, 12, 31)),
    )
    out: dict[str, dict[str, dict[str, int]]] = {}
    for row in curs.fetchall():
        line = out.setdefault(row["party"], {}).setdefault(
            row["fund"], dict.fromkeys(("settled", "deducted", "paid", "recovered", "outstanding", "receivable"), 0)
        )
        _add_row(line, row)
    return out


# What a hospital was settled: its own region's claims, and other regions' members treated there
# (异地就医), which count against its total budget (纳入就医地总额管理) too.
SETTLED_KINDS = ("settlement", "correction", "reversal", "remote_settlement", "remote_reversal")


def _add_row(line: dict[str, int], row: Any) -> None:
    amount, kind = int(row["total"]), row["kind"]
    if row["account"] == PAYABLE_TO_HOSPITALS:
        line["outstanding"] -= amount
        if not row["in_year"] or kind == "budget_settlement":  # a balance, not use of the budget
            return
        if kind in SETTLED_KINDS:
            line["settled"] -= amount
        elif kind.startswith("deduction"):
            line["deducted"] += amount
        elif kind == "hospital_payment":
            line["paid"] += amount
        return
    line["receivable"] += amount
    if not row["in_year"] or kind == "budget_settlement":
        return
    if kind == "reversal":  # of a settlement already paid: owed back, no longer settled
        line["settled"] -= amount
    elif kind.startswith("deduction"):
        line["deducted"] += amount
    elif kind == "recovery":
        line["recovered"] -= amount


def coverage(curs: Any, schema: str, year: int) -> list[dict[str, Any]]:
    """综合保障率 per assistance category: what all payers paid / total medical cost."""
    curs.execute(
        sql.SQL(
            "SELECT assist_category, count(*) AS claims, sum(medfee_sumamt) AS total, "
            "sum(hifp_pay + hifmi_pay + maf_pay + hmb_pay + charity_pay + lookback_maf) AS payers, "
            "sum(hifp_pay) AS basic, sum(hifmi_pay) AS serious, sum(maf_pay + lookback_maf) AS assistance "
            "FROM {} WHERE status = 'settled' AND year = %s GROUP BY assist_category ORDER BY assist_category"
        ).format(sql.Identifier(schema, "settlements")),
        (year,),
    )
    out = []
    for row in curs.fetchall():
        total = int(row["total"])
        ratio = (Decimal(int(row["payers"])) / total * 100).quantize(Decimal("0.01"), ROUND_HALF_UP) if total else None
        out.append(
            {
                "assist_category": row["assist_category"],
                "claims": int(row["claims"]),
                "medfee_sumamt": format_yuan(total),
                "payers": format_yuan(int(row["payers"])),
                "basic": format_yuan(int(row["basic"])),
                "serious_illness": format_yuan(int(row["serious"])),
                "assistance": format_yuan(int(row["assistance"])),
                "coverage_ratio": None if ratio is None else f"{ratio}%",
            }
        )
    return out


def payer_totals(curs: Any, schema: str) -> dict[str, int]:
    """Settlements in force and what each payer paid on them, in fen."""
    curs.execute(
        sql.SQL(
            "SELECT count(*) AS settlements, coalesce(sum(hifp_pay), 0) AS basic,"
            " coalesce(sum(hifmi_pay), 0) AS serious, coalesce(sum(maf_pay + lookback_maf), 0) AS assistance,"
            " coalesce(sum(hmb_pay), 0) AS supplementary,"
            " coalesce(sum(charity_pay), 0) AS charity, coalesce(sum(acct_pay + acct_mulaid_pay), 0) AS accounts"
            " FROM {} WHERE status = 'settled'"
        ).format(sql.Identifier(schema, "settlements"))
    )
    row = curs.fetchone()
    return {key: int(value) for key, value in row.items()}


def large_settlements(
    curs: Any, schema: str, *, start: dt.date, end: dt.date, basic_paid_min: int, limit: int
) -> list[dict[str, Any]]:
    """Settlements in force between two dates where the basic fund paid at least a sum, owed to
    one of the region's hospitals: what auditors look at first (a claim paid to its member has no
    hospital to audit, one treated in another region is audited there)."""
    curs.execute(
        sql.SQL(
            "SELECT setl_id, hospital, insutype, hifp_pay FROM {} s WHERE status = 'settled' AND hifp_pay >= %s"
            " AND setl_time BETWEEN %s AND %s AND EXISTS (SELECT 1 FROM {} j WHERE j.ref = s.setl_id"
            " AND j.kind IN ('settlement', 'correction') AND j.account = %s) ORDER BY setl_id LIMIT %s"
        ).format(sql.Identifier(schema, "settlements"), sql.Identifier(schema, "journal")),
        (basic_paid_min, start, end, PAYABLE_TO_HOSPITALS, limit),
    )
    return list(curs.fetchall())
