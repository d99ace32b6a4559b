from __future__ import annotations

import hashlib

import pytest

from core.policy import (
    DEFAULT_ORDER,
    AssistanceTerms,
    Charity,
    PolicyError,
    SeriousIllnessTerms,
    SupplementaryTerms,
    parse_policy,
)

EXAMPLE = """\
region = "330109"
year = 2023
name = "Example district 2023"
order = ["basic", "serious_illness", "assistance", "supplementary", "charity"]
preselfpay_in_base = false

[basic.390]
annual_cap = "500000.00"
outpatient_annual_cap = "2000.00"
chronic_outpatient_bonus = "500.00"

[basic.390.med_type.21]
deductible = "800.00"
deductible_scope = "per_visit"
ratio_bp = { 1 = 9000, 2 = 8000, 3 = 7000 }

[basic.390.med_type.14]
deductible = "0.00"
deductible_scope = "annual"
ratio_bp = { 1 = 7000, 2 = 7000, 3 = 7000 }

[basic.390.med_type.11]
deductible = "300.00"
deductible_scope = "annual"
ratio_bp = { 1 = 6000, 2 = 5000, 3 = 5000 }

[basic.310]
annual_cap = "600000.00"
outpatient_annual_cap = "5000.00"
chronic_outpatient_bonus = "500.00"

[basic.310.med_type.21]
deductible = "1000.00"
deductible_scope = "per_visit"
ratio_bp = { 1 = 9500, 2 = 9000, 3 = 8800 }

[basic.310.med_type.14]
deductible = "0.00"
deductible_scope = "annual"
ratio_bp = { 1 = 8500, 2 = 8500, 3 = 8500 }

[basic.310.med_type.11]
deductible = "1000.00"
deductible_scope = "annual"
ratio_bp = { 1 = 8000, 2 = 7000, 3 = 6000 }

[serious_illness]
med_types = ["21", "14"]
threshold = "20000.00"
segments = [["100000.00", 6000], ["none", 7000]]
annual_cap = "400000.00"

[serious_illness.category.tekun]
threshold = "10000.00"
segments = [["100000.00", 6500], ["none", 7500]]
annual_cap = "none"

[serious_illness.category.dibian]
annual_cap = "none"

[assistance.category.tekun]
ratio_bp = 10000
annual_limit = "none"

[assistance.category.dibao]
ratio_bp = 8000
annual_limit = "150000.00"
outpatient_limit = "20000.00"

[supplementary]
deductible = "20000.00"
ratio_bp = 8000
annual_cap = "1000000.00"
out_of_range_deductible = "20000.00"
out_of_range_ratio_bp = 5000

[supplementary.category.tekun]
deductible = "0.00"
out_of_range_deductible = "0.00"

[charity]
categories = ["tekun", "dibao", "dibian", "disabled", "illness_poverty"]
threshold = "50000.00"
ratio_bp = 0
annual_cap = "0.00"
"""


def variant(old: str, new: str, text: str = EXAMPLE) -> bytes:
    assert old in text, old
    return text.replace(old, new, 1).encode()


def policy_error(raw: bytes) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(raw)
    return info.value


# -- the happy path ---------------------------------------------------------------------------


def test_the_example_policy_parses_into_fen_and_basis_points():
    p = parse_policy(EXAMPLE.encode())
    assert (p.region, p.year, p.name) == ("330109", 2023, "Example district 2023")
    assert p.order == DEFAULT_ORDER
    assert p.preselfpay_in_base is False
    b = p.basic["390"]
    assert b.annual_cap == 50_000_000
    assert b.outpatient_annual_cap == 200_000
    assert b.chronic_outpatient_bonus == 50_000
    assert b.med_types["21"].deductible == 80_000
    assert b.med_types["21"].deductible_scope == "per_visit"
    assert b.med_types["21"].ratio_bp == {1: 9000, 2: 8000, 3: 7000}
    assert b.med_types["11"].deductible_scope == "annual"
    assert p.basic["310"].med_types["11"].ratio_bp[3] == 6000


def test_the_content_hash_is_the_sha256_of_the_raw_bytes():
    raw = EXAMPLE.encode()
    assert parse_policy(raw).content_hash == hashlib.sha256(raw).hexdigest()
    assert parse_policy(raw + b"\n# comment\n").content_hash != parse_policy(raw).content_hash


