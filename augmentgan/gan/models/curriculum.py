"""The curriculum discriminator (Sharma et al. 2018, arXiv:1807.09295; see ``config.CurriculumConfig``).

An ensemble of conditional discriminators of increasing width behind the ordinary D interface:
``D(x, y)`` is the mixture ``sum_i w_i D_i(x, y)`` (what G is trained against and what metrics,
LeCam and ADA read), ``D(x, y, members=True)`` the members' logits side by side (``[B, K]``, or
``[B, K, 2]`` with ``split``) for the D step, which trains every member on its own loss. The
weights are a non-persistent buffer that the GAN sets from the G step counter (like transitional
conditioning's ``cond_scale``), so a checkpoint needs only the step to restore them; a freshly
built ensemble holds the schedule's final weights (the strongest member alone).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn


class CurriculumDiscriminator(nn.Module):
    """``K`` discriminators (weakest first) mixed with weights set by :func:`set_curriculum_weights`."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a curriculum discriminator needs two members or more, got {len(members)}")
        self.members = nn.ModuleList(members)
        final = torch.zeros(len(members))
        final[-1] = 1.0
        self.register_buffer("weights", final, persistent=False)

    @property
    def has_projection(self) -> bool:
        return all(getattr(m, "has_projection", False) for m in self.members)

    def forward(self, x: Tensor, y: Tensor, *, split: bool = False, members: bool = False) -> Tensor:
        out = torch.stack([m(x, y, split=split) for m in self.members], dim=1)  # [B, K] or [B, K, 2]
        if members:
            return out
        return mix(out, self.weights)


def mix(member_logits: Tensor, weights: Tensor) -> Tensor:
    """``sum_i w_i logits[:, i]`` for member logits ``[B, K]`` or ``[B, K, 2]``."""
    w = weights.to(member_logits.dtype)
    return (member_logits * w.reshape(1, -1, *([1] * (member_logits.dim() - 2)))).sum(1)


def set_curriculum_weights(module: nn.Module, weights: Sequence[float]) -> None:
    """Put the mixture weights into every :class:`CurriculumDiscriminator` inside ``module``."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, CurriculumDiscriminator):
                m.weights.copy_(torch.as_tensor(list(weights), dtype=m.weights.dtype))


def build_curriculum(member: Callable[[int], nn.Module], d_ch: int, widths: Sequence[float]) -> CurriculumDiscriminator:
    """The ensemble whose member ``i`` is ``member(max(4, round(d_ch * widths[i])))``."""
    return CurriculumDiscriminator([member(max(4, round(d_ch * w))) for w in widths])
