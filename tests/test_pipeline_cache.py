"""The GAN cache under concurrency and damage: two expansions at once train once; a truncated
cached checkpoint is set aside and rebuilt from an intact one, with the same arrays as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from augmentgan.data import load
from augmentgan.errors import AugmentganWarning
from augmentgan.gan import checkpoint as ckpt
from augmentgan.pipeline import expand

# a tiny dcgan on three small classes; GAN samples only (the stage under test)
RECIPE = {
    "seed": 5,
    "data": {"path": "set-by-the-test"},
    "holdout": {"fraction": 0.2},
    "gan": {
        "preset": "dcgan", "steps": 8, "batch": 8, "device": "cpu",
        "overrides": {"model": {"g_ch": 8, "d_ch": 8, "z_dim": 8, "embed_dim": 8}},
    },
    "plan": {"target": 24, "mix": {"gan": 1.0}},
    "output": {"path": "set-by-the-test", "format": "h5"},
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch):  # tiny tensors on a shared machine; the subprocess gets the same
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


def _arrays(out: Path) -> dict[str, bytes]:
    data = load(out / "train.h5")
    return {name: getattr(data, name).tobytes() for name in ("images", "labels", "source", "parent")}


def _recipe_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), (20, 12, 8))
    images = (rng.normal(60 + 60 * labels[:, None, None], 25, (len(labels), 8, 8))).clip(0, 255).astype(np.uint8)
    np.savez(tmp_path / "data.npz", x=images, y=labels)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "data": {"path": str(tmp_path / "data.npz")}}), encoding="utf-8")
    return path


def _only_run(cache: Path) -> Path:
    runs = [p for p in (cache / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_two_expansions_at_once_train_once_and_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache))
    recipe = _recipe_file(tmp_path)
    training, go = threading.Event(), threading.Event()

    def hold_while_training(event) -> None:  # noqa: ANN001 - the first expansion pauses inside its GAN training
        if event.stage == "train" and not training.is_set():
            training.set()
            assert go.wait(120), "the second expansion never said it waits"

    first: dict = {}

    def run_first() -> None:
        try:
            first["result"] = expand(recipe, overrides=[f"output.path={tmp_path / 'a'}"], callback=hold_while_training)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            first["error"] = err
            training.set()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert training.wait(120)
    assert "error" not in first, first.get("error")
    # the second one, through the CLI, while the first holds the cache entry
    cmd = [sys.executable, "-m", "augmentgan", "expand", str(recipe), "--json", "--set", f"output.path={tmp_path / 'b'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "AUGMENTGAN_CACHE_DIR": str(cache)})
    stderr = []
    try:
        for line in proc.stderr:  # the message that it waits comes while the first one is still training
            stderr.append(line)
            if "waiting for it to finish" in line:
                break
        assert "waiting for it to finish" in stderr[-1] and "cached GAN run" in stderr[-1], "".join(stderr)
        assert not (cache / "runs" / _only_run(cache).name / "checkpoints" / "final.pt").exists()
    finally:
        go.set()
        out, err = proc.communicate(timeout=300)
        thread.join(300)
    assert "error" not in first, first.get("error")
    assert proc.returncode == 0, "".join(stderr) + err
    second = json.loads(out)
    # one trained, the other waited and reused the finished run
    assert first["result"].gan_cached is False and second["gan_cached"] is True
    assert any("training skipped" in n for n in second["notes"]) and second["gan_run"] == str(first["result"].gan_run)
    assert _arrays(tmp_path / "a") == _arrays(tmp_path / "b")
    # the run folder is one consistent, uninterrupted run: every step logged once, every checkpoint verifies
    run = _only_run(cache)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if "d_loss" in line]
    assert steps == sorted(set(steps)) and steps[-1] == RECIPE["gan"]["steps"]
    checkpoints = sorted((run / "checkpoints").glob("*.pt"))
    assert checkpoints and all(ckpt.verify(p) is None for p in checkpoints)
    assert not list((run / "checkpoints").glob("*.damaged*")) and not list(run.parent.glob(".*tmp*"))


def test_a_truncated_cached_checkpoint_is_set_aside_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache))
    recipe = _recipe_file(tmp_path)
    undamaged = expand(recipe, overrides=[f"output.path={tmp_path / 'a'}"])
    run = undamaged.gan_run
    cks = run / "checkpoints"
    final = cks / "final.pt"
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])  # what a full disk or a killed copy leaves
    last = sorted(cks.glob("step-*.pt"))[-1]  # damage the newest step checkpoint too: training must resume before it
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    last.write_bytes(bytes(raw))
    with pytest.warns(AugmentganWarning) as caught:
        again = expand(recipe, overrides=[f"output.path={tmp_path / 'b'}"])
    said = [str(w.message) for w in caught if issubclass(w.category, AugmentganWarning)]
    assert any(f"{final} is damaged" in m and "set aside as final.pt.damaged" in m for m in said), said
    assert any(f"{last} is damaged" in m and "sha256" in m for m in said), said
    assert again.gan_cached is False and any("(resumed)" in n for n in again.notes)
    assert _arrays(tmp_path / "a") == _arrays(tmp_path / "b")
    assert (cks / "final.pt.damaged").is_file() and (cks / (last.name + ".damaged")).is_file()  # set aside, not deleted
    assert ckpt.verify(final) is None and ckpt.verify(last) is None


def test_a_damaged_best_checkpoint_is_rebuilt_by_training_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache))
    recipe = _recipe_file(tmp_path)
    undamaged = expand(recipe, overrides=[f"output.path={tmp_path / 'a'}", "gan.eval_every=4"])
    best = undamaged.gan_run / "checkpoints" / "best.pt"
    assert best.is_file() and undamaged.lock["gan"]["checkpoint"] == "best"  # generation samples the best step
    best.write_bytes(best.read_bytes()[:1000])
    with pytest.warns(AugmentganWarning, match=r"best\.pt is damaged"):
        again = expand(recipe, overrides=[f"output.path={tmp_path / 'b'}", "gan.eval_every=4"])
    assert again.gan_cached is False and any("trained again from the start" in n for n in again.notes)
    assert _arrays(tmp_path / "a") == _arrays(tmp_path / "b")
    assert (undamaged.gan_run / "damaged" / "best.pt.damaged").is_file() and ckpt.verify(best) is None


def test_a_removed_best_checkpoint_is_rebuilt_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # probe: with best.pt deleted (its sha256 record left), the cached run was reused from final.pt without a word
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _recipe_file(tmp_path)
    first = expand(recipe, overrides=[f"output.path={tmp_path / 'a'}", "gan.eval_every=4"])
    best = first.gan_run / "checkpoints" / "best.pt"
    best.unlink()
    again = expand(recipe, overrides=[f"output.path={tmp_path / 'b'}", "gan.eval_every=4"])
    assert again.gan_cached is False and any("damaged or removed; the run is trained again from the start" in n for n in again.notes)
    assert best.is_file() and again.lock["gan"]["checkpoint"] == "best" and _arrays(tmp_path / "a") == _arrays(tmp_path / "b")


def test_the_gan_cache_key_names_the_precision_auto_resolves_to_and_the_cache_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # probe: a run trained in bf16 (auto on a CPU with avx512_bf16) was reused on a machine where auto trains in fp32
    import augmentgan.gan.precision as precision
    import augmentgan.pipeline as pipeline
    from augmentgan.gan.presets import get_preset
    from augmentgan.gan.trainer import TrainConfig

    data = load("builtin:digits-lt")
    gan = get_preset("dcgan")

    def key(flags: frozenset[str], requested: str = "auto") -> str:
        monkeypatch.setattr(precision, "_read_cpu_flags", lambda: flags)
        return pipeline.gan_cache_key(data, gan, TrainConfig(steps=10, device="cpu", precision=requested))

    native, emulated = frozenset({"avx512_bf16"}), frozenset()
    assert key(native) != key(emulated)  # bf16 and fp32 weights differ
    assert key(native) == key(native, "bf16") and key(emulated) == key(emulated, "fp32")  # the same training, the same run
    before = key(native)
    monkeypatch.setattr(pipeline, "GAN_CACHE_VERSION", pipeline.GAN_CACHE_VERSION + 1)
    assert key(native) != before  # a run of older training code is not reused


def test_a_reused_run_is_not_cleared_as_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # probe: a CI job reusing a cached run daily lost it to `cache clear --older-than 14d` (its age was its files', never refreshed)
    from augmentgan.cache import cache_entries, clear_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache))
    recipe = _recipe_file(tmp_path)
    run = expand(recipe, overrides=[f"output.path={tmp_path / 'a'}"]).gan_run
    old = 20 * 86400
    for path in [*cache.rglob("*")]:
        os.utime(path, (path.stat().st_atime - old, path.stat().st_mtime - old))
    again = expand(recipe, overrides=[f"output.path={tmp_path / 'b'}"])
    assert again.gan_cached is True and again.gan_run == run
    removed, _ = clear_cache(older_than=14 * 86400)
    assert run not in [e.path for e in removed] and (run / "checkpoints" / "final.pt").is_file()
    assert run in [e.path for e in cache_entries()]


def test_a_cache_folder_that_is_a_file_is_refused_not_listed_as_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentgan.cache import cache_entries, clear_cache
    from augmentgan.errors import OutputError

    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    for call in (cache_entries, clear_cache):
        with pytest.raises(OutputError, match=r"cache folder .*cache is a file, not a folder; point AUGMENTGAN_CACHE_DIR"):
            call()
