"""Latent sampling with the truncation trick (Brock et al. 2019).

z is drawn from an *exact* truncated standard normal: every coordinate with |z| > T is
redrawn until it falls inside, as in StudioGAN's ``sample.py`` (which uses scipy's
``truncnorm``). ``threshold=None`` means no truncation.

Latents are drawn in fixed-size blocks whose random stream depends only on
(seed, class, block index), so sample ``i`` of class ``c`` is the same whatever batch size
the generator is run with and however many samples are requested.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import torch

BLOCK = 256  # latents per random stream; changing it changes every sample: part of the format
# The smallest threshold: a number is accepted with probability ~0.8 T, so a block takes ~1/T rounds of
# redraws (0.01: about a second; 1e-9: forever), and below it every sample is its class's mean image anyway
MIN_THRESHOLD = 0.01


def truncated_normal_(z: torch.Tensor, threshold: Optional[float], generator: torch.Generator) -> torch.Tensor:
    """Fill ``z`` in place with N(0, 1) values, redrawing any with |value| > threshold."""
    if threshold is not None and not threshold >= MIN_THRESHOLD:
        raise ValueError(f"truncation threshold must be >= {MIN_THRESHOLD}, got {threshold}")
    z.normal_(generator=generator)
    if threshold is None:
        return z
    # The acceptance rate is P(|x| <= T); for T = 0.04 it is ~3%, so redraw only the rejects.
    bad = z.abs() > threshold
    while bool(bad.any()):
        n = int(bad.sum())
        fresh = torch.empty(n, dtype=z.dtype, device=z.device).normal_(generator=generator)
        z[bad] = fresh
        bad = z.abs() > threshold
    return z


def _block_seed(seed: int, class_index: int, block: int) -> int:
    digest = hashlib.sha256(f"augmentgan-z:{seed}:{class_index}:{block}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def class_latents(
    seed: int,
    class_index: int,
    start: int,
    count: int,
    z_dim: int,
    threshold: Optional[float] = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Latents for samples ``start .. start+count-1`` of one class, on the CPU.

    Deterministic in (seed, class_index, sample index, z_dim, threshold) only.
    """
    if count < 0 or start < 0:
        raise ValueError("start and count must be >= 0")
    out = torch.empty(count, z_dim, dtype=dtype)
    if count == 0:
        return out
    first, last = start // BLOCK, (start + count - 1) // BLOCK
    gen = torch.Generator(device="cpu")
    filled = 0
    for block in range(first, last + 1):
        gen.manual_seed(_block_seed(seed, class_index, block))
        z = truncated_normal_(torch.empty(BLOCK, z_dim, dtype=dtype), threshold, gen)
        lo = max(start - block * BLOCK, 0)
        hi = min(start + count - block * BLOCK, BLOCK)
        out[filled : filled + hi - lo] = z[lo:hi]
        filled += hi - lo
    return out
