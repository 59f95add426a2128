"""The optimisers of a training recipe: fused kernels that step as PyTorch's per-parameter loop does."""

from __future__ import annotations

import pytest
import torch

from effscale.models.builder import build
from effscale.search.optim import make_optimizer
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import OPTIMIZERS, TrainConfig


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_optimiser_takes_the_steps_of_the_per_parameter_loop(name: str) -> None:
    config = TrainConfig(optimizer=name, lr=1e-2, weight_decay=0.1)
    models = [build(proxy_spec(16)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    fused, loop = make_optimizer(models[0], config), make_optimizer(models[1], config, fused=False)
    assert fused.defaults["foreach" if name == "rmsprop" else "fused"] is True
    assert not loop.defaults.get("fused") and not loop.defaults["foreach"]
    assert [group["weight_decay"] for group in fused.param_groups] == [0.1, 0.0]
    before = [p.detach().clone() for p in models[0].parameters()]
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            a.grad.copy_(torch.randn(a.shape, generator=generator))  # a view of the fused optimiser's flat buffer
            b.grad = a.grad.clone()
        fused.step()
        loop.step()
    for (key, a), b, start in zip(models[0].named_parameters(), models[1].parameters(), before):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=key)
        assert (a - start).abs().max() > 1e-3, key  # every parameter took the steps
