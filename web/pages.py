"""The console's pages: each reads through projections/ and returns what it shows and exports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import attrs
from psycopg import sql
from starlette.requests import Request

from core.ledger import ACCOUNTS, ASSETS, EQUITY, EXPENSES, FUNDS, INCOME, LIABILITIES
from core.money import format_yuan
from core.policy import parse_policy
from core.roles import Role
from core.tiers import YearToDate
from projections import balance_sheet as bs
from projections import statements
from projections.caps import cap_limits
from projections.console_reads import (
    approval_rows,
    approvals_per_page,
    newest_event_at,
    pending_summary,
    reconciliation_rows,
)
from projections.read_model import reading
from projections.trace import chain_status, describe_event, postings_page, trace_settlement, trace_transfer
from projections.transfers import transfers as transfer_rows
from store.users import User
from store.verify_runs import VerifyRun
from web.console import Console

POSTINGS_PER_PAGE = 100
POSTINGS_PER_PAGE_MAX = 1000
# Line of the balance sheet -> the sign that turns a posting (debit positive) into the line's direction.
SIGN = {**{a: 1 for a in ASSETS + EXPENSES}, **{a: -1 for a in LIABILITIES + EQUITY + INCOME}}
# 可支付月数 below this is a warning (the usual national alert level for a pooling fund).
MONTHS_WARNING = 6
PENDING = ("pending_review", "released")  # transfers asked for and not yet arrived (core/transfer.py)
# A verify older than the region's newest event by more than this is shown as stale (docs/console.md).
VERIFY_STALE_AFTER = dt.timedelta(days=7)


class NotFound(Exception):
    pass


@dataclass
class Page:
    """What a page shows: its template and context, and the table its exports hold."""

    template: str
    context: dict[str, Any]
    title: str = ""
    table: list[list[str]] = field(default_factory=list)


def _region(console: Console, request: Request) -> str:
    codes = console.regions()
    code = request.query_params.get("region") or (codes[0] if codes else "")
    if code not in codes:
        raise NotFound(f"no region {code!r}")
    return code


def _date(request: Request, name: str = "as_of") -> dt.date:
    text = request.query_params.get(name)
    try:
        return dt.date.fromisoformat(text) if text else dt.date.today()
    except ValueError:
        raise NotFound(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def overview(console: Console, request: Request, user: User) -> Page:
    as_of = _date(request)
    regions = []
    table = [["region", "fund", "balance", "surplus_of_year", "months_of_capacity"]]
    verified = console.latest_verify_runs(console.regions())
    for code in console.regions():
        sheet = console.sheet(code, as_of)
        with reading(console.region(code)) as (curs, schema):
            pending = [t for status in PENDING for t in transfer_rows(curs, schema, status=status)]
            approvals = pending_summary(curs, schema)
            newest = newest_event_at(curs, schema)
        regions.append(
            {"code": code, "sheet": sheet, "monthly": _monthly(console, code, as_of.year), "pending": pending,
             "approvals": approvals, "verify": _verify(verified.get(code), newest)}
        )  # fmt: skip
        for f in sheet.funds:
            table.append([code, f.fund, format_yuan(f.lines["balance"]), format_yuan(f.lines["surplus_of_year"]),
                          "" if f.months_of_capacity is None else str(f.months_of_capacity)])  # fmt: skip
    table += [[], list(CHECKS_COLUMNS)] + [_checks_row(r) for r in regions]  # the page's second table
    return Page("overview.html", {"as_of": as_of, "overview": regions, "warning": MONTHS_WARNING,
                                  "yuan": format_yuan,
                                  "stale_days": VERIFY_STALE_AFTER.days}, "概览 Overview", table)  # fmt: skip


CHECKS_COLUMNS = ("region", "pending_approvals", "pending_amount", "verify_at", "verify_by", "verify_problems",
                  "verify_first_problem", "verify_position", "verify_stale")  # fmt: skip


def _checks_row(region: dict[str, Any]) -> list[str]:
    (count, amount), run = region["approvals"], region["verify"]["run"]
    verify = [run.at.isoformat(timespec="seconds"), run.ran_by, str(run.problems), run.first_problem or "",
              str(run.position)] if run else ["", "", "", "", ""]  # fmt: skip
    return [region["code"], str(count), format_yuan(amount), *verify, str(region["verify"]["stale"]).lower()]


def _verify(run: VerifyRun | None, newest: dt.datetime | None) -> dict[str, Any]:
    """The latest verify of a region and whether it warns: it found something, or the log has
    events it never saw by more than `VERIFY_STALE_AFTER` (or none was ever run on a log)."""
    stale = newest is not None and (run is None or newest - run.at > VERIFY_STALE_AFTER)
    return {"run": run, "stale": stale, "warn": stale or (run is not None and not run.ok)}


def _monthly(console: Console, code: str, year: int) -> dict[str, dict[str, list[str]]]:
    """Per fund: contribution income, benefit expense and the running balance of each month (yuan)."""
    income = console.monthly(code, year, "contribution_income")
    expense = console.monthly(code, year, "benefit_expense")
    out = {}
    for fund in sorted(income.keys() | expense.keys()):
        i = [-v for v in income.get(fund, [0] * 12)]
        e = expense.get(fund, [0] * 12)
        balance = [sum(i[: m + 1]) - sum(e[: m + 1]) for m in range(12)]
        out[fund] = {"income": [format_yuan(v) for v in i], "expense": [format_yuan(v) for v in e],
                     "balance": [format_yuan(v) for v in balance]}  # fmt: skip
    return out


def balance_sheet(console: Console, request: Request, user: User) -> Page:
    region, as_of = _region(console, request), _date(request)
    sheet = console.sheet(region, as_of)
    table = [["line", "行项目", *[f.fund for f in sheet.funds]]]
    for name in (*bs.LINES, "months_of_capacity"):
        zh, en = bs.LABELS[name]
        table.append([en, zh, *[str(f.to_json()[name] or "") for f in sheet.funds]])
    context = {"sheet": sheet, "region": region, "as_of": as_of, "lines": bs.LINES, "labels": bs.LABELS,
               "linked": set(SIGN), "yuan": format_yuan}  # fmt: skip
    return Page("balance_sheet.html", context, f"资产负债表 Balance sheet {region} {as_of}", table)


def postings(console: Console, request: Request, user: User) -> Page:
    """The postings behind one line, a page at a time after the last one shown (keyset)."""
    region, as_of = _region(console, request), _date(request)
    fund, account = request.query_params.get("fund", ""), request.query_params.get("account", "")
    if fund not in FUNDS or account not in ACCOUNTS:
        raise NotFound(f"no balance-sheet line {fund}:{account}")
    since = dt.date(as_of.year, 1, 1) if account in INCOME + EXPENSES else None
    after = _after(request.query_params.get("after", ""))
    per_page = _rows(request)
    app = console.region(region)
    with reading(app) as (curs, schema):
        rows = postings_page(curs, schema, fund, account, since, as_of, after, per_page)
    sheet = console.sheet(region, as_of) if after == (0, -1) else None
    sign = SIGN[account]
    shown = [{**row, "line_amount": format_yuan(sign * int(row["amount"]))} for row in rows]
    line_total = next((f.lines[account] for f in sheet.funds if f.fund == fund), 0) if sheet else None
    last = rows[-1] if len(rows) == per_page else None
    context = {"region": region, "as_of": as_of, "fund": fund, "account": account, "label": bs.LABELS[account],
               "rows": shown, "line_total": None if line_total is None else format_yuan(line_total),
               "page_total": format_yuan(sum(sign * int(r["amount"]) for r in rows)), "since": since,
               "next": f"{last['notification_id']}:{last['leg']}" if last else None, "per_page": per_page,
               "partial": request.headers.get("HX-Request") == "true"}  # fmt: skip
    table = [["position", "leg", "posted_on", "kind", "ref", "party", "amount"]]
    table += [[str(r["notification_id"]), str(r["leg"]), r["posted_on"].isoformat(), r["kind"], r["ref"], r["party"],
               r["line_amount"]] for r in shown]  # fmt: skip
    return Page("postings.html", context, f"{fund} {account} {as_of}", table)


def _rows(request: Request) -> int:
    text = request.query_params.get("rows", "")
    if not text:
        return POSTINGS_PER_PAGE
    if not text.isdigit() or not 1 <= int(text) <= POSTINGS_PER_PAGE_MAX:
        raise NotFound(f"rows {text!r}: 1 to {POSTINGS_PER_PAGE_MAX}")
    return int(text)


def _after(text: str) -> tuple[int, int]:
    position, _, leg = text.partition(":")
    try:
        return (int(position), int(leg)) if text else (0, -1)
    except ValueError:
        raise NotFound(f"after {text!r} is not POSITION:LEG") from None


def event(console: Console, request: Request, user: User) -> Page:
    region = _region(console, request)
    position = int(request.path_params["position"])
    described = describe_event(console.region(region), position)
    if described is None:
        raise NotFound(f"no event at position {position} in region {region}")
    table = [["fund", "account", "party", "amount"]] + [
        [p["fund"], p["account"], p["party"], p["amount"]] for p in described["postings"]
    ]
    return Page("event.html", {"region": region, "event": described}, f"事件 Event #{position}", table)


def settlement(console: Console, request: Request, user: User) -> Page:
    """A settlement's trace: every event behind it, the policy it used, who did what and why."""
    region, setl_id = _region(console, request), request.path_params["setl_id"]
    app = console.region(region)
    console.record_access(user, "settlement trace", f"{region}/{setl_id}")
    events = trace_settlement(app, setl_id)
    if events is None:
        raise NotFound(f"no settlement {setl_id} in region {region}")
    policies = _policies(app, setl_id, events)
    chain = chain_status(app, [e["position"] for e in events])
    table = [["position", "recorded_at", "type", "operator", "reason", "fund", "account", "party", "amount"]]
    for e in events:
        for p in e["postings"] or [{"fund": "", "account": "", "party": "", "amount": ""}]:
            table.append([str(e["position"]), e["recorded_at"], e["type"], e["operator"] or "", e["reason"] or "",
                          p["fund"], p["account"], p["party"], p["amount"]])  # fmt: skip
    context = {"region": region, "setl_id": setl_id, "events": events, "policies": policies, "chain": chain}
    return Page("settlement.html", context, f"追溯 Trace {setl_id}", table)


