"""The GAN configuration: plain, validated data that presets fill and ``--set`` overrides.

This is the contract between presets (``presets.py``), the model zoo (``models/``), the
losses and regularizers, and the trainer. Every field is documented here; defaults are
neutral (presets carry the paper values).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

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


CURRICULUM_EXP_RATE = 5.0  # the "exp" schedule's p(u) = (K-1)(1 - e^(-5u)) / (1 - e^(-5))


class CurriculumConfig(StrictModel):
    """Curriculum GAN (Sharma, Barratt, Ermon & Pande 2018, "Improved Training with Curriculum GANs",
    arXiv:1807.09295; on WGAN-GP: WGAN-C): D is an ensemble of discriminators of increasing capacity
    and the generator is trained against their mixture ``sum_i w_i(t) D_i``, whose weights move from
    the weakest member to the strongest over training, so G faces an easy critic first and a strong one
    later. Every member is trained on its own adversarial loss (and penalties) at every D step, so a
    member is already a trained critic when its weight rises.

    Schedule (this toolkit's; the paper's exact constants are not reproduced): a position
    ``p(t)`` in ``[0, K-1]`` moves from 0 to ``K-1`` over ``length`` G steps from ``start``
    (``u = clamp((t - start) / length, 0, 1)``): ``linear`` p = (K-1) u; ``exp`` p = (K-1)(1 - e^(-5u)) /
    (1 - e^(-5)) (fast early, slow late); ``step`` p = min(floor(K u), K-1) (each member alone for
    ``length / K`` steps). Member i's weight is ``max(0, 1 - |p - i|)``: at most two neighbouring
    members are mixed and the weights sum to 1.
    """

    widths: list[float] = Field(
        default_factory=list, description="D width of each ensemble member as a fraction of model.d_ch, weakest first "
        "(wgan-c: [0.25, 0.5, 1.0]); [] = off (one discriminator)"
    )
    schedule: Literal["linear", "exp", "step"] = Field("linear", description="how the mixture weights move from the weakest member to the strongest")
    start: int = Field(0, ge=0, description="G step at which the weights start moving (before it: the weakest member alone)")
    length: int = Field(2000, ge=1, description="G steps over which the weights move from the weakest member to the strongest")

    @model_validator(mode="after")
    def _members(self) -> "CurriculumConfig":
        w = self.widths
        if len(w) == 1:
            raise ValueError("model.curriculum.widths needs two members or more (weakest first), or [] for one discriminator")
        if any(not 0.0 < x <= 4.0 for x in w) or any(b <= a for a, b in zip(w, w[1:])):
            raise ValueError(f"model.curriculum.widths={w}: fractions of model.d_ch in (0, 4], strictly increasing (weakest first)")
        return self

    @property
    def active(self) -> bool:
        return len(self.widths) > 1

    def position(self, g_step: int) -> float:
        """The schedule's position p(t) in [0, K-1] after ``g_step`` G steps (0 = weakest member alone)."""
        k = len(self.widths)
        if k < 2:
            return 0.0
        u = min(max((g_step - self.start) / self.length, 0.0), 1.0)
        if self.schedule == "linear":
            return (k - 1) * u
        if self.schedule == "exp":
            return (k - 1) * (1.0 - math.exp(-CURRICULUM_EXP_RATE * u)) / (1.0 - math.exp(-CURRICULUM_EXP_RATE))
        return float(min(math.floor(k * u), k - 1))

    def weights(self, g_step: int) -> list[float]:
        """The mixture weights ``w_i(t)`` of the members after ``g_step`` G steps (sum 1; [] when off)."""
        p = self.position(g_step)
        return [max(0.0, 1.0 - abs(p - i)) for i in range(len(self.widths))]


