"""Exponential moving average of G's weights, used for sampling (Karras et al. 2018; Brock et al. 2019)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["EMA"]


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

    def state_dict(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (loadable with ``weights_only=True``)."""
        return {"decay": self.decay, "start": self.start, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.start = int(state["start"])
        self.model.load_state_dict(state["model"])
