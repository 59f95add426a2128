"""effscale's depthwise-convolution, squeeze-excite and batch-norm kernels against PyTorch, and how the harness
uses them.

The kernels are built on first use (about 30 s on a 2-core machine, then cached); CI has a C++ compiler, so
there these tests fail instead of skipping when they cannot be built.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effscale.models.builder import SqueezeExciteGate, build
from effscale.search.cpu_kernels import (
    MATMUL_AT_MOST,
    PROFILER_PREFIX,
    VECTOR_CHANNELS,
    BatchNormSiLU2d,
    ChannelsLastBatchNorm2d,
    DepthwiseConv2d,
    FusedSqueezeExciteGate,
    GatedSequential,
    PointwiseConv2d,
    extension,
    use_cpu_kernels,
)
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
# that are not a multiple of 16 or 64 (or of 8), maps smaller than the kernel, odd sides and a 7x7 and a 9x9 kernel.
SHAPES = [(16, 32, 3, 1), (48, 32, 3, 2), (96, 16, 5, 2), (144, 8, 5, 1), (336, 4, 5, 1), (576, 2, 5, 1),
          (576, 1, 3, 1), (24, 5, 3, 1), (40, 9, 7, 2), (8, 3, 5, 2), (72, 7, 9, 1), (200, 6, 3, 2), (13, 6, 3, 2),
          (21, 8, 5, 1)]


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


@pytest.mark.parametrize("channels, side, kernel, stride", SHAPES)
def test_input_gradient_equals_pytorchs(kernels, channels: int, side: int, kernel: int, stride: int) -> None:
    torch.manual_seed(channels + side)
    padding = kernel // 2
    weight = torch.randn(channels, 1, kernel, kernel)
    out_side = (side + 2 * padding - kernel) // stride + 1
    grad = nhwc(6, channels, out_side, out_side)
    expected = torch.nn.grad.conv2d_input((6, channels, side, side), weight.double(), grad.double(), stride=stride,
                                          padding=padding, groups=channels)
    got = kernels.depthwise_input_grad(grad, weight, side, side, stride, padding)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("channels", [32, 12])  # 12: not a multiple of VECTOR_CHANNELS, PyTorch's input gradient
@pytest.mark.parametrize("kernel, stride, side", [(5, 1, 4), (5, 2, 9), (3, 1, 16), (3, 2, 5)])
def test_module_gives_conv2ds_output_and_gradients(kernels, channels_last: bool, channels: int, kernel: int,
                                                   stride: int, side: int) -> None:
    torch.manual_seed(0)
    reference = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)
    fast = copy.deepcopy(reference)
    assert use_cpu_kernels(fast) == 1 and type(fast) is DepthwiseConv2d
    x = nhwc(4, channels, side, side) if channels_last else torch.randn(4, channels, side, side)
    results = []
    for conv in (reference, fast):
        leaf = x.clone().requires_grad_()
        out = conv(leaf)
        out.backward(torch.ones_like(out))
        results.append((out, leaf.grad, conv.weight.grad))
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("side, bias", [(1, False), (2, True), (4, False), (5, True)])
def test_pointwise_module_gives_conv2ds_output_and_gradients_as_a_matmul_on_small_maps(kernels, channels_last: bool,
                                                                                      side: int, bias: bool) -> None:
    torch.manual_seed(side)
    reference = nn.Conv2d(24, 40, 1, bias=bias)
    fast = copy.deepcopy(reference)
    assert use_cpu_kernels(fast) == 1 and type(fast) is PointwiseConv2d
    x = nhwc(6, 24, side, side) if channels_last else torch.randn(6, 24, side, side)
    grad = nhwc(6, 40, side, side)
    results = []
    for conv in (reference, fast):
        leaf = x.clone().requires_grad_()
        with torch.profiler.profile() as profiled:
            out = conv(leaf)
        out.backward(grad)
        results.append((out, leaf.grad, *(p.grad for p in conv.parameters())))
    laid_out = x.is_contiguous(memory_format=torch.channels_last)  # also a 1x1 map in NCHW
    convolved = any(event.name == "aten::convolution" for event in profiled.events())
    assert convolved == (not laid_out or side * side > MATMUL_AT_MOST)
    assert out.is_contiguous(memory_format=torch.channels_last) == laid_out
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


# (batch, channels, map side): the proxy's squeeze-excite layers at 64 px, channels that are not a multiple of
# 16, a 1x1 map and an odd side.
SQUEEZE_EXCITE_SHAPES = [(3, 16, 32), (2, 48, 32), (4, 96, 16), (3, 576, 2), (5, 24, 1), (2, 40, 7), (1, 1152, 3)]


@pytest.mark.parametrize("batch, channels, side", SQUEEZE_EXCITE_SHAPES)
def test_squeeze_excite_gradients_equal_autograds(kernels, batch: int, channels: int, side: int) -> None:
    torch.manual_seed(channels + side)
    x, grad = nhwc(batch, channels, side, side), nhwc(batch, channels, side, side)
    gate = torch.rand(batch, channels)
    x64, gate64 = x.double().requires_grad_(), gate.double().requires_grad_()
    (x64 * gate64[:, :, None, None]).backward(grad.double())
    grad_x, grad_gate = kernels.squeeze_excite_backward(grad, x, gate)
    assert grad_x.is_contiguous(memory_format=torch.channels_last) and grad_gate.shape == (batch, channels)
    torch.testing.assert_close(grad_x.double(), x64.grad, rtol=1e-6, atol=1e-6)  # one product per element
    torch.testing.assert_close(grad_gate.double(), gate64.grad, rtol=1e-4, atol=1e-4)  # float32 sums


@pytest.mark.parametrize("channels_last", [True, False])
def test_squeeze_excite_module_gives_the_gates_output_and_gradients(kernels, channels_last: bool) -> None:
    torch.manual_seed(0)
    reference = SqueezeExciteGate(40, 10, nn.SiLU)
    fast = SqueezeExciteGate(40, 10, nn.SiLU)
    fast.load_state_dict(reference.state_dict())
    assert use_cpu_kernels(fast) == 1 and type(fast) is FusedSqueezeExciteGate
    x = nhwc(4, 40, 6, 6) if channels_last else torch.randn(4, 40, 6, 6)
    grad = torch.randn(4, 40, 6, 6)
    results = []
    for gate in (reference, fast):
        leaf = x.clone().requires_grad_()
        out = gate(leaf)
        out.backward(grad)
        results.append((out, leaf.grad, *(p.grad for p in gate.parameters())))
    assert torch.equal(results[1][0], results[0][0])
    for ours, theirs in zip(results[1][1:], results[0][1:]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


# (batch, channels, map side): batch norms of the proxy at 64 px (block outputs of 8 to 96 channels, expansions of
# 48 to 576), a channel count that is not a multiple of 16 and a tensor smaller than one period of lcm(C, 16).
BATCH_NORM_SHAPES = [(16, 8, 32, 32), (16, 16, 16, 16), (32, 24, 8, 8), (16, 48, 32, 32), (64, 576, 2, 2),
                     (7, 3, 5, 5), (2, 1152, 3, 3), (3, 40, 1, 1)]


@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
def test_batch_norm_equals_float64_batch_norm(kernels, shape: tuple[int, int, int, int], silu: bool) -> None:
    """With silu, the kernels give SiLU of the batch norm and its gradients in the same passes, the backward pass
    from the forward pass's output; it writes dx over its own buffer, never over its inputs."""
    torch.manual_seed(sum(shape))
    channels = shape[1]
    x, grad = nhwc(*shape) * 3 + 5, nhwc(*shape)  # a mean well off zero, as after a convolution
    weight, bias = torch.rand(channels) + 0.5, torch.randn(channels)
    y, mean, var = kernels.batch_norm_forward(x, weight, bias, None, None, 0.0, 1e-3, silu)
    x64, weight64, bias64 = (t.double().requires_grad_() for t in (x, weight, bias))
    expected = F.batch_norm(x64, None, None, weight64, bias64, True, 0.0, 1e-3)
    expected = F.silu(expected) if silu else expected
    expected.backward(grad.double())
    inputs = [t.clone() for t in (grad, x, weight, bias, mean, var, y)]
    grad_x, grad_weight, grad_bias = kernels.batch_norm_backward(grad, x, weight, bias, mean, var, 1e-3,
                                                                 y if silu else None)
    assert all(torch.equal(t, before) for t, before in zip((grad, x, weight, bias, mean, var, y), inputs))
    assert all(grad_x.data_ptr() != t.data_ptr() for t in (grad, x, y))
    assert y.is_contiguous(memory_format=torch.channels_last) and grad_x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(mean.double(), x64.mean((0, 2, 3)), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.double(), x64.var((0, 2, 3), unbiased=False), rtol=1e-5, atol=1e-6)
    for ours, exact in ((y, expected), (grad_x, x64.grad), (grad_weight, weight64.grad), (grad_bias, bias64.grad)):
        torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=1e-5 * exact.abs().max().item())


