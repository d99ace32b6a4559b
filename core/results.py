"""The result objects of SPEC 4.2: one JSON object per claim, amounts as yuan strings."""

from __future__ import annotations

from typing import Any

from core.approval import ApprovalRequest
from core.money import format_yuan
from core.records import Echoed
from core.settlement import RESULT_AMOUNT_FIELDS, SettlementFacts, clr_type, fund_payments, national_amounts

_ZERO_YUAN = format_yuan(0)


def settlement_result(
    facts: SettlementFacts, status: str, *, sign: int = 1, dated: str | None = None
) -> dict[str, Any]:
    """A settlement version's result; with `sign` -1, its reversal line (refd_setl_flag "1"),
    `dated` the reversal's business date."""
    claim = facts.claim
    out: dict[str, Any] = {"setl_id": facts.setl_id}
    for name in ("mdtrt_id", "medins_setl_id"):
        if name in claim:
            out[name] = claim[name]
    out.update(psn_no=facts.psn_no, status=status, year=facts.year, insutype=facts.insutype)
    out.update(med_type=claim["med_type"], clr_type=clr_type(claim["med_type"]), setl_time=dated or claim["setl_time"])
    amounts = national_amounts(facts.insutype, facts.amounts)
    for name in RESULT_AMOUNT_FIELDS:
        fen = amounts[name]
        out[name] = format_yuan(sign * fen) if fen else _ZERO_YUAN  # about half of them are zero
    out["setldetail"] = [
        {"fund_pay_type": fund, "fund_payamt": format_yuan(sign * amount)}
        for fund, amount in fund_payments(facts.insutype, facts.amounts)
    ]
    out["refd_setl_flag"] = "1" if sign < 0 else "0"
    if claim.get("payee") is not None:
        out["payee"] = claim["payee"]  # 零星报销: owed to the member, not the hospital
    out["charity_referral"] = facts.charity_referral
    out["policy"] = facts.policy_hash
    if facts.version > 1:
        out["version"] = facts.version
    return out


def pending_result(psn_no: str, request: ApprovalRequest) -> dict[str, Any]:
    """A claim line held for a second person's approval (复核): nothing of it took effect yet."""
    return {
        "setl_id": request.subject, "psn_no": psn_no, "status": "pending_approval", "request_id": request.request_id,
        "kind": request.kind, "amount": format_yuan(request.amount), "maker": request.maker,
    }  # fmt: skip


def rejected_result(setl_id: Echoed, psn_no: Echoed, reason: str, detail: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": setl_id, "psn_no": psn_no, "status": "rejected", "reason": reason}
    if detail:
        out["detail"] = detail
    return out
