"""The rules of a request for a second pair of eyes (core/approval.py) and of `[controls]`."""

from __future__ import annotations

import pytest

from core.approval import ApprovalRefused, ApprovalRequest, RequestStatus
from core.policy import PolicyError, parse_policy
from tests.conftest import EXAMPLES

POLICY = (EXAMPLES / "policy-330109-2023.toml").read_bytes()


def request() -> ApprovalRequest:
    return ApprovalRequest(
        request_id="reverse-S-v1", kind="reverse", subject="S", subject_version=1, amount=828_000, maker="m",
        reason="why", details={"on_date": "2023-03-02"},
    )  # fmt: skip


def test_only_someone_other_than_the_maker_decides_and_only_once() -> None:
    pending = request()
    with pytest.raises(ApprovalRefused) as refused:
        pending.approve("m", "2023-03-03")
    assert refused.value.reason == "maker_cannot_approve" and pending.status == RequestStatus.PENDING
    pending.approve("c", "2023-03-03")
    assert (pending.status, pending.checker) == (RequestStatus.APPROVED, "c")
    with pytest.raises(ApprovalRefused) as again:
        pending.reject("c2", "late", "2023-03-04")
    assert again.value.reason == "request_decided"


def test_the_approval_threshold_is_read_in_fen_and_absent_means_none_is_needed() -> None:
    assert parse_policy(POLICY).controls.approval_above is None
    assert parse_policy(POLICY + b'\n[controls]\napproval_above = "5000.00"\n').controls.approval_above == 500_000
    assert parse_policy(POLICY + b'\n[controls]\napproval_above = "none"\n').controls.approval_above is None
    with pytest.raises(PolicyError, match="controls"):
        parse_policy(POLICY + b'\n[controls]\napprove_above = "5000.00"\n')
