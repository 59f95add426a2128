"""The MnasNet search space: every sample is a valid spec whose analytic counts match the built module."""

from __future__ import annotations

import itertools
import random

import optuna
import pytest
import torch

from effscale.models.builder import build
from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.measure import measure
from effscale.models.notation import parse_stage
from effscale.models.spec import NetworkSpec
from effscale.models.zoo import get_model
from effscale.search.space import SearchSpace

REFERENCES = ("efficientnet-b0", "mobilenet-v2")

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("reference", REFERENCES)
def test_random_samples_follow_the_reference_and_count_exactly(reference: str) -> None:
    ref = get_model(reference)
    rng = random.Random(0)
    for _ in range(20):
        space = SearchSpace(reference, resolution=rng.choice((32, 48, 64)), num_classes=10)
        spec = space.decode(space.random_params(rng))
        assert [s.stride for s in spec.stages] == [s.stride for s in ref.stages]
        assert all(s.out_channels % 8 == 0 for s in spec.stages)
        assert (spec.stem_channels, spec.head_channels, spec.activation) == (
            ref.stem_channels, ref.head_channels, ref.activation)
        assert count(spec) == measure(spec, "torch"), spec.to_json()


@pytest.mark.parametrize("reference", REFERENCES)
def test_built_samples_have_the_counted_parameters_and_run(reference: str) -> None:
    space = SearchSpace(reference, resolution=32, num_classes=10, in_channels=1)
    rng = random.Random(1)
    for _ in range(3):
        spec = space.decode(space.random_params(rng))
        model = build(spec).eval()
        assert sum(p.numel() for p in model.parameters()) == count(spec).params
        with torch.no_grad():
            assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_decode_maps_each_choice_to_the_stage() -> None:
    space = SearchSpace("efficientnet-b0")
    params = space.random_params(random.Random(2))
    params.update(b1_op="mb3", b1_kernel=5, b1_se=0.25, b1_skip="none", b1_width=1.25, b1_layers=1,
                  b2_op="cn", b2_width=0.75, b2_layers=-1, b2_skip="identity")
    spec = space.decode(params)
    # Reference stage 1 is mb_r2_k3_s2_e6_o24_se0.25: 24 * 1.25 = 30 -> 32 channels, 2 + 1 repeats.
    assert spec.stages[1] == parse_stage("mb_r3_k5_s2_e3_o32_se0.25_noskip")
    # Stage 2 is r2 s2 o40: 40 * 0.75 = 30 -> 32 channels, one block; stride 2, so no identity to keep.
    assert spec.stages[2].block == "cn" and spec.stages[2].out_channels == 32 and spec.stages[2].repeats == 1
    assert spec.resolution == 224 and spec.num_classes == 1000 and spec.in_channels == 3


def test_layers_never_drop_below_one_and_equal_choices_collapse() -> None:
    space = SearchSpace("efficientnet-b0", layer_deltas=(-1,), widths=(0.75,))
    spec = space.decode(space.random_params(random.Random(3)))
    assert [s.repeats for s in spec.stages] == [1, 1, 1, 2, 2, 3, 1]
    # 16 * 0.75 and 24 * 0.75 round back up to 16 and 24 (never below 90%).
    assert [s.out_channels for s in spec.stages] == [16, 24, 32, 64, 88, 144, 240]


def test_optuna_trials_decode_to_valid_specs() -> None:
    space = SearchSpace("mobilenet-v2", resolution=32)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        spec = space.sample(trial)
        assert set(trial.params) == set(space.choices())
        assert spec == space.decode(trial.params)
        assert NetworkSpec.from_json(spec.to_json()) == spec
        study.tell(trial, float(count(spec).macs))


def test_grid_sampler_enumerates_a_restricted_space() -> None:
    space = SearchSpace("efficientnet-b0", ops=("ds", "mb6"), kernels=(3,), se_ratios=(0.25,), skips=("identity",),
                        widths=(1.0,), layer_deltas=(0,), resolution=32)
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.choices()))
    names: set[str] = set()

    def objective(trial: optuna.Trial) -> float:
        spec = space.sample(trial)
        names.add(spec.name)
        return float(count(spec).macs)

    study.optimize(objective, n_trials=200)  # the grid sampler stops the study once every point is done
    assert len(study.trials) == space.size() == 2**7
    assert len(names) == 2**7


def test_restricted_choices_are_respected() -> None:
    space = SearchSpace("efficientnet-b0", ops=("mb6",), kernels=(3,), se_ratios=(0.0,))
    assert space.choices()["b4_kernel"] == [3]
    rng = random.Random(4)
    for _ in range(5):
        stages = space.decode(space.random_params(rng)).stages
        assert {(s.block, s.expansion, s.kernel, s.se_ratio) for s in stages} == {("mb", 6.0, 3, 0.0)}
    with pytest.raises(EffscaleError, match="outside the search space"):
        space.decode({**space.random_params(rng), "b0_kernel": 5})


