"""Flat parameter buffers: the model trains through views of one buffer per group, with the same gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from effscale.models.builder import build
from effscale.search.optim import make_optimizer
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import TrainConfig


def _proxy() -> torch.nn.Module:
    torch.manual_seed(0)
    return build(proxy_spec(16)).to(memory_format=torch.channels_last)


def test_parameters_become_views_of_one_buffer_per_group_with_their_values_and_strides() -> None:
    model, reference = _proxy(), _proxy()
    strides = [p.stride() for p in model.parameters()]
    optimizer = make_optimizer(model, TrainConfig())
    flats = [group["params"][0] for group in optimizer.param_groups]
    assert [len(group["params"]) for group in optimizer.param_groups] == [1, 1]
    assert sum(flat.numel() for flat in flats) == sum(p.numel() for p in model.parameters())
    for p, q, stride in zip(model.parameters(), reference.parameters(), strides):
        assert torch.equal(p, q) and p.stride() == stride
        owner = flats[0] if p.ndim > 1 else flats[1]
        assert p.untyped_storage().data_ptr() == owner.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == owner.grad.untyped_storage().data_ptr()
    assert model.state_dict().keys() == reference.state_dict().keys()


def test_training_steps_on_flat_buffers_equal_fused_steps_on_each_parameter() -> None:
    """Three proxy training steps, gradients from real backward passes: AdamW's fused kernel on the flat buffers
    and on every parameter apart give the same first gradients exactly, and the same weights to float32 rounding
    (the update is elementwise, but a short parameter apart goes through the kernel's scalar tail)."""
    models = [_proxy(), _proxy()]
    config = TrainConfig()
    apart = [{"params": [p for p in models[1].parameters() if p.ndim > 1], "weight_decay": config.weight_decay},
             {"params": [p for p in models[1].parameters() if p.ndim <= 1], "weight_decay": 0.0}]
    optimizers = [make_optimizer(models[0], config), torch.optim.AdamW(apart, lr=config.lr, fused=True)]
    x = torch.randn(8, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (8,))
    for step in range(3):
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), labels).backward()
            optimizer.step()
        for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
            assert step > 0 or torch.equal(a.grad, b.grad), name
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    assert all(p.grad.abs().max() > 0 for p in models[0].parameters())


def test_setting_gradients_to_none_fails_the_step_clearly() -> None:
    model = _proxy()
    optimizer = make_optimizer(model, TrainConfig())
    optimizer.zero_grad(set_to_none=True)
    with pytest.raises(RuntimeError, match="set_to_none=False"):
        optimizer.step()