def _policies(app: Any, setl_id: str, events: list[dict[str, Any]]) -> dict[str, str]:
    """The text of each policy version the settlement's events used, by its hash."""
    wanted = {e["policy"] for e in events if e.get("policy")}
    with reading(app) as (curs, schema):
        curs.execute(sql.SQL("SELECT year FROM {} WHERE setl_id = %s").format(sql.Identifier(schema, "settlements")),
                     (setl_id,))  # fmt: skip
        row = curs.fetchone()
    book = app.policy_book(row["year"]) if row else None
    return {h: text for h, text in (book.versions if book else []) if h in wanted}


def member_year(console: Console, request: Request, user: User) -> Page:
    region, psn_no = _region(console, request), request.path_params["psn_no"]
    year = int(request.path_params["year"])
    app = console.region(region)
    console.record_access(user, "member-year", f"{region}/{psn_no}/{year}")
    found = app.member_year(psn_no, year)
    usage = {f.name: format_yuan(getattr(found.ytd, f.name)) for f in attrs.fields(type(found.ytd))
             if type(getattr(found.ytd, f.name)) is int} if found else {}  # fmt: skip
    with reading(app) as (curs, schema):
        curs.execute(
            sql.SQL(
                "SELECT setl_id, version, status, setl_time, hospital, medfee_sumamt, hifp_pay, hifmi_pay, maf_pay, "
                "psn_cash_pay FROM {} WHERE psn_no = %s AND year = %s ORDER BY setl_time, setl_id"
            ).format(sql.Identifier(schema, "settlements")),
            (psn_no, year),
        )
        settlements = curs.fetchall()
    money = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "psn_cash_pay")
    rows = [{**s, **{k: format_yuan(int(s[k])) for k in money}} for s in settlements]
    table = [["setl_id", "version", "status", "setl_time", "hospital", *money]]
    table += [[r["setl_id"], str(r["version"]), r["status"], r["setl_time"].isoformat(), r["hospital"],
               *[r[k] for k in money]] for r in rows]  # fmt: skip
    context = {"region": region, "psn_no": psn_no, "year": year, "usage": usage, "settlements": rows,
               "headroom": _headroom(app, psn_no, year, found.ytd if found else YearToDate())}  # fmt: skip
    return Page("member_year.html", context, f"参保人年度 Member {psn_no} {year}", table)


