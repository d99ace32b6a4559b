"""The decision of one claim (SPEC 4): a named refusal, an earlier answer given again, or the
facts of a new settlement version to record.

Pure: everything it needs (the settlement as stored, the member's record in force, the policy,
the member-year's accumulators, the account balances) is read by the service layer and passed
in; what it returns is recorded by the service layer. A correction is decided in two steps, the
reversal of the version in force between them (it gives back what that version took from the
accumulators and the account, and the new version is computed on what is then left).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import attrs

from core.institution import InstitutionRegistry, Standing, standing
from core.ledger import settlement_postings
from core.member import Member, no_record_on
from core.policy import MATERNITY_MED_TYPES, Policy
from core.records import Claim, MemberRecord, content_hash_of
from core.settlement import Settlement, SettlementFacts
from core.tiers import (
    PHARMACY_MED_TYPE,
    ClaimAmounts,
    Computation,
    MemberTerms,
    PersonalSplit,
    YearToDate,
    compute_maternity,
    compute_settlement,
    rules_med_type,
    split_personal,
)


class Status(StrEnum):
    """What happened to one claim line (the `status` of its result)."""

    SETTLED = "settled"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    REVERSED = "reversed"


class Rejection(StrEnum):
    """Why a claim is refused (the `reason` of a rejected result)."""

    EXISTS_WITH_DIFFERENT_CONTENT = "exists_with_different_content"
    SETTLEMENT_REVERSED = "settlement_reversed"
    UNKNOWN_SETTLEMENT = "unknown_settlement"
    CORRECTION_CHANGES_MEMBER = "correction_changes_member"
    UNKNOWN_MEMBER = "unknown_member"
    NO_MEMBER_RECORD_ON_DATE = "no_member_record_on_date"
    MEMBER_TRANSFERRED_OUT = "member_transferred_out"
    NO_POLICY = "no_policy"
    UNKNOWN_INSTITUTION = "unknown_institution"
    INSTITUTION_SUSPENDED = "institution_suspended"
    INSTITUTION_TERMINATED = "institution_terminated"
    HOSP_LV_MISMATCH = "hosp_lv_mismatch"
    NOT_A_PHARMACY = "not_a_pharmacy"
    NOT_A_PHARMACY_PURCHASE = "not_a_pharmacy_purchase"
    NO_MATERNITY_COVER = "no_maternity_cover"
    NO_MATERNITY_POLICY = "no_maternity_policy"
    UNKNOWN_TREATMENT_REGION = "unknown_treatment_region"


@attrs.frozen
class Refusal:
    reason: Rejection
    detail: str | None = None


@attrs.frozen
class Answered:
    """A line answered by what is already recorded (a duplicate, or this very line settled before a crash)."""

    status: Status
    facts: SettlementFacts


@attrs.frozen
class Accounts:
    """The individual accounts that may pay the personal part: the member's own (employees) and
    the bound employee's (家庭共济), each with its holder, or None."""

    own_psn: str | None = None
    own_balance: int = 0
    family_psn: str | None = None
    family_balance: int = 0


@attrs.frozen
class Decided:
    """A new settlement version: its facts, the accumulators it adds and who pays the personal part."""

    facts: SettlementFacts
    computation: Computation
    split: PersonalSplit


def screen(
    claim: Claim, existing: Settlement | None, *, correcting: bool, origin: str | None
) -> Refusal | Answered | None:
    """What the settlement as stored already decides about this line; None: go on and settle."""
    if existing is not None and not correcting:
        if existing.current.content_hash != claim.content_hash:
            return Refusal(Rejection.EXISTS_WITH_DIFFERENT_CONTENT)
        if existing.reversed:
            return Refusal(Rejection.SETTLEMENT_REVERSED, "settle a reversed claim again with `claims correct`")
        if origin is not None and existing.current.origin == origin and existing.current.version == 1:
            return Answered(Status.SETTLED, existing.current)  # this very line, settled before a crash
        return Answered(Status.DUPLICATE, existing.current)
    if correcting:
        if existing is None:
            return Refusal(Rejection.UNKNOWN_SETTLEMENT, "a correction needs an existing setl_id")
        if existing.current.psn_no != claim.psn_no:
            return Refusal(Rejection.CORRECTION_CHANGES_MEMBER, "a correction cannot move a claim to another member")
        made = existing.corrected_from.get(origin) if origin is not None else None
        if made is not None and not existing.reversed:
            return Answered(Status.SETTLED, made)  # this very line, corrected before
    return None


def record_in_force(claim: Claim, member: Member | None, region: str) -> MemberRecord | Refusal:
    """The member's record on the claim's date, insured in this region."""
    record = member.record_at(claim.setl_time) if member else None
    if record is None:
        reason, detail = no_record_on(member, claim.setl_time)
        return Refusal(Rejection(reason), detail)
    if record.insuplc_admdvs != region:
        return Refusal(Rejection.MEMBER_TRANSFERRED_OUT, f"insured in region {record.insuplc_admdvs} on that date")
    return record


