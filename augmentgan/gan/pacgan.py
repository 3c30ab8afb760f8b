"""PacGAN packing (Lin et al. 2018): D judges m samples at once, stacked on the channel axis.

Packing the fake batch lets D notice a lack of diversity (m copies of one mode), which
penalises mode collapse. Real and fake batches are packed the same way.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["pack", "pack_labels"]


def _check(batch: int, m: int, what: str) -> None:
    if m < 1:
        raise ValueError(f"PacGAN packing m (tricks.pac) must be >= 1, got {m}")
    if batch % m:
        raise ValueError(
            f"{what} of {batch} is not divisible by the PacGAN packing m={m} (tricks.pac); "
            "use a batch size that is a multiple of m"
        )


def pack(x: Tensor, m: int) -> Tensor:
    """``[B, C, H, W]`` -> ``[B/m, m*C, H, W]``: packed row i holds samples i*m .. i*m+m-1 in channel order."""
    if x.ndim != 4:
        raise ValueError(f"pack expects images [B, C, H, W], got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    _check(b, m, "a batch")
    return x.reshape(b // m, m * c, h, w)


def pack_labels(y: Tensor, m: int) -> Tensor:
    """``[B]`` -> ``[B/m, m]``: the labels of the samples packed in each row, in the same order."""
    if y.ndim != 1:
        raise ValueError(f"pack_labels expects labels [B], got shape {tuple(y.shape)}")
    _check(y.shape[0], m, "a label batch")
    return y.reshape(-1, m)
