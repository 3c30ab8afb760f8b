"""Adversarial losses: pure functions of D's raw logits, one D side and one G side each.

Every loss is a :class:`GANLoss` in the :data:`LOSSES` registry, keyed by the names of
``config.LossName``. Logits are D's raw outputs (no sigmoid); every expectation is a mean
over the batch, and the sigmoid/log terms use the stable forms (``softplus``,
``binary_cross_entropy_with_logits``).

Relativistic losses (Jolicoeur-Martineau 2018, arXiv:1807.00734) follow the paper's
equations: the two terms are summed. The author's script ``code/GAN_losses_iter.py`` in
AlexiaJM/RelativisticGAN halves the relativistic-average losses; that factor of 2 changes
nothing with Adam except the balance against a gradient penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from augmentgan.errors import ConfigError

__all__ = ["GANLoss", "LOSSES", "get_loss"]

DLossFn = Callable[[Tensor, Tensor, float], Tensor]
GLossFn = Callable[[Tensor, Optional[Tensor]], Tensor]


@dataclass(frozen=True)
class GANLoss:
    """One adversarial loss: ``d_loss`` trains D, ``g_loss`` trains G.

    ``relativistic`` losses compare real and fake logits, so ``g_loss`` needs the logits of
    a real batch too (not detached: the formula differentiates through them).
    ``smoothing`` tells whether one-sided label smoothing applies (real target 1 - s).
    """

    name: str
    d_fn: DLossFn
    g_fn: GLossFn
    relativistic: bool = False
    smoothing: bool = False

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor, *, label_smoothing: float = 0.0) -> Tensor:
        """D's loss on D(real) and D(fake) logits; a scalar."""
        if label_smoothing and not self.smoothing:
            raise ConfigError(
                f"loss.label_smoothing={label_smoothing} does not apply to loss {self.name!r}; "
                "use bce, minimax or lsgan, or set loss.label_smoothing=0"
            )
        if not 0.0 <= label_smoothing < 0.5:
            raise ConfigError(f"loss.label_smoothing={label_smoothing} must be in [0, 0.5)")
        return self.d_fn(real_logits, fake_logits, label_smoothing)

    def g_loss(self, fake_logits: Tensor, real_logits: Optional[Tensor] = None) -> Tensor:
        """G's loss on D(fake) logits (and D(real) logits for relativistic losses); a scalar."""
        if self.relativistic and real_logits is None:
            raise ValueError(f"loss {self.name!r} is relativistic: g_loss needs real_logits (D's logits on a real batch)")
        return self.g_fn(fake_logits, real_logits)


def _paired(real: Tensor, fake: Tensor) -> Tensor:
    """r - f sample by sample (RSGAN); the batches must have the same size."""
    if real.shape != fake.shape:
        raise ValueError(
            f"loss 'rsgan' compares real and fake logits pairwise: shapes {tuple(real.shape)} and "
            f"{tuple(fake.shape)} differ (use real and fake batches of the same size)"
        )
    return real - fake


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# --- standard GAN (Goodfellow et al. 2014) ---------------------------------------------

def _bce_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    # -E[log sig(r)] - E[log(1 - sig(f))]; with smoothing the real target is 1 - s (Salimans et al. 2016).
    return _bce(real, 1.0 - s) + _bce(fake, 0.0)


def _minimax_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    # Saturating: E[log(1 - sig(f))] = -E[softplus(f)].
    return -F.softplus(fake).mean()


def _bce_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    # Non-saturating: -E[log sig(f)] = E[softplus(-f)].
    return F.softplus(-fake).mean()


# --- least squares (Mao et al. 2017, a=0, b=1, c=1) -----------------------------------

def _lsgan_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    return 0.5 * ((real - (1.0 - s)) ** 2).mean() + 0.5 * (fake**2).mean()


def _lsgan_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


# --- Wasserstein (Arjovsky et al. 2017) and hinge (Lim & Ye 2017; Miyato et al. 2018) --

def _wasserstein_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    return fake.mean() - real.mean()


def _hinge_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _neg_mean_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    return -fake.mean()


# --- relativistic (Jolicoeur-Martineau 2018) ------------------------------------------

def _rsgan_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    # -E[log sig(r - f)], real and fake paired sample by sample.
    return F.softplus(-_paired(real, fake)).mean()


def _rsgan_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    return F.softplus(_paired(real, fake)).mean()


def _ragan_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    # -E[log sig(r - mean f)] - E[log(1 - sig(f - mean r))]
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def _ragan_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    # -E[log sig(f - mean r)] - E[log(1 - sig(r - mean f))]
    return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()


def _ralsgan_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    return ((real - fake.mean() - 1.0) ** 2).mean() + ((fake - real.mean() + 1.0) ** 2).mean()


def _ralsgan_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    return ((fake - real.mean() - 1.0) ** 2).mean() + ((real - fake.mean() + 1.0) ** 2).mean()


def _rahinge_d(real: Tensor, fake: Tensor, s: float) -> Tensor:
    return F.relu(1.0 - (real - fake.mean())).mean() + F.relu(1.0 + (fake - real.mean())).mean()


def _rahinge_g(fake: Tensor, real: Optional[Tensor]) -> Tensor:
    return F.relu(1.0 - (fake - real.mean())).mean() + F.relu(1.0 + (real - fake.mean())).mean()


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", _bce_d, _minimax_g, smoothing=True),
        GANLoss("bce", _bce_d, _bce_g, smoothing=True),
        GANLoss("lsgan", _lsgan_d, _lsgan_g, smoothing=True),
        GANLoss("wasserstein", _wasserstein_d, _neg_mean_g),
        GANLoss("hinge", _hinge_d, _neg_mean_g),
        GANLoss("rsgan", _rsgan_d, _rsgan_g, relativistic=True),
        GANLoss("ragan", _ragan_d, _ragan_g, relativistic=True),
        GANLoss("ralsgan", _ralsgan_d, _ralsgan_g, relativistic=True),
        GANLoss("rahinge", _rahinge_d, _rahinge_g, relativistic=True),
    )
}


def get_loss(name: str) -> GANLoss:
    """The registered loss called ``name``; ConfigError naming the valid ones otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r} (loss.name); choose one of {sorted(LOSSES)}") from None