def _headroom(app: Any, psn_no: str, year: int, ytd: YearToDate) -> list[dict[str, str]]:
    """Each capped accumulator: used, its cap under the year's current policy on the member's
    terms at the year's end (or today), and what is left."""
    member, book = app.member(psn_no), app.policy_book(year)
    record = member.record_at(min(dt.date.today(), dt.date(year, 12, 31))) if member else None
    if record is None or book is None or not book.versions:
        return []
    limits = cap_limits(parse_policy(book.current[1].encode()), record.insutype, record.assist_category, record.chronic)
    return [
        {"name": name, "used": format_yuan(getattr(ytd, name)), "cap": format_yuan(cap),
         "left": format_yuan(cap - getattr(ytd, name))}
        for name, cap in limits.items() if cap is not None
    ]  # fmt: skip


def search(console: Console, request: Request, user: User) -> Page:
    """setl_id, psn_no or hospital code, looked up in every region's read model."""
    q = request.query_params.get("q", "").strip()
    found: list[dict[str, Any]] = []
    if q:
        console.record_access(user, "search", q)
        for code in console.regions():
            with reading(console.region(code)) as (curs, schema):
                found += _search(curs, schema, code, q)
    table = [["region", "kind", "key", "year"]] + [[f["region"], f["kind"], f["key"], str(f["year"])] for f in found]
    return Page("search.html", {"q": q, "found": found}, f"查询 Search {q}", table)


