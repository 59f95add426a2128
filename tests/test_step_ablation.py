"""The step ablation benchmark: layers taken out really are gone, and every kind gets a timed row."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step
from effscale.experiments.benchmarks.step_ablation import KINDS, OPTIMISER, ablation, replace_with_identity
from effscale.models.builder import SqueezeExciteGate, build
from effscale.search.cpu_kernels import ChannelsLastBatchNorm2d, extension
from effscale.search.proxy import proxy_spec


@pytest.mark.parametrize(("kind", "expected"), [(nn.BatchNorm2d, 49), (SqueezeExciteGate, 16), (nn.SiLU, 33 + 16)])
def test_replacing_a_kind_leaves_none_of_it_and_the_shapes_unchanged(kind: type[nn.Module], expected: int) -> None:
    model = build(proxy_spec(32))
    assert sum(isinstance(m, kind) for m in model.modules()) == expected  # B0's 16 blocks, stem and head
    assert replace_with_identity(model, kind) == expected
    assert not any(isinstance(m, kind) for m in model.modules())
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_silus_are_taken_out_before_the_kernels_could_fuse_them_into_the_batch_norms() -> None:
    models = []

    def take_out_silus(model: nn.Module) -> None:
        models.append(model)
        assert replace_with_identity(model, nn.SiLU) == 33 + 16

    proxy_step(32, 8, edit=take_out_silus)
    norm = ChannelsLastBatchNorm2d if extension() is not None else nn.BatchNorm2d
    assert sum(type(m) is norm for m in models[0].modules()) == 49  # batch norms alone, none with a SiLU


def test_every_kind_gets_a_timed_row() -> None:
    full, table = ablation(resolution=32, batch_size=8, rounds=2)
    assert full > 0
    assert list(table["taken out"]) == [*KINDS, OPTIMISER]
    assert (table["step ms"] > 0).all()
    assert all(math.isfinite(share) and share < 1 for share in table["share of the step"])
