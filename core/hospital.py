"""HospitalAccount: what the funds and a hospital (定点医疗机构) owe each other, per fund.

Payments (拨付) settle what is owed up to a date; deductions after audit (拒付 refuse, 核减
reduce) lower what a fund owes for a settlement, or, once that settlement has been paid,
become a receivable (追回 due) that recoveries settle, as does a paid settlement reversed
(`OwedBack`); fines are separate income.

What a payment paid is decided by journal position, never by time: a payment records the
position of the region's log its amounts were summed at, and it paid a settlement version
exactly when that version's event is at or before that position and its date is covered.
Every reversal of a settlement of the hospital records `OwedBack` here (with nothing owed back
when no payment had paid it), so a payment and a reversal or deduction serialise on this
account's version: one of two concurrent saves fails and is computed again.

The annual total budget (总额预算) is recorded here and compared with use on the hospital
statement. Every operation is idempotent by its id (an id given again for another operation is
refused) and carries balanced postings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from core.budget import BudgetOutcome
from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import hospital_id
from core.ledger import (
    BANK,
    BENEFIT_EXPENSE,
    OTHER_INCOME,
    PAYABLE_TO_HOSPITALS,
    RECEIVABLE_FROM_HOSPITALS,
    Posting,
    journal,
    move,
    remote_reversed_postings,
    remote_settled_postings,
)
from core.money import format_yuan

DEDUCTION_KINDS = ("refuse", "reduce")


class FinanceRejected(YibaoError):
    reason = "finance_rejected"


Operation = tuple[Any, ...]


class OwedAt(NamedTuple):
    """What the funds owe each hospital, summed from the journal up to `position` of the region's
    log (every event at or before it counted, none after)."""

    position: int
    owed: dict[str, dict[str, int]]  # hospital -> fund -> fen


class RemoteVersion(NamedTuple):
    """A settlement of another region's member here (异地就医), as this account holds it."""

    setl_version: int
    amounts: dict[str, int]  # fund -> fen owed to the hospital
    posted_on: str
    version: int  # of its RemoteSettled event in this account: its position says what paid it


class PaymentMark(NamedTuple):
    """One fund's part of a payment, as `is_paid` reads it."""

    through: str  # the latest date the payment covered
    position: int | None  # journal position its amount was summed at; None: paid before positions
    version: int  # of its Paid event in the account, whose own position stands in for a missing one


# What an operation id stands for: recorded by each event, compared when the id comes again.
def payment_operation(through: str) -> Operation:
    return ("pay", through)


def deduction_operation(setl_id: str, fund: str, kind: str, amount: int) -> Operation:
    return ("deduct", setl_id, fund, kind, amount)


def recovery_operation(fund: str, amount: int) -> Operation:
    return ("recover", fund, amount)


def budget_operation_id(year: int) -> str:
    return f"budget-settlement-{year}"


def budget_operation(year: int, budget: int, used: int) -> Operation:
    return ("budget-settle", year, budget, used)


def fine_operation(fund: str, amount: int) -> Operation:
    return ("fine", fund, amount)


