"""Policy parameters (政策参数): one TOML file per region and year, parsed and validated.

Every value is checked and every unknown key refused, so a typo in a policy file is an error that
names the dotted key, not a silently ignored parameter. Money is fen, ratios basis points, and
"none" for a cap or limit becomes `None` (unlimited).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import attrs

from core.budget import BudgetTerms
from core.errors import YibaoError
from core.ledger import FUNDS
from core.money import RATIO_BP_FULL, AmountError, parse_yuan

__all__ = [
    "ASSIST_CATEGORIES",
    "DEDUCTIBLE_SCOPES",
    "DEFAULT_ORDER",
    "DEFAULT_SERIOUS_ILLNESS_MED_TYPES",
    "HOSP_LEVELS",
    "INSUTYPES",
    "MED_TYPES",
    "TIER_NAMES",
    "AssistanceTerms",
    "BasicMedType",
    "BasicScheme",
    "Charity",
    "Policy",
    "PolicyError",
    "SeriousIllness",
    "SeriousIllnessTerms",
    "Supplementary",
    "SupplementaryTerms",
    "parse_policy",
]

TIER_NAMES: tuple[str, ...] = (
    "basic",
    "serious_illness",
    "assistance",
    "supplementary",
    "charity",
)
DEFAULT_ORDER: tuple[str, ...] = TIER_NAMES
ASSIST_CATEGORIES: tuple[str, ...] = (
    "none",
    "tekun",
    "dibao",
    "dibian",
    "disabled",
    "illness_poverty",
)
# Categories a policy may name in overrides, assistance and charity ("none" means no category).
_REAL_CATEGORIES = ASSIST_CATEGORIES[1:]
MED_TYPES: tuple[str, ...] = ("11", "14", "21")
INSUTYPES: tuple[str, ...] = ("310", "390")
HOSP_LEVELS: tuple[int, ...] = (1, 2, 3)
DEDUCTIBLE_SCOPES: tuple[str, ...] = ("per_visit", "annual")
DEFAULT_SERIOUS_ILLNESS_MED_TYPES: frozenset[str] = frozenset({"21", "14"})


class PolicyError(YibaoError, ValueError):
    """A policy file that cannot be used; `key` is the dotted key at fault ("" for the file)."""

    reason = "invalid_policy"

    def __init__(self, key: str, message: str) -> None:
        text = f"policy key '{key}': {message}" if key else f"policy: {message}"
        super().__init__(text)
        self.key = key
        self.message = message


# ---------------------------------------------------------------------------------------------
# Value types


@attrs.frozen
class BasicMedType:
    deductible: int
    deductible_scope: str  # "per_visit" | "annual"
    ratio_bp: Mapping[int, int]  # hospital level 1..3 -> basis points


@attrs.frozen
class BasicScheme:
    annual_cap: int | None
    outpatient_annual_cap: int | None
    chronic_outpatient_bonus: int
    med_types: Mapping[str, BasicMedType]


@attrs.frozen
class SeriousIllnessTerms:
    threshold: int
    segments: tuple[tuple[int | None, int], ...]  # (upper bound on B or None, ratio_bp)
    annual_cap: int | None


@attrs.frozen
class SeriousIllness:
    med_types: frozenset[str]
    default: SeriousIllnessTerms
    by_category: Mapping[str, SeriousIllnessTerms]

    def terms_for(self, category: str) -> SeriousIllnessTerms:
        return self.by_category.get(category, self.default)

    def terms_name(self, category: str) -> str:
        return category if category in self.by_category else "default"


@attrs.frozen
class AssistanceTerms:
    ratio_bp: int
    deductible: int = 0
    annual_limit: int | None = None
    outpatient_limit: int | None = None


@attrs.frozen
class SupplementaryTerms:
    deductible: int
    ratio_bp: int
    annual_cap: int | None
    out_of_range_deductible: int = 0
    out_of_range_ratio_bp: int | None = None


@attrs.frozen
class Supplementary:
    default: SupplementaryTerms
    by_category: Mapping[str, SupplementaryTerms]

    def terms_for(self, category: str) -> SupplementaryTerms:
        return self.by_category.get(category, self.default)

    def terms_name(self, category: str) -> str:
        return category if category in self.by_category else "default"


@attrs.frozen
class Charity:
    categories: frozenset[str]
    threshold: int
    ratio_bp: int
    annual_cap: int | None


MATERNITY_MED_TYPES: tuple[str, ...] = ("51", "52")  # 生育门诊, 生育住院


@attrs.frozen
class MaternityTerms:
    """What the maternity fund (510100) pays of an employee's maternity claim of one med_type:
    `ratio_bp` of the policy-range amount, up to `annual_cap` (fen) in the year."""

    ratio_bp: int
    annual_cap: int


@attrs.frozen
class Controls:
    """Finance controls: a reversal, correction or payment above `approval_above` (fen) waits for
    a second person's approval (复核); None: none needs one."""

    approval_above: int | None = None
    overdraft_allowed: frozenset[str] = frozenset()  # funds that may pay beyond their bank balance


