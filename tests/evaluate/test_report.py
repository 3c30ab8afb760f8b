"""report.html: self-contained, every section present, renders in headless Chromium without errors.

The browser test needs Debian's ``chromium`` package at /usr/bin/chromium (.ci/run installs it)
and is skipped, saying so, only when it is missing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from augmentgan.data.types import LabeledImages, Source
from augmentgan.report import REPORT_NAME, suspicious_pairs, write_expansion_report, write_run_report
from augmentgan.gan.presets import get_preset
from augmentgan.gan.trainer import TrainConfig
from augmentgan.training import train
from augmentgan.pipeline import expand

CHROMIUM = Path("/usr/bin/chromium")
# Appended to a copy of the report only (the report itself has no script): after load, writes
# each image's state and any script error into the DOM, which --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = `images=${imgs.length} broken=${bad} errors=${window.__errors.length}`;
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, real3) -> Path:
    gan = get_preset("dcgan", {"model.g_ch": 8, "model.d_ch": 8, "model.z_dim": 16, "model.embed_dim": 8})
    cfg = TrainConfig(steps=6, batch=16, device="cpu", sample_every=3, ckpt_every=6, log_every=2)
    return train(real3, gan, cfg, tmp_path_factory.mktemp("gan") / "run").run_dir


@pytest.fixture(scope="module")
def expansion(real3, other3) -> tuple[LabeledImages, LabeledImages]:
    keep = np.concatenate([np.flatnonzero(real3.labels == c)[:n] for c, n in ((0, 30), (1, 12), (2, 8))])
    real = real3[keep]
    gan = other3[np.concatenate([np.flatnonzero(other3.labels == 1)[:10], np.flatnonzero(other3.labels == 2)[:11]])]
    copies = LabeledImages(real.images[:1], real.labels[:1], real.class_names, np.array([Source.copy.value], np.uint8))
    copy_of_seven = real[np.flatnonzero(real.labels == 2)[:1]]
    classical = LabeledImages(copy_of_seven.images, copy_of_seven.labels, real.class_names, np.array([Source.classical.value], np.uint8))
    expanded = LabeledImages.concatenate([real, gan, classical, copies])
    return real, expanded


def render(report: Path, tmp_path: Path, screenshot: Path | None = None) -> tuple[str, str]:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    r = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=60)
    if screenshot is not None:
        subprocess.run([str(CHROMIUM), *flags, f"--screenshot={screenshot}", "--window-size=1200,2400", report.as_uri()], capture_output=True, timeout=60)
    return r.stdout, r.stderr


def test_expansion_report_sections_and_self_contained(tmp_path, expansion, gan_run):
    real, expanded = expansion
    path = write_expansion_report(tmp_path, real=real, expanded=expanded, gan_run=gan_run, notes=["a note"])
    text = path.read_text(encoding="utf-8")
    for heading in ("Class balance before and after", "Real vs synthetic, per class", "Most suspicious", "Truncation sweep", "Loss curves"):
        assert heading in text, heading
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http" not in text and "<script" not in text and "<link" not in text


def test_suspicious_pairs_find_the_exact_copy_first(expansion):
    real, expanded = expansion
    synth = expanded[np.flatnonzero(np.isin(expanded.source, [Source.gan.value, Source.classical.value]))]
    s_i, r_i, ratio = suspicious_pairs(real, synth)[0]
    assert synth.source[s_i] == Source.classical.value and ratio == 0.0
    assert np.array_equal(synth.images[s_i], real.images[r_i])


def test_every_training_run_writes_a_report(gan_run):
    path = gan_run / REPORT_NAME  # written by train() itself
    text = path.read_text(encoding="utf-8")
    assert "Loss curves" in text and "step-000006" in text and "Truncation sweep" in text
    assert text.count('src="data:image/png;base64,') >= 4 and "src=\"http" not in text  # curves, 2 grids, sweep; inline
    before = path.stat().st_mtime_ns
    assert write_run_report(gan_run) == path and path.stat().st_mtime_ns >= before


def test_every_expansion_writes_a_report(tmp_path, expansion):
    from augmentgan.data import save

    real, _ = expansion
    spec = {"data": {"path": str(save(real, tmp_path / "d.h5"))}, "output": {"path": str(tmp_path / "out")}, "plan": {"mix": {"classical": 1.0}}}
    result = expand(spec)
    assert "Real vs synthetic" in (result.out / REPORT_NAME).read_text(encoding="utf-8")


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run installs it)")
def test_report_renders_in_chromium_without_errors(tmp_path, expansion, gan_run):
    real, expanded = expansion
    expansion_report = write_expansion_report(tmp_path, real=real, expanded=expanded, gan_run=gan_run)
    for i, report in enumerate((expansion_report, gan_run / REPORT_NAME)):  # the expansion's and the training run's
        n_images = report.read_text(encoding="utf-8").count("<img ")
        dom, log = render(report, tmp_path, screenshot=tmp_path / f"report{i}.png")
        assert f"images={n_images} broken=0 errors=0" in dom, (report, dom[-500:])
        console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not console, (report, console)
        assert (tmp_path / f"report{i}.png").stat().st_size > 10_000


@pytest.mark.parametrize("chunk", [1, 3, 7, 1024])
def test_nearest_search_in_chunks_matches_the_full_distance_matrix(monkeypatch, chunk):
    """The report reads both sides of the nearest-real search a chunk at a time (a large class is
    never held as float32): whatever the chunk size, each row gets the nearest real row of the whole
    class (the first one on a tie) and, among a class's own rows, never itself."""
    import augmentgan.report as rep

    monkeypatch.setattr(rep, "NEAREST_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    real = rng.integers(0, 4, (23, 3, 2, 1), dtype=np.uint8)  # few values: ties happen
    real[5] = real[17]  # an exact duplicate pair inside the class
    query = rng.integers(0, 4, (11, 3, 2, 1), dtype=np.uint8)
    real_rows = np.array([0, 2, 3, 5, 8, 9, 11, 12, 14, 15, 17, 18, 20, 22])
    rows = np.arange(11)[::-1].copy()

    def brute(q: np.ndarray, own: bool) -> tuple[np.ndarray, np.ndarray]:
        r = real[real_rows].reshape(len(real_rows), -1).astype(np.float64)
        d = np.sqrt(((q.reshape(len(q), -1).astype(np.float64)[:, None] - r[None]) ** 2).sum(-1))
        if own:
            np.fill_diagonal(d, np.inf)
        return d.min(1), d.argmin(1)  # argmin: the first on a tie

    d, j = rep._nearest(query, rows, real, real_rows)
    want_d, want_j = brute(query[rows], own=False)
    np.testing.assert_allclose(d.numpy(), want_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(j.numpy(), want_j)
    d, j = rep._nearest(real, real_rows, real, real_rows, own=True)
    want_d, want_j = brute(real[real_rows], own=True)
    np.testing.assert_allclose(d.numpy(), want_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(j.numpy(), want_j)
    assert (j.numpy() != np.arange(len(real_rows))).all()
    assert d[list(real_rows).index(5)] == 0 and j[list(real_rows).index(5)] == list(real_rows).index(17)
