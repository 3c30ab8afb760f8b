"""Semi-supervised GAN (Salimans et al. 2016): unlabeled images, the K+1 head, resume, pseudo-labels, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from augmentgan.data.hdf5 import read_hdf5, read_hdf5_extra, write_hdf5
from augmentgan.data.types import LabeledImages, Source
from augmentgan.data.unlabeled import check_unlabeled, read_unlabeled
from augmentgan.errors import ConfigError, DataError
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.models import build_discriminator
from augmentgan.gan.presets import get_preset
from augmentgan.gan.semi import load_kplus1, pseudo_label
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import assert_same_state, bars, one_thread, straight_and_resumed, tiny  # noqa: F401 - one_thread is a fixture


def digits_split(per_class: int = 5, test: int = 400, seed: int = 0):
    """sklearn's 8x8 digits upscaled to 16x16: ``per_class`` labeled images a class, ``test`` held out, the rest unlabeled."""
    d = load_digits()
    x = np.repeat(np.repeat((d.images / 16 * 255).round().astype(np.uint8), 2, 1), 2, 2)[..., None]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.target))
    labeled = np.concatenate([order[d.target[order] == c][:per_class] for c in range(10)])
    rest = rng.permutation(np.setdiff1d(order, labeled))
    names = tuple(str(c) for c in range(10))
    return LabeledImages(x[labeled], d.target[labeled], names), (x[rest[:test]], d.target[rest[:test]]), x[rest[test:]]


def _tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def _accuracy(D: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        logits, _ = D(_tensor(images), torch.zeros(len(images), dtype=torch.long), head=True)
    return float((logits.argmax(1).numpy() == labels).mean())


# --- reading unlabeled images and bad input ---------------------------------------------------------
def test_unlabeled_folder_h5_and_npz_are_read_and_checked(tmp_path):
    images = bars((4, 3, 2)).images
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img[..., 0]).save(folder / f"{i:02d}.png")
    assert np.array_equal(read_unlabeled(folder), images)
    np.savez(tmp_path / "u.npz", x=images)
    assert np.array_equal(read_unlabeled(tmp_path / "u.npz"), images)
    write_hdf5(bars((4, 3, 2)), tmp_path / "u.h5")  # a labeled file: its labels are ignored
    assert np.array_equal(read_unlabeled(tmp_path / "u.h5"), images)
    assert read_unlabeled(folder, size=8).shape == (9, 8, 8, 1) and read_unlabeled(folder, channels=3).shape == (9, 16, 16, 3)
    assert check_unlabeled(images, (16, 16, 1), "u") is images
    digits = read_unlabeled("builtin:digits-lt", size=16)  # a built-in set's images ("unlabeled images builtin do not exist" before)
    assert digits.shape == (517, 16, 16, 1) and digits.dtype == np.uint8


def test_bad_unlabeled_input_is_a_one_line_error(tmp_path):
    images = bars((4, 3, 2)).images
    tree = tmp_path / "tree"
    for c in ("cats", "dogs"):
        (tree / c).mkdir(parents=True)
        Image.fromarray(images[0, ..., 0]).save(tree / c / "a.png")
    with pytest.raises(DataError, match=r"unlabeled folder .*tree has class subfolders \(cats, dogs\); unlabeled images go directly in one folder") as err:
        read_unlabeled(tree)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"unlabeled images u.npz are 8x8 with 1 channel\(s\), the labeled data 16x16 with 1: resize them to 16x16"):
        check_unlabeled(images[:, :8, :8], (16, 16, 1), "u.npz")
    with pytest.raises(DataError, match=r"are 16x16 with 3 channel\(s\), the labeled data 16x16 with 1: convert them to 1 channel"):
        check_unlabeled(np.repeat(images, 3, -1), (16, 16, 1), "u.npz")
    with pytest.raises(DataError, match="do not exist"):
        read_unlabeled(tmp_path / "nothing")


