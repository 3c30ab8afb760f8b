"""Regularizers of D and G. Each penalty returns the raw value; the trainer multiplies by its weight.

The D penalties take D and its inputs exactly as D receives them (already packed when
PacGAN is on, so one sample is one packed row) and build the graph with
``create_graph=True`` so that the penalty trains D. They make no assumption on the number
of channels.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.gan._random import rand

__all__ = [
    "D_PENALTIES",
    "GroupSpectralReg",
    "LeCamEMA",
    "clip_weights_",
    "dragan_penalty",
    "gradient_penalty",
    "lecam_reg",
    "mode_seeking_loss",
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


# --- LeCam (Tseng et al. 2021) -----------------------------------------------------------------
def lecam_reg(real_logits: Tensor, fake_logits: Tensor, ema_real: Tensor, ema_fake: Tensor) -> Tensor:
    """LeCam regularization (Tseng et al. 2021, google/lecam-gan ``lecam_reg``):
    ``E[relu(D(x) - ema_fake)^2] + E[relu(ema_real - D(G(z)))^2]``, the anchors being the EMAs of
    D's mean outputs on fakes and reals. It keeps D's predictions from drifting apart on few data."""
    return F.relu(real_logits - ema_fake).pow(2).mean() + F.relu(ema_real - fake_logits).pow(2).mean()


class LeCamEMA:
    """The EMAs of mean D(real) and D(fake) that anchor :func:`lecam_reg`, kept on the device (no sync).

    As google/lecam-gan's ``ema_losses``: before G step ``start`` the average is the last value
    (decay 0), from then on ``ema <- decay * ema + (1 - decay) * value``. Its state (the two
    averages) belongs in the checkpoint.
    """

    def __init__(self, decay: float, start: int, device: torch.device | str | None = None) -> None:
        self.decay, self.start = float(decay), int(start)
        self.value = torch.zeros(2, device=device)  # [ema_real, ema_fake]

    def update(self, real_logits: Tensor, fake_logits: Tensor, g_step: int) -> None:
        cur = torch.stack([real_logits.detach().mean(), fake_logits.detach().mean()]).to(self.value.dtype)
        if g_step < self.start:
            self.value.copy_(cur)
        else:
            self.value.lerp_(cur, 1.0 - self.decay)

    def active(self, g_step: int) -> bool:
        return g_step >= self.start

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value.copy_(state["value"].to(self.value.device))


# --- mode seeking (Mao et al. 2019, MSGAN) ------------------------------------------------------
MS_EPS = 1e-5


def mode_seeking_loss(fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """MSGAN's term for G (Mao et al. 2019): ``1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps)``, the two
    halves generated for the same classes; minimizing it pushes different latents to different images."""
    ratio = (fake_a.float() - fake_b.float()).abs().mean() / (z_a.float() - z_b.float()).abs().mean()
    return 1.0 / (ratio + MS_EPS)


# --- group spectral regularization (Rangwani et al. 2022, gSR) ---------------------------------
def group_shape(channels: int) -> tuple[int, int]:
    """gSRGAN's ``get_dimensions``: ``(h, w)`` with ``h * w = channels`` and ``h`` the largest divisor <= sqrt."""
    h = max(i for i in range(1, int(math.isqrt(channels)) + 1) if channels % i == 0)
    return h, channels // h


def class_balanced_weights(class_counts: Sequence[int], beta: float) -> Tensor:
    """gSR's per-class weights: inversely proportional to the effective number of samples
    ``(1 - beta^n) / (1 - beta)`` (Cui et al. 2019), normalised to average 1 over classes (all 1 when beta is 0)."""
    n = torch.tensor([float(c) for c in class_counts], dtype=torch.float64)
    if beta <= 0:
        return torch.ones_like(n)
    inv = (1.0 - beta) / (1.0 - beta**n)
    return inv * len(n) / inv.sum()


class GroupSpectralReg:
    """gSR (Rangwani et al. 2022, val-iisc/gSRGAN): each class's conditional-BatchNorm gain (and bias)
    vector of C values is grouped into an ``h x w`` matrix (:func:`group_shape`) and the square of its largest
    singular value, from persistent power iterations (4 per step, 40 the first time, as in gSRGAN), is
    penalised, weighted per class by :func:`class_balanced_weights` and averaged over layers and classes.
    Tail classes are the ones whose spectral norms explode; this keeps them from collapsing.

    The power-iteration vectors are state: :meth:`state_dict` goes into the checkpoint.
    """

    def __init__(self, class_counts: Sequence[int], beta: float = 0.99, n_iter: int = 4) -> None:
        self.weights = class_balanced_weights(class_counts, beta)
        self.n_iter = n_iter
        self.vectors: list[Tensor] = []  # per matrix set: [K, h] u then [K, w] v, alternating

    def _sigma(self, w: Tensor, index: int) -> Tensor:
        k, c = w.shape
        h, wd = group_shape(c)
        mats = w.reshape(k, h, wd)
        with torch.no_grad():
            m = mats.detach().float()
            if len(self.vectors) <= 2 * index:
                self.vectors += [torch.ones(k, h, device=w.device) / math.sqrt(h), torch.ones(k, wd, device=w.device) / math.sqrt(wd)]
                iters = 10 * self.n_iter
            else:
                iters = self.n_iter
            if self.vectors[2 * index].device != w.device:  # loaded from a checkpoint on another device
                self.vectors[2 * index : 2 * index + 2] = [t.to(w.device) for t in self.vectors[2 * index : 2 * index + 2]]
            u, v = self.vectors[2 * index], self.vectors[2 * index + 1]
            for _ in range(iters):
                v = F.normalize(torch.einsum("khw,kh->kw", m, u), dim=1, eps=1e-3)
                u = F.normalize(torch.einsum("khw,kw->kh", m, v), dim=1, eps=1e-3)
            self.vectors[2 * index].copy_(u)
            self.vectors[2 * index + 1].copy_(v)
        return torch.einsum("kh,khw,kw->k", u, mats.float(), v)

    def __call__(self, G: nn.Module) -> Tensor:
        affines = getattr(G, "class_affines", None)
        if affines is None:
            raise ValueError(f"gSR needs a generator with class-conditional BatchNorm (resnet, sagan, biggan), not {type(G).__name__}")
        pairs = affines()
        lam = self.weights.to(device=pairs[0][0].device, dtype=torch.float32)
        total = torch.zeros((), device=pairs[0][0].device)
        for i, (gamma, beta) in enumerate(pairs):
            total = total + (lam * (self._sigma(gamma, 2 * i).pow(2) + self._sigma(beta, 2 * i + 1).pow(2))).sum()
        return total / (len(pairs) * len(lam))

    def state_dict(self) -> dict[str, Any]:
        return {"vectors": [v.clone() for v in self.vectors]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vectors = [v.clone() for v in state["vectors"]]
