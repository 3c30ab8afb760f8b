"""What every discriminator shares: label handling for PacGAN and the two ways D sees the class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DCond = Literal["projection", "channels", "kplus1"]


def label_matrix(y: Tensor, pac: int) -> Tensor:
    """Labels as ``long[B, pac]``: ``[B]`` is accepted when ``pac == 1``."""
    if y.dim() == 1 and pac == 1:
        return y[:, None]
    if y.dim() == 2 and y.shape[1] == pac:
        return y
    want = "[B] or [B, 1]" if pac == 1 else f"[B, {pac}]"
    raise ValueError(f"discriminator with pac={pac} expects labels of shape {want}, got {list(y.shape)}")


class ConditionalDiscriminator(nn.Module, ABC):
    """D(x, y) = psi(phi(x)) + <mean_pac embed(y), sum_hw phi(x)> (projection, Miyato & Koyama 2018),
    or D(x ⊕ one-hot label maps) (``d_cond="channels"``: ``pac * num_classes`` extra input channels).

    ``d_cond="kplus1"`` (semi-supervised GAN, Salimans et al. 2016): the same parameters read as a
    K-way classifier, class logits ``l_k(x) = psi(phi(x)) + <embed_k, sum_hw phi(x)>`` (so the
    projection D's output for class y is l_y) with the fake class's logit fixed at 0; D's output
    is the real/fake logit ``logsumexp_k l_k(x)`` whatever ``y`` is, and ``head=True`` returns
    ``(l [B, K], sum_hw phi(x) [B, F])`` for the class loss and feature matching.

    Subclasses implement :meth:`features` and :meth:`output` and call :meth:`_make_embedding`.
    """

    def __init__(self, *, channels: int, num_classes: int, pac: int, d_cond: DCond) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pac = pac
        self.d_cond = d_cond
        self.in_channels = channels * pac + (num_classes * pac if d_cond == "channels" else 0)
        self.embed: nn.Module | None = None
        self.twin: nn.Module | None = None  # TAC-GAN's twin classifier (add_twin)
        # transitional conditioning's lambda_t: weight of the class term (not in the state dict)
        self.register_buffer("cond_scale", torch.ones(()), persistent=False)

    def _make_embedding(self, embedding: Callable[..., nn.Module], feat_dim: int) -> None:
        self._embedding_factory, self._feat_dim = embedding, feat_dim
        if self.d_cond in ("projection", "kplus1"):
            self.embed = embedding(self.num_classes, feat_dim)

    def add_twin(self) -> None:
        """TAC-GAN's twin classifier (Gong et al. 2019): a second set of class embeddings on the same pooled
        features, trained to classify G's samples; ``classes=True`` then also returns its logits."""
        if not self.has_projection:
            raise ValueError("a twin classifier needs a projection discriminator (d_cond='projection')")
        self.twin = self._embedding_factory(self.num_classes, self._feat_dim)

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """phi: input (with label maps if any) -> activated feature map ``[B, C, H, W]``."""

    @abstractmethod
    def output(self, h: Tensor) -> Tensor:
        """psi: feature map -> unconditional logits ``[B]``."""

    @property
    def has_projection(self) -> bool:
        """True when the class enters as a separate projection term (``split=True`` is meaningful)."""
        return self.embed is not None and self.d_cond == "projection"

    def forward(self, x: Tensor, y: Tensor, *, split: bool = False, head: bool = False, classes: bool = False) -> Tensor:
        """Logits ``[B]``: unconditional + ``cond_scale`` x projection term; with ``split`` the two terms
        as ``[B, 2]`` (unconditional, projection) for transitional conditioning's two-part loss.

        ``classes`` (projection, ``pac == 1``): also the class logits ``<embed_k, sum_hw phi(x)>`` ``[B, K]``
        as a second output (P2GAN's data-matching classifier; the unconditional term is the same for every
        class, so it drops out of a softmax over them), and with a twin (:meth:`add_twin`) the twin's
        logits ``<twin_k, sum_hw phi(x)>`` as a third."""
        if self.d_cond == "kplus1":
            h = self.features(x)
            pooled = h.sum(dim=(2, 3))
            logits = self.output(h)[:, None] + pooled @ self.embed.weight.t()
            return (logits, pooled) if head else torch.logsumexp(logits, dim=1)
        labels = label_matrix(y, self.pac)
        if self.d_cond == "channels":
            maps = F.one_hot(labels, self.num_classes).flatten(1).to(x.dtype) * self.cond_scale.to(x.dtype)
            x = torch.cat([x, maps[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        h = self.features(x)
        out = self.output(h)
        if self.embed is None:
            return torch.stack([out, torch.zeros_like(out)], dim=1) if split else out
        pooled = h.sum(dim=(2, 3))
        if classes:
            if self.pac != 1:
                raise ValueError("class logits need pac=1 (a PacGAN row mixes several samples)")
            weight = self.embed.weight  # read once: a spectrally normalised embedding updates its power iteration on every read
            proj = (F.embedding(labels, weight).mean(1) * pooled).sum(1)
        else:
            proj = (self.embed(labels).mean(1) * pooled).sum(1)
        logits = torch.stack([out, proj], dim=1) if split else out + self.cond_scale * proj
        if not classes:
            return logits
        if self.twin is not None:
            return logits, pooled @ weight.t(), pooled @ self.twin.weight.t()
        return logits, pooled @ weight.t()