def _search(curs: Any, schema: str, region: str, q: str) -> list[dict[str, Any]]:
    settlements = sql.Identifier(schema, "settlements")
    curs.execute(sql.SQL("SELECT setl_id, year FROM {} WHERE setl_id = %s").format(settlements), (q,))
    out = [{"region": region, "kind": "settlement", "key": r["setl_id"], "year": r["year"]} for r in curs.fetchall()]
    curs.execute(sql.SQL("SELECT DISTINCT year FROM {} WHERE psn_no = %s ORDER BY year").format(settlements), (q,))
    out += [{"region": region, "kind": "member", "key": q, "year": r["year"]} for r in curs.fetchall()]
    curs.execute(sql.SQL("SELECT DISTINCT year FROM {} WHERE hospital = %s ORDER BY year").format(settlements), (q,))
    out += [{"region": region, "kind": "hospital", "key": q, "year": r["year"]} for r in curs.fetchall()]
    return out


def hospitals(console: Console, request: Request, user: User) -> Page:
    """The region's hospitals that settled claims in a year, each a link to its statement."""
    region, year = _region(console, request), _year(request)
    with reading(console.region(region)) as (curs, schema):
        curs.execute(
            sql.SQL(
                "SELECT hospital, count(*) AS claims, sum(medfee_sumamt) AS total FROM {} WHERE year = %s "
                "GROUP BY hospital ORDER BY hospital"
            ).format(sql.Identifier(schema, "settlements")),
            (year,),
        )
        rows = [{**r, "total": format_yuan(int(r["total"]))} for r in curs.fetchall()]
        reconciled = reconciliation_rows(curs, schema, year)
    table = [["hospital", "claims", "medfee_sumamt"]] + [[r["hospital"], str(r["claims"]), r["total"]] for r in rows]
    table += [[], list(RECONCILIATION_COLUMNS)]  # the page's second table, below the first
    table += [[str(r[c]) for c in RECONCILIATION_COLUMNS] for r in reconciled]
    context = {"region": region, "year": year, "hospitals": rows, "reconciled": reconciled}
    return Page("hospitals.html", context, f"医疗机构 Hospitals {region} {year}", table)


RECONCILIATION_COLUMNS = ("hospital", "kind", "begin", "end", "stmt_rslt", "on_date", "operator", "position")


def hospital(console: Console, request: Request, user: User) -> Page:
    """A hospital's statement of a year: settled by fund, deductions, payments, outstanding, budget use."""
    region, year, code = _region(console, request), _year(request), request.path_params["code"]
    app = console.region(region)
    account = app.hospital_account(code)
    budget = account.budgets.get(year) if account else None
    with reading(app) as (curs, schema):
        statement = statements.hospital_statement(curs, schema, code, year, budget)
    columns = ("settled", "deducted", "paid", "recovered", "outstanding", "receivable")
    table = [["fund", *columns]] + [[fund, *[line[c] for c in columns]] for fund, line in statement["funds"].items()]
    table.append(["budget", statement["budget"] or "", "budget used", statement["budget_used"],
                  statement["budget_used_ratio"] or "", ""])  # fmt: skip
    context = {"region": region, "year": year, "code": code, "statement": statement, "columns": columns}
    return Page("hospital.html", context, f"医疗机构结算单 Statement {code} {year}", table)