def test_unlabeled_images_with_a_preset_that_cannot_use_them_are_refused(tmp_path):
    data = bars((8, 8, 8))
    with pytest.raises(ConfigError, match=r"unlabeled images need a discriminator that can learn from them: model.d_cond is 'projection'; use --preset ssgan"):
        train(data, tiny("sngan"), TrainConfig(steps=1, batch=8, device="cpu"), tmp_path / "run", unlabeled=data.images)
    with pytest.raises(DataError, match="the labeled data 16x16"):
        train(data, tiny("ssgan"), TrainConfig(steps=1, batch=8, device="cpu"), tmp_path / "run", unlabeled=data.images[:, :8, :8], force=True)
    with pytest.raises(ConfigError, match="model.d_cond=kplus1 \\(semi-supervised GAN\\) does not work with tricks.pac=2"):
        ConditionalGAN(tiny("ssgan", tricks__pac=2), img_size=16, channels=1, num_classes=3)


# --- the K+1 head ------------------------------------------------------------------------------------
def test_kplus1_head_is_the_projection_read_as_a_classifier():
    cfg = tiny("ssgan").model
    D = build_discriminator(cfg, img_size=16, channels=1, num_classes=3)
    x = torch.randn(5, 1, 16, 16)
    logits, pooled = D(x, torch.zeros(5, dtype=torch.long), head=True)
    assert logits.shape == (5, 3) and pooled.shape[0] == 5
    assert torch.allclose(D(x, torch.tensor([2, 0, 1, 1, 0])), torch.logsumexp(logits, 1))  # the real/fake logit ignores y
    projection = build_discriminator(cfg.model_copy(update={"d_cond": "projection"}), img_size=16, channels=1, num_classes=3)
    projection.load_state_dict(D.state_dict())  # the same parameters: D(x, y) of the projection D is l_y(x)
    assert torch.allclose(projection(x, torch.tensor([0, 1, 2, 0, 1])), logits[torch.arange(5), torch.tensor([0, 1, 2, 0, 1])], atol=1e-5)


def test_resume_with_unlabeled_images_is_bit_identical_and_refuses_other_unlabeled_images(tmp_path):
    data, _, unlabeled = digits_split(per_class=2)
    gan = tiny("ssgan", semi__unlabeled_batch=8)
    cfg = dict(batch=8, device="cpu", precision="fp32", log_every=1, ckpt_every=2, sample_every=0)
    a, b = straight_and_resumed(data, gan, tmp_path, steps=4, split=2, train_kw={"unlabeled": unlabeled[:64]}, **cfg)
    assert_same_state(a, b)
    from augmentgan.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"unlabeled images \(--unlabeled\) differ"):
        train(data, gan, TrainConfig(steps=6, **cfg), tmp_path / "split", resume=True, unlabeled=unlabeled[64:128])


