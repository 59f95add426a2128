"""Proxy training: spec + task + config -> metrics dict, fast on a small CPU, seeded, never raising on divergence.

The hot loop draws uint8 batches from in-memory tensors by index, augments and normalises them as
whole-batch tensor ops and feeds a channels_last model: no DataLoader, no per-sample Python.
The process keeps the memory a step frees for the next one (`effscale.search.allocator`), and on the CPU
depthwise convolutions' weight gradients, squeeze-excite gradients and batch norm come from effscale's kernels
(`effscale.search.cpu_kernels`).
Every evaluation first recomputes the batch-norm statistics under the current weights ("precise BN").
Random state (initialisation, shuffling, augmentation, dropout) comes from `config.seed` inside a
forked RNG, and the torch thread count is set for the run and restored afterwards; on the CPU the
same seed and thread count give the same metrics exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from effscale.models.builder import build, zero_init_residual
from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.search.allocator import keep_freed_memory
from effscale.search.augment import augment
from effscale.search.cpu_kernels import use_cpu_kernels
from effscale.search.memory import reported_out_of_memory
from effscale.search.optim import lr_factor, make_optimizer
from effscale.search.task import ProxyTask, check_batch, check_fits
from effscale.search.train_config import TrainConfig

Report = Callable[[int, float], bool]
"""Per-epoch hook `report(epoch, val_accuracy) -> stop?` (epochs count from 1), for pruners and schedulers."""

METRIC_KEYS = ("val_accuracy", "val_loss", "train_seconds", "images_per_second", "epochs", "steps",
               "params", "macs", "acts", "diverged", "reason", "pruned", "device", "threads")
_CHECK_EVERY = 10  # steps between loss checks (a host sync on a GPU) and progress updates
_PRECISE_BN_IMAGES = 2048  # training images whose batch-norm statistics every evaluation uses (one batch at least)


def proxy_train(spec: NetworkSpec, task: ProxyTask, config: TrainConfig = TrainConfig(),
                progress: bool = False, report: Report | None = None) -> dict[str, Any]:
    """Train `spec` (fitted to `task`, see `adapt`) within `config`'s budget; evaluate on the held-out split.

    Returns the `METRIC_KEYS`: val accuracy and loss (NaN when diverged), training seconds (evaluation
    excluded) and images/s, epochs and steps done, the spec's params / MACs / acts, `diverged` with its
    `reason` (a non-finite loss stops the run), `pruned` (the hook asked to stop), device and threads.
    """
    check_fits(spec, task)
    check_batch(config, len(task.train_labels))
    device = resolve_device(config.device)
    complexity = count(spec)
    keep_freed_memory()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        with (torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []),
              reported_out_of_memory(f"training {spec.name} at {spec.resolution} px with batch {config.batch_size}")):
            torch.manual_seed(config.seed)
            metrics = _Run(spec, task, config, device).train(progress, report)
    finally:
        torch.set_num_threads(previous_threads)
    metrics.update(params=complexity.params, macs=complexity.macs, acts=complexity.acts,
                   device=str(device), threads=config.num_threads)
    return {key: metrics[key] for key in METRIC_KEYS}


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when present, else the CPU; `cuda` without a GPU is bad input."""
    if name == "cuda" and not torch.cuda.is_available():
        raise EffscaleError("--device cuda: no CUDA device is available (use auto or cpu)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


class _Run:
    """The state of one training run."""

    def __init__(self, spec: NetworkSpec, task: ProxyTask, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = build(spec).to(device=device, memory_format=self.memory_format)
        if config.zero_init_residual:
            zero_init_residual(self.model)
        if device.type == "cpu" and config.channels_last:
            use_cpu_kernels(self.model)
        self.optimizer = make_optimizer(self.model, config)
        self.amp_dtype = _amp_dtype(device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.images, self.labels = task.train_images.to(device), task.train_labels.to(device)
        self.val_images, self.val_labels = task.val_images.to(device), task.val_labels.to(device)
        self.mean = torch.tensor(task.mean, device=device).view(1, -1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(task.std, device=device).view(1, -1, 1, 1)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.batch = config.batch_size
        self.steps_per_epoch = len(self.labels) // self.batch  # the last incomplete batch is dropped
        self.total_steps = _total_steps(config, self.steps_per_epoch, self.batch)

    def train(self, progress: bool, report: Report | None) -> dict[str, Any]:
        step, seconds, window, window_steps = 0, 0.0, torch.zeros((), device=self.device), 0
        evaluated: tuple[float, float] | None = None  # of the current weights, if done
        outcome: dict[str, Any] = {"diverged": False, "reason": None, "pruned": False}
        with tqdm(total=self.total_steps, disable=not progress, unit="step", dynamic_ncols=True) as bar:
            while step < self.total_steps and not (outcome["diverged"] or outcome["pruned"] or self._out_of_time(seconds)):
                order = torch.randperm(len(self.labels), generator=self.generator, device=self.device)
                start = time.perf_counter()
                for i in range(min(self.steps_per_epoch, self.total_steps - step)):
                    elapsed = seconds + time.perf_counter() - start
                    window += self._step(order[i * self.batch : (i + 1) * self.batch], self._lr(step, elapsed))
                    step, window_steps = step + 1, window_steps + 1
                    if window_steps == _CHECK_EVERY or step == self.total_steps:
                        loss, window_steps = window.item() / window_steps, 0
                        window.zero_()
                        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                        bar.update(step - bar.n)
                        if not math.isfinite(loss):
                            outcome.update(diverged=True, reason=f"non-finite training loss before step {step}")
                            break
                        if self._out_of_time(seconds + time.perf_counter() - start):
                            break
                seconds += time.perf_counter() - start
                evaluated = None
                if report is not None and not outcome["diverged"] and step % self.steps_per_epoch == 0:
                    evaluated = self.evaluate()
                    outcome["pruned"] = bool(report(step // self.steps_per_epoch, evaluated[0]))
        if outcome["diverged"]:
            evaluated = (math.nan, math.nan)
        elif evaluated is None:
            evaluated = self.evaluate()
        if not outcome["diverged"] and not math.isfinite(evaluated[1]):
            outcome.update(diverged=True, reason="non-finite validation loss")
        return {"val_accuracy": evaluated[0], "val_loss": evaluated[1], "train_seconds": seconds,
                "images_per_second": step * self.batch / seconds if seconds else 0.0,
                "epochs": step / self.steps_per_epoch, "steps": step, **outcome}

    def _out_of_time(self, seconds: float) -> bool:
        return self.config.max_seconds is not None and seconds >= self.config.max_seconds

    def _lr(self, step: int, seconds: float) -> float:
        """The lr of step `step` (from 0): the schedule follows the budget closest to its end."""
        done = (step + 1) / self.total_steps
        if self.config.max_seconds is not None:
            done = max(done, min(1.0, seconds / self.config.max_seconds))
        return self.config.lr * lr_factor(done, self.config)

    def _step(self, index: torch.Tensor, lr: float) -> torch.Tensor:
        """One optimiser step on the training images at `index`; returns the detached loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = augment(_gather(self.images, index), self.config.augment, self.generator)
        with self._autocast():
            logits = self.model(self._normalised(images))
            loss = F.cross_entropy(logits.float(), self.labels[index], label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=False)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) on the held-out split, after recomputing batch-norm statistics."""
        self._precise_batch_norm()
        self.model.eval()
        loss, correct, n = torch.zeros((), dtype=torch.float64, device=self.device), 0, len(self.val_labels)
        for start in range(0, n, self.config.eval_batch_size):
            images = self.val_images[start : start + self.config.eval_batch_size]
            labels = self.val_labels[start : start + self.config.eval_batch_size]
            with self._autocast():
                logits = self.model(self._normalised(images)).float()
            loss += F.cross_entropy(logits, labels, reduction="sum")
            correct += int((logits.argmax(1) == labels).sum())
        self.model.train()
        return correct / n, float(loss) / n

    def _precise_batch_norm(self) -> None:
        """Batch-norm running statistics as the exact average over the first training images under the
        final weights ("precise BN", as in pycls): short proxy runs otherwise evaluate with lagging ones."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [norm.momentum for norm in norms]
        self.model.eval()
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average
            norm.train()
        images = max(self.batch, min(_PRECISE_BN_IMAGES, len(self.labels)))  # a batch always fits (check_batch)
        for start in range(0, images - self.batch + 1, self.batch):
            with self._autocast():
                self.model(self._normalised(self.images[start : start + self.batch]))
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        self.model.train()

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _normalised(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 standardised per channel, strided in the model's memory format.

        A fresh tensor, not `.contiguous(memory_format)`: with one channel, NHWC strides also pass as
        contiguous, and the convolutions would follow them into channels_last when NCHW was asked for.
        """
        out = torch.empty(images.shape, device=images.device, memory_format=self.memory_format)
        return out.copy_(images).sub_(self.mean).mul_(self.inv_std)


def _gather(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The images at `index` of a channels_last batch, still channels_last (one gather in NHWC)."""
    return images.permute(0, 2, 3, 1)[index].permute(0, 3, 1, 2)


def _total_steps(config: TrainConfig, steps_per_epoch: int, batch: int) -> int:
    """Steps allowed by the epochs, steps and images budgets (the seconds budget is checked while running)."""
    steps = math.ceil(config.epochs * steps_per_epoch)
    if config.max_steps is not None:
        steps = min(steps, config.max_steps)
    if config.max_images is not None:
        steps = min(steps, math.ceil(config.max_images / batch))
    return max(1, steps)


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA (bf16 where supported, else fp16); full precision on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
