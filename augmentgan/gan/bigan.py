"""A jointly trained encoder: class-conditional BiGAN / ALI (config section ``bigan``).

Donahue, Kraehenbuehl & Darrell 2017, "Adversarial Feature Learning" (BiGAN, arXiv:1605.09782);
Dumoulin et al. 2017, "Adversarially Learned Inference" (ALI, arXiv:1606.00704). Beside the GAN's
own G and D, two networks are trained with it (``bigan.weight`` > 0):

- the encoder ``E(x, y) -> z`` (:class:`Encoder`, the same network ``augmentgan encode`` fits after
  training when a run has none): strided convs on the image plus one-hot class maps, two linear
  layers, the class joined again before the last;
- the joint discriminator ``D_xz(x, z, y)`` (:class:`JointDiscriminator`): an image branch (strided
  convs), a z branch (two linear layers), a joint head on both, and a class projection term
  ``<embed(y), h>`` as in a projection D (Miyato & Koyama 2018). Spectral norm on every layer.

Losses (non-saturating BCE, whatever the main ``loss.name``)::

    D_xz:  softplus(-D_xz(x, E(x, y), y)) + softplus(D_xz(G(z, y), z, y))        real pairs vs fake pairs
    G, E:  softplus(D_xz(x, E(x, y), y)) + softplus(-D_xz(G(z, y), z, y))        swapped labels

``ConditionalGAN`` adds ``bigan.weight`` x the first to its D step (D and D_xz step together) and
``bigan.weight`` x the second to its G step (G and E step together); the batches, fakes and latents
are those the steps draw anyway. With ``bigan.cycle`` > 0 the G step also adds ``bigan.weight x
bigan.cycle x mean (E(G(z, y), y) - z)^2`` (ALICE's explicit cycle in z, Li et al. 2017,
"ALICE: Towards Understanding Adversarial Learning for Joint Distribution Matching"): the
adversarial term alone makes E an inverse of G only at D_xz's optimum, which short small-data runs
reach slowly and noisily; the cycle term pulls E there directly and keeps G's latents recoverable. Images going into D_xz get the run's DiffAugment (each its own
draw from the GAN's augmentation stream, as D's images do), real and fake alike, and z is left as
it is: augmenting both sides of the comparison the same way keeps the joint distributions
comparable (what DiffAugment's argument needs) while D_xz cannot memorise the few real images of a
small dataset. E always sees the clean image: its code is the code of the image, not of an
augmented copy.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.gan.config import BiGANConfig, OptimConfig
from augmentgan.gan.layers import conv_factory, embedding_factory, linear_factory

__all__ = ["BiGAN", "Encoder", "JointDiscriminator", "build_bigan", "build_encoder", "encoder_from_state"]


class Encoder(nn.Module):
    """``E(x, y) -> z``: strided 4x4 convs (LeakyReLU 0.2) from the training size down to 4x4 on
    the image plus one-hot class maps, then two linear layers (the class joined again before the last)."""

    def __init__(self, img_size: int, channels: int, num_classes: int, z_dim: int, width: int = 32) -> None:
        super().__init__()
        self.img_size, self.num_classes, self.z_dim = int(img_size), int(num_classes), int(z_dim)
        layers: list[nn.Module] = []
        in_ch, size, ch = channels + num_classes, img_size, width
        while size > 4:
            layers += [nn.Conv2d(in_ch, ch, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            in_ch, size, ch = ch, size // 2, min(ch * 2, width * 8)
        self.convs = nn.Sequential(*layers)
        hidden = max(256, 2 * z_dim)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * size * size, hidden), nn.LeakyReLU(0.2, inplace=True))
        self.out = nn.Linear(hidden + num_classes, z_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)
        maps = onehot[:, :, None, None].expand(-1, -1, x.shape[-2], x.shape[-1])
        h = self.fc(self.convs(torch.cat([x, maps], dim=1)))
        return self.out(torch.cat([h, onehot], dim=1))


class JointDiscriminator(nn.Module):
    """``D_xz(x, z, y)`` -> one logit per pair: image branch (strided 4x4 convs down to 4x4, LeakyReLU 0.2,
    then a linear layer), z branch (two linear layers), a joint linear layer on both, then
    ``psi(h) + <embed(y), h>``. Every layer spectrally normalised."""

    def __init__(self, img_size: int, channels: int, num_classes: int, z_dim: int, width: int = 32) -> None:
        super().__init__()
        conv, linear, embedding = conv_factory(True), linear_factory(True), embedding_factory(True)
        hidden = 8 * width
        layers: list[nn.Module] = []
        in_ch, size, ch = channels, img_size, width
        while size > 4:
            layers += [conv(in_ch, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
            in_ch, size, ch = ch, size // 2, min(ch * 2, width * 8)
        self.x_branch = nn.Sequential(*layers, nn.Flatten(), linear(in_ch * size * size, hidden), nn.LeakyReLU(0.2))
        self.z_branch = nn.Sequential(linear(z_dim, hidden), nn.LeakyReLU(0.2), linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(linear(2 * hidden, hidden), nn.LeakyReLU(0.2))
        self.psi = linear(hidden, 1)
        self.embed = embedding(num_classes, hidden)

    def forward(self, x: Tensor, z: Tensor, y: Tensor) -> Tensor:
        h = self.joint(torch.cat([self.x_branch(x), self.z_branch(z.to(x.dtype))], dim=1))
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(1)


def build_encoder(cfg: BiGANConfig, *, img_size: int, channels: int, num_classes: int, z_dim: int) -> Encoder:
    """The joint encoder of ``cfg`` (width ``bigan.e_ch``), from torch's global RNG (callers fork it)."""
    return Encoder(img_size, channels, num_classes, z_dim, cfg.e_ch)


