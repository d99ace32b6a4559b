"""Paying members what the funds owe them (应付参保人款: 零星报销, look-back assistance)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs

from app.finance_cases import FinanceCases
from app.unit_of_work import UnitOfWork
from core.hospital import OwedAt
from core.ledger import Posting


@attrs.frozen
class MemberPayment:
    payment_id: str
    status: str  # recorded | duplicate | dry_run
    paid: dict[str, dict[str, int]]  # psn_no -> fund -> fen (a duplicate: what the first run paid)
    postings: list[Posting]


class MemberPaymentCases(FinanceCases):
    def pay_members(
        self, payment_id: str, *, read_owed: Callable[[], OwedAt], through: dt.date, paid_on: dt.date, operator: str,
        dry_run: bool = False,
    ) -> MemberPayment:  # fmt: skip
        """Pay every member what the funds owe them for everything posted up to `through`, in one
        transaction, once per `payment_id`. `read_owed` sums the journal at a position; a reversal
        that lowers what a member is owed, recorded after it, makes the save fail and the sum is
        read again (core.member_payment)."""

        def work(uow: UnitOfWork) -> MemberPayment:
            # Read before the sum: a reversal recorded after this read makes the save fail on
            # its version; one recorded before it is in the sum.
            payables = self._member_payables(uow)
            at = read_owed()
            if payment_id in payables.payments:
                payables.check_same(payment_id, through.isoformat())
                return MemberPayment(payment_id, "duplicate", payables.paid[payment_id], [])
            paid, postings = payables.pay(
                payment_id, through=through.isoformat(), paid_on=paid_on.isoformat(), owed=at.owed,
                operator=operator, position=at.position,
            )  # fmt: skip
            self._draw_from_banks(uow, postings, paid_on, rules_of=through.year)
            return MemberPayment(payment_id, "dry_run" if dry_run else "recorded", paid, postings)

        return self._in_transaction(work, dry_run=dry_run)
