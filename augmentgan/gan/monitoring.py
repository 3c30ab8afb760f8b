"""Sample quality tracked during training: what a monitor is, the samples it gets, the best score.

The trainer does not measure quality itself (that needs the domain classifier of the evaluate
layer, which sits above ``gan/``): whoever calls :func:`~augmentgan.gan.trainer.train` passes a
*monitor*, usually :func:`augmentgan.evaluate.monitor.quality_monitor`. Every ``train.eval_every``
G steps the trainer calls ``monitor(step, sample)`` on rank 0, where ``sample(per_class)`` returns
that many generated images per class, and logs what it returns. ``score`` (higher is better)
decides which step is kept as ``checkpoints/best.pt``.

The samples come from the sampling generator (the EMA copy when there is one) in eval mode, from
latents of their own stream (derived from the run seed, the same at every evaluation, so scores
of different steps differ by the weights alone), resized to the data's size and rounded to uint8
exactly as generation does. Monitoring draws nothing from the training streams: a run with and
without monitoring trains the same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np
import torch

from augmentgan.gan.fit import Fit, to_data

SampleFn = Callable[[int], tuple[np.ndarray, np.ndarray]]
"""``sample(per_class)`` -> (uint8 images (N, H, W, C) at the data's size, int64 labels (N,))."""

_MONITOR_STREAM = 6  # the child of SeedSequence(seed) after the training streams (gan.sampling)


class QualityMonitor(Protocol):
    """``monitor(step, sample) -> {"score": ..., other metrics}`` (floats; higher score is better).

    A monitor with random state of its own also has ``state_dict()`` / ``load_state_dict(state)``
    (plain data): the trainer stores it in every checkpoint so that a resumed run scores the same.
    """

    def __call__(self, step: int, sample: SampleFn) -> dict[str, float]: ...


@dataclass
class Best:
    """The best score seen so far and its step (``step`` None: nothing evaluated yet)."""

    step: Optional[int] = None
    score: float = -math.inf
    metrics: dict[str, float] = field(default_factory=dict)

    def improved_by(self, score: float) -> bool:
        return math.isfinite(score) and score > self.score

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "score": self.score, "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, d: Optional[dict[str, Any]]) -> "Best":
        if not d:
            return cls()
        return cls(d.get("step"), float(d.get("score", -math.inf)), {k: float(v) for k, v in (d.get("metrics") or {}).items()})


def monitor_latents(seed: int, num_classes: int, per_class: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` latents per class (independent across classes) from the monitor's own stream."""
    child = np.random.SeedSequence(seed).spawn(_MONITOR_STREAM + 1)[_MONITOR_STREAM]
    g = torch.Generator().manual_seed(int(child.generate_state(1, dtype=np.uint64)[0]))
    z = torch.randn(num_classes * per_class, z_dim, generator=g)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return z, y


def to_uint8(x: torch.Tensor, size: tuple[int, int], fit: Fit) -> np.ndarray:
    """Generator output in [-1, 1] (N, C, S, S) -> uint8 (N, H, W, C) at ``size`` (as generation does)."""
    x = to_data(x.float(), size, fit)
    return x.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def sample_fn(generate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, seed: int, num_classes: int, z_dim: int, data_size: tuple[int, int], fit: Fit) -> SampleFn:
    """``sample(per_class)`` over ``generate(z, y) -> images in [-1, 1]`` (latents cached per count)."""
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def sample(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        if per_class not in cache:
            cache[per_class] = monitor_latents(seed, num_classes, int(per_class), z_dim)
        z, y = cache[per_class]
        return to_uint8(generate(z, y), data_size, fit), y.numpy().astype(np.int64)

    return sample
