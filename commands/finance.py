"""`yibao finance ...`: money movements beyond claims (SPEC 5), each idempotent by its id.

Every command accepts `--dry-run`, which prints the postings it would record and writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import click

from app.outcomes import FinanceResult
from bulk.lines import dumps
from commands.context import CliContext
from commands.identity import acting_user
from commands.params import DATE, ID, YUAN, OutputPath, required_options
from commands.reports import up_to_date
from core.errors import YibaoError
from core.ledger import FUNDS
from core.money import format_yuan
from core.roles import Action
from projections.statements import budget_reader, owed_reader

FUND = click.Choice(FUNDS)


@click.group()
def finance() -> None:
    """Hospital payments (拨付), audit deductions (拒付/核减), recoveries (追回), fines, budgets."""


def _print(result: FinanceResult, **about: object) -> None:
    click.echo(
        dumps(
            {
                **about,
                "status": result.status,
                "postings": [
                    {"fund": p.fund, "account": p.account, "party": p.party, "amount": format_yuan(p.amount)}
                    for p in result.postings
                ],
            }
        )
    )


@finance.command("pay")
@click.option("--region", required=True)
@click.option("--hospital", "hospital_codes", multiple=True, help="fixmedins_code (repeat for several).")
@click.option("--all-hospitals", is_flag=True, help="Every hospital owed something up to --through.")
@click.option("--through", type=DATE, required=True, help="Pay what is owed for everything posted up to this date.")
@click.option("--paid-on", type=DATE, help="Date of the payment (default today).")
@click.option("--payment-id", required=True, help="Idempotency key; with several hospitals, '-<hospital>' is added.")
@click.option("--operator", required=True)
@click.option("--dry-run", is_flag=True, help="Print the postings; record nothing.")
@click.pass_obj
def finance_pay(
    obj: CliContext, region: str, hospital_codes: tuple[str, ...], all_hospitals: bool, through: dt.date,
    paid_on: dt.date | None, payment_id: str, operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Pay hospitals what each fund owes them up to a date (拨付), in one transaction."""
    required_options(operator=operator)
    if bool(hospital_codes) == all_hospitals:
        raise YibaoError("give --hospital CODE (one or more) or --all-hospitals", reason="missing_hospital")
    app = obj.store.region(region)
    paid = app.pay_hospitals(
        None if all_hospitals else hospital_codes, payment_id=payment_id,
        read_owed=owed_reader(app, through, up_to_date), through=through, paid_on=paid_on or dt.date.today(),
        operator=operator, dry_run=dry_run,
    )  # fmt: skip
    for payment, result in paid:
        _print(result, payment_id=payment.payment_id, hospital=payment.hospital)


@finance.command("deduct")
@click.argument("kind", type=click.Choice(["refuse", "reduce"]))
@click.option("--region", required=True)
@click.option("--setl-id", required=True)
@click.option("--fund", type=FUND, required=True)
@click.option("--amount", type=YUAN, required=True, help="Yuan.")
@click.option("--deduction-id", required=True, help="Idempotency key.")
@click.option("--on", "on_date", type=DATE, help="Date of the decision (default today).")
@click.option("--operator", required=True)
@click.option("--reason", required=True)
@click.option("--dry-run", is_flag=True)
@click.pass_obj
def finance_deduct(
    obj: CliContext, kind: str, region: str, setl_id: str, fund: str, amount: int, deduction_id: str,
    on_date: dt.date | None, operator: str, reason: str, dry_run: bool,
) -> None:  # fmt: skip
    """Refuse (拒付) or reduce (核减) what a fund pays on a settlement, after audit. Never more
    than the fund paid; once the settlement was paid it becomes a receivable (追回 due)."""
    required_options(operator=operator, reason=reason)
    result = obj.store.region(region).deduct(
        deduction_id, setl_id=setl_id, fund=fund, kind=kind, amount=amount, on_date=on_date or dt.date.today(),
        operator=operator, reason=reason, dry_run=dry_run,
    )  # fmt: skip
    _print(result, deduction_id=deduction_id, setl_id=setl_id, kind=kind)


