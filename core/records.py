"""Input records (one JSON object per line) and their validation into typed, fen-valued facts.

Every problem with a line is a `RecordRejected` with a named `reason`, so that a bad line is
reported with its line number and everything around it still goes through. Amounts are parsed
from the JSON text exactly (numbers become Decimal, never float).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, overload

import attrs
import msgspec

from core.errors import YibaoError
from core.institution import INSTITUTION_TYPES, Institution
from core.ledger import CONTRIBUTION_SOURCES, FISCAL_SUBSIDY, FUNDS
from core.money import AmountError, format_yuan, parse_yuan

LINE_BYTES_MAX = 64 * 1024  # a claim is a few hundred bytes; anything this long is not a claim
ID_CHARS_MAX = 64
ASSIST_CATEGORIES = ("none", "tekun", "dibao", "dibian", "disabled", "illness_poverty")
INSUTYPES = ("310", "390")
# 41 定点药店购药 (a pharmacy purchase, settled under the ordinary outpatient rules); 51 生育门诊 and
# 52 生育住院 (core.tiers.compute_maternity)
MED_TYPES = ("11", "14", "21", "41", "51", "52")
PAYEE_MEMBER = "member"
PAYEES = ("hospital", PAYEE_MEMBER)
HOSP_LEVELS = (1, 2, 3)
FUND_CODES = FUNDS  # a contribution may go to any of the funds
# Matched whole (`fullmatch`): `$` would also match before a final line end, and let "P1\n" through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_REGION = re.compile(r"[0-9]{6}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-2][0-9]:[0-5][0-9]:[0-5][0-9])")
_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)
_SORTED_KEYS = msgspec.json.Encoder(order="sorted")  # made once: `msgspec.json.encode(order=...)` makes one a call


class RecordRejected(YibaoError):
    """A line that cannot be accepted; `reason` is its name, the message says where."""

    reason = "invalid_record"


def _fail(reason: str, message: str) -> RecordRejected:
    return RecordRejected(message, reason=reason)


def insured_elsewhere(psn_no: str, region: str, on: dt.date) -> RecordRejected:
    """The refusal of a member record that would move a member to another region (SPEC 5)."""
    return _fail(
        "insured_in_other_region",
        f"member {psn_no} is insured in region {region} on {on.isoformat()}: "
        "only a relationship transfer (`yibao transfers start`) moves a member to another region",
    )


class CutLine(bytes):
    """The first bytes of a line too long to hold, as a reader hands it on, with the length of the
    whole line (`bytes_total`, without its line end), so that its rejection names the real length."""

    bytes_total: int

    def __new__(cls, head: bytes, bytes_total: int) -> CutLine:
        line = super().__new__(cls, head)
        line.bytes_total = bytes_total
        return line

    def __reduce__(self) -> tuple[Any, ...]:  # handed to worker processes whole
        return CutLine, (bytes(self), self.bytes_total)


def decode_line(raw: bytes) -> dict[str, Any]:
    """The JSON object of one line, or a named rejection."""
    length = raw.bytes_total if isinstance(raw, CutLine) else len(raw)
    if length > LINE_BYTES_MAX:
        raise _fail("line_too_long", f"line of {length} bytes exceeds {LINE_BYTES_MAX}")
    if not raw.strip():
        raise _fail("empty_line", "the line is empty")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail("not_utf8", f"byte {exc.start} is not UTF-8") from None
    try:
        obj = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise _fail("not_json", f"not JSON: {exc}") from None
    except RecursionError:
        raise _fail("not_json", "not JSON: nested too deeply") from None
    except decimal.DecimalException:  # an exponent of 19 digits or more: no Decimal holds it
        raise _fail("not_json", "not JSON: a number too large or too small to read") from None
    if not isinstance(obj, dict):
        raise _fail("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def is_identifier(value: str) -> bool:
    """An id as every input file has them (psn_no, setl_id, ...): 1..64 letters, digits or _.:/-,
    starting with a letter or digit; nothing a CSV or a spreadsheet reads as more than text."""
    return 0 < len(value) <= ID_CHARS_MAX and _ID.fullmatch(value) is not None


@cache
def _field_sets(required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The names a record must have, and those it may have (worked out once per kind of record)."""
    return frozenset(required), frozenset(required + optional)