def test_batch_norm_silu_holds_at_large_values_and_keeps_nans(kernels) -> None:
    """The sigmoid's exp is clamped to the normal floats: z of +-1e4 still gives z and 0, NaN stays NaN."""
    x = torch.tensor([[-1.0, 1.0]] * 4 + [[float("nan")] * 2]).T.reshape(1, 2, 1, 5).permute(0, 3, 1, 2)
    weight, bias = torch.tensor([1.0, 20.0, 100.0, 1e4, 1.0]), torch.zeros(5)  # z = +-weight
    y = kernels.batch_norm_forward(x, weight, bias, None, None, 0.0, 1e-6, True)[0]
    z = F.batch_norm(x, None, None, weight, bias, True, 0.0, 1e-6)
    assert z[0, 3].abs().min() > 9999 and z[0, 4].isnan().all()
    torch.testing.assert_close(y, F.silu(z), equal_nan=True)


def test_batch_norm_silu_gradient_holds_at_zero_and_large_values_and_keeps_nans(kernels) -> None:
    """The backward pass takes the sigmoid as y / z: where z = 0 it is 1/2, at z = +-1e4 SiLU's gradient is 1 and 0,
    and NaN stays NaN."""
    x = torch.tensor([[-1.0, 1.0]] * 4 + [[2.0, 2.0], [float("nan")] * 2]).T.reshape(1, 2, 1, 6).permute(0, 3, 1, 2)
    weight, bias = torch.tensor([1.0, 20.0, 100.0, 1e4, 1.0, 1.0]), torch.zeros(6)  # z = +-weight, 0 and NaN
    grad = torch.tensor([[0.5, -2.0]] * 6).T.reshape(1, 2, 1, 6).permute(0, 3, 1, 2)
    y, mean, var = kernels.batch_norm_forward(x, weight, bias, None, None, 0.0, 1e-6, True)
    grad_x, grad_weight, grad_bias = kernels.batch_norm_backward(grad, x, weight, bias, mean, var, 1e-6, y)
    x64, weight64, bias64 = (t.double().requires_grad_() for t in (x, weight, bias))
    F.silu(F.batch_norm(x64, None, None, weight64, bias64, True, 0.0, 1e-6)).backward(grad.double())
    assert grad_x[0, 5].isnan().all() and grad_weight[5].isnan() and grad_bias[5].isnan()
    others = [0, 1, 2, 4, 5]  # channel 3's dx, 0.01, is left of terms of 2e4: float32 keeps it to 3e-4 (PyTorch 5e-4)
    pairs = ((grad_x[:, others], x64.grad[:, others]), (grad_weight, weight64.grad), (grad_bias, bias64.grad))
    for ours, exact in pairs:
        torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(grad_bias[3:5].double(), torch.tensor([-2.0, -0.75], dtype=torch.float64))


