"""The caps a settlement is held to by `yibao verify` (projections/caps.py over_caps), pure."""

from __future__ import annotations

from core.policy import parse_policy
from core.tiers import YearToDate
from projections.caps import _raised, over_caps
from tests.conftest import EXAMPLES

POLICY = parse_policy((EXAMPLES / "policy-330109-2023.toml").read_bytes())


def test_only_the_accumulators_a_settlement_raised_are_held_to_their_caps() -> None:
    ytd = YearToDate(basic_outpatient_paid=250_001, basic_paid=250_001)
    assert over_caps(POLICY, ytd, set(), "390", "none", chronic=True) == []
    assert over_caps(POLICY, ytd, {"basic_paid"}, "390", "none", chronic=True) == []
    assert over_caps(POLICY, ytd, {"basic_outpatient_paid"}, "390", "none", chronic=True) == [
        "basic_outpatient_paid 250001 over its cap 250000"
    ]


def test_the_chronic_bonus_raises_the_outpatient_sub_cap_only_for_a_chronic_member() -> None:
    ytd = YearToDate(basic_outpatient_paid=250_000)
    assert over_caps(POLICY, ytd, {"basic_outpatient_paid"}, "390", "none", chronic=True) == []
    assert over_caps(POLICY, ytd, {"basic_outpatient_paid"}, "390", "none", chronic=False) == [
        "basic_outpatient_paid 250000 over its cap 200000"
    ]


def test_each_scheme_and_category_has_its_own_caps() -> None:
    ytd = YearToDate(basic_paid=55_000_000, serious_illness_paid=40_000_001)
    raised = {"basic_paid", "serious_illness_paid"}
    assert over_caps(POLICY, ytd, raised, "310", "none", chronic=False) == [
        "serious_illness_paid 40000001 over its cap 40000000"
    ]
    assert over_caps(POLICY, ytd, raised, "390", "none", chronic=False) == [
        "basic_paid 55000000 over its cap 50000000",
        "serious_illness_paid 40000001 over its cap 40000000",
    ]


def test_a_maternity_claim_is_held_to_its_med_types_annual_cap() -> None:
    policy = parse_policy(
        (EXAMPLES / "policy-330109-2023.toml").read_bytes()
        + b'\n[maternity.med_type.52]\nratio_bp = 9000\nannual_cap = "5000.00"\n'
    )
    ytd = YearToDate(maternity_paid={"52": 500_001, "51": 900_000})
    raised = _raised({"maternity_paid": {"52": 100}, "out_of_pocket": 5})
    assert raised == {"maternity_paid:52", "out_of_pocket"}
    assert over_caps(policy, ytd, raised, "310", "none", chronic=False) == [
        "maternity_paid:52 500001 over its cap 500000"
    ]
    assert over_caps(policy, YearToDate(maternity_paid={"52": 500_000}), raised, "310", "none", chronic=False) == []
