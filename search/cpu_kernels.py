"""CPU kernels for proxy training: depthwise convolutions' gradients, batch norm with its SiLU and squeeze-excite gate.

oneDNN computes the weight gradient of a channels_last depthwise convolution slowly on the small maps of an
EfficientNet's later stages: its 5x5 kernels on 2x2 to 8x8 maps reach a few GFLOP/s (`python -m
effscale.experiments.benchmarks.step_profile`, last table). `cpu_kernels.cpp` computes it with a group of
channels as vectors and every tap's sum kept beside it. Its input gradient gathers each position from the taps that
reach it, the same position of a few images at a time in registers; oneDNN's is the slower one there too (same
table: the proxy's 3x3 layers at 64 px took 6.8 ms a step against 3.2); its forward pass is as fast or faster, and
stays. PyTorch's channels_last batch norm is several times slower per element on the 8 to 96 channels of the
blocks' outputs; the kernels' takes two passes over memory each way and takes in the SiLU that follows it: two
passes fewer than a separate SiLU, and one activation fewer kept; its backward pass reads the SiLU's output, which
gives the sigmoid without its exp. After a depthwise convolution, the batch norm, its SiLU and the squeeze-excite
gate (pooling, MLP, product) run as one: SiLU's output is never written, and the gate's gradient, the pooling's and
the batch norm's come from one pass of sums and one pass for dx (`layer_times` at 64 px, a run before this and one
after: 33 batch norms with SiLU and 16 gates took 71.5 ms of a step, then 58.7 ms). The backward pass of a gate's
product x * gate elsewhere is memory-bound, and autograd's makes about three times the memory traffic it needs: the
kernel gives both gradients in one pass, and the pooling's gradient stays a broadcast view that autograd adds in
place.

`use_cpu_kernels(model)` switches a model's depthwise convolutions, squeeze-excite gates and batch norms (with the
SiLU and gate after them) to these kernels while training float32 channels_last tensors, and its 1x1 convolutions
on maps of at most 4x4 to matmuls, which oneDNN's convolutions are slower than there. The depthwise forward pass is
PyTorch's, and so are the weight gradient of 3x3 depthwise kernels on maps larger than 8x8, where oneDNN is as fast,
the input gradient where the channels are not a multiple of 8, and a gate's own forward pass where it does not run
with its batch norm; the other results differ from PyTorch's by float32 rounding, no less accurate.

The kernels are compiled on first use (torch.utils.cpp_extension, about 30 s) into torch's extensions directory
(TORCH_EXTENSIONS_DIR, or ~/.cache/torch_extensions), under a name that digests the source, the flags, torch,
Python and the CPU; later processes import that build directly. Without a C++ compiler, or with
EFFSCALE_CPU_KERNELS=0, everything stays PyTorch's. What they are worth: `python -m
effscale.experiments.benchmarks.train_speed`, column "of it CPU kernels"; their agreement with PyTorch:
tests/test_cpu_kernels.py.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from effscale.models.builder import SqueezeExciteGate

OPT_OUT = "EFFSCALE_CPU_KERNELS"  # "0": PyTorch's kernels only
SOURCE = Path(__file__).with_name("cpu_kernels.cpp")
PROFILER_PREFIX = "effscale::"  # torch.profiler names each kernel's calls by it and the kernel's name (in the C++)
ONEDNN_3X3_ABOVE = 64  # output positions (8x8) above which a 3x3 weight gradient stays oneDNN's
MATMUL_AT_MOST = 16  # positions (4x4) up to which a 1x1 convolution runs as a matmul
VECTOR_CHANNELS = 8  # the depthwise input-gradient and the gated batch norm kernels take channels by 8
FLAGS = ["-O3", "-march=native", "-fno-trapping-math", "-fopenmp"]


def build_name() -> str:
    """The build's name: a digest of everything the compiled module depends on (the source, the flags, torch,
    Python, and this CPU's instruction sets, since -march=native), so a cached build is never used for another."""
    cpu = Path("/proc/cpuinfo")
    instruction_sets = next((line for line in cpu.read_text().splitlines() if line.startswith("flags")), "") \
        if cpu.is_file() else platform.processor()
    digest = hashlib.sha256("\n".join([SOURCE.read_text(), *FLAGS, torch.__version__, sys.version, platform.machine(),
                                        instruction_sets]).encode()).hexdigest()
    return f"effscale_cpu_kernels_{digest[:16]}"