@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("momentum, track", [(0.1, True), (None, True), (0.1, False)])
def test_batch_norm_module_gives_batchnorm2ds_results_and_statistics(kernels, momentum: float | None, track: bool,
                                                                    silu: bool) -> None:
    """A batch norm alone, or followed by a SiLU, which then joins it."""
    torch.manual_seed(0)
    reference = nn.Sequential(nn.BatchNorm2d(24, momentum=momentum, track_running_stats=track),
                              *([nn.SiLU()] if silu else []))
    nn.init.uniform_(reference[0].weight, 0.5, 1.5)
    nn.init.normal_(reference[0].bias)
    fast = copy.deepcopy(reference)
    assert use_cpu_kernels(fast) == 1
    assert [type(m) for m in fast] == ([BatchNormSiLU2d, nn.Identity] if silu else [ChannelsLastBatchNorm2d])
    results = []
    for pair in (reference, fast):
        torch.manual_seed(1)
        for _ in range(3):  # the running statistics follow each batch's
            leaf = (nhwc(8, 24, 5, 5) * 2 + 1).requires_grad_()
            out = pair(leaf)
            out.backward(nhwc(8, 24, 5, 5))
        pair.eval()
        results.append((out, leaf.grad, pair[0].weight.grad, pair[0].bias.grad, pair(leaf), *pair.buffers()))
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels, side", [(48, 8), (16, 5), (576, 2), (12, 4)])  # 12: not a multiple of 8, unfused
def test_batch_norm_silu_and_gate_give_float64_results_gradients_and_statistics(kernels, channels: int,
                                                                                side: int) -> None:
    """A batch norm, its SiLU and the squeeze-excite gate after them run as one (`GatedSequential`): outputs,
    gradients of the input and of every parameter, running statistics and eval-mode outputs as in float64."""
    torch.manual_seed(channels)
    reference = nn.Sequential(nn.Sequential(nn.BatchNorm2d(channels), nn.SiLU()),
                              SqueezeExciteGate(channels, channels // 4, nn.SiLU))
    nn.init.uniform_(reference[0][0].weight, 0.5, 1.5)
    nn.init.normal_(reference[0][0].bias)
    fast = copy.deepcopy(reference)
    assert use_cpu_kernels(fast) == 2 and type(fast) is GatedSequential and fast.gated_at == {0}
    exact = copy.deepcopy(reference).double()
    fused_calls = 0
    for _ in range(2):  # the running statistics follow each batch's
        x, grad = nhwc(8, channels, side, side) * 3 + 5, nhwc(8, channels, side, side)  # a mean well off zero
        x64 = x.double().requires_grad_()
        expected = exact(x64)
        expected.backward(grad.double())
        leaf = x.clone().requires_grad_()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            out = fast(leaf)
            out.backward(grad)
        fused_calls += sum(e.count for e in profiler.key_averages() if "batch_norm_silu_gate" in e.key)
        torch.testing.assert_close(out.double(), expected.detach(), rtol=1e-5, atol=1e-5 * expected.abs().max().item())
        torch.testing.assert_close(leaf.grad.double(), x64.grad, rtol=1e-5, atol=1e-5 * x64.grad.abs().max().item())
    assert fused_calls == (4 if channels % VECTOR_CHANNELS == 0 else 0)
    for ours, theirs in zip(fast.parameters(), exact.parameters()):
        torch.testing.assert_close(ours.grad.double(), theirs.grad, rtol=1e-5, atol=1e-5 * theirs.grad.abs().max())
    for ours, theirs in zip(fast.buffers(), exact.buffers()):
        torch.testing.assert_close(ours.double(), theirs.double(), rtol=1e-5, atol=1e-6)
    fast.eval(), exact.eval()
    x = nhwc(2, channels, side, side)
    torch.testing.assert_close(fast(x).double(), exact(x.double()), rtol=1e-5, atol=1e-6)


def test_proxy_switches_its_depthwise_convolutions_gates_and_batch_norms_and_keeps_their_parameters(kernels) -> None:
    model = build(proxy_spec(32))
    parameters, keys = list(model.parameters()), list(model.state_dict())
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    gates = [m for m in model.modules() if isinstance(m, SqueezeExciteGate)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    pairs = [(s[i], s[i + 1]) for s in model.modules() if isinstance(s, nn.Sequential) for i in range(len(s) - 1)
             if isinstance(s[i], nn.BatchNorm2d) and isinstance(s[i + 1], nn.SiLU)]
    switched = use_cpu_kernels(model)
    assert switched == len(depthwise) + len(pointwise) + len(gates) + len(norms) == 16 + 32 + 16 + 49
    assert all(type(m) is DepthwiseConv2d for m in depthwise)
    assert all(type(m) is PointwiseConv2d for m in pointwise)  # 15 expansions, 16 projections, the head's
    assert all(type(m) is FusedSqueezeExciteGate for m in gates)
    assert len(pairs) == 49 - 16  # every batch norm but the blocks' projections is followed by a SiLU
    assert all(type(norm) is BatchNormSiLU2d for norm, _ in pairs)
    assert all(type(m) is ChannelsLastBatchNorm2d for m in norms if m not in [norm for norm, _ in pairs])
    silus = [m for m in model.modules() if isinstance(m, nn.SiLU)]
    assert len(silus) == 16 and all(any(m is gate.act for gate in gates) for m in silus)  # the gates' own
    assert all(a is b for a, b in zip(model.parameters(), parameters)) and list(model.state_dict()) == keys
    bodies = [m for m in model.modules() if isinstance(m, GatedSequential)]
    # (depthwise conv, BN, SiLU), then the gate: after the expansion, except in the first block (expansion 1)
    assert [body.gated_at for body in bodies] == [{0}] + [{1}] * 15
    others = [m for m in model.modules() if type(m) is nn.Conv2d]
    assert [m.kernel_size for m in others] == [(3, 3)]  # the stem's


def test_training_step_is_as_accurate_as_with_pytorchs_kernels(kernels) -> None:
    """The proxy's gradients with the kernels and with PyTorch's alone, each against a float64 step: the kernels
    sum in another order, so they match that reference about as closely as PyTorch does, not PyTorch bit for bit.
    Both errors are near 3e-5 of the gradient's norm; an error of 0.1% in every gradient would be 1e-3."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (8,))
    grads = []
    for switch, dtype in ((False, torch.float64), (False, torch.float32), (True, torch.float32)):
        torch.manual_seed(1)
        model = build(proxy_spec(32)).to(dtype=dtype, memory_format=torch.channels_last)
        if switch:
            assert use_cpu_kernels(model) == 16 + 32 + 16 + 49
        F.cross_entropy(model(x.to(dtype)), labels).backward()
        grads.append(torch.cat([p.grad.double().flatten() for p in model.parameters()]))
    exact, pytorchs, ours = grads
    assert (ours - exact).norm() <= 1.25 * (pytorchs - exact).norm() < 1e-4 * exact.norm()


def test_the_profiler_names_each_kernels_calls(kernels) -> None:
    """The kernels record themselves (in C++) under PROFILER_PREFIX + their name: one event a call."""
    torch.manual_seed(0)
    model = build(proxy_spec(32)).to(memory_format=torch.channels_last)
    use_cpu_kernels(model)
    x = torch.randn(4, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        model(x).sum().backward()
    calls = {event.key: event.count for event in profiler.key_averages() if event.key.startswith(PROFILER_PREFIX)}
    assert calls == {PROFILER_PREFIX + "batch_norm_forward": 33, PROFILER_PREFIX + "batch_norm_backward": 33,
                     PROFILER_PREFIX + "batch_norm_silu_gate_forward": 16,  # the depthwise convolutions' batch norms
                     PROFILER_PREFIX + "batch_norm_silu_gate_backward": 16, PROFILER_PREFIX + "depthwise_input_grad": 16,
                     PROFILER_PREFIX + "depthwise_weight_grad": 15}  # the first block's 3x3 on 16x16 stays oneDNN's


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