def _year(request: Request) -> int:
    text = request.query_params.get("year") or str(dt.date.today().year)
    if not text.isdigit():
        raise NotFound(f"year {text!r} is not a year")
    return int(text)


def transfers_page(console: Console, request: Request, user: User) -> Page:
    region, status = _region(console, request), request.query_params.get("status") or None
    with reading(console.region(region)) as (curs, schema):
        rows = transfer_rows(curs, schema, status=status)
    columns = ("transfer_id", "direction", "psn_no", "from_region", "to_region", "transfer_date", "balance", "status")
    table = [list(columns)] + [[str(r[c]) for c in columns] for r in rows]
    return Page("transfers.html", {"region": region, "rows": rows, "columns": columns},
                f"转移接续 Transfers {region}", table)  # fmt: skip


def transfer(console: Console, request: Request, user: User) -> Page:
    """One transfer's events in both regions (the member's data: the view is logged)."""
    transfer_id = request.path_params["transfer_id"]
    psn_no, from_region = request.query_params.get("psn_no", ""), request.query_params.get("from", "")
    if from_region not in console.regions():
        raise NotFound(f"no region {from_region!r}")
    console.record_access(user, "transfer", f"{transfer_id}/{psn_no}")
    events = trace_transfer([console.region(code) for code in console.regions()], transfer_id, psn_no, from_region)
    table = [["region", "position", "recorded_at", "type", "operator", "reason"]]
    table += [[e["region"], str(e["position"]), e["recorded_at"], e["type"], e["operator"] or "", e["reason"] or ""]
              for e in events]  # fmt: skip
    return Page("transfer.html", {"transfer_id": transfer_id, "events": events}, f"转移 Transfer {transfer_id}", table)


def approvals_page(console: Console, request: Request, user: User) -> Page:
    """A region's approval requests (pending unless ?status= says otherwise), 100 a page in log order."""
    region, status = _region(console, request), request.query_params.get("status") or "pending"
    if status not in ("pending", "approved", "rejected"):
        raise NotFound(f"status {status!r}: pending, approved or rejected")
    after = request.query_params.get("after", "")
    with reading(console.region(region)) as (curs, schema):
        rows = approval_rows(curs, schema, status=status, after=int(after) if after.isdigit() else 0,
                             rows=approvals_per_page)  # fmt: skip
    table = [["request_id", "maker", "kind", "setl_id", "version", "amount", "reason", "created", "checker"]]
    table += [[r.request_id, r.maker, r.kind, r.subject, str(r.subject_version), format_yuan(r.amount), r.reason,
               r.recorded_at.isoformat(timespec="seconds"), r.checker or ""] for r in rows]  # fmt: skip
    context = {"region": region, "status": status, "rows": rows, "yuan": format_yuan,
               "next": rows[-1].position if len(rows) == approvals_per_page else None}  # fmt: skip
    return Page("approvals.html", context, f"待复核 Approvals {region} {status}", table)


def access_log(console: Console, request: Request, user: User) -> Page:
    before = request.query_params.get("before")
    with console.access_log() as log:
        entries = log.page(int(before) if before and before.isdigit() else None)
    table = [["id", "at", "user", "what", "subject"]]
    table += [[str(e.id), e.at.isoformat(), e.user_name, e.what, e.subject] for e in entries]
    context = {"entries": entries, "next": entries[-1].id if len(entries) == 100 else None}
    return Page("access_log.html", context, "访问日志 Access log", table)


ROUTES: list[tuple[str, Any, Role | None]] = [
    ("/", overview, None),
    ("/balance-sheet", balance_sheet, None),
    ("/postings", postings, None),
    ("/events/{position:int}", event, None),
    ("/settlements/{setl_id}", settlement, None),
    ("/members/{psn_no}/{year:int}", member_year, None),
    ("/search", search, None),
    ("/hospitals", hospitals, None),
    ("/hospitals/{code}", hospital, None),
    ("/transfers", transfers_page, None),
    ("/approvals", approvals_page, None),
    ("/transfers/{transfer_id}", transfer, None),
    ("/access-log", access_log, Role.AUDITOR),
]