def build_bigan(cfg: BiGANConfig, *, img_size: int, channels: int, num_classes: int, z_dim: int) -> tuple[Encoder, JointDiscriminator]:
    """``(E, D_xz)`` of ``cfg``, initialised from torch's global RNG (callers fork it)."""
    E = build_encoder(cfg, img_size=img_size, channels=channels, num_classes=num_classes, z_dim=z_dim)
    return E, JointDiscriminator(img_size, channels, num_classes, z_dim, cfg.d_ch)


class BiGAN:
    """E, D_xz, their Adam optimizers (``optim.beta1``/``beta2``; ``bigan.lr_e``/``lr_d`` or the GAN's
    ``optim.lr_g``/``lr_d``) and the two losses of the module docstring. ``autocast`` is the GAN's
    precision context; logits are returned in fp32."""

    METRICS = ("bigan_d", "bigan_ge", "bigan_real", "bigan_fake", "bigan_cycle")

    def __init__(self, E: Encoder, D: JointDiscriminator, cfg: BiGANConfig, optim: OptimConfig, autocast: Callable[[], Any]) -> None:
        self.E, self.D, self.cfg, self._autocast = E, D, cfg, autocast
        betas = (optim.beta1, optim.beta2)
        self.opt_e = torch.optim.Adam(E.parameters(), lr=cfg.lr_e or optim.lr_g, betas=betas, eps=optim.eps)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d or optim.lr_d, betas=betas, eps=optim.eps)

    def _logits(self, x_real: Tensor, z_real: Tensor, y_real: Tensor, x_fake: Tensor, z_fake: Tensor, y_fake: Tensor) -> tuple[Tensor, Tensor]:
        with self._autocast():
            return self.D(x_real, z_real, y_real).float(), self.D(x_fake, z_fake, y_fake).float()

    @torch.no_grad()
    def encode(self, x: Tensor, y: Tensor) -> Tensor:
        """E's codes without a graph (the D step's real pairs)."""
        with self._autocast():
            return self.E(x, y).float()

    def discriminator_loss(self, x_real_in: Tensor, z_real: Tensor, y_real: Tensor, x_fake_in: Tensor, z_fake: Tensor, y_fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D_xz's loss: real pairs ``(x_real_in, z_real = E(x_real), y_real)`` against fake pairs; the
        images are what D_xz sees (augmented); nothing but D_xz gets a gradient from it."""
        r, f = self._logits(x_real_in, z_real.detach(), y_real, x_fake_in.detach(), z_fake, y_fake)
        loss = F.softplus(-r).mean() + F.softplus(f).mean()
        return loss, {"bigan_d": loss.detach(), "bigan_real": r.detach().mean(), "bigan_fake": f.detach().mean()}

    def generator_loss(self, x_real_in: Tensor, x_real: Tensor, y_real: Tensor, x_fake_in: Tensor, z_fake: Tensor, y_fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's and E's loss (labels swapped): E codes the clean ``x_real``; D_xz sees ``x_real_in``
        (augmented). D_xz's weights must be frozen by the caller."""
        with self._autocast():
            z_real = self.E(x_real, y_real)
        r, f = self._logits(x_real_in, z_real, y_real, x_fake_in, z_fake, y_fake)
        loss = F.softplus(r).mean() + F.softplus(-f).mean()
        return loss, {"bigan_ge": loss.detach()}

    def cycle_loss(self, x_fake: Tensor, z_fake: Tensor, y_fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """ALICE's latent cycle ``mean (E(G(z, y), y) - z)^2`` on the clean fakes (gradient to G and E)."""
        with self._autocast():
            z_back = self.E(x_fake, y_fake)
        loss = (z_back.float() - z_fake.float()).pow(2).mean()
        return loss, {"bigan_cycle": loss.detach()}

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"E": self.E, "D_xz": self.D}

    def state_dict(self) -> dict[str, Any]:
        return {"E": self.E.state_dict(), "D_xz": self.D.state_dict(), "opt_e": self.opt_e.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.E.load_state_dict(state["E"])
        self.D.load_state_dict(state["D_xz"])
        self.opt_e.load_state_dict(state["opt_e"])
        self.opt_d.load_state_dict(state["opt_d"])


def encoder_from_state(cfg: BiGANConfig, weights: dict[str, Tensor], *, img_size: int, channels: int, num_classes: int, z_dim: int) -> Encoder:
    """A trained joint encoder from its state dict (eval mode, no grad); the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        E = build_encoder(cfg, img_size=img_size, channels=channels, num_classes=num_classes, z_dim=z_dim)
    E.load_state_dict(weights)
    return E.eval().requires_grad_(False)

