"""The settlement computation of SPEC section 4: pure functions over fen and basis points.

A claim is split into what is left to the person, tracked in four parts so that each tier knows
what it may pay:

- ``policy``: the policy-range remainder (符合政策范围), starts at ``inscp_scp_amt``;
- ``pre``: the pre-self-pay remainder (先行自付), starts at ``preselfpay_amt``;
- ``full`` and ``over``: the out-of-range remainder (全自费 and 超限价).

Tiers run in `policy.order`; each takes its payment out of those parts, so a tier can never pay
more than what is left, and the person's part is simply what remains at the end.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from core.money import apply_ratio, round_half_up_div
from core.policy import (
    HOSP_LEVELS,
    INSUTYPES,
    MED_TYPES,
    TIER_NAMES,
    MaternityTerms,
    Policy,
    SeriousIllnessTerms,
)

__all__ = [
    "OUTPATIENT_MED_TYPE",
    "ClaimAmounts",
    "Computation",
    "LookBack",
    "MemberTerms",
    "PersonalSplit",
    "YearToDate",
    "compute_settlement",
    "lookback_assistance",
    "serious_illness_f",
    "split_personal",
]

OUTPATIENT_MED_TYPE = "11"  # ordinary outpatient: the med_type with sub-caps and sub-limits
PHARMACY_MED_TYPE = "41"  # 定点药店购药: a pharmacy purchase, paid under the ordinary outpatient rules


def rules_med_type(med_type: str) -> str:
    """The med_type whose policy terms and accumulators a claim's med_type is settled under."""
    return OUTPATIENT_MED_TYPE if med_type == PHARMACY_MED_TYPE else med_type


def _nonneg_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int (fen), not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative: {value}")


def _int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int (fen), not {type(value).__name__}")


@attrs.frozen
class ClaimAmounts:
    """The amounts of one claim, in fen."""

    med_type: str
    hosp_lv: int
    medfee_sumamt: int = attrs.field(validator=_nonneg_int)
    fulamt_ownpay_amt: int = attrs.field(validator=_nonneg_int)
    overlmt_selfpay: int = attrs.field(validator=_nonneg_int)
    preselfpay_amt: int = attrs.field(validator=_nonneg_int)
    inscp_scp_amt: int = attrs.field(validator=_nonneg_int)

    @property
    def adds_up(self) -> bool:
        return self.medfee_sumamt == (
            self.fulamt_ownpay_amt + self.overlmt_selfpay + self.preselfpay_amt + self.inscp_scp_amt
        )


@attrs.frozen
class MemberTerms:
    """The member record in force at the claim date, reduced to what the rules need."""

    insutype: str
    assist_category: str
    chronic: bool
    supplementary_enrolled: bool


def _deductible_map(value: Mapping[str, int] | None) -> dict[str, int]:
    # Canonical form: sorted keys, zero entries dropped, so that plus-then-minus compares equal.
    if value is None:
        return {}
    out: dict[str, int] = {}
    for key in sorted(value) if len(value) > 1 else value:  # one key (the usual): nothing to sort
        amount = value[key]
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"basic_deductible_used[{key!r}] must be an int (fen)")
        if amount != 0:
            out[str(key)] = amount
    return out