def test_serious_illness_segments_and_none_caps():
    si = parse_policy(EXAMPLE.encode()).serious_illness
    assert si is not None
    assert si.med_types == frozenset({"21", "14"})
    assert si.default == SeriousIllnessTerms(
        threshold=2_000_000, segments=((10_000_000, 6000), (None, 7000)), annual_cap=40_000_000
    )
    assert si.terms_for("tekun") == SeriousIllnessTerms(
        threshold=1_000_000, segments=((10_000_000, 6500), (None, 7500)), annual_cap=None
    )


def test_a_category_override_inherits_every_key_it_does_not_set():
    si = parse_policy(EXAMPLE.encode()).serious_illness
    assert si is not None
    dibian = si.terms_for("dibian")
    assert dibian.threshold == 2_000_000
    assert dibian.segments == si.default.segments
    assert dibian.annual_cap is None
    assert si.terms_for("none") == si.default
    assert si.terms_for("dibao") == si.default


def test_assistance_terms_default_deductible_zero_and_no_outpatient_limit():
    p = parse_policy(EXAMPLE.encode())
    assert p.assistance["tekun"] == AssistanceTerms(
        ratio_bp=10000, deductible=0, annual_limit=None, outpatient_limit=None
    )
    assert p.assistance["dibao"] == AssistanceTerms(
        ratio_bp=8000, deductible=0, annual_limit=15_000_000, outpatient_limit=2_000_000
    )
    assert "none" not in p.assistance


def test_supplementary_overrides_inherit_from_the_default():
    s = parse_policy(EXAMPLE.encode()).supplementary
    assert s is not None
    assert s.default == SupplementaryTerms(
        deductible=2_000_000,
        ratio_bp=8000,
        annual_cap=100_000_000,
        out_of_range_deductible=2_000_000,
        out_of_range_ratio_bp=5000,
    )
    assert s.terms_for("tekun") == SupplementaryTerms(
        deductible=0,
        ratio_bp=8000,
        annual_cap=100_000_000,
        out_of_range_deductible=0,
        out_of_range_ratio_bp=5000,
    )
    assert s.terms_for("dibao") == s.default


def test_supplementary_without_out_of_range_keys_has_no_out_of_range_part():
    raw = variant('out_of_range_deductible = "20000.00"\nout_of_range_ratio_bp = 5000\n', "")
    raw = raw.replace(b'out_of_range_deductible = "0.00"\n', b"")
    s = parse_policy(raw).supplementary
    assert s is not None
    assert s.default.out_of_range_ratio_bp is None
    assert s.default.out_of_range_deductible == 0


def test_charity_is_parsed():
    assert parse_policy(EXAMPLE.encode()).charity == Charity(
        categories=frozenset({"tekun", "dibao", "dibian", "disabled", "illness_poverty"}),
        threshold=5_000_000,
        ratio_bp=0,
        annual_cap=0,
    )


def test_order_defaults_to_the_spec_order_and_preselfpay_flag_to_false():
    raw = variant(
        'order = ["basic", "serious_illness", "assistance", "supplementary", "charity"]\npreselfpay_in_base = false\n',
        "",
    )
    p = parse_policy(raw)
    assert p.order == ("basic", "serious_illness", "assistance", "supplementary", "charity")
    assert p.preselfpay_in_base is False


def test_order_may_drop_or_reorder_tiers():
    p = parse_policy(variant('"assistance", "supplementary", "charity"]', '"charity"]'))
    assert p.order == ("basic", "serious_illness", "charity")
    p = parse_policy(
        variant(
            'order = ["basic", "serious_illness", "assistance", "supplementary", "charity"]',
            'order = ["charity", "supplementary", "assistance", "serious_illness", "basic"]',
        )
    )
    assert p.order[0] == "charity"


def test_tier_sections_are_optional():
    text = EXAMPLE.split("[serious_illness]")[0]
    p = parse_policy(text.encode())
    assert p.serious_illness is None
    assert p.supplementary is None
    assert p.charity is None
    assert dict(p.assistance) == {}


def test_the_example_policy_file_parses():
    from pathlib import Path

    from tests.conftest import EXAMPLES

    path = EXAMPLES / "policy-330109-2023.toml"
    p = parse_policy(Path(path).read_bytes())
    assert p.region == "330109"
    assert set(p.assistance) == {"tekun", "dibao", "disabled", "dibian", "illness_poverty"}