@aggregate_topic("HospitalAccount")
class HospitalAccount(Aggregate):
    class Opened(Created):
        fixmedins_code: str

    class Paid(Event):
        payment_id: str
        through: str
        paid_on: str
        amounts: dict[str, int]
        operator: str
        postings: list[Posting]
        position: int | None = None  # see PaymentMark; absent from payments recorded before it
        approved_by: str = ""  # the second person who approved a payment above the threshold (复核)

        def apply(self, aggregate: Any) -> None:
            aggregate.operations[self.payment_id] = payment_operation(self.through)
            mark = PaymentMark(self.through, self.position, self.originator_version)
            for fund in self.amounts:
                aggregate.payments.setdefault(fund, []).append(mark)

    class Deducted(Event):
        deduction_id: str
        setl_id: str
        fund: str
        kind: str
        amount: int
        after_payment: bool
        on_date: str
        operator: str
        reason: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.operations[self.deduction_id] = deduction_operation(
                self.setl_id, self.fund, self.kind, self.amount
            )
            key = (self.setl_id, self.fund)
            aggregate.deducted[key] = aggregate.deducted.get(key, 0) + self.amount
            if self.after_payment:
                aggregate.receivable[self.fund] = aggregate.receivable.get(self.fund, 0) + self.amount

    class Recovered(Event):
        recovery_id: str
        fund: str
        amount: int
        on_date: str
        operator: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.operations[self.recovery_id] = recovery_operation(self.fund, self.amount)
            aggregate.receivable[self.fund] -= self.amount

    class OwedBack(Event):
        """A settlement of this hospital was reversed: the hospital owes the funds that had paid
        it for the settlement their amounts back (a receivable, 追回 due; none when no payment
        had). The postings are on the settlement's Reversed event; this records what recoveries
        may settle, and puts the reversal in this account's order (see the module docstring)."""

        setl_id: str
        setl_version: int
        amounts: dict[str, int]  # fund -> fen owed back
        on_date: str

        def apply(self, aggregate: Any) -> None:
            for fund, amount in self.amounts.items():
                aggregate.receivable[fund] = aggregate.receivable.get(fund, 0) + amount

    class Fined(Event):
        fine_id: str
        fund: str
        amount: int
        on_date: str
        operator: str
        reason: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.operations[self.fine_id] = fine_operation(self.fund, self.amount)

    class BudgetSettled(Event):
        """The year's total budget settled (年终清算): see core.budget."""

        year: int
        outcome: dict[str, int]  # budget, used, kept, borne_by_hospital
        on_date: str
        operator: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            o = self.outcome
            aggregate.operations[budget_operation_id(self.year)] = budget_operation(self.year, o["budget"], o["used"])

    class RemoteSettled(Event):
        """Another region's member was treated here (异地就医): that region owes this one what
        the hospital is owed for the settlement version, and this region owes the hospital."""

        insured_in: str
        setl_id: str
        setl_version: int
        amounts: dict[str, int]
        posted_on: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            held = RemoteVersion(self.setl_version, self.amounts, self.posted_on, self.originator_version)
            aggregate.remote[(self.insured_in, self.setl_id)] = held

    class RemoteReversed(Event):
        """The insured region reversed (or corrected) the version: what was owed for it is
        undone, and what had been paid for it is owed back (`owed_back`, fund -> fen)."""

        insured_in: str
        setl_id: str
        setl_version: int
        owed_back: dict[str, int]
        on_date: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            del aggregate.remote[(self.insured_in, self.setl_id)]
            for fund, amount in self.owed_back.items():
                aggregate.receivable[fund] = aggregate.receivable.get(fund, 0) + amount

    class BudgetSet(Event):
        year: int
        amount: int
        operator: str

        def apply(self, aggregate: Any) -> None:
            aggregate.budgets[self.year] = self.amount

    @staticmethod
    def create_id(fixmedins_code: str) -> Any:
        return hospital_id(fixmedins_code)

    def __init__(self, fixmedins_code: str) -> None:
        self.fixmedins_code = fixmedins_code
        # operation id -> what it did (the *_operation functions below): an id given again must
        # say the same.
        self.operations: dict[str, Operation] = {}
        self.payments: dict[str, list[PaymentMark]] = {}  # fund -> its part of each payment
        self.deducted: dict[tuple[str, str], int] = {}  # (setl_id, fund) -> deducted so far
        self.receivable: dict[str, int] = {}  # fund -> recoveries due
        self.budgets: dict[int, int] = {}
        self.remote: dict[tuple[str, str], RemoteVersion] = {}  # (insured_in, setl_id) -> version owed

    def recorded_postings(self) -> list[Posting]:
        """The postings of the operation just recorded on this account (not yet saved)."""
        event = self.pending_events[-1]
        assert isinstance(
            event, (self.Paid, self.Deducted, self.Recovered, self.Fined, self.BudgetSettled, self.RemoteSettled,
                    self.RemoteReversed)
        ), event  # fmt: skip
        return list(event.postings)

    def has(self, operation_id: str) -> bool:
        return operation_id in self.operations

    def check_same(self, operation_id: str, operation: Operation) -> None:
        """Refuse an id already used for another operation: a retry is answered `duplicate`, but
        an id reused with another amount (a typo corrected) must not be told it was recorded."""
        done = self.operations[operation_id]
        if done != operation:
            raise FinanceRejected(
                f"{operation_id} was already used, for {_describe(done)}; not {_describe(operation)}",
                reason="exists_with_different_content",
            )

    def pay(
        self, payment_id: str, through: str, paid_on: str, owed: dict[str, int], operator: str, position: int,
        approved_by: str = "",
    ) -> None:  # fmt: skip
        """Pay what `owed` says, summed from the journal up to `position`."""
        amounts = {fund: amount for fund, amount in sorted(owed.items()) if amount > 0}
        legs = [
            leg
            for fund, amount in amounts.items()
            for leg in move(fund, PAYABLE_TO_HOSPITALS, BANK, amount, debit_party=self.fixmedins_code)
        ]
        self.trigger_event(
            self.Paid, payment_id=payment_id, through=through, paid_on=paid_on, amounts=amounts,
            operator=operator, postings=journal(*legs), position=position, approved_by=approved_by,
        )  # fmt: skip

    @property
    def paid_through(self) -> dict[str, str]:
        """fund -> the latest date a payment covered."""
        return {fund: max(mark.through for mark in paid) for fund, paid in self.payments.items()}

    def unpositioned(self, posted_on: str) -> list[int]:
        """The event versions of the payments covering `posted_on` that were recorded without a
        position: `is_paid` needs their own positions."""
        marks = {m for paid in self.payments.values() for m in paid if m.through >= posted_on}
        return sorted(m.version for m in marks if m.position is None)

    def is_paid(self, fund: str, posted_on: str, settled_at: int | None, own_positions: Mapping[int, int]) -> bool:
        """Whether a payment included a settlement version posted on `posted_on` whose event is
        at journal position `settled_at` (None: not recorded yet, so no payment has): one that
        covered its date and was summed at or after that position. A payment recorded before
        positions is taken at its own position (`own_positions`, by its event version in this
        account): it paid at most what the journal held when it was recorded."""
        if settled_at is None:
            return False
        return any(
            mark.through >= posted_on
            and (own_positions[mark.version] if mark.position is None else mark.position) >= settled_at
            for mark in self.payments.get(fund, ())
        )

    def deduct(
        self, deduction_id: str, *, setl_id: str, fund: str, kind: str, amount: int, fund_paid: int,
        settled_on: str, settled_at: int | None, own_positions: Mapping[int, int], on_date: str, operator: str,
        reason: str,
    ) -> None:  # fmt: skip
        if kind not in DEDUCTION_KINDS:
            raise FinanceRejected(f"deduction kind must be refuse or reduce, got {kind!r}", reason="bad_kind")
        already = self.deducted.get((setl_id, fund), 0)
        if amount <= 0 or already + amount > fund_paid:
            raise FinanceRejected(
                f"fund {fund} paid {format_yuan(fund_paid)} on {setl_id}, {format_yuan(already)} already "
                f"deducted: cannot deduct {format_yuan(amount)}",
                reason="deduction_exceeds_fund_payment",
            )
        after_payment = self.is_paid(fund, settled_on, settled_at, own_positions)
        owed_account = RECEIVABLE_FROM_HOSPITALS if after_payment else PAYABLE_TO_HOSPITALS
        postings = journal(*move(fund, owed_account, BENEFIT_EXPENSE, amount, debit_party=self.fixmedins_code))
        self.trigger_event(
            self.Deducted, deduction_id=deduction_id, setl_id=setl_id, fund=fund, kind=kind, amount=amount,
            after_payment=after_payment, on_date=on_date, operator=operator, reason=reason, postings=postings,
        )  # fmt: skip

    def paid_for(
        self, postings: list[Posting], posted_on: str, settled_at: int | None, own_positions: Mapping[int, int]
    ) -> dict[str, int]:
        """fund -> what a payment already paid this hospital of a settlement version's `postings`
        (`is_paid` says what the other arguments are)."""
        paid: dict[str, int] = {}
        for p in postings:
            owed = p.account == PAYABLE_TO_HOSPITALS and p.party == self.fixmedins_code and p.amount < 0
            if owed and self.is_paid(p.fund, posted_on, settled_at, own_positions):
                paid[p.fund] = paid.get(p.fund, 0) - p.amount
        return paid

    def owe_back(self, setl_id: str, setl_version: int, amounts: dict[str, int], on_date: str) -> None:
        self.trigger_event(
            self.OwedBack, setl_id=setl_id, setl_version=setl_version, amounts=dict(sorted(amounts.items())),
            on_date=on_date,
        )  # fmt: skip

    def settle_remote(self, insured_in: str, setl_id: str, setl_version: int, amounts: dict[str, int],
                      posted_on: str) -> bool:  # fmt: skip
        """Record a remote settlement version once; False when it is held already."""
        held = self.remote.get((insured_in, setl_id))
        if held is not None and held.setl_version >= setl_version:
            return False
        if held is not None:
            raise AssertionError(f"{insured_in}:{setl_id} v{held.setl_version} is still owed: reverse it first")
        postings = remote_settled_postings(hospital=self.fixmedins_code, insured_in=insured_in, amounts=amounts)
        self.trigger_event(
            self.RemoteSettled, insured_in=insured_in, setl_id=setl_id, setl_version=setl_version, amounts=amounts,
            posted_on=posted_on, postings=postings,
        )  # fmt: skip
        return True

    def remote_version(self, insured_in: str, setl_id: str, setl_version: int) -> RemoteVersion | None:
        held = self.remote.get((insured_in, setl_id))
        return held if held is not None and held.setl_version == setl_version else None

    def reverse_remote(
        self, insured_in: str, setl_id: str, held: RemoteVersion, paid: dict[str, int], on_date: str
    ) -> None:
        """Undo a remote settlement version; `paid`: fund -> what a payment already gave the
        hospital for it (`paid_for`), now owed back."""
        postings = remote_reversed_postings(
            hospital=self.fixmedins_code, insured_in=insured_in, amounts=held.amounts, paid_funds=frozenset(paid)
        )
        self.trigger_event(
            self.RemoteReversed, insured_in=insured_in, setl_id=setl_id, setl_version=held.setl_version,
            owed_back=dict(sorted(paid.items())), on_date=on_date, postings=postings,
        )  # fmt: skip

    def deductions_on(self, setl_id: str) -> int:
        return sum(amount for (deducted_setl_id, _), amount in self.deducted.items() if deducted_setl_id == setl_id)

    def recover(self, recovery_id: str, *, fund: str, amount: int, on_date: str, operator: str) -> None:
        due = self.receivable.get(fund, 0)
        if amount <= 0 or amount > due:
            raise FinanceRejected(
                f"hospital {self.fixmedins_code} owes fund {fund} {format_yuan(due)}; "
                f"cannot recover {format_yuan(amount)}",
                reason="recovery_exceeds_receivable",
            )
        postings = journal(*move(fund, BANK, RECEIVABLE_FROM_HOSPITALS, amount, credit_party=self.fixmedins_code))
        self.trigger_event(
            self.Recovered, recovery_id=recovery_id, fund=fund, amount=amount, on_date=on_date,
            operator=operator, postings=postings,
        )  # fmt: skip

    def fine(self, fine_id: str, *, fund: str, amount: int, on_date: str, operator: str, reason: str) -> None:
        if amount <= 0:
            raise FinanceRejected("a fine is a positive amount", reason="bad_amount")
        postings = journal(*move(fund, BANK, OTHER_INCOME, amount, credit_party=self.fixmedins_code))
        self.trigger_event(
            self.Fined, fine_id=fine_id, fund=fund, amount=amount, on_date=on_date, operator=operator,
            reason=reason, postings=postings,
        )  # fmt: skip

    def settle_budget(self, year: int, outcome: BudgetOutcome, on_date: str, operator: str) -> None:
        self.trigger_event(self.BudgetSettled, year=year, outcome=outcome.to_dict(), on_date=on_date,
                           operator=operator, postings=outcome.postings)  # fmt: skip

    def set_budget(self, year: int, amount: int, operator: str) -> None:
        if self.budgets.get(year) != amount:
            self.trigger_event(self.BudgetSet, year=year, amount=amount, operator=operator)


def _describe(operation: Operation) -> str:
    kind, *fields = operation
    shown = [format_yuan(f) if type(f) is int else str(f) for f in fields]
    return f"{kind} {' '.join(shown)}"
