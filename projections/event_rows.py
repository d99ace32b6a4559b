"""The events the read model builds rows from, decoded lean: only the fields its handlers read.

The library's mapper turns each stored event into a full domain event: every field decoded and
typed (a settlement's breakdown, claim, hashes, the timestamp), most of a rebuild's time. A rebuild
needs a handful of fields, so each handled topic has a small struct here with just those fields,
under the same names, nesting and types as the domain event (`core/`), and with the same defaults.
The read model's handlers therefore take either, and build the same rows from both; the bytes
decoded are the stored state as `core.codec.EventMapper` wrote it (msgspec JSON of the event's
fields, unknown fields ignored here). `tests/unit/test_event_rows.py` holds the two in step.

Imports msgspec and core's value types only; no database, no CLI.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.ledger import Posting


class _Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A lean event: immutable, and never in a reference cycle (skipped by the collector)."""


class _Posted(_Event, frozen=True):
    postings: list[Posting]  # balanced legs (checked again when the page is written)


class Claim(_Event, frozen=True):
    """The fields of a settlement's claim (a dict in the domain event) that its rows hold."""

    setl_time: str
    fixmedins_code: str
    med_type: str
    mdtrt_id: str | None = None
    payee: str | None = None


class Amounts(_Event, frozen=True):
    """The amounts of a settlement's row (a dict in the domain event), in the row's column order:
    `msgspec.structs.astuple` gives them at once. A struct decodes in half the time of a dict."""

    medfee_sumamt: int
    hifp_pay: int
    hifmi_pay: int
    maf_pay: int
    hmb_pay: int
    charity_pay: int
    psn_part_amt: int
    acct_pay: int
    acct_mulaid_pay: int
    psn_cash_pay: int


class SettlementFacts(_Event, frozen=True):
    """`core.settlement.SettlementFacts`, the fields of a `settlements` row and its journal."""

    setl_id: str
    version: int
    psn_no: str
    year: int
    insutype: str
    assist_category: str
    claim: Claim
    amounts: Amounts
    postings: list[Posting] = []
    posted_on: str = ""
    lookback_maf: int = 0


class SettlementVersion(_Event, frozen=True):
    """Settlement.Settled and Settlement.Resettled."""

    facts: SettlementFacts


class SettlementReversed(_Posted, frozen=True):
    setl_id: str
    setl_version: int
    on_date: str


class SettlementLookedBack(_Posted, frozen=True):
    setl_id: str
    amount: int
    recognised_on: str


class ContributionReceived(_Posted, frozen=True):
    contribution: dict[str, Any]  # paid_date, contrib_id


class FundEntryRecorded(_Posted, frozen=True):
    entry: dict[str, Any]  # on_date, kind, entry_id


class HospitalPaid(_Posted, frozen=True):
    payment_id: str
    paid_on: str


class AllowanceGranted(_Posted, frozen=True):
    facts: dict[str, Any]  # on_date, allowance_id


class BudgetSettled(_Posted, frozen=True):
    year: int
    on_date: str


class AllowanceReversed(_Posted, frozen=True):
    allowance_id: str
    on_date: str


class MembersPaid(_Posted, frozen=True):
    payment_id: str
    paid_on: str


class HospitalDeducted(_Posted, frozen=True):
    setl_id: str
    kind: str
    on_date: str


class HospitalRecovered(_Posted, frozen=True):
    recovery_id: str
    on_date: str


class HospitalFined(_Posted, frozen=True):
    fine_id: str
    on_date: str


class HospitalRemoteSettled(_Posted, frozen=True):
    insured_in: str
    setl_id: str
    posted_on: str


class HospitalRemoteReversed(_Posted, frozen=True):
    insured_in: str
    setl_id: str
    on_date: str


class RegionCleared(_Posted, frozen=True):
    clearing: str
    on_date: str


