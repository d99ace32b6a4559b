"""A claim line read into a `Claim` in one step when it has the plain shape nearly every line has.

`parse_claim(decode_line(raw))` decodes a line into a dict of Python values and then checks
each field with a call of its own, which a bulk run pays on every line. A line whose fields are
in their plain form (ids, yuan as "1234.56" strings, a date or a date and time, hosp_lv as a
JSON integer) is instead decoded by msgspec into `_PlainClaimLine`, its texts checked by one
pattern, and its amounts converted together. Anything else (a hospital level "3", a JSON number
as an amount, a bad line of any kind) takes the general path, which gives the same claim or
names what is wrong: the plain path accepts a subset of what the general path accepts, with the
same answer (a property test holds it to that).
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from core.money import AMOUNT_FEN_MAX
from core.records import (
    HOSP_LEVELS,
    LINE_BYTES_MAX,
    MED_TYPES,
    PAYEE_MEMBER,
    PAYEES,
    Claim,
    decode_line,
    is_identifier,
    parse_claim,
)

# The general path's checks of the nine fields every claim has, as one pattern over their texts
# joined by NUL (which none of them may hold, so a field with one in it cannot match): one
# regex call instead of nine. Amounts last, as one group.
_PLAIN_FIELDS = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}\x00){3}"  # setl_id, psn_no, fixmedins_code
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-2][0-9]:[0-5][0-9]:[0-5][0-9])?\x00"  # setl_time
    r"((?:[0-9]{1,15}\.[0-9]{2}\x00){4}[0-9]{1,15}\.[0-9]{2})"  # the five amounts, in yuan
)
_REGION = re.compile(r"[0-9]{6}")


class _PlainClaimLine(msgspec.Struct, forbid_unknown_fields=True):
    """SPEC 3.2's fields as JSON types (msgspec checks these in C; the texts are checked after).
    A field given as JSON null where the general path refuses it (use_acct, payee,
    mdtrtarea_admvs) fails here too: their defaults are not None."""

    setl_id: str
    psn_no: str
    fixmedins_code: str
    hosp_lv: int
    med_type: str
    setl_time: str
    medfee_sumamt: str
    fulamt_ownpay_amt: str
    overlmt_selfpay: str
    preselfpay_amt: str
    inscp_scp_amt: str
    use_acct: bool = True
    mdtrt_id: str | None = None
    medins_setl_id: str | None = None
    payee: str = "hospital"
    mdtrtarea_admvs: str | msgspec.UnsetType = msgspec.UNSET


_PLAIN = msgspec.json.Decoder(_PlainClaimLine)


def claim_of_line(raw: bytes) -> Claim:
    """The claim of one input line, or the `RecordRejected` naming what is wrong with it: the
    same answer as `parse_claim(decode_line(raw))`, faster for a line in the plain shape."""
    claim = _plain_claim(raw) if type(raw) is bytes and len(raw) <= LINE_BYTES_MAX else None
    return claim if claim is not None else parse_claim(decode_line(raw))


def _plain_claim(raw: bytes) -> Claim | None:
    """The claim of a line in the plain shape; None for any other line (the general path decides)."""
    try:
        line = _PLAIN.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    if not _other_fields_plain(line):
        return None
    matched = _PLAIN_FIELDS.fullmatch(
        f"{line.setl_id}\x00{line.psn_no}\x00{line.fixmedins_code}\x00{line.setl_time}\x00{line.medfee_sumamt}"
        f"\x00{line.fulamt_ownpay_amt}\x00{line.overlmt_selfpay}\x00{line.preselfpay_amt}\x00{line.inscp_scp_amt}"
    )
    if matched is None:
        return None
    try:
        setl_time = dt.date.fromisoformat(line.setl_time[:10])
        setl_clock = line.setl_time[11:] or None
        if setl_clock is not None:
            dt.time.fromisoformat(setl_clock)  # 24:00:00 and the like: the general path names it
    except ValueError:
        return None
    total, own, over, pre, scope = map(int, matched[1].replace(".", "").split("\x00"))  # fen: two decimals
    if total > AMOUNT_FEN_MAX or total != own + over + pre + scope:
        return None  # the general path names it (the total is the largest amount when they add up)
    return Claim(
        setl_id=line.setl_id,
        psn_no=line.psn_no,
        fixmedins_code=line.fixmedins_code,
        hosp_lv=line.hosp_lv,
        med_type=line.med_type,
        setl_time=setl_time,
        setl_clock=setl_clock,
        use_acct=line.use_acct,
        mdtrt_id=line.mdtrt_id,
        medins_setl_id=line.medins_setl_id,
        payee=PAYEE_MEMBER if line.payee == PAYEE_MEMBER else None,
        mdtrtarea_admvs=None if line.mdtrtarea_admvs is msgspec.UNSET else line.mdtrtarea_admvs,
        medfee_sumamt=total,
        fulamt_ownpay_amt=own,
        overlmt_selfpay=over,
        preselfpay_amt=pre,
        inscp_scp_amt=scope,
    )


def _other_fields_plain(line: _PlainClaimLine) -> bool:
    """The fields outside the joined pattern, as the general path would accept them."""
    return (
        line.hosp_lv in HOSP_LEVELS
        and line.med_type in MED_TYPES
        and line.payee in PAYEES
        and (line.mdtrt_id is None or is_identifier(line.mdtrt_id))
        and (line.medins_setl_id is None or is_identifier(line.medins_setl_id))
        and (line.mdtrtarea_admvs is msgspec.UNSET or _REGION.fullmatch(line.mdtrtarea_admvs) is not None)
    )