@functools.cache
def extension() -> ModuleType | None:
    """The compiled kernels, or None where they are turned off or cannot be built (with one warning saying why).

    A finished build is imported directly; only the first build runs torch's compiler driver, which serialises
    concurrent builds with a lock file in the build directory."""
    if os.environ.get(OPT_OUT) == "0":
        return None
    name = build_name()
    try:
        from torch.utils.cpp_extension import get_default_build_root, load

        directory = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name
        built = directory / f"{name}.so"
        if built.is_file():
            spec = importlib.util.spec_from_file_location(name, built)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        directory.mkdir(parents=True, exist_ok=True)
        return load(name=name, sources=[str(SOURCE)], extra_cflags=FLAGS, build_directory=str(directory))
    except Exception as error:  # no compiler or ninja, a failed build: train with PyTorch's kernels
        warnings.warn(f"effscale: CPU kernels not built, PyTorch's are used ({type(error).__name__}: {error})",
                      stacklevel=2)
        return None


class _DepthwiseConvolution(torch.autograd.Function):
    """A depthwise convolution, forward by PyTorch (oneDNN), with the effscale kernels' input gradient where the
    channels are a multiple of VECTOR_CHANNELS (PyTorch's otherwise) and weight gradient except for 3x3 kernels with
    more than ONEDNN_3X3_ABOVE output positions (oneDNN's there)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        ctx.gather = weight.shape[0] % VECTOR_CHANNELS == 0
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x, weight = ctx.saved_tensors
        kernel = weight.shape[-1]
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = (extension().depthwise_input_grad(grad, weight, x.shape[2], x.shape[3], ctx.stride, ctx.padding)
                      if ctx.gather else _onednn_gradient(ctx, grad, x, weight, 0))
        if ctx.needs_input_grad[1]:
            grad_weight = (_onednn_gradient(ctx, grad, x, weight, 1)
                           if kernel == 3 and grad.shape[2] * grad.shape[3] > ONEDNN_3X3_ABOVE
                           else extension().depthwise_weight_grad(x, grad, kernel, ctx.stride, ctx.padding))
        return grad_x, grad_weight, None, None


def _onednn_gradient(ctx, grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, which: int) -> torch.Tensor:
    """PyTorch's input (`which` 0) or weight (1) gradient of the depthwise convolution saved in `ctx`."""
    mask = [which == 0, which == 1, False]
    return torch.ops.aten.convolution_backward(grad, x, weight, None, [ctx.stride] * 2, [ctx.padding] * 2, [1, 1],
                                               False, [0, 0], weight.shape[0], mask)[which]


