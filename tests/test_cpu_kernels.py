"""effscale's depthwise weight-gradient kernel against PyTorch's, and how the harness uses it.

The kernel is built on first use (about 25 s on a 2-core machine, then cached); CI has a C++ compiler, so
there these tests fail instead of skipping when it cannot be built.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effscale.models.builder import build
from effscale.search.cpu_kernels import DepthwiseConv2d, extension, use_cpu_kernels
from effscale.search.proxy import proxy_spec


@pytest.fixture(scope="module")
def kernels():
    built = extension()
    if built is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the CPU kernels did not build in CI")
        pytest.skip("the CPU kernels cannot be built here")
    return built


def nhwc(*shape: int) -> torch.Tensor:
    n, c, h, w = shape
    return torch.randn(n, h, w, c, dtype=torch.float64).float().permute(0, 3, 1, 2)


# (channels, map side, kernel, stride): every depthwise layer kind of the B0-shaped networks, channel counts
# that are not a multiple of 16 or 64, maps smaller than the kernel, odd sides and a 7x7 and a 9x9 kernel.
SHAPES = [(16, 32, 3, 1), (48, 32, 3, 2), (96, 16, 5, 2), (144, 8, 5, 1), (336, 4, 5, 1), (576, 2, 5, 1),
          (576, 1, 3, 1), (24, 5, 3, 1), (40, 9, 7, 2), (8, 3, 5, 2), (72, 7, 9, 1), (200, 6, 3, 2)]


@pytest.mark.parametrize("channels, side, kernel, stride", SHAPES)
def test_weight_gradient_equals_pytorchs(kernels, channels: int, side: int, kernel: int, stride: int) -> None:
    torch.manual_seed(channels + side)
    padding = kernel // 2
    x = nhwc(6, channels, side, side)
    out_side = (side + 2 * padding - kernel) // stride + 1
    grad = nhwc(6, channels, out_side, out_side)
    expected = torch.nn.grad.conv2d_weight(x.double(), (channels, 1, kernel, kernel), grad.double(), stride=stride,
                                           padding=padding, groups=channels)
    got = kernels.depthwise_weight_grad(x, grad, kernel, stride, padding)
    assert got.shape == (channels, 1, kernel, kernel) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)  # float32 sums of up to 6,144 products


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("kernel, stride, side", [(5, 1, 4), (5, 2, 9), (3, 1, 16), (3, 2, 5)])
def test_module_gives_conv2ds_output_and_gradients(kernels, channels_last: bool, kernel: int, stride: int,
                                                   side: int) -> None:
    torch.manual_seed(0)
    reference = nn.Conv2d(32, 32, kernel, stride, kernel // 2, groups=32, bias=False)
    fast = nn.Conv2d(32, 32, kernel, stride, kernel // 2, groups=32, bias=False)
    fast.load_state_dict(reference.state_dict())
    assert use_cpu_kernels(fast) == 1 and type(fast) is DepthwiseConv2d
    x = nhwc(4, 32, side, side) if channels_last else torch.randn(4, 32, side, side)
    results = []
    for conv in (reference, fast):
        leaf = x.clone().requires_grad_()
        out = conv(leaf)
        out.backward(torch.ones_like(out))
        results.append((out, leaf.grad, conv.weight.grad))
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_proxy_switches_every_depthwise_convolution_and_keeps_its_parameters(kernels) -> None:
    model = build(proxy_spec(32))
    parameters, keys = list(model.parameters()), list(model.state_dict())
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert use_cpu_kernels(model) == len(depthwise) == 16
    assert all(type(m) is DepthwiseConv2d for m in depthwise)
    assert all(a is b for a, b in zip(model.parameters(), parameters)) and list(model.state_dict()) == keys
    others = [m for m in model.modules() if type(m) is nn.Conv2d]
    assert others and all(m.groups == 1 for m in others)


def test_training_step_matches_pytorchs_kernels(kernels) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (8,))
    grads = []
    for switch in (False, True):
        torch.manual_seed(1)
        model = build(proxy_spec(32)).to(memory_format=torch.channels_last)
        if switch:
            use_cpu_kernels(model)
        F.cross_entropy(model(x), labels).backward()
        grads.append([p.grad for p in model.parameters()])
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5)


def test_opting_out_keeps_pytorchs_kernels() -> None:
    code = ("from torch import nn; from effscale.search.cpu_kernels import extension, use_cpu_kernels;"
            "conv = nn.Conv2d(8, 8, 3, groups=8, bias=False);"
            "print(extension() is None, use_cpu_kernels(conv), type(conv).__name__)")
    env = {**os.environ, "EFFSCALE_CPU_KERNELS": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "0", "Conv2d"]


def test_a_finished_build_is_imported_without_the_compiler(kernels) -> None:
    code = ("import warnings; warnings.simplefilter('error');"
            "from effscale.search.cpu_kernels import build_name, extension; print(extension().__name__ == build_name())")
    env = {**os.environ, "PATH": ""}  # no compiler, no ninja
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True"]
