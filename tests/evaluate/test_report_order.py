"""The reports' sample grids show the rarest classes first, each row labelled with its class."""

from __future__ import annotations

import re

import numpy as np

from augmentgan.data.types import LabeledImages, Source
from augmentgan.report import rarest_first, truncation_rows, write_expansion_report, write_run_report
from augmentgan.gan.presets import get_preset
from augmentgan.gan.trainer import TrainConfig, train


def imbalanced(real3: LabeledImages) -> LabeledImages:
    """Classes "0", "1", "7" with 30, 8 and 12 images: the rarest class is in the middle."""
    keep = np.concatenate([np.flatnonzero(real3.labels == c)[:n] for c, n in ((0, 30), (1, 8), (2, 12))])
    return real3[keep]


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("<h2>", start)
    return text[start : end if end > 0 else len(text)]


def test_rarest_first_orders_by_count_then_class():
    assert rarest_first([30, 8, 12]) == [1, 2, 0] and rarest_first([5, 5, 1]) == [2, 0, 1]


def test_expansion_and_run_reports_put_the_rarest_class_on_top(tmp_path, real3, other3):
    real = imbalanced(real3)
    gan = LabeledImages(other3.images, other3.labels, other3.class_names, np.full(len(other3), Source.gan.value, np.uint8))
    gan_cfg = get_preset("dcgan", {"model.g_ch": 8, "model.d_ch": 8, "model.z_dim": 16, "model.embed_dim": 8})
    run = train(real, gan_cfg, TrainConfig(steps=2, batch=8, device="cpu", sample_every=1, ckpt_every=2, log_every=1), tmp_path / "run").run_dir

    text = write_expansion_report(tmp_path, real=real, expanded=LabeledImages.concatenate([real, gan]), gan_run=run).read_text(encoding="utf-8")
    grids = section(text, "Real vs synthetic, per class")
    assert re.findall(r'rowspan="\d+">([^<]+)<br>\((\d+) real\)', grids) == [("1", "8"), ("7", "12"), ("0", "30")]
    sweep = section(text, "Truncation sweep")
    assert re.findall(r'<td class="l">(\w+) \((\d+)\)</td>', sweep) == [("1", "8"), ("7", "12"), ("0", "30")]
    assert "rarest class first" in sweep

    info, rows = truncation_rows(run)
    assert [c for c, _ in rows] == [1, 2, 0] and info.class_counts == (30, 8, 12)
    report = write_run_report(run).read_text(encoding="utf-8")
    assert "rarest class first: 1 (8), 7 (12), 0 (30)" in section(report, "Samples (fixed noise")
    assert re.findall(r'<td class="l">(\w+) \((\d+)\)</td>', section(report, "Truncation sweep")) == [("1", "8"), ("7", "12"), ("0", "30")]
