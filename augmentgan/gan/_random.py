"""Random draws from an explicit ``torch.Generator``, placed on the device of the data.

Numbers are drawn on the generator's own device (the data's device when there is none)
and then moved, so a CPU generator drives a CUDA run and a seed gives the same draws on
every device.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor


def _device(like: Tensor, generator: Optional[torch.Generator]) -> torch.device:
    return generator.device if generator is not None else like.device


def rand(shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """U[0, 1) numbers of ``shape`` with ``like``'s dtype and device."""
    out = torch.rand(tuple(shape), generator=generator, device=_device(like, generator))
    return out.to(device=like.device, dtype=like.dtype)


def randint(low: int, high: int, shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Integers in [low, high) of ``shape`` (int64) on ``like``'s device."""
    out = torch.randint(low, high, tuple(shape), generator=generator, device=_device(like, generator))
    return out.to(device=like.device)