def at_institution(claim: Claim, registry: InstitutionRegistry | None) -> Refusal | None:
    """A claim must name an institution of the region's 定点 registry, in force on its date, at
    its registered level (a region with none registered accepts any, as before the registry).
    A claim paid to the member (零星报销: treated abroad, or before enrolment was known) is not."""
    if claim.to_member:
        return None
    found, why = standing(registry, claim.fixmedins_code, claim.setl_time)
    if found is not Standing.ACTIVE:
        return Refusal(Rejection(found.value), why)
    if registry is None or not registry.entries:
        return None
    registered = registry.entries[claim.fixmedins_code].registration_on(claim.setl_time.isoformat())
    assert registered is not None
    pharmacy, purchase = registered.fixmedins_type == "pharmacy", claim.med_type == PHARMACY_MED_TYPE
    if pharmacy != purchase:  # a pharmacy sells (med_type 41) and only sells
        reason = Rejection.NOT_A_PHARMACY_PURCHASE if pharmacy else Rejection.NOT_A_PHARMACY
        what = "a pharmacy: its claims are purchases, med_type 41" if pharmacy else "not a pharmacy"
        return Refusal(reason, f"{claim.fixmedins_code} is {what}")
    level = registered.hosp_lv or 1  # a pharmacy registered without a level is paid at level 1 (基层)
    if level != claim.hosp_lv:
        return Refusal(
            Rejection.HOSP_LV_MISMATCH,
            f"{claim.fixmedins_code} is registered at level {level}, the claim says {claim.hosp_lv}",
        )
    return None


def maternity_cover(claim: Claim, record: MemberRecord, policy: Policy) -> Refusal | None:
    """A maternity claim (51, 52) is paid by the maternity fund, which insures employees, under
    the policy's `[maternity]` terms of its med_type."""
    if claim.med_type not in MATERNITY_MED_TYPES:
        return None
    if record.insutype != "310":
        return Refusal(
            Rejection.NO_MATERNITY_COVER, f"maternity insurance covers employees (310), not {record.insutype}"
        )
    if claim.med_type not in policy.maternity:
        return Refusal(
            Rejection.NO_MATERNITY_POLICY, f"the {policy.year} policy has no [maternity.med_type.{claim.med_type}]"
        )
    return None


def family_account_holder(employee: Member | None, on: dt.date, region: str) -> bool:
    """Whether the bound employee's account may pay on that date: insured here as an employee."""
    record = employee.record_at(on) if employee else None
    return record is not None and record.insutype == "310" and record.insuplc_admdvs == region


def decide(
    claim: Claim,
    *,
    region: str,
    record: MemberRecord,
    policy: Policy,
    ytd: YearToDate,
    accounts: Accounts,
    version: int,
    operator: str | None = None,
    reason: str | None = None,
    on_date: str | None = None,
    origin: str | None = None,
    approved_by: str | None = None,
) -> Decided:
    """The new version `version` of the claim's settlement, on the accumulators `ytd`."""
    if claim.med_type in MATERNITY_MED_TYPES:
        computation = compute_maternity(_amounts(claim), policy.maternity[claim.med_type], ytd)
    else:
        computation = compute_settlement(_amounts(claim), _terms(claim, record), policy, ytd)
    split = split_personal(
        computation.psn_part_amt,
        own_account_balance=accounts.own_balance if accounts.own_psn else None,
        family_account_balance=accounts.family_balance if accounts.family_psn else None,
        use_acct=claim.use_acct,
    )
    account_psn = accounts.own_psn if split.acct_pay else accounts.family_psn if split.acct_mulaid_pay else None
    amounts = settlement_amounts(claim, computation, split)
    claim_dict = claim.to_dict()
    facts = SettlementFacts(
        setl_id=claim.setl_id,
        version=version,
        psn_no=claim.psn_no,
        region=region,
        year=claim.year,
        insutype=record.insutype,
        assist_category=record.assist_category,
        claim=claim_dict,
        content_hash=content_hash_of(claim_dict),
        policy_hash=policy.content_hash,
        amounts=amounts,
        postings=settlement_postings(
            insutype=record.insutype,
            hospital=claim.fixmedins_code,
            amounts=amounts,
            account_psn=account_psn,
            member=claim.psn_no if claim.to_member else None,
            treated_in=claim.treated_elsewhere(region),
        ),
        posted_on=on_date or claim.setl_time.isoformat(),
        charity_referral=computation.charity_referral,
        breakdown=computation.breakdown,
        delta=computation.delta_fen,
        left_to_person=dict(computation.left_to_person),
        account_psn=account_psn,
        operator=operator,
        reason=reason,
        origin=origin,
        approved_by=approved_by,
    )
    return Decided(facts, computation, split)


def settlement_amounts(claim: Claim, computation: Computation, split: PersonalSplit) -> dict[str, int]:
    """Every amount of a settlement version, in fen, under its national name."""
    return {
        "medfee_sumamt": claim.medfee_sumamt, "inscp_scp_amt": claim.inscp_scp_amt,
        "act_pay_dedc": computation.act_pay_dedc, "hifp_pay": computation.hifp_pay,
        "hifmi_pay": computation.hifmi_pay, "maf_pay": computation.maf_pay,
        "hmb_pay": computation.hmb_pay, "charity_pay": computation.charity_pay,
        "fund_pay_sumamt": computation.fund_pay_sumamt, "psn_part_amt": computation.psn_part_amt,
        "acct_pay": split.acct_pay, "acct_mulaid_pay": split.acct_mulaid_pay,
        "psn_cash_pay": split.psn_cash_pay,
        **({"maternity_pay": computation.maternity_pay} if claim.med_type in MATERNITY_MED_TYPES else {}),
    }  # fmt: skip


def _amounts(claim: Claim) -> ClaimAmounts:
    return ClaimAmounts(
        med_type=rules_med_type(claim.med_type),
        hosp_lv=claim.hosp_lv,
        medfee_sumamt=claim.medfee_sumamt,
        fulamt_ownpay_amt=claim.fulamt_ownpay_amt,
        overlmt_selfpay=claim.overlmt_selfpay,
        preselfpay_amt=claim.preselfpay_amt,
        inscp_scp_amt=claim.inscp_scp_amt,
    )


def _terms(claim: Claim, record: MemberRecord) -> MemberTerms:
    return MemberTerms(
        insutype=record.insutype,
        assist_category=record.assist_category,
        chronic=record.chronic,
        supplementary_enrolled=claim.year in record.supplementary,
    )
