"""Named GAN presets: plain :class:`GANConfig` values with the defaults of their papers.

Any field can be overridden with dotted pairs (``get_preset("sngan", ["optim.n_dis=2"])``).
Channel widths stay at the toolkit default (64) except where noted: the papers' widths are
tied to their resolutions and GPU budgets. Batch size and step counts belong to the trainer.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Union

from augmentgan.errors import ConfigError
from augmentgan.gan.config import CurriculumConfig, GANConfig, GrowConfig, LossConfig, ModelConfig, OptimConfig, RegConfig, TricksConfig
from augmentgan.overrides import apply_overrides

__all__ = ["PRESETS", "get_preset", "preset_names"]

Overrides = Union[Mapping[str, Any], Iterable[str]]

PRESETS: dict[str, GANConfig] = {
    # Radford, Metz & Chintala 2016 (DCGAN): z 100, N(0, 0.02) init, BatchNorm in D,
    # Adam lr 2e-4 with beta1 0.5 (beta2 left at 0.999), one D step per G step, BCE loss
    # (PyTorch-GAN implementations/dcgan).
    "dcgan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=100, g_sn=False, d_sn=False, d_norm="batch", init="normal"),
        loss=LossConfig(name="bce"),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_dis=1),
    ),
    # Arjovsky, Chintala & Bottou 2017 (WGAN, Algorithm 1): clip to [-0.01, 0.01], RMSProp
    # lr 5e-5, n_critic 5. The paper's DCGAN critic keeps BatchNorm (clipping, unlike a
    # gradient penalty, does not need per-sample gradients), so d_norm is "batch". RMSProp
    # has no betas: beta1/beta2 are unused. The reference code's extra 100 critic steps in
    # the first 25 G iterations are not reproduced.
    "wgan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=100, g_sn=False, d_sn=False, d_norm="batch", init="normal"),
        loss=LossConfig(name="wasserstein"),
        reg=RegConfig(clip=0.01),
        optim=OptimConfig(name="rmsprop", lr_g=5e-5, lr_d=5e-5, n_dis=5),
    ),
    # Gulrajani et al. 2017 (WGAN-GP, Algorithm 1): lambda 10, n_critic 5, Adam lr 1e-4,
    # betas (0, 0.9). No BatchNorm in the critic; the paper recommends layer normalization
    # as the drop-in replacement (its 64x64 DCGAN critic uses it). z 128 as in the code.
    "wgan-gp": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=128, g_sn=False, d_sn=False, d_norm="layer", init="normal"),
        loss=LossConfig(name="wasserstein"),
        reg=RegConfig(gp=10.0),
        optim=OptimConfig(name="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_dis=5),
    ),
    # Sharma, Barratt, Ermon & Pande 2018 (Curriculum GANs, arXiv:1807.09295), on WGAN-GP as in the
    # paper's WGAN-C: the wgan-gp preset above with D replaced by an ensemble of three critics of
    # 1/4, 1/2 and the full width (model.d_ch); G is trained against their mixture, whose weight moves
    # linearly from the weakest to the strongest over the first 2,000 G steps (the recipe's default
    # run length); every critic trains on its own loss and gradient penalty all along.
    # The widths, the linear shape and the 2,000 steps are this toolkit's choices (see CurriculumConfig).
    "wgan-c": GANConfig(
        model=ModelConfig(
            arch="dcgan", z_dim=128, g_sn=False, d_sn=False, d_norm="layer", init="normal",
            curriculum=CurriculumConfig(widths=[0.25, 0.5, 1.0], schedule="linear", start=0, length=2000),
        ),
        loss=LossConfig(name="wasserstein"),
        reg=RegConfig(gp=10.0),
        optim=OptimConfig(name="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_dis=5),
    ),
    # Mao et al. 2017 (LSGAN, a=0, b=1, c=1) on the DCGAN architecture with Adam beta1 0.5;
    # lr 2e-4 and beta2 0.999 as in PyTorch-GAN implementations/lsgan.
    "lsgan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=100, g_sn=False, d_sn=False, d_norm="batch", init="normal"),
        loss=LossConfig(name="lsgan"),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_dis=1),
    ),
    # Kodali et al. 2017 (DRAGAN): standard (non-saturating) GAN loss plus the penalty at
    # perturbed reals, lambda 10; Adam lr 1e-4, betas (0.5, 0.9) as in the authors' notebook
    # (kodalinaveen3/DRAGAN). The penalty needs per-sample gradients: no BatchNorm in D.
    "dragan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=100, g_sn=False, d_sn=False, d_norm="none", init="normal"),
        loss=LossConfig(name="bce"),
        reg=RegConfig(dragan=10.0),
        optim=OptimConfig(name="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.5, beta2=0.9, n_dis=1),
    ),
    # Jolicoeur-Martineau 2018 (RaSGAN): DCGAN architecture, Adam betas (0.5, 0.999),
    # n_D 1, lr 2e-4 as in the paper's "setup I" (code/stable.sh; the script's own default
    # is 1e-4). z 128 as in GAN_losses_iter.py.
    "ragan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=128, g_sn=False, d_sn=False, d_norm="batch", init="normal"),
        loss=LossConfig(name="ragan"),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_dis=1),
    ),
    # Miyato et al. 2018 (SNGAN, ResNet for CIFAR): hinge loss, spectral norm in D only,
    # projection D, Adam lr 2e-4 / 2e-4, betas (0, 0.9), n_dis 5 (mimicry README).
    "sngan": GANConfig(
        model=ModelConfig(arch="resnet", z_dim=128, g_sn=False, d_sn=True, init="xavier"),
        loss=LossConfig(name="hinge"),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, n_dis=5),
    ),
    # Zhang et al. 2019 (SAGAN): hinge, spectral norm in G and D, TTUR (G 1e-4, D 4e-4),
    # n_dis 1, self-attention at the 32x32 feature maps. beta2 0.999 as in the released code
    # (TF Adam default; brain-research/self-attention-gan) and BigGAN-PyTorch's SAGAN scripts;
    # the paper's text says 0.9. Images smaller than the attention resolution need
    # model.attn_res lowered or set to null.
    "sagan": GANConfig(
        model=ModelConfig(arch="sagan", z_dim=128, g_sn=True, d_sn=True, attn_res=32, init="xavier"),
        loss=LossConfig(name="hinge"),
        optim=OptimConfig(name="adam", lr_g=1e-4, lr_d=4e-4, beta1=0.0, beta2=0.999, n_dis=1),
    ),
    # Salimans et al. 2016 ("Improved Techniques for Training GANs", semi-supervised part) and Odena 2016:
    # D is a K+1-way classifier (model.d_cond=kplus1; the fake class's logit fixed at 0), trained on
    # labeled, unlabeled (--unlabeled / data.unlabeled) and fake images; G trained by feature matching
    # on D's pooled features; Adam lr 3e-4, beta1 0.5 as in openai/improved-gan; standard (bce) GAN loss.
    # Deviations: the DCGAN networks with GroupNorm in D instead of the paper's weight-normalised nets
    # with dropout and Gaussian noise layers, and a class-conditional G pushed toward its class by D's
    # K-way head (semi.g_class), because augmentation needs samples of a given class.
    "ssgan": GANConfig(
        model=ModelConfig(arch="dcgan", z_dim=100, g_sn=False, d_sn=False, d_norm="layer", d_cond="kplus1", init="normal"),
        loss=LossConfig(name="bce"),
        optim=OptimConfig(name="adam", lr_g=3e-4, lr_d=3e-4, beta1=0.5, beta2=0.999, n_dis=1),
    ),
    # Karras, Aila, Laine & Lehtinen 2018 (ProGAN, arXiv:1710.10196): training starts at 8x8 and grows
    # to the training size, each new resolution faded in (model.grow); WGAN-GP loss with lambda 10 and
    # one D step per G step, Adam betas (0, 0.99), minibatch standard deviation (group 4) in D.
    # Deviations: the residual SNGAN-style networks of this toolkit (class-conditional BN in G,
    # projection D, no spectral norm since the critic has the penalty) instead of ProGAN's plain
    # conv stacks with pixel norm and equalized learning rate, hence lr 2e-4 instead of 1e-3
    # (equalized lr is what makes 1e-3 safe there), no epsilon-drift term, and 400 + 400 G steps per
    # resolution instead of 800k + 800k real images (short runs).
    "progressive": GANConfig(
        model=ModelConfig(
            arch="resnet", z_dim=128, g_sn=False, d_sn=False, init="xavier", mbstd=4,
            grow=GrowConfig(start=8, stable=400, fade=400),
        ),
        loss=LossConfig(name="wasserstein"),
        reg=RegConfig(gp=10.0),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99, n_dis=1),
    ),
    # Brock, Donahue & Simonyan 2019 (BigGAN, 128x128 ImageNet): shared class embedding 128,
    # hierarchical z of 120 (divides evenly over 3-6 blocks), orthogonal init and
    # regularization 1e-4, spectral norm in G and D, hinge, Adam G 5e-5 / D 2e-4, betas
    # (0, 0.999), 2 D steps per G step, EMA 0.9999, attention at 64x64. The EMA starts at
    # step 1000 (BigGAN-PyTorch's CIFAR scripts; its ImageNet script starts at 20000, far
    # beyond the runs this toolkit makes).
    "biggan": GANConfig(
        model=ModelConfig(
            arch="biggan", z_dim=120, g_sn=True, d_sn=True, attn_res=64, embed_dim=128, hier=True, init="ortho"
        ),
        loss=LossConfig(name="hinge"),
        reg=RegConfig(ortho=1e-4),
        optim=OptimConfig(name="adam", lr_g=5e-5, lr_d=2e-4, beta1=0.0, beta2=0.999, n_dis=2),
        tricks=TricksConfig(ema=True, ema_decay=0.9999, ema_start=1000),
    ),
    # A few hundred images per class: BigGAN + DiffAugment after Zhao et al. 2020's CIFAR
    # scripts (mit-han-lab/data-efficient-gans, DiffAugment-biggan-cifar10-0.1.sh):
    # hinge, SN in G and D, Adam 2e-4 / 2e-4, betas (0, 0.999), 4 D steps per G step,
    # N(0, 0.02) init, no attention, no orthogonal regularization, flat z of 128.
    # Deviations, for much less data than 10% of CIFAR-10 and short runs:
    # - all three DiffAugment ops (the scripts use "translation,cutout" on CIFAR; the paper
    #   uses "color,translation,cutout" for its 100-shot and few-thousand-image sets);
    # - width 32 instead of 64: less capacity for D to memorise the few reals, 4x cheaper;
    # - EMA decay 0.999 (the scripts' 0.9999 averages over ~10k steps, longer than a short
    #   run), starting at step 1000 as in the scripts so that the average forgets the init.
    "small-data": GANConfig(
        model=ModelConfig(
            arch="biggan", z_dim=128, g_ch=32, d_ch=32, g_sn=True, d_sn=True, attn_res=None, embed_dim=128,
            hier=False, init="normal",
        ),
        loss=LossConfig(name="hinge"),
        optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.999, n_dis=4),
        tricks=TricksConfig(diffaug="color,translation,cutout", ema=True, ema_decay=0.999, ema_start=1000),
    ),
}


def preset_names() -> list[str]:
    """The preset names, in the order of the table above."""
    return list(PRESETS)


def get_preset(name: str, overrides: Overrides = ()) -> GANConfig:
    """A fresh copy of preset ``name`` with dotted overrides applied (``["optim.lr_g=1e-4"]`` or a dict).

    ConfigError on an unknown preset (naming the valid ones) or on a bad override.
    """
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown GAN preset {name!r}; choose one of {preset_names()}") from None
    return apply_overrides(preset, overrides, where=f"preset {name!r} --set")
