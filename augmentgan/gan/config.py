"""The GAN configuration: plain, validated data that presets fill and ``--set`` overrides.

This is the contract between presets (``presets.py``), the model zoo (``models/``), the
losses and regularizers, and the trainer. Every field is documented here; defaults are
neutral (presets carry the paper values).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from augmentgan.overrides import StrictModel

Arch = Literal["dcgan", "resnet", "sagan", "biggan"]
LossName = Literal[
    "minimax",  # original saturating BCE (Goodfellow et al. 2014)
    "bce",  # non-saturating BCE, the usual "vanilla" GAN / DCGAN loss
    "lsgan",  # least squares (Mao et al. 2017)
    "wasserstein",  # WGAN critic loss (Arjovsky et al. 2017)
    "hinge",  # hinge (Lim & Ye 2017; Miyato et al. 2018)
    "rsgan",  # relativistic standard (Jolicoeur-Martineau 2018)
    "ragan",  # relativistic average BCE
    "ralsgan",  # relativistic average least squares
    "rahinge",  # relativistic average hinge
]


class ModelConfig(StrictModel):
    arch: Arch = "resnet"
    z_dim: int = Field(128, ge=1, description="latent size")
    g_ch: int = Field(64, ge=4, description="base channel width of G (widest layer is a multiple of it)")
    d_ch: int = Field(64, ge=4, description="base channel width of D")
    g_sn: bool = Field(False, description="spectral norm in G (SAGAN, BigGAN)")
    d_sn: bool = Field(True, description="spectral norm in D")
    attn_res: Optional[int] = Field(None, description="feature-map size (e.g. 32) at which self-attention is inserted in G and D; None = no attention")
    embed_dim: int = Field(128, ge=1, description="class-embedding size (BigGAN shared embedding, DCGAN label embedding)")
    hier: bool = Field(True, description="BigGAN hierarchical z: split z across G blocks")
    d_cond: Literal["projection", "channels"] = Field("projection", description="how D sees the class (DCGAN): projection term or one-hot label channels")
    d_norm: Literal["auto", "batch", "none", "layer"] = Field(
        "auto", description="DCGAN D normalisation; auto = batch unless a per-sample gradient penalty (gp, dragan, r1) is used, then none"
    )
    init: Literal["auto", "normal", "ortho", "xavier", "default"] = Field(
        "auto", description="weight init; auto = N(0, 0.02) for dcgan, orthogonal for biggan, xavier for resnet/sagan"
    )


class LossConfig(StrictModel):
    name: LossName = "hinge"
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5, description="one-sided: real target 1 - s (bce, minimax, lsgan only)")

    @model_validator(mode="after")
    def _smoothing_applies(self) -> "LossConfig":
        if self.label_smoothing and self.name not in ("bce", "minimax", "lsgan"):
            raise ValueError(f"label_smoothing applies to bce, minimax and lsgan only, not {self.name!r}")
        return self


class RegConfig(StrictModel):
    gp: float = Field(0.0, ge=0.0, description="WGAN-GP penalty weight lambda (10 in the paper)")
    dragan: float = Field(0.0, ge=0.0, description="DRAGAN penalty weight lambda (10)")
    r1: float = Field(0.0, ge=0.0, description="R1 gamma: adds gamma/2 * E||grad D(x_real)||^2")
    clip: Optional[float] = Field(None, gt=0.0, description="WGAN weight clipping to [-c, c] after each D step (0.01)")
    ortho: float = Field(0.0, ge=0.0, description="BigGAN orthogonal regularisation weight on G (1e-4)")
    every: int = Field(1, ge=1, description="lazy regularisation: apply gp/dragan/r1 every k D steps (scaled by k)")

    @property
    def per_sample_grad(self) -> bool:
        """True when D must not mix samples (BatchNorm breaks per-sample gradient penalties)."""
        return bool(self.gp or self.dragan or self.r1)


class OptimConfig(StrictModel):
    name: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = Field(2e-4, gt=0.0)
    lr_d: float = Field(2e-4, gt=0.0)
    beta1: float = Field(0.0, ge=0.0, lt=1.0)
    beta2: float = Field(0.9, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)
    n_dis: int = Field(1, ge=1, description="D steps per G step")
    unrolled_k: int = Field(0, ge=0, description="unrolled GAN: G step through k virtual D steps (Metz et al. 2017); 0 = off")


class TricksConfig(StrictModel):
    diffaug: str = Field("", description="DiffAugment policy, comma-separated subset of color,translation,cutout; empty = off")
    pac: int = Field(1, ge=1, le=8, description="PacGAN packing m: D sees m samples stacked on channels")
    ema: bool = Field(False, description="keep an EMA copy of G's weights (used for sampling)")
    ema_decay: float = Field(0.999, gt=0.0, lt=1.0)
    ema_start: int = Field(0, ge=0, description="G step from which the EMA starts averaging (copies G before)")

    @model_validator(mode="after")
    def _policy(self) -> "TricksConfig":
        allowed = {"color", "translation", "cutout"}
        ops = [p.strip() for p in self.diffaug.split(",") if p.strip()]
        bad = [p for p in ops if p not in allowed]
        if bad:
            raise ValueError(f"unknown DiffAugment op(s) {bad}; use a comma-separated subset of {sorted(allowed)}")
        return self


class GANConfig(StrictModel):
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    reg: RegConfig = Field(default_factory=RegConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    tricks: TricksConfig = Field(default_factory=TricksConfig)