# -- every kind of bad key is named -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        # ill-typed amounts and caps
        ('annual_cap = "500000.00"', 'annual_cap = "lots"', "basic.390.annual_cap"),
        ('annual_cap = "500000.00"', "annual_cap = 500000.0", "basic.390.annual_cap"),
        ('annual_cap = "500000.00"', 'annual_cap = "500000.005"', "basic.390.annual_cap"),
        ('annual_cap = "500000.00"', 'annual_cap = "-1.00"', "basic.390.annual_cap"),
        ('deductible = "800.00"', 'deductible = "none"', "basic.390.med_type.21.deductible"),
        ('deductible = "800.00"', "deductible = 800", "basic.390.med_type.21.deductible"),
        (
            'chronic_outpatient_bonus = "500.00"',
            "chronic_outpatient_bonus = true",
            "basic.390.chronic_outpatient_bonus",
        ),
        # missing keys
        ('annual_cap = "500000.00"\n', "", "basic.390.annual_cap"),
        ('deductible = "800.00"\n', "", "basic.390.med_type.21.deductible"),
        ('region = "330109"\n', "", "region"),
        ("year = 2023\n", "", "year"),
        # scopes, ratios, levels
        (
            'deductible_scope = "per_visit"',
            'deductible_scope = "weekly"',
            "basic.390.med_type.21.deductible_scope",
        ),
        ("1 = 9000, 2 = 8000, 3 = 7000", "1 = 9000, 2 = 8000", "basic.390.med_type.21.ratio_bp.3"),
        (
            "1 = 9000, 2 = 8000, 3 = 7000",
            "1 = 9000, 2 = 8000, 3 = 7000, 4 = 1",
            "basic.390.med_type.21.ratio_bp.4",
        ),
        (
            "1 = 9000, 2 = 8000, 3 = 7000",
            "1 = 10001, 2 = 8000, 3 = 7000",
            "basic.390.med_type.21.ratio_bp.1",
        ),
        (
            "1 = 9000, 2 = 8000, 3 = 7000",
            "1 = -1, 2 = 8000, 3 = 7000",
            "basic.390.med_type.21.ratio_bp.1",
        ),
        (
            "1 = 9000, 2 = 8000, 3 = 7000",
            '1 = "90%", 2 = 8000, 3 = 7000',
            "basic.390.med_type.21.ratio_bp.1",
        ),
        ("ratio_bp = 10000", "ratio_bp = 10000.0", "assistance.category.tekun.ratio_bp"),
        ("ratio_bp = 8000\nannual_cap", "ratio_bp = 80000\nannual_cap", "supplementary.ratio_bp"),
        ("ratio_bp = 0", "ratio_bp = true", "charity.ratio_bp"),
        # unknown keys anywhere
        ('name = "Example', 'nmae = "Example', "nmae"),
        ("[basic.390]\n", '[basic.390]\nanual_cap = "1.00"\n', "basic.390.anual_cap"),
        ("[basic.390]", "[basic.391]", "basic.391"),
        ("[basic.390.med_type.14]", "[basic.390.med_type.15]", "basic.390.med_type.15"),
        (
            'deductible_scope = "per_visit"',
            'deductible_scope = "per_visit"\nratio = 1',
            "basic.390.med_type.21.ratio",
        ),
        ('threshold = "20000.00"', 'threshhold = "20000.00"', "serious_illness.threshhold"),
        (
            "[serious_illness.category.dibian]",
            "[serious_illness.category.dibien]",
            "serious_illness.category.dibien",
        ),
        (
            "[serious_illness.category.dibian]\n",
            "[serious_illness.category.dibian]\nratio_bp = 1\n",
            "serious_illness.category.dibian.ratio_bp",
        ),
        ("[assistance.category.tekun]", "[assistance.category.poor]", "assistance.category.poor"),
        ("[assistance.category.tekun]", "[assistance.category.none]", "assistance.category.none"),
        ("[assistance.category.tekun]", "[assistance.tekun]", "assistance.tekun"),
        (
            'annual_limit = "none"',
            'annual_limit = "none"\noutpatient_cap = "1.00"',
            "assistance.category.tekun.outpatient_cap",
        ),
        ('annual_limit = "none"\n', "", "assistance.category.tekun.annual_limit"),
        (
            "[supplementary.category.tekun]",
            "[supplementary.category.x]",
            "supplementary.category.x",
        ),
        (
            "out_of_range_ratio_bp = 5000",
            'out_of_range_ratio_bp = 5000\nout_of_range_cap = "1.00"',
            "supplementary.out_of_range_cap",
        ),
        ('categories = ["tekun",', 'categories = ["rich",', "charity.categories"),
        (
            'categories = ["tekun", "dibao", "dibian", "disabled", "illness_poverty"]',
            'categories = "tekun"',
            "charity.categories",
        ),
        ('threshold = "50000.00"', 'threshold = "none"', "charity.threshold"),
        ('annual_cap = "0.00"', "cap = 0", "charity.cap"),
        # top-level values
        ('region = "330109"', 'region = "33010"', "region"),
        ('region = "330109"', "region = 330109", "region"),
        ("year = 2023", 'year = "2023"', "year"),
        ("year = 2023", "year = true", "year"),
        ('name = "Example district 2023"', "name = 1", "name"),
        ("preselfpay_in_base = false", 'preselfpay_in_base = "no"', "preselfpay_in_base"),
        ('order = ["basic", "serious_illness"', 'order = ["basic", "serious"', "order"),
        ('order = ["basic", "serious_illness"', 'order = ["basic", "basic"', "order"),
        (
            'order = ["basic", "serious_illness", "assistance", "supplementary", "charity"]',
            'order = "basic"',
            "order",
        ),
        # serious-illness structure
        ('med_types = ["21", "14"]', 'med_types = ["21", "99"]', "serious_illness.med_types"),
        ('med_types = ["21", "14"]', 'med_types = "21"', "serious_illness.med_types"),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["100000.00", 6000], ["90000.00", 7000]]',
            "serious_illness.segments[1]",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["100000.00", 6000], ["100000.00", 7000]]',
            "serious_illness.segments[1]",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["none", 6000], ["200000.00", 7000]]',
            "serious_illness.segments[1]",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["10000.00", 6000], ["none", 7000]]',
            "serious_illness.segments",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["100000.00", 6000], ["none", 17000]]',
            "serious_illness.segments[1]",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["100000.00", 6000, 1]]',
            "serious_illness.segments[0]",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            "segments = []",
            "serious_illness.segments",
        ),
        (
            'segments = [["100000.00", 6000], ["none", 7000]]',
            'segments = [["lots", 6000]]',
            "serious_illness.segments[0]",
        ),
        (
            '[serious_illness.category.dibian]\nannual_cap = "none"',
            '[serious_illness.category.dibian]\nthreshold = "200000.00"',
            "serious_illness.category.dibian.threshold",
        ),
    ],
)
def test_a_bad_policy_names_the_offending_key(old, new, key):
    err = policy_error(variant(old, new))
    assert err.key == key, str(err)
    assert str(err).startswith(f"policy key '{key}': ")


