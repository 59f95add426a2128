"""Block strings and spec JSON round-trip; malformed input is rejected with one clear line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from effscale.models.errors import EffscaleError
from effscale.models.notation import format_stage, parse_stage
from effscale.models.spec import NetworkSpec, StageSpec
from effscale.models.zoo import MODEL_NAMES, get_model


def test_official_style_string() -> None:
    stage = parse_stage("mb_r2_k3_s22_e6_o24_se0.25")
    assert stage == StageSpec("mb", repeats=2, kernel=3, stride=2, out_channels=24, expansion=6.0, se_ratio=0.25)
    assert format_stage(stage) == "mb_r2_k3_s2_e6_o24_se0.25"


def test_flags_and_defaults() -> None:
    stage = parse_stage("ds_o64_noskip_pw")
    assert (stage.repeats, stage.kernel, stage.stride, stage.skip, stage.pw_act) == (1, 3, 1, False, True)
    assert parse_stage(format_stage(stage)) == stage


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    block=st.sampled_from(["mb", "ds", "cn", "bn"]),
    repeats=st.integers(1, 20),
    kernel=st.sampled_from([1, 3, 5, 7]),
    stride=st.integers(1, 2),
    out=st.integers(1, 2048),
    expansion=st.one_of(st.sampled_from([0.25, 1.0, 3.0, 4.0, 6.0, 2.5]), st.floats(1e-9, 1e6)),
    se=st.one_of(st.sampled_from([0.0, 0.25, 0.125, 1e-05]), st.floats(0, 1)),
    skip=st.booleans(),
    pw=st.booleans(),
)
def test_stage_round_trip(block, repeats, kernel, stride, out, expansion, se, skip, pw) -> None:
    stage = StageSpec(block, repeats, kernel, stride, out, expansion, se, skip, pw)
    assert parse_stage(format_stage(stage)) == stage


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_spec_json_round_trip(name: str, tmp_path) -> None:
    spec = get_model(name)
    assert NetworkSpec.from_json(spec.to_json()) == spec
    spec.save(tmp_path / "spec.json")
    assert NetworkSpec.load(tmp_path / "spec.json") == spec


@pytest.mark.parametrize("text, fragment", [
    ("xx_r1_k3_o16", "type must be one of"),
    ("mb_r1_k3", "output channels"),
    ("mb_r1_k3_o16_q7", "cannot read option 'q7'"),
    ("mb_r1_r2_o16", "given twice"),
    ("mb_k4_o16", "kernel must be odd"),
    ("mb_r0_o16", "repeats must be >= 1"),
    ("mb_r1.5_o16", "must be an integer"),
])
def test_malformed_block_strings(text: str, fragment: str) -> None:
    with pytest.raises(EffscaleError, match=fragment):
        parse_stage(text)


def test_spec_from_bad_json() -> None:
    with pytest.raises(EffscaleError, match="not a valid spec JSON"):
        NetworkSpec.from_json("{not json")
    with pytest.raises(EffscaleError, match="unknown spec field"):
        NetworkSpec.from_json('{"name": "x", "stages": ["mb_o16"], "colour": 1}')