class _Fields:
    """Typed access to one decoded object with named rejections."""

    def __init__(self, obj: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]):
        needed, allowed = _field_sets(required, optional)
        keys = obj.keys()
        if not needed <= keys:
            raise _fail("missing_field", f"missing field {next(name for name in required if name not in obj)}")
        if not keys <= allowed:
            raise _fail("unknown_field", f"unknown field {min(keys - allowed)[:40]!r}")
        self.obj = obj

    @overload
    def identifier(self, name: str, *, optional: Literal[False] = False) -> str: ...
    @overload
    def identifier(self, name: str, *, optional: bool) -> str | None: ...
    def identifier(self, name: str, *, optional: bool = False) -> str | None:
        value = self.obj.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or len(value) > ID_CHARS_MAX or not _ID.fullmatch(value):
            raise _fail(f"bad_{name}", f"field {name}: expected an id of 1..{ID_CHARS_MAX} letters, digits or _.:/-")
        return value

    def choice(self, name: str, choices: tuple[Any, ...], *, default: Any = None) -> Any:
        value = self.obj.get(name, default)
        if isinstance(value, bool) or value not in choices:
            raise _fail(f"bad_{name}", f"field {name}: expected one of {', '.join(map(str, choices))}")
        return value

    def date(self, name: str) -> dt.date:
        value = self.obj.get(name)
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise _fail(f"bad_{name}", f"field {name}: expected a date YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise _fail(f"bad_{name}", f"field {name}: {value} is not a calendar date") from None

    def date_time(self, name: str) -> tuple[dt.date, str | None]:
        """A date, or a date and a time `HH:MM:SS` (the time kept as given, the date decides)."""
        value = self.obj.get(name)
        matched = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
        if matched is None:
            return self.date(name), None
        try:
            dt.time.fromisoformat(matched.group(2))
        except ValueError:
            raise _fail(f"bad_{name}", f"field {name}: {value} is not a time of day") from None
        return _Fields({name: matched.group(1)}, (name,), ()).date(name), matched.group(2)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.obj.get(name, default)
        if not isinstance(value, bool):
            raise _fail(f"bad_{name}", f"field {name}: expected true or false")
        return value

    def amount(self, name: str) -> int:
        try:
            return parse_yuan(self.obj.get(name))
        except AmountError as exc:
            raise _fail(exc.reason, f"field {name}: {exc}") from None

    def region(self, name: str) -> str:
        value = self.obj.get(name)
        if not isinstance(value, str) or not _REGION.fullmatch(value):
            raise _fail(f"bad_{name}", f"field {name}: expected a 6-digit region code")
        return value


@attrs.frozen
class Claim:
    """One settlement request (SPEC 3.2), amounts in fen."""

    setl_id: str
    psn_no: str
    fixmedins_code: str
    hosp_lv: int
    med_type: str
    setl_time: dt.date
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    use_acct: bool = True
    mdtrt_id: str | None = None  # national visit id (就诊ID)
    medins_setl_id: str | None = None  # the institution's settlement id (医药机构结算ID)
    setl_clock: str | None = None  # the time of day of setl_time, HH:MM:SS, when given
    payee: str | None = None  # "member": 零星报销, the member paid the hospital in full; None: the hospital
    mdtrtarea_admvs: str | None = None  # the region of treatment (就医地医保区划); None: the member's own

    @property
    def to_member(self) -> bool:
        return self.payee == PAYEE_MEMBER

    def treated_elsewhere(self, region: str) -> str | None:
        """The other region whose institution treated the member (异地就医), settled in `region`:
        None when treated at home, or paid to the member (零星报销), whoever treated them."""
        elsewhere = self.mdtrtarea_admvs
        return elsewhere if elsewhere is not None and elsewhere != region and not self.to_member else None

    @property
    def year(self) -> int:
        return self.setl_time.year

    def to_dict(self) -> dict[str, Any]:
        """Canonical form: what is stored in the event and hashed for duplicate detection. The
        optional national fields are keys only when given, so a claim without them hashes as
        it did before they existed (stores and files keep answering `duplicate`)."""
        day = self.setl_time.isoformat()
        out = {  # spelled out: once a claim, and a loop of getattr took twice as long
            "setl_id": self.setl_id,
            "psn_no": self.psn_no,
            "fixmedins_code": self.fixmedins_code,
            "hosp_lv": self.hosp_lv,
            "med_type": self.med_type,
            "setl_time": day if self.setl_clock is None else f"{day} {self.setl_clock}",
            "medfee_sumamt": self.medfee_sumamt,
            "fulamt_ownpay_amt": self.fulamt_ownpay_amt,
            "overlmt_selfpay": self.overlmt_selfpay,
            "preselfpay_amt": self.preselfpay_amt,
            "inscp_scp_amt": self.inscp_scp_amt,
            "use_acct": self.use_acct,
        }
        if self.mdtrt_id is not None:
            out["mdtrt_id"] = self.mdtrt_id
        if self.medins_setl_id is not None:
            out["medins_setl_id"] = self.medins_setl_id
        if self.payee is not None:
            out["payee"] = self.payee
        if self.mdtrtarea_admvs is not None:
            out["mdtrtarea_admvs"] = self.mdtrtarea_admvs
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Claim:
        values = dict(d)
        day, _, clock = values["setl_time"].partition(" ")
        values["setl_time"] = dt.date.fromisoformat(day)
        values["setl_clock"] = clock or None
        return cls(**values)

    @property
    def content_hash(self) -> str:
        return content_hash_of(self.to_dict())

    def amounts_add_up(self) -> bool:
        return self.medfee_sumamt == (
            self.fulamt_ownpay_amt + self.overlmt_selfpay + self.preselfpay_amt + self.inscp_scp_amt
        )


def content_hash_of(claim_dict: Mapping[str, Any]) -> str:
    """The duplicate-detection hash of a claim's canonical form (`Claim.to_dict`)."""
    return hashlib.sha256(_SORTED_KEYS.encode(claim_dict)).hexdigest()


_CLAIM_OPTIONAL_IDS = ("mdtrt_id", "medins_setl_id")
_CLAIM_OPTIONAL = (*_CLAIM_OPTIONAL_IDS, "payee", "mdtrtarea_admvs")
_CLAIM_AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")
_CLAIM_REQUIRED = ("setl_id", "psn_no", "fixmedins_code", "hosp_lv", "med_type", "setl_time", *_CLAIM_AMOUNTS)


Echoed = str | int | msgspec.Raw | None


def claim_ids(obj: Mapping[str, Any]) -> tuple[Echoed, Echoed]:
    """setl_id and psn_no of a (possibly bad) claim object, for the rejection line: as given
    when a string or a number (`123` is echoed as 123, `12345.0` as 12345.0), else None."""
    return _as_given(obj.get("setl_id")), _as_given(obj.get("psn_no"))


def _as_given(value: Any) -> Echoed:
    if isinstance(value, str) and len(value) <= ID_CHARS_MAX:
        return value
    if type(value) is int and abs(value) < 10**ID_CHARS_MAX:  # not a bool
        return value
    if isinstance(value, decimal.Decimal) and len(text := str(value)) <= ID_CHARS_MAX:
        return msgspec.Raw(text.encode())  # a JSON number with a fraction: as a number, never a float
    return None


def parse_claim(obj: Mapping[str, Any]) -> Claim:
    f = _Fields(obj, _CLAIM_REQUIRED, ("use_acct", *_CLAIM_OPTIONAL))
    hosp_lv = obj.get("hosp_lv")
    if isinstance(hosp_lv, str) and hosp_lv in ("1", "2", "3"):
        hosp_lv = int(hosp_lv)
    if type(hosp_lv) is not int or hosp_lv not in HOSP_LEVELS:
        raise _fail("bad_hosp_lv", "field hosp_lv: expected 1, 2 or 3")
    setl_time, setl_clock = f.date_time("setl_time")
    claim = Claim(
        setl_id=f.identifier("setl_id"),
        psn_no=f.identifier("psn_no"),
        fixmedins_code=f.identifier("fixmedins_code"),
        hosp_lv=hosp_lv,
        med_type=f.choice("med_type", MED_TYPES),
        setl_time=setl_time,
        setl_clock=setl_clock,
        use_acct=f.boolean("use_acct", True),
        mdtrt_id=f.identifier("mdtrt_id", optional=True),
        medins_setl_id=f.identifier("medins_setl_id", optional=True),
        payee=None if f.choice("payee", PAYEES, default="hospital") == "hospital" else PAYEE_MEMBER,
        mdtrtarea_admvs=f.region("mdtrtarea_admvs") if "mdtrtarea_admvs" in obj else None,
        **{name: f.amount(name) for name in _CLAIM_AMOUNTS},
    )
    if not claim.amounts_add_up():
        raise _fail(
            "amounts_do_not_add_up",
            f"medfee_sumamt {format_yuan(claim.medfee_sumamt)} is not the sum of its four parts",
        )
    return claim


@attrs.frozen
class MemberRecord:
    """One member record (SPEC 3.1); a later `valid_from` for the same psn_no is a change."""

    psn_no: str
    insuplc_admdvs: str
    insutype: str
    assist_category: str
    chronic: bool
    supplementary: tuple[int, ...]
    valid_from: dt.date
    family_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["valid_from"] = self.valid_from.isoformat()
        out["supplementary"] = list(self.supplementary)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemberRecord:
        values = dict(d)
        values["valid_from"] = dt.date.fromisoformat(values["valid_from"])
        values["supplementary"] = tuple(values["supplementary"])
        return cls(**values)


def parse_member(obj: Mapping[str, Any]) -> MemberRecord:
    f = _Fields(
        obj,
        ("psn_no", "insuplc_admdvs", "insutype", "assist_category", "valid_from"),
        ("chronic", "supplementary", "family_of"),
    )
    years = obj.get("supplementary", [])
    if not isinstance(years, list) or not all(
        isinstance(y, int) and not isinstance(y, bool) and 1900 <= y <= 2999 for y in years
    ):
        raise _fail("bad_supplementary", "field supplementary: expected a list of years")
    record = MemberRecord(
        psn_no=f.identifier("psn_no"),
        insuplc_admdvs=f.region("insuplc_admdvs"),
        insutype=f.choice("insutype", INSUTYPES),
        assist_category=f.choice("assist_category", ASSIST_CATEGORIES),
        chronic=f.boolean("chronic", False),
        supplementary=tuple(sorted(set(years))),
        valid_from=f.date("valid_from"),
        family_of=f.identifier("family_of", optional=True),
    )
    # A family_of naming the member themself is refused with the binding (bad_family_of), not with
    # the record: the member is kept (SPEC 3.1).
    return record


@attrs.frozen
class Contribution:
    """A contribution (征缴) to a fund; `acct_amount` of it goes to the individual account.
    `source` says who paid (ledger.CONTRIBUTION_SOURCES); None (a line without it, as every line
    was before sources) is contribution income whose payer is not told apart."""

    contrib_id: str
    psn_no: str
    fund: str
    paid_date: dt.date
    amount: int
    acct_amount: int
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["paid_date"] = self.paid_date.isoformat()
        if self.source is None:
            del out["source"]  # the canonical form (and hash) of a line without a source is as before
        return out

    @property
    def content_hash(self) -> str:
        return content_hash_of(self.to_dict())


def parse_contribution(obj: Mapping[str, Any]) -> Contribution:
    f = _Fields(obj, ("contrib_id", "psn_no", "fund", "paid_date", "amount"), ("acct_amount", "source"))
    contribution = Contribution(
        contrib_id=f.identifier("contrib_id"),
        psn_no=f.identifier("psn_no"),
        fund=f.choice("fund", FUND_CODES),
        paid_date=f.date("paid_date"),
        amount=f.amount("amount"),
        acct_amount=f.amount("acct_amount") if "acct_amount" in obj else 0,
        source=f.choice("source", CONTRIBUTION_SOURCES) if "source" in obj else None,
    )
    if contribution.acct_amount > contribution.amount:
        raise _fail("acct_amount_exceeds_amount", "field acct_amount: more than the contribution")
    if contribution.acct_amount and contribution.fund != "310100":
        raise _fail("bad_acct_amount", "field acct_amount: only employee contributions (310100) fund an account")
    if contribution.acct_amount and contribution.source == FISCAL_SUBSIDY:
        raise _fail("bad_acct_amount", "field acct_amount: a fiscal subsidy funds no individual account")
    return contribution


INSTITUTION_NAME_CHARS_MAX = 200


def parse_institution(obj: Mapping[str, Any]) -> Institution:
    """One line of a 定点 registry file (`institutions import`). A pharmacy has no hospital
    level: its `hosp_lv` may be absent (0)."""
    f = _Fields(obj, ("fixmedins_code", "fixmedins_name", "fixmedins_type", "admdvs", "valid_from"), ("hosp_lv",))
    name = obj["fixmedins_name"]
    if not isinstance(name, str) or not name.strip() or len(name) > INSTITUTION_NAME_CHARS_MAX:
        raise _fail(
            "bad_fixmedins_name", f"field fixmedins_name: expected a name of 1..{INSTITUTION_NAME_CHARS_MAX} characters"
        )
    kind = f.choice("fixmedins_type", INSTITUTION_TYPES)
    levels = (0, *HOSP_LEVELS) if kind == "pharmacy" else HOSP_LEVELS
    level = f.choice("hosp_lv", levels, default=0 if kind == "pharmacy" else None)
    return Institution(
        fixmedins_code=f.identifier("fixmedins_code"), fixmedins_name=name.strip(), fixmedins_type=kind,
        hosp_lv=level, admdvs=f.region("admdvs"), valid_from=f.date("valid_from").isoformat(),
    )  # fmt: skip
