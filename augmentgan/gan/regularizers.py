"""Regularizers of D and G. Each penalty returns the raw value; the trainer multiplies by its weight.

The D penalties take D and its inputs exactly as D receives them (already packed when
PacGAN is on, so one sample is one packed row) and build the graph with
``create_graph=True`` so that the penalty trains D. They make no assumption on the number
of channels.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Union

import torch
from torch import Tensor, nn

from augmentgan.gan._random import rand

__all__ = [
    "D_PENALTIES",
    "clip_weights_",
    "dragan_penalty",
    "gradient_penalty",
    "orthogonal_reg",
    "r1_penalty",
]


def _input_grad(D: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """d(sum of D's logits)/dx at x, one row per sample, differentiable in D's parameters."""
    x = x.detach().requires_grad_(True)
    out = D(x, y)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def _unit_norm_penalty(D: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return ((torch.linalg.vector_norm(_input_grad(D, x, y), dim=1) - 1.0) ** 2).mean()


def _per_sample_uniform(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    return rand((x.shape[0],) + (1,) * (x.ndim - 1), x, generator)


def gradient_penalty(
    D: nn.Module, real: Tensor, fake: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2].

    ``x_hat = eps * real + (1 - eps) * fake`` with one eps ~ U[0, 1) per sample (per packed
    row), drawn from ``generator``. Real and fake must be paired row by row (same shape) and
    share the labels ``y``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty needs real and fake of the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps = _per_sample_uniform(real, generator)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    return _unit_norm_penalty(D, x_hat, y)


def dragan_penalty(D: nn.Module, real: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None) -> Tensor:
    """DRAGAN (Kodali et al. 2017): the unit-gradient-norm penalty in a neighbourhood of the reals.

    As in the authors' code (kodalinaveen3/DRAGAN): ``x_p = x + 0.5 * std(x) * U[0, 1)``
    (std over the whole batch, one uniform per element), then the gradient is taken at
    ``x + alpha * (x_p - x)`` with one alpha ~ U[0, 1) per sample.
    """
    real = real.detach()
    noise = rand(real.shape, real, generator)
    perturbed = real + 0.5 * real.std() * noise
    alpha = _per_sample_uniform(real, generator)
    return _unit_norm_penalty(D, real + alpha * (perturbed - real), y)


def r1_penalty(D: nn.Module, real: Tensor, y: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E||grad_x D(x_real)||^2; the trainer multiplies by gamma / 2."""
    return _input_grad(D, real, y).pow(2).sum(dim=1).mean()


@torch.no_grad()
def clip_weights_(D: nn.Module, c: float) -> None:
    """WGAN weight clipping (Arjovsky et al. 2017): every parameter of D into [-c, c], in place.

    With spectral-norm parametrizations the stored (original) weights are clipped.
    """
    if c <= 0:
        raise ValueError(f"clip value must be > 0, got {c}")
    for p in D.parameters():
        p.clamp_(-c, c)


ExcludeArg = Union[Callable[[str, Tensor], bool], Iterable[str], None]


def _excluded_ids(model: nn.Module, exclude: ExcludeArg) -> set[int]:
    ids = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    if exclude is None:
        return ids
    named = list(model.named_parameters())
    if callable(exclude):
        ids |= {id(p) for name, p in named if exclude(name, p)}
    else:
        prefixes = tuple(exclude)
        ids |= {id(p) for name, p in named if any(name == pre or name.startswith(pre + ".") for pre in prefixes)}
    return ids


def _off_diagonal_gram_sq(w: Tensor) -> Tensor:
    """||(W W^T) * (1 - I)||_F^2 for W of shape (rows, cols)."""
    rows, cols = w.shape
    if rows <= cols:
        gram = w @ w.t()
        return (gram * (1.0 - torch.eye(rows, device=w.device, dtype=w.dtype))).pow(2).sum()
    # Same value through the smaller Gram matrix: ||W W^T||_F = ||W^T W||_F, and the
    # diagonal of W W^T holds the squared row norms.
    return (w.t() @ w).pow(2).sum() - w.pow(2).sum(dim=1).pow(2).sum()


def orthogonal_reg(G: nn.Module, exclude: ExcludeArg = None) -> Tensor:
    """BigGAN orthogonal regularization (Brock et al. 2019), off-diagonal form.

    Sum over G's weights W (reshaped to ``(W.shape[0], -1)``) of ``||(W W^T) * (1 - I)||_F^2``.
    Skipped: parameters with fewer than 2 dimensions (biases, gains), every ``nn.Embedding``
    (BigGAN's shared class embedding), and whatever ``exclude`` names - a predicate
    ``(name, param) -> bool`` or parameter-name prefixes such as ``["shared"]``. As in
    BigGAN-PyTorch, it acts on the stored parameters: under spectral norm that is
    ``parametrizations.weight.original``, not the normalized weight.

    BigGAN-PyTorch's ``utils.ortho`` adds ``strength * 2 (W W^T * (1 - I)) W`` to the
    gradient, which is half the gradient of this penalty: weight 1e-4 here equals
    ``G_ortho 2e-4`` there.
    """
    skip = _excluded_ids(G, exclude)
    total: Optional[Tensor] = None
    for p in G.parameters():
        if p.ndim < 2 or id(p) in skip:
            continue
        term = _off_diagonal_gram_sq(p.reshape(p.shape[0], -1))
        total = term if total is None else total + term
    if total is None:
        first = next(G.parameters(), None)
        return torch.zeros((), device=first.device if first is not None else None)
    return total


D_PENALTIES: dict[str, Callable[..., Tensor]] = {
    "gp": gradient_penalty,
    "dragan": dragan_penalty,
    "r1": r1_penalty,
}