@attrs.frozen
class YearToDate:
    """One member-year's accumulators (fen). Also used for the delta one settlement adds."""

    basic_paid: int = attrs.field(default=0, validator=_int)
    basic_outpatient_paid: int = attrs.field(default=0, validator=_int)
    basic_deductible_used: Mapping[str, int] = attrs.field(factory=dict, converter=_deductible_map)
    serious_illness_base: int = attrs.field(default=0, validator=_int)
    serious_illness_paid: int = attrs.field(default=0, validator=_int)
    assistance_paid: int = attrs.field(default=0, validator=_int)
    assistance_outpatient_paid: int = attrs.field(default=0, validator=_int)
    assistance_deductible_used: int = attrs.field(default=0, validator=_int)
    supplementary_paid: int = attrs.field(default=0, validator=_int)
    supplementary_deductible_used: int = attrs.field(default=0, validator=_int)
    supplementary_oor_deductible_used: int = attrs.field(default=0, validator=_int)
    out_of_pocket: int = attrs.field(default=0, validator=_int)
    charity_paid: int = attrs.field(default=0, validator=_int)
    maternity_paid: Mapping[str, int] = attrs.field(factory=dict, converter=_deductible_map)  # by med_type

    def _combine(self, other: YearToDate, sign: int) -> YearToDate:
        # Hot path (every settlement and every replayed event): both operands were validated
        # when built, and sums of ints are ints, so the result skips the validators.
        result = object.__new__(YearToDate)
        for name in _AMOUNT_FIELDS:
            object.__setattr__(result, name, getattr(self, name) + sign * getattr(other, name))
        for field in _MAP_FIELDS:
            sums = dict(getattr(self, field))
            for key, amount in getattr(other, field).items():
                sums[key] = sums.get(key, 0) + sign * amount
            object.__setattr__(result, field, _deductible_map(sums))
        return result

    def plus(self, delta: YearToDate) -> YearToDate:
        return self._combine(delta, 1)

    def plus_all(self, deltas: Iterable[tuple[Mapping[str, Any], int]]) -> YearToDate:
        """This plus (sign 1) or minus (sign -1) each delta given as stored (fen by field name),
        summed in one pass: replaying a member-year folds all its events here at once, and an
        object per event cost more than the sums. The maps no delta names are shared with the
        result, not copied (nothing changes a YearToDate's maps once it is made)."""
        totals = list(_AMOUNTS_OF(self))
        maps: dict[str, dict[str, int]] = {}
        for delta, sign in deltas:
            # Only the fields a delta names (stored deltas leave zero amounts out).
            for name, value in delta.items():
                index = _AMOUNT_INDEX.get(name)
                if index is not None:
                    if type(value) is not int:
                        raise TypeError(f"{name} must be an int (fen), not {type(value).__name__}")
                    totals[index] += sign * value
                elif name in _MAP_FIELDS:
                    sums = maps.get(name)
                    if sums is None:
                        sums = maps[name] = dict(getattr(self, name))
                    for key, amount in _deductible_map(value).items():
                        sums[key] = sums.get(key, 0) + sign * amount
                else:
                    raise ValueError(f"unknown YearToDate field: {name}")
        result = object.__new__(YearToDate)
        for set_amount, total in zip(_AMOUNT_SETTERS, totals, strict=True):
            set_amount(result, total)
        for field in _MAP_FIELDS:
            sums = maps.get(field)
            object.__setattr__(result, field, getattr(self, field) if sums is None else _deductible_map(sums))
        return result

    def minus(self, delta: YearToDate) -> YearToDate:
        return self._combine(delta, -1)

    def negated(self) -> YearToDate:
        return YearToDate().minus(self)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _AMOUNT_FIELDS}
        out["basic_deductible_used"] = dict(self.basic_deductible_used)
        if self.maternity_paid:  # left out when empty: deltas stored before maternity keep their form
            out["maternity_paid"] = dict(self.maternity_paid)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> YearToDate:
        if not d.keys() <= _FIELD_NAMES:
            raise ValueError(f"unknown YearToDate fields: {', '.join(sorted(d.keys() - _FIELD_NAMES))}")
        # Hot path (every replayed event): check the types inline instead of through attrs.
        result = object.__new__(cls)
        for name, set_amount in zip(_AMOUNT_FIELDS, _AMOUNT_SETTERS, strict=True):
            value = d.get(name, 0)
            if type(value) is not int:
                raise TypeError(f"{name} must be an int (fen), not {type(value).__name__}")
            set_amount(result, value)
        for field in _MAP_FIELDS:
            object.__setattr__(result, field, _deductible_map(d.get(field)))
        return result