def test_size_by_hand() -> None:
    single = dict(ops=("ds",), kernels=(3,), se_ratios=(0.0,), skips=("identity",), widths=(1.0,), layer_deltas=(0,))
    assert SearchSpace(**single).size() == 1
    assert SearchSpace(**{**single, "ops": ("cn", "ds", "mb3", "mb6"), "kernels": (3, 5)}).size() == 8**7
    # B0 repeats 1 2 2 3 3 4 1: the skip choice matters in the five stages with more than one block
    # (the first and last single blocks change channels, so they have no identity either way).
    assert SearchSpace(**{**single, "skips": ("identity", "none")}).size() == 2**5
    # 0.75 x 16 and 0.75 x 24 round back to 16 and 24: only five stages get a second width.
    assert SearchSpace(**{**single, "widths": (0.75, 1.0)}).size() == 2**5
    # -1 layer leaves the two single-block stages at one block.
    assert SearchSpace(**{**single, "layer_deltas": (-1, 0)}).size() == 2**5


def test_size_counts_the_distinct_decoded_specs() -> None:
    # Stride-1 single-block stages where the skip choice matters only when the widths keep cin == cout.
    stages = tuple(parse_stage(s) for s in ("mb_r1_k3_s1_e1_o16", "mb_r1_k3_s1_e6_o24", "mb_r2_k3_s2_e6_o40"))
    reference = get_model("efficientnet-b0").with_(name="tiny", stages=stages, stem_channels=16)
    space = SearchSpace(reference, ops=("mb6",), kernels=(3,), se_ratios=(0.0,))
    choices = space.choices()
    specs = {space.decode(dict(zip(choices, values))) for values in itertools.product(*choices.values())}
    assert space.size() == len(specs) == len({spec.name for spec in specs})


@pytest.mark.parametrize("field", ["ops", "kernels", "se_ratios", "skips", "widths", "layer_deltas"])
def test_an_empty_choice_list_is_rejected(field: str) -> None:
    with pytest.raises(EffscaleError, match="search space is empty"):
        SearchSpace(**{field: ()})


def test_bad_choices_and_params_are_rejected() -> None:
    with pytest.raises(EffscaleError, match="unknown choice"):
        SearchSpace(ops=("mb6", "mb9"))
    with pytest.raises(EffscaleError, match="kernels must be odd"):
        SearchSpace(kernels=(3, 4))
    with pytest.raises(EffscaleError, match="repeated"):
        SearchSpace(widths=(1, 1.0))
    with pytest.raises(EffscaleError, match="unknown model"):
        SearchSpace("no-such-net")
    with pytest.raises(EffscaleError, match="missing search parameter.*b6_layers"):
        space = SearchSpace()
        space.decode({k: v for k, v in space.random_params(random.Random(5)).items() if k != "b6_layers"})


@pytest.mark.parametrize(("field", "options", "message"), [
    ("widths", (1.0, float("nan")), r"widths must lie in \(0, 16\], got nan"),
    ("widths", (float("inf"),), r"widths must lie in \(0, 16\], got inf"),
    ("widths", (0.0, 1.0), r"widths must lie in \(0, 16\], got 0.0"),
    ("widths", (1.0, 1e300), r"widths must lie in \(0, 16\], got 1e\+300"),
    ("widths", (-1.0, "2"), r"widths must lie in \(0, 16\], got -1.0, '2'"),
    ("se_ratios", (0.0, float("nan")), r"SE ratios must be finite numbers in \[0, 1\], got nan"),
    ("se_ratios", (-0.25, 1.5), r"SE ratios must be finite numbers in \[0, 1\], got -0.25, 1.5"),
    ("se_ratios", (True,), r"SE ratios must be finite numbers in \[0, 1\], got True"),
    ("layer_deltas", (0, 0.5), "layer deltas must be integers, got 0.5"),
    ("kernels", (3, 5.0), "kernels must be odd positive integers, got 5.0"),
])
def test_bad_numeric_choices_are_rejected(field: str, options: tuple, message: str) -> None:
    with pytest.raises(EffscaleError, match=f"^{message}$"):
        SearchSpace(**{field: options})


def test_names_identify_architectures() -> None:
    space = SearchSpace()
    params = space.random_params(random.Random(6))
    spec = space.decode(params)
    assert spec.name.startswith("nas-") and len(spec.name) == 14
    assert SearchSpace(resolution=64, num_classes=10).decode(params).name == spec.name
    other = {**params, "b3_kernel": 8 - params["b3_kernel"]}
    assert space.decode(other).name != spec.name