def _kernels_apply(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a layer with this input and weight trains through the kernels: gradients on, a float32
    channels_last CPU input, and the kernels built."""
    return (torch.is_grad_enabled() and weight.requires_grad and x.device.type == "cpu" and x.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last) and extension() is not None)


class DepthwiseConv2d(nn.Conv2d):
    """`nn.Conv2d` with one filter per channel; while training float32 channels_last tensors on the CPU, its gradients
    come from the effscale kernels (`_DepthwiseConvolution`). Same parameters and state dict, and the same results to
    float32 rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _kernels_apply(x, self.weight):
            return super().forward(x)
        return _DepthwiseConvolution.apply(x, self.weight, self.stride[0], self.padding[0])


class PointwiseConv2d(nn.Conv2d):
    """`nn.Conv2d` with a 1x1 kernel that, on float32 channels_last CPU maps of at most MATMUL_AT_MOST positions
    (an EfficientNet's later stages), runs as a matmul of each position's channels with the weight, forward and
    backward: oneDNN's convolution is slower there, faster on larger maps. Same parameters, state dict and results,
    to float32 rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[-2] * x.shape[-1] <= MATMUL_AT_MOST
                and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x)
        return F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias).permute(0, 3, 1, 2)


class _ChannelMean(torch.autograd.Function):
    """x.mean((2, 3)), whose input gradient is a broadcast view, not a full-size tensor."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.mean((2, 3))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = ctx.shape
        return (grad / (h * w))[:, :, None, None].expand(n, c, h, w)


class _ChannelScale(torch.autograd.Function):
    """x * gate[:, :, None, None], with both gradients from one pass of the effscale kernel."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, gate)
        return x * gate[:, :, None, None]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, gate = ctx.saved_tensors
        grad_x, grad_gate = extension().squeeze_excite_backward(grad, x, gate)
        return grad_x, grad_gate


class FusedSqueezeExciteGate(SqueezeExciteGate):
    """`SqueezeExciteGate` whose product with the gate, and the pooling, take their gradients from the effscale
    kernel while training float32 channels_last tensors on the CPU. Same parameters, state dict and forward result."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _kernels_apply(x, self.fc1.weight):
            return super().forward(x)
        return _ChannelScale.apply(x, self.gate(_ChannelMean.apply(x)))


class _BatchNormTraining(torch.autograd.Function):
    """Training-mode batch norm with the effscale kernels, then SiLU if `silu`; updates the running statistics
    given, as F.batch_norm."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor | None,
                running_var: torch.Tensor | None, factor: float, eps: float, silu: bool) -> torch.Tensor:
        y, mean, var = extension().batch_norm_forward(x, weight, bias, running_mean, running_var, factor, eps, silu)
        ctx.save_for_backward(x, weight, bias, mean, var, y if silu else None)  # y gives SiLU's gradient
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, mean, var, y = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = extension().batch_norm_backward(grad, x, weight, bias, mean, var, ctx.eps, y)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class _BatchNormSiLUGate(torch.autograd.Function):
    """y = SiLU(batch_norm(x)) times its squeeze-excite gate, y * sigmoid(fc2(SiLU(fc1(mean_hw(y))))), with the
    effscale kernels (batch_norm_silu_gate_forward and _backward): y itself is never stored, sigmoid(z) is in its
    place; the gate's MLP runs there on ATen's operators."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor | None,
                running_var: torch.Tensor | None, factor: float, eps: float, fc1_weight: torch.Tensor,
                fc1_bias: torch.Tensor, fc2_weight: torch.Tensor, fc2_bias: torch.Tensor) -> torch.Tensor:
        out, *saved = extension().batch_norm_silu_gate_forward(x, weight, bias, running_mean, running_var, factor, eps,
                                                               fc1_weight, fc1_bias, fc2_weight, fc2_bias)
        ctx.save_for_backward(x, weight, bias, fc1_weight, fc2_weight, *saved)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, fc1_weight, fc2_weight, sigmoids, mean, var, pooled, hidden, gate = ctx.saved_tensors
        grad_x, grad_weight, grad_bias, *gate_grads = extension().batch_norm_silu_gate_backward(
            grad, x, sigmoids, weight, bias, mean, var, pooled, hidden, gate, fc1_weight, fc2_weight, ctx.eps)
        return grad_x, grad_weight, grad_bias, None, None, None, None, *gate_grads


class ChannelsLastBatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` whose training-mode forward and backward passes come from the effscale kernels for float32
    channels_last tensors on the CPU: PyTorch's are several times slower on the few channels of an EfficientNet's
    block outputs. Same parameters, buffers, state dict and results, to float32 rounding."""

    silu = False  # whether SiLU follows, in the same passes over memory

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._uses_kernels(x):
            y = super().forward(x)
            return F.silu(y) if self.silu else y
        return _BatchNormTraining.apply(x, self.weight, self.bias, *self._running(), self.eps, self.silu)

    def _uses_kernels(self, x: torch.Tensor) -> bool:
        return self.training and self.affine and x.numel() > x.shape[1] and _kernels_apply(x, self.weight)

    def _running(self) -> tuple[torch.Tensor | None, torch.Tensor | None, float]:
        """The running statistics to update and the factor to move them by, counting this batch."""
        if not self.track_running_stats:
            return None, None, 0.0
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return self.running_mean, self.running_var, factor


class BatchNormSiLU2d(ChannelsLastBatchNorm2d):
    """`ChannelsLastBatchNorm2d` followed by SiLU, both in the kernels' passes: it takes the place of a batch norm
    whose SiLU becomes `nn.Identity`. Same parameters, buffers and state dict as the batch norm."""

    silu = True

    def gated(self, x: torch.Tensor, gate: FusedSqueezeExciteGate) -> torch.Tensor:
        """gate(self(x)), in the passes of `_BatchNormSiLUGate` where the kernels apply and the channels are a multiple
        of VECTOR_CHANNELS (`gate` has SiLU inside)."""
        if not (self._uses_kernels(x) and x.shape[1] % VECTOR_CHANNELS == 0):
            return gate(self(x))
        return _BatchNormSiLUGate.apply(x, self.weight, self.bias, *self._running(), self.eps, gate.fc1.weight,
                                        gate.fc1.bias, gate.fc2.weight, gate.fc2.bias)


class GatedSequential(nn.Sequential):
    """`nn.Sequential` in which a child `nn.Sequential` ending in (`BatchNormSiLU2d`, `nn.Identity`) and the
    squeeze-excite gate after it run as `BatchNormSiLU2d.gated`. Same children, state dict and results."""

    gated_at: frozenset[int] = frozenset()  # indices of such children; the gate follows each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        children = list(self)
        index = 0
        while index < len(children):
            if index not in self.gated_at:
                x = children[index](x)
                index += 1
                continue
            *before, norm, _ = children[index]
            for module in before:
                x = module(x)
            x = norm.gated(x, children[index + 1])
            index += 2
        return x


def _fits(conv: nn.Conv2d) -> bool:
    """A square, undilated, zero-padded depthwise convolution without bias, of stride and padding equal in both axes."""
    kernel, stride, padding = conv.kernel_size, conv.stride, conv.padding
    return (conv.groups == conv.in_channels == conv.out_channels > 1 and conv.bias is None
            and conv.dilation == (1, 1) and conv.padding_mode == "zeros" and isinstance(padding, tuple)
            and kernel[0] == kernel[1] and stride[0] == stride[1] and padding[0] == padding[1])


def _is_pointwise(conv: nn.Conv2d) -> bool:
    """A plain 1x1 convolution: one group, stride 1, no padding."""
    return (conv.groups == 1 and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0)
            and conv.dilation == (1, 1))


def _fuse_silus(model: nn.Module) -> None:
    """Fold each `nn.SiLU` that directly follows a `ChannelsLastBatchNorm2d` in an `nn.Sequential` into it, in place:
    the batch norm becomes a `BatchNormSiLU2d`, the SiLU an `nn.Identity` (it has no parameters or buffers)."""
    for sequence in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        children = list(sequence.named_children())
        for (_, before), (name, after) in zip(children, children[1:]):
            if type(before) is ChannelsLastBatchNorm2d and type(after) is nn.SiLU:
                before.__class__ = BatchNormSiLU2d
                setattr(sequence, name, nn.Identity())


def _fuse_gates(model: nn.Module) -> None:
    """Make each `nn.Sequential` of `model` in which a child `nn.Sequential` ending in (`BatchNormSiLU2d`,
    `nn.Identity`) is followed by a `FusedSqueezeExciteGate` with SiLU inside a `GatedSequential`, in place."""
    for sequence in [m for m in model.modules() if type(m) is nn.Sequential]:
        children = list(sequence)
        gated_at = frozenset(index for index, (before, after) in enumerate(zip(children, children[1:]))
                             if type(before) is nn.Sequential and len(before) >= 2
                             and type(before[-2]) is BatchNormSiLU2d and type(before[-1]) is nn.Identity
                             and type(after) is FusedSqueezeExciteGate and type(after.act) is nn.SiLU)
        if gated_at:
            sequence.__class__ = GatedSequential
            sequence.gated_at = gated_at


def use_cpu_kernels(model: nn.Module) -> int:
    """Switch the depthwise convolutions of `model` to `DepthwiseConv2d`, its 1x1 ones to `PointwiseConv2d`, its
    squeeze-excite gates to `FusedSqueezeExciteGate` and its batch norms to `ChannelsLastBatchNorm2d`, or to
    `BatchNormSiLU2d` where an `nn.SiLU` follows in an `nn.Sequential`, in place (the parameters and buffers stay
    the same objects); returns how many modules, 0 where the kernels are turned off or unavailable."""
    if extension() is None:
        return 0
    switched = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and _fits(module):
            module.__class__ = DepthwiseConv2d
        elif type(module) is nn.Conv2d and _is_pointwise(module):
            module.__class__ = PointwiseConv2d
        elif type(module) is SqueezeExciteGate:
            module.__class__ = FusedSqueezeExciteGate
        elif type(module) is nn.BatchNorm2d:
            module.__class__ = ChannelsLastBatchNorm2d
        else:
            continue
        switched += 1
    _fuse_silus(model)
    _fuse_gates(model)
    return switched
