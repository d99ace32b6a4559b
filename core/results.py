"""The result objects of SPEC 4.2: one JSON object per claim, amounts as yuan strings."""

from __future__ import annotations

from typing import Any

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


def rejected_result(setl_id: str | None, psn_no: str | None, reason: str, detail: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": setl_id, "psn_no": psn_no, "status": "rejected", "reason": reason}
    if detail:
        out["detail"] = detail
    return out