@pytest.mark.slow
def test_kplus1_head_beats_a_classifier_of_the_labeled_images_alone_when_unlabeled_images_are_plentiful(one_thread):
    """5 labeled digits a class, ~1,350 unlabeled: the ssgan discriminator's K-way head, trained on labeled, unlabeled and
    fake images, classifies 400 held-out digits better than the same network trained on the 50 labeled ones alone.

    Measured with these settings (one thread): after 300 / 400 / 500 steps 0.730 / 0.758 / 0.760 against 0.700 / 0.708 / 0.725.
    """
    data, (x_test, y_test), unlabeled = digits_split()
    cfg = get_preset("ssgan", {"model.g_ch": 8, "model.d_ch": 16, "model.z_dim": 32, "model.embed_dim": 16, "tricks.diffaug": "", "semi.unlabeled_batch": 64})
    gan = ConditionalGAN(cfg, img_size=16, channels=1, num_classes=10, class_counts=[5] * 10, seed=0)
    g = torch.Generator().manual_seed(0)
    xl, yl, xu = _tensor(data.images), torch.from_numpy(data.labels), _tensor(unlabeled)
    gan.next_unlabeled = lambda: xu[torch.randint(0, len(xu), (64,), generator=g)]

    def labeled():
        idx = torch.randint(0, len(xl), (20,), generator=g)
        return xl[idx], yl[idx]

    torch.manual_seed(0)
    alone = build_discriminator(cfg.model, img_size=16, channels=1, num_classes=10)
    opt = torch.optim.Adam(alone.parameters(), lr=3e-4, betas=(0.5, 0.999))
    for _ in range(400):
        gan.train_iteration(labeled)
        x, y = labeled()
        loss = F.cross_entropy(alone(x, y, head=True)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    semi, supervised = _accuracy(gan.D.eval(), x_test, y_test), _accuracy(alone.eval(), x_test, y_test)
    print(f"K+1 head {semi:.3f}, labeled images alone {supervised:.3f}")
    assert semi > supervised + 0.02


def test_label_writes_confident_images_with_source_pseudo_and_their_confidence(tmp_path):
    data, _, unlabeled = digits_split(per_class=2)
    run = train(data, tiny("ssgan", semi__unlabeled_batch=8), TrainConfig(steps=2, batch=8, device="cpu", ckpt_every=2, sample_every=0), tmp_path / "run", unlabeled=unlabeled[:32])
    model = load_kplus1(run.checkpoint)
    assert model.class_names == data.class_names and model.data_size == (16, 16)
    everything = pseudo_label(model.D, unlabeled[:40], model.img_size, fit=model.fit, min_confidence=0.0)
    assert everything.keep.all() and ((everything.confidence > 0) & (everything.confidence < 1)).all()
    cut = float(np.median(everything.confidence))
    half = pseudo_label(model.D, unlabeled[:40], model.img_size, fit=model.fit, min_confidence=cut)
    assert np.array_equal(half.keep, everything.confidence >= cut) and np.array_equal(half.labels, everything.labels)
    kept = np.flatnonzero(half.keep)
    out = write_hdf5(LabeledImages(unlabeled[kept], half.labels[kept], model.class_names, np.full(len(kept), Source.pseudo.value, np.uint8)), tmp_path / "p.h5", extra={"confidence": half.confidence[kept]})
    back = read_hdf5(out)
    assert back.source_counts()["pseudo"] == len(kept) and np.allclose(read_hdf5_extra(out)["confidence"], half.confidence[kept])
    with pytest.raises(ConfigError, match="is no K\\+1 classifier"):
        load_kplus1(train(data, tiny("dcgan"), TrainConfig(steps=1, batch=8, device="cpu", sample_every=0), tmp_path / "plain").checkpoint)




def test_recipe_data_unlabeled_needs_a_kplus1_gan_and_keys_the_cache(tmp_path):
    from augmentgan.pipeline import _unlabeled, gan_cache_key
    from augmentgan.recipe import check_recipe, gan_config, load_recipe

    np.savez(tmp_path / "u.npz", x=bars((4, 3, 2)).images)
    base = {"data": {"path": "builtin:digits", "unlabeled": str(tmp_path / "u.npz")}, "output": {"path": str(tmp_path / "out")}}
    with pytest.raises(ConfigError, match=r"data.unlabeled needs a GAN whose discriminator can learn from unlabeled images, and gan.preset 'small-data'"):
        check_recipe(load_recipe(base))
    recipe = check_recipe(load_recipe(base, ["gan.preset=ssgan"]))
    train_data = bars((8, 8, 8))
    unlabeled = _unlabeled(recipe, train_data)
    assert unlabeled.shape == (9, 16, 16, 1)
    cfg = gan_config(recipe)
    from augmentgan.pipeline import _gan_train_config

    tcfg = _gan_train_config(recipe, 0)
    assert gan_cache_key(train_data, cfg, tcfg) != gan_cache_key(train_data, cfg, tcfg, unlabeled) != gan_cache_key(train_data, cfg, tcfg, unlabeled[:5])
    with pytest.raises(DataError, match="data.unlabeled"):
        _unlabeled(recipe, bars((8, 8, 8), size=32))