@attrs.frozen
class Policy:
    region: str
    year: int
    name: str
    order: tuple[str, ...]
    preselfpay_in_base: bool
    basic: Mapping[str, BasicScheme]
    serious_illness: SeriousIllness | None
    assistance: Mapping[str, AssistanceTerms]
    supplementary: Supplementary | None
    charity: Charity | None
    content_hash: str
    # insutype -> fen per insured member moved from the scheme's pooling fund to its serious-illness
    # fund each year (大病保险筹资, `yibao funds finance-serious-illness`)
    serious_illness_per_capita: Mapping[str, int] = attrs.field(factory=dict)
    controls: Controls = Controls()
    maternity: Mapping[str, MaternityTerms] = attrs.field(factory=dict)  # med_type -> terms
    budget: BudgetTerms | None = None  # year-end settlement of hospitals' total budgets (core.budget)


# ---------------------------------------------------------------------------------------------
# Parsing helpers: each takes the table, the key and the dotted prefix for error messages.


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_keys(table: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise PolicyError(
                _join(prefix, key),
                f"unknown key (expected one of: {', '.join(allowed)})",
            )


def _table(table: Mapping[str, Any], key: str, prefix: str, *, required: bool = True) -> Any:
    dotted = _join(prefix, key)
    if key not in table:
        if required:
            raise PolicyError(dotted, "missing")
        return None
    value = table[key]
    if not isinstance(value, dict):
        raise PolicyError(dotted, "expected a table")
    return value


def _present(table: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in table:
        raise PolicyError(_join(prefix, key), "missing")
    return table[key]


def _yuan_value(value: Any, dotted: str, *, allow_none: bool) -> int | None:
    expected = 'a yuan amount string or "none"' if allow_none else "a yuan amount string"
    if allow_none and value == "none":
        return None
    if not isinstance(value, str):
        raise PolicyError(dotted, f"expected {expected}")
    try:
        return parse_yuan(value)
    except AmountError as exc:
        raise PolicyError(dotted, f"expected {expected} ({exc.reason}: {value!r})") from exc


def _amount(table: Mapping[str, Any], key: str, prefix: str, default: int | None = None) -> int:
    if key not in table and default is not None:
        return default
    value = _yuan_value(_present(table, key, prefix), _join(prefix, key), allow_none=False)
    assert value is not None
    return value


def _cap(table: Mapping[str, Any], key: str, prefix: str, *, optional: bool = False) -> int | None:
    """A cap or limit: a yuan string or "none" (unlimited). Optional caps default to none."""
    if optional and key not in table:
        return None
    return _yuan_value(_present(table, key, prefix), _join(prefix, key), allow_none=True)


def _ratio_value(value: Any, dotted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(dotted, "expected a ratio in basis points (an integer 0..10000)")
    if not 0 <= value <= RATIO_BP_FULL:
        raise PolicyError(dotted, f"ratio {value} outside 0..10000 basis points")
    return value


def _ratio(table: Mapping[str, Any], key: str, prefix: str) -> int:
    return _ratio_value(_present(table, key, prefix), _join(prefix, key))


def _category_key(category: str, dotted: str) -> str:
    if category not in _REAL_CATEGORIES:
        raise PolicyError(
            dotted,
            f"unknown assistance category (expected one of: {', '.join(_REAL_CATEGORIES)})",
        )
    return category


# ---------------------------------------------------------------------------------------------
# Sections

_BASIC_SCHEME_KEYS = ("annual_cap", "outpatient_annual_cap", "chronic_outpatient_bonus", "med_type")
_BASIC_MED_TYPE_KEYS = ("deductible", "deductible_scope", "ratio_bp")


def _parse_basic(raw: Mapping[str, Any] | None) -> dict[str, BasicScheme]:
    if raw is None:
        return {}
    _check_keys(raw, "basic", INSUTYPES)
    schemes: dict[str, BasicScheme] = {}
    for insutype in INSUTYPES:
        prefix = f"basic.{insutype}"
        table = _table(raw, insutype, "basic")
        _check_keys(table, prefix, _BASIC_SCHEME_KEYS)
        med_table = _table(table, "med_type", prefix)
        _check_keys(med_table, f"{prefix}.med_type", MED_TYPES)
        med_types: dict[str, BasicMedType] = {}
        for med_type in MED_TYPES:
            mprefix = f"{prefix}.med_type.{med_type}"
            mt = _table(med_table, med_type, f"{prefix}.med_type")
            _check_keys(mt, mprefix, _BASIC_MED_TYPE_KEYS)
            scope = _present(mt, "deductible_scope", mprefix)
            if scope not in DEDUCTIBLE_SCOPES:
                raise PolicyError(f"{mprefix}.deductible_scope", 'expected "per_visit" or "annual"')
            ratios = _table(mt, "ratio_bp", mprefix)
            rprefix = f"{mprefix}.ratio_bp"
            _check_keys(ratios, rprefix, tuple(str(lv) for lv in HOSP_LEVELS))
            ratio_bp = {lv: _ratio(ratios, str(lv), rprefix) for lv in HOSP_LEVELS}
            med_types[med_type] = BasicMedType(
                deductible=_amount(mt, "deductible", mprefix),
                deductible_scope=scope,
                ratio_bp=ratio_bp,
            )
        schemes[insutype] = BasicScheme(
            annual_cap=_cap(table, "annual_cap", prefix),
            outpatient_annual_cap=_cap(table, "outpatient_annual_cap", prefix),
            chronic_outpatient_bonus=_amount(table, "chronic_outpatient_bonus", prefix, default=0),
            med_types=med_types,
        )
    return schemes


def _parse_segments(value: Any, dotted: str) -> tuple[tuple[int | None, int], ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(dotted, 'expected a non-empty list of [upper bound or "none", ratio_bp]')
    segments: list[tuple[int | None, int]] = []
    for i, item in enumerate(value):
        idotted = f"{dotted}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise PolicyError(idotted, 'expected [upper bound or "none", ratio_bp]')
        bound = _yuan_value(item[0], idotted, allow_none=True)
        ratio = _ratio_value(item[1], idotted)
        if segments and segments[-1][0] is None:
            raise PolicyError(idotted, 'only the last segment may be open-ended ("none")')
        if segments and bound is not None and bound <= segments[-1][0]:  # type: ignore[operator]
            raise PolicyError(idotted, "segment upper bounds must increase")
        segments.append((bound, ratio))
    return tuple(segments)


_SI_KEYS = ("med_types", "threshold", "segments", "annual_cap", "category")
_SI_TERM_KEYS = ("threshold", "segments", "annual_cap")


def _si_terms(table: Mapping[str, Any], prefix: str, base: SeriousIllnessTerms | None) -> SeriousIllnessTerms:
    if base is not None and "threshold" not in table:
        threshold = base.threshold
    else:
        threshold = _amount(table, "threshold", prefix)
    if base is not None and "segments" not in table:
        segments = base.segments
    else:
        segments = _parse_segments(_present(table, "segments", prefix), _join(prefix, "segments"))
    if base is not None and "annual_cap" not in table:
        annual_cap = base.annual_cap
    else:
        annual_cap = _cap(table, "annual_cap", prefix)
    first = segments[0][0]
    if first is not None and first <= threshold:
        key = "segments" if "segments" in table else "threshold"
        raise PolicyError(_join(prefix, key), "the first segment's upper bound must be above the threshold")
    return SeriousIllnessTerms(threshold=threshold, segments=segments, annual_cap=annual_cap)


def _parse_serious_illness(raw: Mapping[str, Any] | None) -> SeriousIllness | None:
    if raw is None:
        return None
    prefix = "serious_illness"
    _check_keys(raw, prefix, _SI_KEYS)
    if "med_types" in raw:
        mts = raw["med_types"]
        dotted = f"{prefix}.med_types"
        if not isinstance(mts, list) or not all(isinstance(m, str) for m in mts):
            raise PolicyError(dotted, "expected a list of med_type strings")
        for m in mts:
            if m not in MED_TYPES:
                expected = ", ".join(MED_TYPES)
                raise PolicyError(dotted, f"unknown med_type {m!r} (expected {expected})")
        if len(set(mts)) != len(mts):
            raise PolicyError(dotted, "med_type listed twice")
        med_types = frozenset(mts)
    else:
        med_types = DEFAULT_SERIOUS_ILLNESS_MED_TYPES
    default = _si_terms(raw, prefix, None)
    by_category: dict[str, SeriousIllnessTerms] = {}
    cats = _table(raw, "category", prefix, required=False) or {}
    for cat, table in cats.items():
        cprefix = f"{prefix}.category.{cat}"
        _category_key(cat, cprefix)
        if not isinstance(table, dict):
            raise PolicyError(cprefix, "expected a table")
        _check_keys(table, cprefix, _SI_TERM_KEYS)
        by_category[cat] = _si_terms(table, cprefix, default)
    return SeriousIllness(med_types=med_types, default=default, by_category=by_category)


_ASSISTANCE_TERM_KEYS = ("ratio_bp", "deductible", "annual_limit", "outpatient_limit")


def _parse_assistance(raw: Mapping[str, Any] | None) -> dict[str, AssistanceTerms]:
    if raw is None:
        return {}
    _check_keys(raw, "assistance", ("category",))
    cats = _table(raw, "category", "assistance", required=False) or {}
    out: dict[str, AssistanceTerms] = {}
    for cat, table in cats.items():
        prefix = f"assistance.category.{cat}"
        _category_key(cat, prefix)
        if not isinstance(table, dict):
            raise PolicyError(prefix, "expected a table")
        _check_keys(table, prefix, _ASSISTANCE_TERM_KEYS)
        out[cat] = AssistanceTerms(
            ratio_bp=_ratio(table, "ratio_bp", prefix),
            deductible=_amount(table, "deductible", prefix, default=0),
            annual_limit=_cap(table, "annual_limit", prefix),
            outpatient_limit=_cap(table, "outpatient_limit", prefix, optional=True),
        )
    return out


_SUPP_TERM_KEYS = (
    "deductible",
    "ratio_bp",
    "annual_cap",
    "out_of_range_deductible",
    "out_of_range_ratio_bp",
)


def _supp_terms(table: Mapping[str, Any], prefix: str, base: SupplementaryTerms | None) -> SupplementaryTerms:
    def inherited(key: str) -> bool:
        return base is not None and key not in table

    deductible = base.deductible if base and inherited("deductible") else _amount(table, "deductible", prefix)
    ratio_bp = base.ratio_bp if base and inherited("ratio_bp") else _ratio(table, "ratio_bp", prefix)
    annual_cap = base.annual_cap if base and inherited("annual_cap") else _cap(table, "annual_cap", prefix)
    if base and inherited("out_of_range_deductible"):
        oor_deductible = base.out_of_range_deductible
    else:
        oor_deductible = _amount(table, "out_of_range_deductible", prefix, default=0)
    if base and inherited("out_of_range_ratio_bp"):
        oor_ratio: int | None = base.out_of_range_ratio_bp
    elif "out_of_range_ratio_bp" in table:
        oor_ratio = _ratio(table, "out_of_range_ratio_bp", prefix)
    else:
        oor_ratio = None
    return SupplementaryTerms(
        deductible=deductible,
        ratio_bp=ratio_bp,
        annual_cap=annual_cap,
        out_of_range_deductible=oor_deductible,
        out_of_range_ratio_bp=oor_ratio,
    )


def _parse_supplementary(raw: Mapping[str, Any] | None) -> Supplementary | None:
    if raw is None:
        return None
    prefix = "supplementary"
    _check_keys(raw, prefix, (*_SUPP_TERM_KEYS, "category"))
    default = _supp_terms(raw, prefix, None)
    by_category: dict[str, SupplementaryTerms] = {}
    cats = _table(raw, "category", prefix, required=False) or {}
    for cat, table in cats.items():
        cprefix = f"{prefix}.category.{cat}"
        _category_key(cat, cprefix)
        if not isinstance(table, dict):
            raise PolicyError(cprefix, "expected a table")
        _check_keys(table, cprefix, _SUPP_TERM_KEYS)
        by_category[cat] = _supp_terms(table, cprefix, default)
    return Supplementary(default=default, by_category=by_category)


def _parse_charity(raw: Mapping[str, Any] | None) -> Charity | None:
    if raw is None:
        return None
    prefix = "charity"
    _check_keys(raw, prefix, ("categories", "threshold", "ratio_bp", "annual_cap"))
    cats = _present(raw, "categories", prefix)
    dotted = f"{prefix}.categories"
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise PolicyError(dotted, "expected a list of assistance category names")
    for c in cats:
        _category_key(c, dotted)
    return Charity(
        categories=frozenset(cats),
        threshold=_amount(raw, "threshold", prefix),
        ratio_bp=_ratio(raw, "ratio_bp", prefix),
        annual_cap=_cap(raw, "annual_cap", prefix),
    )


def _parse_financing(raw: Mapping[str, Any] | None) -> dict[str, int]:
    if raw is None:
        return {}
    _check_keys(raw, "financing", ("serious_illness_per_capita",))
    prefix = "financing.serious_illness_per_capita"
    per_capita = _table(raw, "serious_illness_per_capita", "financing", required=False) or {}
    _check_keys(per_capita, prefix, INSUTYPES)
    return {insutype: _amount(per_capita, insutype, prefix) for insutype in sorted(per_capita)}


def _parse_controls(raw: Mapping[str, Any] | None) -> Controls:
    if raw is None:
        return Controls()
    _check_keys(raw, "controls", ("approval_above", "overdraft_allowed"))
    funds = raw.get("overdraft_allowed", [])
    if not isinstance(funds, list) or not all(isinstance(f, str) and f in FUNDS for f in funds):
        raise PolicyError("controls.overdraft_allowed", f"expected a list of fund codes ({', '.join(FUNDS)})")
    return Controls(
        approval_above=_cap(raw, "approval_above", "controls", optional=True), overdraft_allowed=frozenset(funds)
    )


def _parse_maternity(raw: Mapping[str, Any] | None) -> dict[str, MaternityTerms]:
    if raw is None:
        return {}
    _check_keys(raw, "maternity", ("med_type",))
    types = _table(raw, "med_type", "maternity", required=False) or {}
    _check_keys(types, "maternity.med_type", MATERNITY_MED_TYPES)
    terms = {}
    for med_type in sorted(types):
        prefix = f"maternity.med_type.{med_type}"
        table = _table(types, med_type, "maternity.med_type")
        _check_keys(table, prefix, ("ratio_bp", "annual_cap"))
        terms[med_type] = MaternityTerms(_ratio(table, "ratio_bp", prefix), _amount(table, "annual_cap", prefix))
    return terms


def _parse_budget(raw: Mapping[str, Any] | None) -> BudgetTerms | None:
    if raw is None:
        return None
    keys = ("surplus_kept_bp", "overspend_shared_bp", "overspend_shared_up_to_bp")
    _check_keys(raw, "budget", keys)
    for key in keys:
        _present(raw, key, "budget")
    return BudgetTerms(*(_ratio(raw, key, "budget") for key in keys))


_TOP_KEYS = (
    "controls",
    "region",
    "year",
    "name",
    "order",
    "preselfpay_in_base",
    "basic",
    "serious_illness",
    "assistance",
    "supplementary",
    "charity",
    "financing",
    "controls",
    "maternity",
    "budget",
)


def parse_policy(raw: bytes) -> Policy:
    """Parse and validate a policy file; raise `PolicyError` naming the offending key."""
    if not isinstance(raw, bytes | bytearray):
        raise TypeError("parse_policy takes the raw bytes of the file")
    raw = bytes(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError("", f"not UTF-8 text (byte {exc.start})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("", f"invalid TOML: {exc}") from exc

    _check_keys(doc, "", _TOP_KEYS)

    region = _present(doc, "region", "")
    if not isinstance(region, str) or re.fullmatch(r"[0-9]{6}", region) is None:
        raise PolicyError("region", "expected a 6-digit region code string")
    year = _present(doc, "year", "")
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        raise PolicyError("year", "expected a year (integer 1900..2999)")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise PolicyError("name", "expected a string")

    order_raw = doc.get("order", list(DEFAULT_ORDER))
    if not isinstance(order_raw, list) or not all(isinstance(t, str) for t in order_raw):
        raise PolicyError("order", "expected a list of tier names")
    for t in order_raw:
        if t not in TIER_NAMES:
            raise PolicyError("order", f"unknown tier {t!r} (expected {', '.join(TIER_NAMES)})")
    if len(set(order_raw)) != len(order_raw):
        raise PolicyError("order", "tier listed twice")

    flag = doc.get("preselfpay_in_base", False)
    if not isinstance(flag, bool):
        raise PolicyError("preselfpay_in_base", "expected true or false")

    return Policy(
        region=region,
        year=year,
        name=name,
        order=tuple(order_raw),
        preselfpay_in_base=flag,
        basic=_parse_basic(_table(doc, "basic", "", required=False)),
        serious_illness=_parse_serious_illness(_table(doc, "serious_illness", "", required=False)),
        assistance=_parse_assistance(_table(doc, "assistance", "", required=False)),
        supplementary=_parse_supplementary(_table(doc, "supplementary", "", required=False)),
        charity=_parse_charity(_table(doc, "charity", "", required=False)),
        content_hash=hashlib.sha256(raw).hexdigest(),
        serious_illness_per_capita=_parse_financing(_table(doc, "financing", "", required=False)),
        controls=_parse_controls(_table(doc, "controls", "", required=False)),
        maternity=_parse_maternity(_table(doc, "maternity", "", required=False)),
        budget=_parse_budget(_table(doc, "budget", "", required=False)),
    )
