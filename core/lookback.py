"""Look-back assistance (因病致贫, SPEC 4.1): which settlements, and how much.

When a member is newly recognised `illness_poverty`, the policy-range personal remainders of
their settlements in the 6 months before recognition get assistance retroactively, as new
events, within the limits of the year each settlement falls in. The amount is the tier rule
`core.tiers.lookback_assistance`; this module picks the window and the remainder.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence

from core.policy import Policy
from core.records import MemberRecord
from core.settlement import SettlementFacts
from core.tiers import LookBack, YearToDate, lookback_assistance, rules_med_type

LOOKBACK_MONTHS = 6
CATEGORY = "illness_poverty"


def lookback_window(recognised_on: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end): the 6 months before recognition (same day of month, clamped)."""
    month_index = recognised_on.year * 12 + recognised_on.month - 1 - LOOKBACK_MONTHS
    year, month0 = divmod(month_index, 12)
    day = min(recognised_on.day, calendar.monthrange(year, month0 + 1)[1])
    return dt.date(year, month0 + 1, day), recognised_on


def lookback_for(facts: SettlementFacts, policy: Policy, ytd: YearToDate) -> LookBack | None:
    """Assistance owed retroactively on one settlement, or None when nothing is owed."""
    remainder = facts.left_to_person.get("policy", 0) - facts.lookback_maf
    if remainder <= 0:
        return None
    grant = lookback_assistance(remainder, rules_med_type(facts.claim["med_type"]), CATEGORY, policy, ytd)
    return grant if grant.maf_pay > 0 else None


def late_recognition(records: Sequence[MemberRecord], in_force: MemberRecord, on: dt.date) -> MemberRecord | None:
    """The illness_poverty recognition that a claim dated `on`, settled under `in_force`, falls in
    the look-back window of, when the recognition was recorded before the claim arrived (a late
    claim gets at once what the recognition's look-back gave the claims known then); None if none."""
    if in_force.assist_category == CATEGORY:
        return None
    for record in records:
        recognised = record.assist_category == CATEGORY and record.valid_from > on
        if recognised and lookback_window(record.valid_from)[0] <= on:
            return record
    return None