class GrowConfig(StrictModel):
    """Progressive growing (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs", ICLR,
    arXiv:1710.10196): G and D start at ``start`` x ``start`` pixels and grow by doubling to the training
    size. Each new resolution is faded in over ``fade`` G steps (G's image and D's input are linear blends
    ``(1 - a) old + a new`` of the upsampled old RGB head and the new block, a: 0 -> 1; the real images D
    sees are blended the same way), then trained ``stable`` steps before the next one fades in. ProGAN
    uses 800k real images per phase; the preset's counts suit the short runs of this toolkit.
    """

    start: Optional[int] = Field(None, description="resolution training starts at (8, 16, ...; below the training size); null = off (the full size from the start)")
    stable: int = Field(400, ge=1, description="G steps at each resolution before the next one fades in")
    fade: int = Field(400, ge=1, description="G steps over which each new resolution fades in")

    def phase(self, g_step: int, levels: list[int]) -> tuple[int, float]:
        """``(resolution, alpha)`` after ``g_step`` G steps for the resolutions ``levels`` (ascending,
        ``levels[0] == start``): alpha < 1 while that resolution fades in, 1 once it is stable."""
        period = self.stable + self.fade
        k, r = divmod(max(g_step, 0), period)
        if k >= len(levels) - 1:
            return levels[-1], 1.0
        if r < self.stable:
            return levels[k], 1.0
        return levels[k + 1], (r - self.stable) / self.fade


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
    d_cond: Literal["projection", "channels", "kplus1"] = Field(
        "projection", description="how D sees the class: projection term, one-hot label channels (DCGAN), or kplus1: a K+1-way "
        "classifier (K classes + fake; semi-supervised GAN, Salimans et al. 2016; trains on unlabeled images too, see the semi section)"
    )
    d_norm: Literal["auto", "batch", "none", "layer"] = Field(
        "auto", description="DCGAN D normalisation; auto = batch unless a per-sample gradient penalty (gp, dragan, r1) is used, then none"
    )
    init: Literal["auto", "normal", "ortho", "xavier", "default"] = Field(
        "auto", description="weight init; auto = N(0, 0.02) for dcgan, orthogonal for biggan, xavier for resnet/sagan"
    )
    mbstd: int = Field(
        0, ge=0, description="minibatch standard deviation group size in D (Karras et al. 2018, ProGAN): one extra feature map "
        "before D's last layer; 0 = off, 4 = ProGAN/StyleGAN. Groups are taken within the rows D sees (PacGAN rows, this rank's batch)"
    )
    uncond_res: Optional[int] = Field(
        None, description="unconditional low-resolution layers (UTLO, Khorram et al. 2024; dcgan): G's stages up to this feature-map size "
        "(4 at 16x16; 4 or 8 at 32x32; a size with a stage above it) are shared by all classes and the class enters above it through "
        "class-conditional BatchNorm; G also emits an image at this size, judged by an unconditional head of D on the real images "
        "average-pooled to it; null = off (8 in UTLO)"
    )
    uncond_alpha: float = Field(
        1.0, gt=0.0, description="UTLO's weight of the unconditional low-resolution loss: the adversarial loss is (L_cond + alpha L_uncond) / (1 + alpha) for D and G (1.0 in UTLO)"
    )
    grow: GrowConfig = Field(default_factory=GrowConfig, description="progressive growing (ProGAN) of resnet, sagan and biggan models")
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig, description="curriculum GAN: an ensemble of Ds of increasing capacity (WGAN-C)")


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
    lecam: float = Field(0.0, ge=0.0, description="LeCam regularization weight (Tseng et al. 2021; 0.3 in StudioGAN's BigGAN-LeCam): E[relu(D(x) - ema_fake)^2] + E[relu(ema_real - D(G(z)))^2]")
    lecam_decay: float = Field(0.99, gt=0.0, lt=1.0, description="decay of the LeCam EMAs of D(real) and D(fake)")
    lecam_start: int = Field(1000, ge=0, description="G step from which the LeCam penalty applies (before it the EMAs just follow the last value; google/lecam-gan uses 1000)")
    mode_seeking: float = Field(0.0, ge=0.0, description="mode-seeking weight (Mao et al. 2019, MSGAN, 1.0): G pairs two latents per class and minimizes 1 / (mean|G(z1)-G(z2)| / mean|z1-z2| + 1e-5)")
    gsr: float = Field(0.0, ge=0.0, description="group spectral regularization weight (Rangwani et al. 2022, gSR, 0.5) on the class-conditional BatchNorm gains and biases of resnet/sagan/biggan G")
    class_loss: float = Field(0.0, ge=0.0, description="class-consistency weight (P2GAN, Han et al. 2021 'Dual Projection GAN'; 1.0): D's projection embeddings also act as a K-way classifier, softmax_k <embed_k, phi(x)>, trained with cross-entropy on real images, and G with cross-entropy toward the class it was asked for; needs model.d_cond=projection and tricks.pac=1; 0 = off")
    class_twin: bool = Field(False, description="TAC-GAN's twin classifier (Gong et al. 2019, 'Twin Auxiliary Classifiers GAN'): a second set of D class embeddings learns to classify G's samples, and G's class term becomes CE(class) - CE(twin), which cancels the pull of reg.class_loss toward a few easy-to-classify samples per class; needs reg.class_loss > 0")
    gsr_beta: float = Field(0.99, ge=0.0, lt=1.0, description="gSR per-class weights from the effective number of samples (1 - beta^n) / (1 - beta) (Cui et al. 2019); 0 = equal weights")

    @model_validator(mode="after")
    def _twin_needs_class_loss(self) -> "RegConfig":
        if self.class_twin and not self.class_loss:
            raise ValueError("reg.class_twin needs reg.class_loss > 0 (the twin corrects the class loss; 1.0 in TAC-GAN)")
        return self

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


