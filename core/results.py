"""The result objects of SPEC 4.2: one JSON object per claim, amounts as yuan strings."""

from __future__ import annotations

from typing import Any

from core.money import format_yuan
from core.settlement import SettlementFacts

RESULT_AMOUNTS = (
    "medfee_sumamt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "hmb_pay",
    "charity_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
)


def settlement_result(facts: SettlementFacts, status: str, *, sign: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": facts.setl_id, "psn_no": facts.psn_no, "status": status, "year": facts.year}
    for name in RESULT_AMOUNTS:
        out[name] = format_yuan(sign * facts.amounts[name])
    out["charity_referral"] = facts.charity_referral
    out["policy"] = facts.policy_hash
    if facts.version > 1:
        out["version"] = facts.version
    return out


def rejected_result(
    setl_id: str | int | None, psn_no: str | int | None, reason: str, detail: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"setl_id": setl_id, "psn_no": psn_no, "status": "rejected", "reason": reason}
    if detail:
        out["detail"] = detail
    return out
