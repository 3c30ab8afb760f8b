"""Exponential moving average of G's weights, used for sampling (Karras et al. 2018; Brock et al. 2019)."""

from __future__ import annotations

import copy
import types
from typing import Any, Callable

import torch
from torch import Tensor, nn

__all__ = ["EMA", "STANDING_BATCHES"]

STANDING_BATCHES = 16
"""Batches G's BatchNorm statistics are re-estimated from (BigGAN's ``num_standing_accumulations``)."""


class EMA:
    """An averaged copy of ``model``: ``p_ema <- decay * p_ema + (1 - decay) * p`` after each G step.

    Before step ``start`` the copy just follows the model (weights copied, as BigGAN's
    ``ema_start``), so the average does not remember the random initialisation. Buffers
    (BatchNorm running statistics, spectral-norm u/v vectors) are copied as they are.
    Works with parametrized modules (spectral norm): parameters and buffers of the two
    modules are paired in registration order.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay} (tricks.ema_decay)")
        if start < 0:
            raise ValueError(f"EMA start must be >= 0, got {start} (tricks.ema_start)")
        self.decay = float(decay)
        self.start = int(start)
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.stats_fresh = False  # True once standing_stats ran after the last update

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        ema_p, src_p = list(self.model.parameters()), list(model.parameters())
        ema_b, src_b = list(self.model.buffers()), list(model.buffers())
        if len(ema_p) != len(src_p) or len(ema_b) != len(src_b) or any(
            a.shape != b.shape for a, b in zip(ema_p + ema_b, src_p + src_b)
        ):
            raise ValueError(f"EMA.update got a {type(model).__name__} whose parameters or buffers differ from the averaged copy")
        return ema_p, src_p, ema_b, src_b

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold ``model``'s current weights in (a plain copy while ``step < start``)."""
        ema_p, src_p, ema_b, src_b = self._pairs(model)
        if ema_p:
            src_p = [p.detach() for p in src_p]
            if step < self.start:
                torch._foreach_copy_(ema_p, src_p)
            else:
                torch._foreach_lerp_(ema_p, src_p, 1.0 - self.decay)
        for e, s in zip(ema_b, src_b):
            e.copy_(s)
        self.stats_fresh = False

    @torch.no_grad()
    def standing_stats(self, draw: Callable[[], tuple[Tensor, Tensor]], batches: int = STANDING_BATCHES) -> bool:
        """Re-estimate the copy's BatchNorm running statistics from its own samples; False if it has no BatchNorm.

        The statistics G's BatchNorm layers hold are averages of the live G's training batches; the
        averaged weights produce other activations, so in eval mode they would be normalised with the
        wrong mean and variance (on mnist-lt, 1,600 steps: 0.12 of class 0's EMA samples were judged
        of their class). Each call resets them and runs the copy in training mode on ``batches``
        inputs ``draw()`` (``(z, y)``), accumulating a plain average (``momentum=None``). Every
        BatchNorm runs its single-process forward here (a rank's own batches, no collective), so
        the result does not depend on how many processes train. Runs once per update.
        """
        if self.stats_fresh:
            return True
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not norms:
            return False
        was_training, momenta = self.model.training, [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.forward = types.MethodType(nn.modules.batchnorm._BatchNorm.forward, m)  # type: ignore[method-assign]
        self.model.train()
        try:
            for _ in range(batches):
                self.model(*draw())
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
                del m.forward
            self.model.train(was_training)
        self.stats_fresh = True
        return True

    def state_dict(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (loadable with ``weights_only=True``)."""
        return {"decay": self.decay, "start": self.start, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.start = int(state["start"])
        self.model.load_state_dict(state["model"])
        self.stats_fresh = False