def test_the_message_for_an_ill_typed_cap_says_what_was_expected():
    err = policy_error(variant('annual_cap = "500000.00"', "annual_cap = 5"))
    assert str(err) == ("policy key 'basic.390.annual_cap': expected a yuan amount string or \"none\"")


def test_non_utf8_bytes_are_a_policy_error_on_the_whole_file():
    err = policy_error(b'region = "\xff\xfe"\n')
    assert err.key == ""
    assert "UTF-8" in str(err)


def test_invalid_toml_is_a_policy_error_on_the_whole_file():
    err = policy_error(b"region = \n")
    assert err.key == ""
    assert str(err).startswith("policy: invalid TOML")


def test_a_policy_error_is_a_value_error_with_a_reason():
    err = policy_error(b"x = 1\n")
    assert isinstance(err, ValueError)
    assert err.reason == "invalid_policy"


def test_a_tier_section_that_is_not_a_table_is_named():
    err = policy_error(b'region = "330109"\nyear = 2023\nserious_illness = 1\n')
    assert err.key == "serious_illness"
    assert err.message == "expected a table"


def test_a_basic_section_must_have_both_schemes():
    start = EXAMPLE.index("[basic.310]")
    end = EXAMPLE.index("[serious_illness]")
    err = policy_error((EXAMPLE[:start] + EXAMPLE[end:]).encode())
    assert err.key == "basic.310"


def test_a_basic_scheme_must_have_every_med_type():
    start = EXAMPLE.index("[basic.390.med_type.14]")
    end = EXAMPLE.index("[basic.390.med_type.11]")
    err = policy_error((EXAMPLE[:start] + EXAMPLE[end:]).encode())
    assert err.key == "basic.390.med_type.14"


def test_bytes_are_required():
    with pytest.raises(TypeError):
        parse_policy(EXAMPLE)  # type: ignore[arg-type]
