"""`yibao claims settle` fuzzed end to end: whatever bytes arrive, every line gets one result in
order (a settlement or a rejection with a named reason), good lines among them settle, and the
command neither crashes nor prints a traceback."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.cli import main
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"
GOOD = {
    "setl_id": "Z", "psn_no": "FZ-1", "fixmedins_code": "H9", "hosp_lv": 2, "med_type": "11",
    "setl_time": "2023-05-01", "medfee_sumamt": "100.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
    "preselfpay_amt": "0.00", "inscp_scp_amt": "100.00",
}  # fmt: skip
REASON = re.compile(r"^[a-z][a-z0-9_]*$")
_serial = itertools.count(1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def lines(draw: st.DrawFn) -> tuple[bytes, bool]:
    """One input line and whether it is a good claim that must settle."""
    kind = draw(st.sampled_from(["good", "field", "missing", "extra", "bytes", "text"]))
    claim: dict[str, Any] = {**GOOD, "setl_id": f"FZ-{next(_serial)}"}
    if kind == "good":
        return json.dumps(claim).encode(), True
    if kind == "field":
        claim[draw(st.sampled_from(sorted(GOOD)))] = draw(json_values)
    elif kind == "missing":
        del claim[draw(st.sampled_from(sorted(GOOD)))]
    elif kind == "extra":
        claim[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in GOOD))] = draw(json_values)
    elif kind == "bytes":
        return draw(st.binary(max_size=200)).replace(b"\n", b" "), False
    else:
        return draw(st.text(max_size=200)).replace("\n", " ").encode("utf-8", "surrogatepass"), False
    return json.dumps(claim).encode(), False


@pytest.fixture(scope="module")
def env(database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "up"], env=env).exit_code == 0
    assert runner.invoke(main, ["policy", "load", str(POLICY)], env=env).exit_code == 0
    member = {"psn_no": "FZ-1", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none",
              "valid_from": "2023-01-01"}  # fmt: skip
    assert runner.invoke(main, ["members", "import", "-"], env=env, input=json.dumps(member) + "\n").exit_code == 0
    return env


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(lines(), min_size=1, max_size=12))
def test_every_fuzzed_line_gets_one_result_and_good_lines_settle(
    env: dict[str, str], batch: list[tuple[bytes, bool]]
) -> None:
    stdin = b"\n".join(raw for raw, _ in batch) + b"\n"
    result = CliRunner().invoke(main, ["claims", "settle", "-"], env=env, input=stdin)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == len(batch)
    for (raw, good), out in zip(batch, outputs, strict=True):
        if good:
            assert out["status"] == "settled", (raw, out)
        elif out["status"] == "rejected":
            assert REASON.match(out["reason"]), out
        else:  # a mutation that is still a valid claim (say, another hospital code)
            assert out["status"] == "settled", (raw, out)