DIFFAUG_AUTO_POLICY = "color,translation,cutout"
DIFFAUG_AUTO_BELOW = 1000


class TricksConfig(StrictModel):
    diffaug: str = Field(
        "auto", description=f"DiffAugment policy, comma-separated subset of color,translation,cutout; off (or empty) = none; auto = "
        f"{DIFFAUG_AUTO_POLICY} when the smallest class has fewer than {DIFFAUG_AUTO_BELOW} images, else off (resolved from the data)"
    )
    ada_target: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="adaptive DiffAugment probability (Karras et al. 2020, ADA): every 4 D steps p moves toward "
        "E[sign D(real)] = target (0.6); each op is applied to a sample with probability p; None = always applied"
    )
    ada_kimg: float = Field(100.0, gt=0.0, description="ADA speed: real images (in thousands) for p to go from 0 to 1 (500 in ADA; lower for short runs)")
    cond_start: int = Field(0, ge=0, description="transitional conditioning (Shahbazi et al. 2022): G step at which class conditioning starts ramping in")
    cond_length: int = Field(0, ge=0, description="G steps over which conditioning ramps from 0 to 1; 0 = conditional from the start (off)")
    pac: int = Field(1, ge=1, le=8, description="PacGAN packing m: D sees m samples stacked on channels")
    ema: bool = Field(False, description="keep an EMA copy of G's weights (used for sampling)")
    ema_decay: float = Field(0.999, gt=0.0, lt=1.0)
    ema_start: int = Field(0, ge=0, description="G step from which the EMA starts averaging (copies G before)")

    @field_validator("diffaug", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        """off, none, no, false or null: no DiffAugment (the empty policy)."""
        if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none", "no", "false", "null")):
            return ""
        return value

    @model_validator(mode="after")
    def _policy(self) -> "TricksConfig":
        allowed = {"color", "translation", "cutout"}
        if self.diffaug.strip() == "auto":
            return self
        ops = [p.strip() for p in self.diffaug.split(",") if p.strip()]
        bad = [p for p in ops if p not in allowed]
        if bad:
            raise ValueError(f"unknown DiffAugment op(s) {bad}; use auto, off, or a comma-separated subset of {sorted(allowed)}")
        return self

    def cond_scale(self, g_step: int) -> float:
        """Transitional conditioning's lambda_t at G step ``g_step`` (steps done): 0 before ``cond_start``,
        a linear ramp over ``cond_length`` steps, then 1; always 1 when ``cond_length`` is 0."""
        if self.cond_length == 0:
            return 1.0
        return min(max((g_step - self.cond_start) / self.cond_length, 0.0), 1.0)


def resolve_diffaug(policy: str, class_counts) -> tuple[str, Optional[str]]:  # noqa: ANN001 - any int sequence
    """``tricks.diffaug`` with ``auto`` decided from the class counts: (policy, a note saying why, or None)."""
    if policy.strip() != "auto":
        return policy, None
    smallest = int(min(class_counts)) if len(class_counts) else 0
    if smallest < DIFFAUG_AUTO_BELOW:
        return DIFFAUG_AUTO_POLICY, f"tricks.diffaug auto -> {DIFFAUG_AUTO_POLICY}: the smallest class has {smallest} images (< {DIFFAUG_AUTO_BELOW})"
    return "", f"tricks.diffaug auto -> off: every class has {DIFFAUG_AUTO_BELOW} images or more (smallest {smallest})"


class SemiConfig(StrictModel):
    """Semi-supervised GAN (Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv:1606.03498;
    Odena 2016, arXiv:1606.01583), used when ``model.d_cond=kplus1``: D's projection head gives K class
    logits l_k(x) (the fake class's logit fixed at 0), D's real/fake logit is logsumexp_k l_k(x), so
    the adversarial loss trains on labeled and unlabeled real images alike, and labeled images add a
    cross-entropy term. G matches D's pooled features of real images (feature matching, as in the
    paper) and, to stay class-conditional, is pushed toward the class it was asked for.
    """

    supervised: float = Field(1.0, ge=0.0, description="weight of D's cross-entropy on the labeled images")
    feature_matching: bool = Field(True, description="G minimizes ||mean f(real) - mean f(G(z))||^2 over D's pooled features (Salimans et al.) instead of the adversarial G loss")
    g_class: float = Field(1.0, ge=0.0, description="weight of G's cross-entropy toward its conditioned class under D's K-way head")
    unlabeled_batch: int = Field(64, ge=0, description="unlabeled images per D step, beside train.batch labeled ones (0: unlabeled images unused)")


class BiGANConfig(StrictModel):
    """A jointly trained encoder: BiGAN (Donahue, Kraehenbuehl & Darrell 2017, "Adversarial Feature
    Learning", arXiv:1605.09782) / ALI (Dumoulin et al. 2017, "Adversarially Learned Inference",
    arXiv:1606.00704), class-conditional. Beside G and D, an encoder ``E(x, y) -> z`` and a joint
    discriminator ``D_xz(x, z, y)`` are trained: D_xz tells real pairs ``(x, E(x, y), y)`` from fake
    pairs ``(G(z, y), z, y)``; G and E are trained to fool it (non-saturating BCE, whatever
    ``loss.name`` is). At the optimum the two joint distributions match, so ``E`` inverts ``G``
    (``E(G(z, y), y) = z``) - what ``augmentgan encode --encoder joint`` and latent-smote use instead
    of an encoder fitted after training. The main D and G objectives are unchanged: the BiGAN terms
    are added to the D step (D_xz) and the G step (G and E), ``weight`` times. ``cycle`` adds ALICE's
    explicit latent cycle (Li et al. 2017), which makes E converge in the few thousand steps of a
    small-data run; ``cycle=0`` is the pure BiGAN/ALI objective.
    """

    weight: float = Field(
        0.0, ge=0.0, description="weight of the BiGAN terms (1.0); 0 = off. G's loss adds weight x the BiGAN G/E loss; E and "
        "D_xz learn from nothing else (Adam makes their own loss's scale irrelevant), so it sets how hard G is pulled toward invertibility"
    )
    cycle: float = Field(
        1.0, ge=0.0, description="latent cycle consistency (ALICE, Li et al. 2017, arXiv:1709.01215): G's loss adds weight x cycle x "
        "mean (E(G(z, y), y) - z)^2 over the G step's fakes, training G and E; the adversarial objective alone aligns E with G's inverse "
        "only slowly and noisily on small data (tests/gan/test_bigan.py). 0 = pure BiGAN/ALI"
    )
    e_ch: int = Field(32, ge=4, description="encoder base width: strided 4x4 convs of e_ch, 2 e_ch, ... (at most 8 e_ch) channels down to 4x4")
    d_ch: int = Field(32, ge=4, description="joint discriminator D_xz base width: its image branch as the encoder's, its z branch and joint head 8 d_ch wide")
    lr_e: Optional[float] = Field(None, gt=0.0, description="encoder learning rate (Adam, optim.beta1/beta2); null = optim.lr_g")
    lr_d: Optional[float] = Field(None, gt=0.0, description="D_xz learning rate (Adam, optim.beta1/beta2); null = optim.lr_d")

    @property
    def active(self) -> bool:
        return self.weight > 0


class GANConfig(StrictModel):
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    reg: RegConfig = Field(default_factory=RegConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    tricks: TricksConfig = Field(default_factory=TricksConfig)
    semi: SemiConfig = Field(default_factory=SemiConfig, description="semi-supervised GAN settings (model.d_cond=kplus1)")
    bigan: BiGANConfig = Field(default_factory=BiGANConfig, description="a jointly trained encoder (BiGAN/ALI joint discriminator on (x, z) pairs); weight 0 = off")
