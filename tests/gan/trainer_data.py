"""Tiny synthetic data and GAN configs for the trainer tests (imported by tests/gan/test_trainer*.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augmentgan.data.types import LabeledImages
from augmentgan.gan.presets import get_preset

CLASSES = ("hbars", "vbars", "blob")


def bars(counts: tuple[int, ...] = (48, 24, 12), size: int = 16, seed: int = 0) -> LabeledImages:
    """Grey 16x16 images: horizontal bars, vertical bars, a round blob (imbalanced by default).

    Bars: 2-3 bright stripes 2 px wide at random positions; blob: a disc of radius 3-5 at a random
    centre. A linear classifier on pixels separates the three classes perfectly.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    yy, xx = np.mgrid[:size, :size]
    for label, n in enumerate(counts[: len(CLASSES)]):
        for _ in range(n):
            img = np.zeros((size, size), np.float64)
            if label < 2:
                for start in rng.choice(np.arange(0, size - 1, 3), size=rng.integers(2, 4), replace=False):
                    if label == 0:
                        img[start : start + 2, :] = 1.0
                    else:
                        img[:, start : start + 2] = 1.0
            else:
                cy, cx = rng.uniform(5, size - 5, 2)
                img[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(3, 5) ** 2] = 1.0
            img = np.clip(img * 0.9 + rng.normal(0.05, 0.03, img.shape), 0, 1)
            images.append((img * 255).round().astype(np.uint8))
            labels.append(label)
    return LabeledImages(np.stack(images)[..., None], np.array(labels), CLASSES[: len(counts)])


def tiny(preset: str = "dcgan", **overrides) -> object:
    """A preset at toy width (fast on a CPU); extra dotted overrides as keyword ``a__b=value``."""
    base = {"model.g_ch": 8, "model.d_ch": 8, "model.z_dim": 16, "model.embed_dim": 8}
    if get_preset(preset).tricks.diffaug == "auto":  # the tests choose DiffAugment themselves (auto would turn it on for toy data)
        base["tricks.diffaug"] = ""
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return get_preset(preset, base)


def straight_and_resumed(data: LabeledImages, gan: object, out, *, steps: int, split: int, train_kw: dict | None = None, **cfg) -> tuple[dict, dict]:  # noqa: ANN001 - out: a folder
    """The final checkpoint states of a run of ``steps`` straight and of one stopped at ``split`` and resumed
    (``train_kw``: more keyword arguments of every ``train`` call)."""
    import torch

    from augmentgan.gan.trainer import TrainConfig, train

    kw = train_kw or {}
    straight = train(data, gan, TrainConfig(steps=steps, **cfg), out / "straight", **kw)
    train(data, gan, TrainConfig(steps=split, **cfg), out / "split", **kw)
    resumed = train(data, gan, TrainConfig(steps=steps, **cfg), out / "split", resume=True, **kw)
    assert resumed.start_step == split
    return tuple(torch.load(r.checkpoint, weights_only=True)["state"] for r in (straight, resumed))  # type: ignore[return-value]


def assert_same_state(a: dict, b: dict, nets: tuple[str, ...] = ("G", "D")) -> None:
    """Bit-identical weights (and buffers) of ``nets`` in two checkpoint states."""
    import torch

    for net in nets:
        assert a[net].keys() == b[net].keys(), net
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def assert_resumes_bit_identically(make, x, y, *, before: int = 3, after: int = 3) -> dict:  # noqa: ANN001 - make: () -> ConditionalGAN
    """Train a GAN from ``make()`` ``before`` iterations on ``(x, y)``, save its state through ``torch.save``,
    load it into a second ``make()`` and check that both continue bit-identically for ``after`` iterations
    (metrics and G's weights). Returns the last iteration's metrics."""
    import io

    import torch

    gan = make()
    for _ in range(before):
        gan.train_iteration(lambda: (x, y))
    buf = io.BytesIO()
    torch.save(gan.state_dict(), buf)
    buf.seek(0)
    other = make()
    other.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(after):
        a, b = gan.train_iteration(lambda: (x, y)), other.train_iteration(lambda: (x, y))
        assert all(torch.equal(a[k], b[k]) for k in a), (a, b)
    assert all(torch.equal(p, q) for p, q in zip(gan.G.parameters(), other.G.parameters()))
    return a


@pytest.fixture()
def one_thread():
    """One intra-op thread (as in subprocesses and when recorded numbers were measured): float reductions in a fixed order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
