"""The result objects of SPEC 4.2: one JSON object per claim, amounts as yuan strings."""

from __future__ import annotations

from typing import Any

from core.approval import ApprovalRequest
from core.money import format_yuan
from core.settlement import AMOUNT_FIELDS, SettlementFacts


def settlement_result(facts: SettlementFacts, status: str, *, sign: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": facts.setl_id, "psn_no": facts.psn_no, "status": status, "year": facts.year}
    for name in AMOUNT_FIELDS:
        out[name] = format_yuan(sign * facts.amounts[name])
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


def rejected_result(
    setl_id: str | int | None, psn_no: str | int | None, reason: str, detail: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": setl_id, "psn_no": psn_no, "status": "rejected", "reason": reason}
    if detail:
        out["detail"] = detail
    return out