@finance.command("recover")
@click.option("--region", required=True)
@click.option("--hospital", required=True)
@click.option("--fund", type=FUND, required=True)
@click.option("--amount", type=YUAN, required=True)
@click.option("--recovery-id", required=True)
@click.option("--on", "on_date", type=DATE)
@click.option("--operator", required=True)
@click.option("--dry-run", is_flag=True)
@click.pass_obj
def finance_recover(
    obj: CliContext, region: str, hospital: str, fund: str, amount: int, recovery_id: str,
    on_date: dt.date | None, operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Record money recovered (追回) from a hospital against its receivable."""
    required_options(operator=operator)
    result = obj.store.region(region).recover(
        recovery_id, hospital=hospital, fund=fund, amount=amount, on_date=on_date or dt.date.today(),
        operator=operator, dry_run=dry_run,
    )  # fmt: skip
    _print(result, recovery_id=recovery_id, hospital=hospital)


@finance.command("fine")
@click.option("--region", required=True)
@click.option("--hospital", required=True)
@click.option("--fund", type=FUND, required=True)
@click.option("--amount", type=YUAN, required=True)
@click.option("--fine-id", required=True)
@click.option("--on", "on_date", type=DATE)
@click.option("--operator", required=True)
@click.option("--reason", required=True)
@click.option("--dry-run", is_flag=True)
@click.pass_obj
def finance_fine(
    obj: CliContext, region: str, hospital: str, fund: str, amount: int, fine_id: str, on_date: dt.date | None,
    operator: str, reason: str, dry_run: bool,
) -> None:  # fmt: skip
    """Record a fine received from a hospital (separate income of the fund)."""
    required_options(operator=operator, reason=reason)
    result = obj.store.region(region).fine(
        fine_id, hospital=hospital, fund=fund, amount=amount, on_date=on_date or dt.date.today(),
        operator=operator, reason=reason, dry_run=dry_run,
    )  # fmt: skip
    _print(result, fine_id=fine_id, hospital=hospital)


@finance.command("budget")
@click.option("--region", required=True)
@click.option("--hospital", required=True)
@click.option("--year", type=int, required=True)
@click.option("--amount", type=YUAN, required=True, help="Annual total budget (总额预算) of the pooling funds, yuan.")
@click.option("--operator", required=True)
@click.pass_obj
def finance_budget(obj: CliContext, region: str, hospital: str, year: int, amount: int, operator: str) -> None:
    """Set a hospital's annual total budget; its use shows on `report hospital`."""
    required_options(operator=operator)
    changed = obj.store.region(region).set_budget(hospital=hospital, year=year, amount=amount, operator=operator)
    click.echo(f"budget {hospital} {year}: {format_yuan(amount)} ({'recorded' if changed else 'unchanged'})")


@finance.command("pay-members")
@click.option("--region", required=True)
@click.option("--through", type=DATE, required=True, help="Pay what is owed for everything posted up to this date.")
@click.option("--paid-on", type=DATE, help="Date of the payment (default today).")
@click.option("--payment-id", type=ID, required=True, help="Idempotency key: the same id again pays nothing again.")
@click.option("--operator", required=True)
@click.option("--bank-file", type=OutputPath(), help="Write the bank's payment file (CSV, UTF-8) here.")
@click.option("--dry-run", is_flag=True, help="Print what would be paid; record nothing.")
@click.pass_obj
def finance_pay_members(
    obj: CliContext, region: str, through: dt.date, paid_on: dt.date | None, payment_id: str, operator: str,
    bank_file: Path | None, dry_run: bool,
) -> None:  # fmt: skip
    """Pay members what the funds owe them (应付参保人款: 零星报销, look-back assistance, maternity
    allowances) for
    everything posted up to --through, in one transaction. One JSON line per member paid, then
    a summary line. Run again with the same --payment-id it pays nothing and prints (and writes
    to --bank-file) what the first run paid. A member who owes money back (a reversal after a
    payment) is paid nothing until what they are owed exceeds it."""
    required_options(operator=operator, payment_id=payment_id)
    operator = acting_user(obj.store, operator, Action.PAY)
    app = obj.store.region(region)
    payment = app.pay_members(
        payment_id, read_owed=owed_reader(app, through, up_to_date, members=True), through=through,
        paid_on=paid_on or dt.date.today(), operator=operator, dry_run=dry_run,
    )  # fmt: skip
    rows = [(psn, sum(funds.values()), funds) for psn, funds in sorted(payment.paid.items())]
    for psn, total, funds in rows:
        paid = {fund: format_yuan(amount) for fund, amount in funds.items()}
        click.echo(dumps({"payment_id": payment_id, "psn_no": psn, "amount": format_yuan(total), "funds": paid}))
    total = sum(amount for _, amount, _ in rows)
    click.echo(dumps({"payment_id": payment_id, "status": payment.status, "members": len(rows),
                      "total": format_yuan(total)}))  # fmt: skip
    if bank_file is not None and not dry_run:
        try:
            _write_bank_file(bank_file, payment_id, [(psn, amount) for psn, amount, _ in rows])
        except YibaoError as exc:
            raise YibaoError(
                f"{exc}; the payment {payment_id} is {payment.status}: run the command again with the same "
                "--payment-id to write the bank file (it pays nothing again)",
                reason=exc.reason,
            ) from None


def _write_bank_file(path: Path, payment_id: str, rows: list[tuple[str, int]]) -> None:
    """One row per member for the bank: who (psn_no), how much (yuan), and the reference."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["psn_no", "amount", "reference"])
    writer.writerows([psn, format_yuan(amount), payment_id] for psn, amount in rows)
    try:
        path.write_text(out.getvalue(), encoding="utf-8-sig")  # with a BOM: Excel then reads UTF-8
    except OSError as exc:
        raise YibaoError(f"--bank-file {path}: {exc.strerror or exc}", reason="cannot_write_file") from None


@finance.command("budget-settle")
@click.option("--region", required=True)
@click.option("--year", type=int, required=True)
@click.option("--on", "on_date", type=DATE, help="Date of the settlement (default today).")
@click.option("--operator", required=True)
@click.option("--dry-run", is_flag=True, help="Print what would be recorded; record nothing.")
@click.pass_obj
def finance_budget_settle(
    obj: CliContext, region: str, year: int, on_date: dt.date | None, operator: str, dry_run: bool
) -> None:
    """Year-end settlement of every hospital's total budget (总额预算 年终清算) under the policy's
    [budget] terms: under budget, the hospital keeps its share of the surplus (owed to it, paid
    with the next `finance pay`); over budget, it owes back the overspend the funds do not share
    (a receivable `finance recover` settles). One JSON line per hospital with a budget for the
    year. Run again: `duplicate`; refused if the year's figures changed since."""
    required_options(operator=operator)
    operator = acting_user(obj.store, operator, Action.PAY)
    app = obj.store.region(region)
    settled = app.settle_budgets(year, read_use=budget_reader(app, year, up_to_date),
                                 on_date=on_date or dt.date.today(), operator=operator, dry_run=dry_run)  # fmt: skip
    for hospital, outcome, result in settled:
        figures = {name: format_yuan(value) for name, value in outcome.to_dict().items()}
        _print(result, hospital=hospital, year=year, **figures)