class TransferFacts(_Event, frozen=True):
    """`core.transfer.TransferFacts`, the fields of a `transfers` row."""

    transfer_id: str
    psn_no: str
    from_region: str
    to_region: str
    transfer_date: str
    balance: int
    contribution_years: list[int]
    requested_on: str


class TransferStarted(_Posted, frozen=True):
    facts: TransferFacts


class TransferReleased(_Event, frozen=True):
    transfer_id: str


class TransferStep(_Posted, frozen=True):
    """Transfer.Rejected and Transfer.Completed."""

    transfer_id: str
    on_date: str


class TransferArrived(_Posted, frozen=True):
    facts: TransferFacts
    on_date: str


class Usage(_Event, frozen=True):
    """What a member-year event adds to each column of `member_usage` (read_model.USAGE_COLUMNS,
    in that order: `msgspec.structs.astuple` gives them at once), 0 when absent as in the domain
    event's dict. Each is an int (fen) or the event does not decode this way: it is then decoded
    as `MemberYearDeltaChecked`, whose handler names the field (as from the domain event)."""

    basic_paid: int = 0
    basic_outpatient_paid: int = 0
    serious_illness_base: int = 0
    serious_illness_paid: int = 0
    assistance_paid: int = 0
    assistance_outpatient_paid: int = 0
    assistance_deductible_used: int = 0
    supplementary_paid: int = 0
    supplementary_deductible_used: int = 0
    supplementary_oor_deductible_used: int = 0
    out_of_pocket: int = 0
    charity_paid: int = 0


class MemberYearDelta(_Event, frozen=True):
    """MemberYear.ClaimApplied, ClaimReversed and AssistanceLookedBack: what they add to the year."""

    psn_no: str
    year: int
    delta: Usage


class MemberYearDeltaChecked(MemberYearDelta, frozen=True):
    """A member-year event whose delta is not all fen: the handler checks it field by field."""

    delta: dict[str, Any]  # type: ignore[assignment]


LEAN_TYPES: dict[str, type[_Event]] = {
    "Settlement.Settled": SettlementVersion,
    "Settlement.Resettled": SettlementVersion,
    "Settlement.Reversed": SettlementReversed,
    "Settlement.AssistanceLookedBack": SettlementLookedBack,
    "Contribution.Received": ContributionReceived,
    "FundEntry.Recorded": FundEntryRecorded,
    "HospitalAccount.Paid": HospitalPaid,
    "MemberPayables.Paid": MembersPaid,
    "HospitalAccount.BudgetSettled": BudgetSettled,
    "MaternityAllowance.Granted": AllowanceGranted,
    "MaternityAllowance.Reversed": AllowanceReversed,
    "HospitalAccount.Deducted": HospitalDeducted,
    "HospitalAccount.Recovered": HospitalRecovered,
    "HospitalAccount.Fined": HospitalFined,
    "HospitalAccount.RemoteSettled": HospitalRemoteSettled,
    "HospitalAccount.RemoteReversed": HospitalRemoteReversed,
    "RegionClearings.Cleared": RegionCleared,
    "Transfer.Started": TransferStarted,
    "Transfer.Released": TransferReleased,
    "Transfer.Rejected": TransferStep,
    "Transfer.Completed": TransferStep,
    "TransferIn.Received": TransferArrived,
    "MemberYear.ClaimApplied": MemberYearDelta,
    "MemberYear.ClaimReversed": MemberYearDelta,
    "MemberYear.AssistanceLookedBack": MemberYearDelta,
}
"""The lean struct of each topic. One struct may serve several topics: the topic, not the struct,
says which handler builds the rows."""

DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(lean) for topic, lean in LEAN_TYPES.items()
}

CHECKED_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(MemberYearDeltaChecked) for topic, lean in LEAN_TYPES.items() if lean is MemberYearDelta
}
"""A second decoding of a topic's state that did not decode lean (a delta that is not fen), so that
its handler says what is wrong as it does for the domain event."""

__all__ = ["CHECKED_DECODERS", "DECODERS", "LEAN_TYPES"]