_MAP_FIELDS = ("basic_deductible_used", "maternity_paid")  # fen by key (deductible scope, med_type)
_AMOUNT_FIELDS = tuple(f.name for f in attrs.fields(YearToDate) if f.name not in _MAP_FIELDS)
_FIELD_NAMES = frozenset(f.name for f in attrs.fields(YearToDate))
_AMOUNT_INDEX = {name: index for index, name in enumerate(_AMOUNT_FIELDS)}
# The slots' own setters and one getter of them all: past the frozen class's __setattr__ without
# a lookup by name for each field (a member-year folds one delta a claim).
_AMOUNT_SETTERS = tuple(getattr(YearToDate, name).__set__ for name in _AMOUNT_FIELDS)
_AMOUNTS_OF = operator.attrgetter(*_AMOUNT_FIELDS)


def nonzero(delta: Mapping[str, Any]) -> dict[str, Any]:
    """A delta as events store it: without its zero amounts (a missing amount is 0). A
    settlement's facts spelled all thirteen fields, about 390 of its 2,300 bytes; a member-year
    holds one per settlement in force, where they took a kilobyte each in memory."""
    return {name: value for name, value in delta.items() if value}


def stored_delta(delta: Mapping[str, Any]) -> dict[str, Any]:
    """What a computation added to the accumulators (fen by YearToDate field, as the rules name
    them), checked as `YearToDate.from_dict` checks it and as events store it:
    `nonzero(YearToDate.from_dict(delta).to_dict())` in one pass, without the object between
    (a claim makes one)."""
    if not delta.keys() <= _FIELD_NAMES:
        raise ValueError(f"unknown YearToDate fields: {', '.join(sorted(delta.keys() - _FIELD_NAMES))}")
    stored: dict[str, Any] = {}
    for name in _AMOUNT_FIELDS:
        value = delta.get(name, 0)
        if type(value) is not int:
            raise TypeError(f"{name} must be an int (fen), not {type(value).__name__}")
        if value:
            stored[name] = value
    for field in _MAP_FIELDS:
        sums = _deductible_map(delta.get(field))
        if sums:
            stored[field] = sums
    return stored


@attrs.frozen
class Computation:
    act_pay_dedc: int
    hifp_pay: int
    hifmi_pay: int
    maf_pay: int
    hmb_pay: int
    charity_pay: int
    psn_part_amt: int
    charity_referral: bool
    delta_fen: dict[str, Any]  # what it adds to the accumulators, as events store it (`stored_delta`)
    breakdown: dict[str, Any]
    # what is left to the person at the end, by part: "policy" (policy-range remainder, what
    # a look-back may assist), "pre" (先行自付), "full" (全自费), "over" (超限价);
    # the parts sum to psn_part_amt
    left_to_person: Mapping[str, int] = attrs.field(factory=dict)
    maternity_pay: int = 0  # the maternity fund (510100): maternity claims only

    @property
    def fund_pay_sumamt(self) -> int:
        return self.hifp_pay + self.hifmi_pay + self.maf_pay + self.maternity_pay

    @property
    def delta(self) -> YearToDate:
        return YearToDate.from_dict(self.delta_fen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "act_pay_dedc": self.act_pay_dedc,
            "hifp_pay": self.hifp_pay,
            "hifmi_pay": self.hifmi_pay,
            "maf_pay": self.maf_pay,
            "hmb_pay": self.hmb_pay,
            "charity_pay": self.charity_pay,
            "fund_pay_sumamt": self.fund_pay_sumamt,
            "psn_part_amt": self.psn_part_amt,
            "charity_referral": self.charity_referral,
            "delta": self.delta.to_dict(),
            "breakdown": self.breakdown,
            "left_to_person": dict(self.left_to_person),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Computation:
        return cls(
            act_pay_dedc=d["act_pay_dedc"],
            hifp_pay=d["hifp_pay"],
            hifmi_pay=d["hifmi_pay"],
            maf_pay=d["maf_pay"],
            hmb_pay=d["hmb_pay"],
            charity_pay=d["charity_pay"],
            psn_part_amt=d["psn_part_amt"],
            charity_referral=d["charity_referral"],
            delta_fen=stored_delta(d["delta"]),
            breakdown=d["breakdown"],
            left_to_person=d.get("left_to_person", {}),
        )


# ---------------------------------------------------------------------------------------------
# Helpers


def _remaining(limit: int | None, used: int) -> int | None:
    """What is left under a cap or limit; None when unlimited."""
    return None if limit is None else max(0, limit - used)


def _limit(amount: int, *limits: tuple[str, int | None]) -> tuple[int, str | None]:
    """Apply the named caps in turn; return the limited amount and the cap that bit last."""
    hit: str | None = None
    for name, remaining in limits:
        if remaining is not None and amount > remaining:
            amount = remaining
            hit = name
    return amount, hit


def serious_illness_f(terms: SeriousIllnessTerms, base: int) -> int:
    """F(B): sum over segments of ratio x the part of [threshold, B] inside the segment, rounded
    half up once."""
    numerator = 0
    lower = terms.threshold
    for upper, ratio_bp in terms.segments:
        if base <= lower:
            break
        top = base if upper is None else min(base, upper)
        numerator += (top - lower) * ratio_bp
        if upper is None:
            break
        lower = upper
    return round_half_up_div(numerator, 10_000)


class _Left:
    """What the claim still leaves to the person, in its four parts (fen)."""

    def __init__(self, claim: ClaimAmounts) -> None:
        self.policy = claim.inscp_scp_amt
        self.pre = claim.preselfpay_amt
        self.full = claim.fulamt_ownpay_amt
        self.over = claim.overlmt_selfpay

    @property
    def out_of_range(self) -> int:
        return self.full + self.over + self.pre

    @property
    def total(self) -> int:
        return self.policy + self.pre + self.full + self.over

    def take(self, amount: int, parts: tuple[str, ...]) -> dict[str, int]:
        """Take `amount` off the named parts in that order; return how much came off each."""
        taken: dict[str, int] = {}
        for part in parts:
            if amount <= 0:
                break
            have = getattr(self, part)
            off = min(have, amount)
            if off:
                setattr(self, part, have - off)
                taken[part] = off
                amount -= off
        if amount != 0:
            raise AssertionError("a tier tried to pay more than what is left to the person")
        return taken


_PAYER_FIELD = {
    "basic": "hifp_pay",
    "serious_illness": "hifmi_pay",
    "assistance": "maf_pay",
    "supplementary": "hmb_pay",
    "charity": "charity_pay",
}


class _Run:
    """Mutable state of one computation; every tier reads `ytd` and writes `delta`/`pays`."""

    def __init__(self, claim: ClaimAmounts, member: MemberTerms, policy: Policy, ytd: YearToDate) -> None:
        self.claim = claim
        self.member = member
        self.policy = policy
        self.ytd = ytd
        self.left = _Left(claim)
        self.delta: dict[str, Any] = {}
        self.pays: dict[str, int] = dict.fromkeys(TIER_NAMES, 0)
        self.act_pay_dedc = 0
        self.charity_referral = False

    @property
    def outpatient(self) -> bool:
        return self.claim.med_type == OUTPATIENT_MED_TYPE

    def add(self, name: str, amount: int) -> None:
        self.delta[name] = self.delta.get(name, 0) + amount

    # -- tiers ---------------------------------------------------------------------------------

    def basic(self) -> dict[str, Any]:
        scheme = self.policy.basic.get(self.member.insutype)
        if scheme is None:
            return {"applies": False, "why": f"no basic scheme {self.member.insutype} in policy"}
        med_type = self.claim.med_type
        terms = scheme.med_types[med_type]
        inscp = self.left.policy
        if terms.deductible_scope == "annual":
            used = self.ytd.basic_deductible_used.get(med_type, 0)
            deductible_left = max(0, terms.deductible - used)
        else:
            deductible_left = terms.deductible
        ded = min(inscp, deductible_left)
        base = inscp - ded
        ratio_bp = terms.ratio_bp[self.claim.hosp_lv]
        uncapped = apply_ratio(base, ratio_bp)
        cap_remaining = _remaining(scheme.annual_cap, self.ytd.basic_paid)
        limits: list[tuple[str, int | None]] = [("annual_cap", cap_remaining)]
        out: dict[str, Any] = {
            "scheme": self.member.insutype,
            "deductible": ded,
            "deductible_scope": terms.deductible_scope,
            "deductible_remaining_before": deductible_left,
            "ratio_bp": ratio_bp,
            "base": base,
            "uncapped_pay": uncapped,
            "cap_remaining": cap_remaining,
        }
        if self.outpatient:
            sub_cap = scheme.outpatient_annual_cap
            if sub_cap is not None and self.member.chronic:
                sub_cap += scheme.chronic_outpatient_bonus
            sub_remaining = _remaining(sub_cap, self.ytd.basic_outpatient_paid)
            limits.append(("outpatient_annual_cap", sub_remaining))
            out["outpatient_cap"] = sub_cap
            out["outpatient_cap_remaining"] = sub_remaining
            out["chronic_bonus"] = self.member.chronic and sub_cap is not None
        pay, hit = _limit(uncapped, *limits)
        self.left.take(pay, ("policy",))
        self.pays["basic"] += pay
        self.act_pay_dedc += ded
        self.add("basic_paid", pay)
        if self.outpatient:
            self.add("basic_outpatient_paid", pay)
        if terms.deductible_scope == "annual" and ded:
            self.delta.setdefault("basic_deductible_used", {})[med_type] = ded
        out["cap_hit"] = hit
        out["pay"] = pay
        return out

    def serious_illness(self) -> dict[str, Any]:
        si = self.policy.serious_illness
        if si is None:
            return {"applies": False, "why": "no serious_illness section in policy"}
        if self.claim.med_type not in si.med_types:
            return {"applies": False, "why": f"med_type {self.claim.med_type} not covered"}
        category = self.member.assist_category
        terms = si.terms_for(category)
        parts: tuple[str, ...] = ("policy",)
        contribution = self.left.policy
        if self.policy.preselfpay_in_base:
            # the policy-range remainder is paid before the pre-self-pay part (SPEC 4)
            parts = ("policy", "pre")
            contribution += self.left.pre
        base_before = self.ytd.serious_illness_base
        base_after = base_before + contribution
        f_before = serious_illness_f(terms, base_before)
        f_after = serious_illness_f(terms, base_after)
        uncapped = max(0, f_after - f_before)
        cap_remaining = _remaining(terms.annual_cap, self.ytd.serious_illness_paid)
        pay, hit = _limit(uncapped, ("annual_cap", cap_remaining), ("left_to_pay", contribution))
        taken = self.left.take(pay, parts)
        self.pays["serious_illness"] += pay
        self.add("serious_illness_base", contribution)
        self.add("serious_illness_paid", pay)
        return {
            "terms": si.terms_name(category),
            "threshold": terms.threshold,
            "base_before": base_before,
            "base_after": base_after,
            "f_before": f_before,
            "f_after": f_after,
            "uncapped_pay": uncapped,
            "cap_remaining": cap_remaining,
            "cap_hit": hit,
            "pay": pay,
            "paid_from": taken,
        }

    def assistance(self) -> dict[str, Any]:
        category = self.member.assist_category
        terms = self.policy.assistance.get(category)
        if terms is None:
            why = "member has no assistance category" if category == "none" else f"category {category} not in policy"
            return {"applies": False, "why": why}
        parts: tuple[str, ...] = ("policy",)
        base_in = self.left.policy
        if self.policy.preselfpay_in_base:
            parts = ("policy", "pre")
            base_in += self.left.pre
        deductible_left = max(0, terms.deductible - self.ytd.assistance_deductible_used)
        ded = min(base_in, deductible_left)
        base = base_in - ded
        uncapped = apply_ratio(base, terms.ratio_bp)
        limit_remaining = _remaining(terms.annual_limit, self.ytd.assistance_paid)
        limits: list[tuple[str, int | None]] = [("annual_limit", limit_remaining)]
        out: dict[str, Any] = {
            "category": category,
            "deductible": ded,
            "ratio_bp": terms.ratio_bp,
            "base": base,
            "uncapped_pay": uncapped,
            "limit_remaining": limit_remaining,
        }
        if self.outpatient:
            sub = _remaining(terms.outpatient_limit, self.ytd.assistance_outpatient_paid)
            limits.append(("outpatient_limit", sub))
            out["outpatient_limit_remaining"] = sub
        pay, hit = _limit(uncapped, *limits)
        taken = self.left.take(pay, parts)
        self.pays["assistance"] += pay
        self.add("assistance_paid", pay)
        if self.outpatient:
            self.add("assistance_outpatient_paid", pay)
        self.add("assistance_deductible_used", ded)
        out["cap_hit"] = hit
        out["pay"] = pay
        out["paid_from"] = taken
        return out

    def supplementary(self) -> dict[str, Any]:
        supp = self.policy.supplementary
        if supp is None:
            return {"applies": False, "why": "no supplementary section in policy"}
        if not self.member.supplementary_enrolled:
            return {"applies": False, "why": "member not enrolled this year"}
        category = self.member.assist_category
        terms = supp.terms_for(category)
        cap_remaining = _remaining(terms.annual_cap, self.ytd.supplementary_paid)

        # policy-range part first: burden3 after the remaining annual deductible
        base_in = self.left.policy
        ded = min(base_in, max(0, terms.deductible - self.ytd.supplementary_deductible_used))
        uncapped = apply_ratio(base_in - ded, terms.ratio_bp)
        pay_policy, hit = _limit(uncapped, ("annual_cap", cap_remaining))
        self.left.take(pay_policy, ("policy",))
        out: dict[str, Any] = {
            "terms": supp.terms_name(category),
            "cap_remaining": cap_remaining,
            "policy_range": {
                "deductible": ded,
                "ratio_bp": terms.ratio_bp,
                "base": base_in - ded,
                "uncapped_pay": uncapped,
                "pay": pay_policy,
            },
        }
        self.add("supplementary_deductible_used", ded)

        pay_oor = 0
        if terms.out_of_range_ratio_bp is None:
            out["out_of_range"] = {"applies": False, "why": "no out_of_range_ratio_bp in policy"}
        else:
            oor_in = self.left.out_of_range
            oor_ded = min(
                oor_in,
                max(0, terms.out_of_range_deductible - self.ytd.supplementary_oor_deductible_used),
            )
            oor_uncapped = apply_ratio(oor_in - oor_ded, terms.out_of_range_ratio_bp)
            oor_cap = None if cap_remaining is None else cap_remaining - pay_policy
            pay_oor, oor_hit = _limit(oor_uncapped, ("annual_cap", oor_cap))
            hit = oor_hit or hit
            taken = self.left.take(pay_oor, ("full", "over", "pre"))
            self.add("supplementary_oor_deductible_used", oor_ded)
            out["out_of_range"] = {
                "deductible": oor_ded,
                "ratio_bp": terms.out_of_range_ratio_bp,
                "base": oor_in - oor_ded,
                "uncapped_pay": oor_uncapped,
                "pay": pay_oor,
                "paid_from": taken,
            }
        pay = pay_policy + pay_oor
        self.pays["supplementary"] += pay
        self.add("supplementary_paid", pay)
        out["cap_hit"] = hit
        out["pay"] = pay
        return out

    def charity(self) -> dict[str, Any]:
        charity = self.policy.charity
        if charity is None:
            return {"applies": False, "why": "no charity section in policy"}
        category = self.member.assist_category
        if category not in charity.categories:
            return {"applies": False, "why": f"category {category} not eligible"}
        oop_before = self.ytd.out_of_pocket
        # what this claim would leave to the person before charity: what is left when it runs
        claim_oop = self.left.total
        referral = oop_before + claim_oop > charity.threshold
        base = oop_before + claim_oop - max(charity.threshold, oop_before) if referral else 0
        uncapped = apply_ratio(base, charity.ratio_bp)
        cap_remaining = _remaining(charity.annual_cap, self.ytd.charity_paid)
        pay, hit = _limit(uncapped, ("annual_cap", cap_remaining), ("left_to_pay", claim_oop))
        taken = self.left.take(pay, ("policy", "full", "over", "pre"))
        self.pays["charity"] += pay
        self.add("charity_paid", pay)
        self.charity_referral = self.charity_referral or referral
        return {
            "threshold": charity.threshold,
            "oop_before": oop_before,
            "claim_oop": claim_oop,
            "referral": referral,
            "ratio_bp": charity.ratio_bp,
            "base": base,
            "uncapped_pay": uncapped,
            "cap_remaining": cap_remaining,
            "cap_hit": hit,
            "pay": pay,
            "paid_from": taken,
        }


def _check_inputs(claim: ClaimAmounts, member: MemberTerms) -> None:
    if claim.med_type not in MED_TYPES:
        raise ValueError(f"unknown med_type {claim.med_type!r}")
    if claim.hosp_lv not in HOSP_LEVELS:
        raise ValueError(f"unknown hosp_lv {claim.hosp_lv!r}")
    if not claim.adds_up:
        raise ValueError("amounts_do_not_add_up: medfee_sumamt is not the sum of its parts")
    if member.insutype not in INSUTYPES:
        raise ValueError(f"unknown insutype {member.insutype!r}")


def compute_settlement(claim: ClaimAmounts, member: MemberTerms, policy: Policy, ytd: YearToDate) -> Computation:
    """Settle one claim against the member-year accumulators `ytd` (SPEC section 4, steps 1-5)."""
    _check_inputs(claim, member)
    run = _Run(claim, member, policy, ytd)
    breakdown: dict[str, Any] = {}
    for tier in policy.order:
        breakdown[tier] = getattr(run, tier)()
    for tier in TIER_NAMES:
        if tier not in breakdown:
            breakdown[tier] = {"applies": False, "why": "not in policy order"}

    psn_part_amt = run.left.total
    payers = sum(run.pays.values())
    if payers + psn_part_amt != claim.medfee_sumamt:
        raise AssertionError("settlement does not balance")
    if min(run.pays.values()) < 0 or psn_part_amt < 0:
        raise AssertionError("negative amount in a settlement")
    run.add("out_of_pocket", psn_part_amt)
    return Computation(
        act_pay_dedc=run.act_pay_dedc,
        hifp_pay=run.pays["basic"],
        hifmi_pay=run.pays["serious_illness"],
        maf_pay=run.pays["assistance"],
        hmb_pay=run.pays["supplementary"],
        charity_pay=run.pays["charity"],
        psn_part_amt=psn_part_amt,
        charity_referral=run.charity_referral,
        delta_fen=stored_delta(run.delta),
        breakdown=breakdown,
        left_to_person={
            "policy": run.left.policy,
            "pre": run.left.pre,
            "full": run.left.full,
            "over": run.left.over,
        },
    )


@attrs.frozen
class LookBack:
    maf_pay: int
    delta: YearToDate  # assistance accumulators up, out_of_pocket down by the same amount
    breakdown: dict[str, Any]


def lookback_assistance(
    policy_remainder: int, med_type: str, category: str, policy: Policy, ytd: YearToDate
) -> LookBack:
    """Retroactive assistance (SPEC 4.1 look-back) on the policy-range personal remainder of one
    earlier settlement, within the limits of its year as they stand in `ytd` now."""
    if policy_remainder < 0:
        raise ValueError("policy_remainder must not be negative")
    terms = policy.assistance.get(category)
    if "assistance" not in policy.order or terms is None:
        why = "assistance not in policy order" if terms else f"category {category} not in policy"
        return LookBack(0, YearToDate(), {"applies": False, "why": why})
    outpatient = med_type == OUTPATIENT_MED_TYPE
    ded = min(policy_remainder, max(0, terms.deductible - ytd.assistance_deductible_used))
    uncapped = apply_ratio(policy_remainder - ded, terms.ratio_bp)
    limits: list[tuple[str, int | None]] = [("annual_limit", _remaining(terms.annual_limit, ytd.assistance_paid))]
    if outpatient:
        limits.append(("outpatient_limit", _remaining(terms.outpatient_limit, ytd.assistance_outpatient_paid)))
    pay, hit = _limit(uncapped, *limits)
    delta = YearToDate(
        assistance_paid=pay,
        assistance_outpatient_paid=pay if outpatient else 0,
        assistance_deductible_used=ded,
        out_of_pocket=-pay,
    )
    breakdown = {
        "category": category,
        "policy_remainder": policy_remainder,
        "deductible": ded,
        "ratio_bp": terms.ratio_bp,
        "base": policy_remainder - ded,
        "uncapped_pay": uncapped,
        "cap_hit": hit,
        "pay": pay,
    }
    return LookBack(pay, delta, breakdown)


# ---------------------------------------------------------------------------------------------
# Step 6: the personal part


@attrs.frozen
class PersonalSplit:
    acct_pay: int
    acct_mulaid_pay: int
    psn_cash_pay: int


def split_personal(
    psn_part_amt: int,
    *,
    own_account_balance: int | None,
    family_account_balance: int | None,
    use_acct: bool,
) -> PersonalSplit:
    """Who pays the personal part: own individual account, else the bound employee's (家庭共济),
    then cash. `use_acct=False` turns both accounts off. Never more than the balance."""
    if psn_part_amt < 0:
        raise ValueError("psn_part_amt must not be negative")
    acct = mulaid = 0
    if use_acct:
        if own_account_balance is not None:
            acct = min(max(0, own_account_balance), psn_part_amt)
        elif family_account_balance is not None:
            # read "own account first if the member has one; otherwise the family account":
            # a member with an own account does not also draw on a family account
            mulaid = min(max(0, family_account_balance), psn_part_amt)
    return PersonalSplit(acct_pay=acct, acct_mulaid_pay=mulaid, psn_cash_pay=psn_part_amt - acct - mulaid)


def compute_maternity(claim: ClaimAmounts, terms: MaternityTerms, ytd: YearToDate) -> Computation:
    """An employee's maternity claim (生育门诊 51, 生育住院 52): the maternity fund (510100) pays
    `ratio_bp` of the policy-range amount, up to what is left of the med_type's annual cap; the
    other payers do not apply and the rest is the person's (the account may pay it)."""
    if not claim.adds_up:
        raise ValueError("amounts_do_not_add_up: medfee_sumamt is not the sum of its parts")
    used = ytd.maternity_paid.get(claim.med_type, 0)
    uncapped = apply_ratio(claim.inscp_scp_amt, terms.ratio_bp)
    pay, capped_by = _limit(uncapped, ("annual_cap", _remaining(terms.annual_cap, used)))
    left = _Left(claim)
    left.take(pay, ("policy",))
    psn_part = claim.medfee_sumamt - pay
    not_applied = {"applies": False, "why": "a maternity claim: the maternity fund pays it"}
    breakdown: dict[str, Any] = {
        "maternity": {
            "applies": True, "fund": "510100", "inscp": claim.inscp_scp_amt, "ratio_bp": terms.ratio_bp,
            "uncapped": uncapped, "annual_cap": terms.annual_cap, "used_before": used, "pay": pay,
            "capped_by": capped_by,
        },
        **dict.fromkeys(TIER_NAMES, not_applied),
    }  # fmt: skip
    delta = stored_delta({"maternity_paid": {claim.med_type: pay}, "out_of_pocket": psn_part})
    return Computation(
        act_pay_dedc=0, hifp_pay=0, hifmi_pay=0, maf_pay=0, hmb_pay=0, charity_pay=0, psn_part_amt=psn_part,
        charity_referral=False, delta_fen=delta, breakdown=breakdown,
        left_to_person={"policy": left.policy, "pre": left.pre, "full": left.full, "over": left.over},
        maternity_pay=pay,
    )  # fmt: skip
