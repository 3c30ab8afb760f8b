"""Disk trouble: a read-only folder or a full disk (ENOSPC injected into the writes) leaves no
partial output, keeps the GAN cache intact and says which path failed, in one line (exit 5)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from augmentgan.cli.main import main
from augmentgan.data import load, save
from augmentgan.data.hdf5 import write_hdf5
from augmentgan.data.types import LabeledImages
from augmentgan.errors import OutputError
from augmentgan.gan import checkpoint as ckpt
from augmentgan.pipeline import expand
from test_pipeline_cache import _one_thread, _recipe_file  # noqa: F401 - the tiny-GAN recipe on three small classes, one torch thread


def _data() -> LabeledImages:
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (12, 6, 6, 3), dtype=np.uint8), np.arange(12) % 3, ("a", "b", "c"))


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, target, name: str, calls: int = 1) -> None:  # noqa: ANN001
    """Let ``target.name`` run ``calls`` times, then fail like a full disk."""
    real = getattr(target, name)
    seen = {"n": 0}

    def write(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen["n"] += 1
        if seen["n"] > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, write)


def _nothing_left(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep  # no output, no temporary file or folder beside it


@pytest.mark.parametrize("fmt", ["h5", "folder"])
def test_a_full_disk_while_writing_leaves_nothing_and_names_the_output(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / ("out.h5" if fmt == "h5" else "out")
    if fmt == "h5":
        _full_disk_after(monkeypatch, h5py.Dataset, "__setitem__", calls=2)
    else:
        _full_disk_after(monkeypatch, Image.Image, "save", calls=3)
    with pytest.raises(OutputError, match=rf"cannot write {out}.*No space left on device; nothing was left under {out} - free some disk space") as err:
        write_hdf5(_data(), out, batch=4) if fmt == "h5" else save(_data(), out)
    assert "\n" not in str(err.value)
    _nothing_left(tmp_path, set())


def test_a_read_only_folder_is_one_line_exit_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "in.npz", x=_data().images, y=_data().labels)
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: the file system says no instead
        real = h5py.File

        def read_only(name, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if mode != "r" and str(name).startswith(str(target)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(name))
            return real(name, mode, *args, **kwargs)

        monkeypatch.setattr(h5py, "File", read_only)
    else:
        target.chmod(0o555)
    try:
        with pytest.raises(SystemExit) as stop:
            main(["convert", str(tmp_path / "in.npz"), str(target / "out.h5")])
    finally:
        target.chmod(0o755)
    err = capsys.readouterr().err
    assert stop.value.code == 5, err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write {target / 'out.h5'}") and "writable folder" in err
    _nothing_left(target, set())


def test_a_full_disk_during_expand_keeps_the_cached_gan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _recipe_file(tmp_path)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _full_disk_after(m, h5py.Dataset, "__setitem__", calls=5)  # the GAN trains and is cached; train.h5 fails
        with pytest.raises(OutputError, match=rf"cannot write {out}/(train|holdout)\.h5: No space left on device; nothing was left under"):
            expand(recipe, overrides=[f"output.path={out}"])
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    run = next(p for p in (tmp_path / "cache" / "runs").iterdir() if p.is_dir())
    assert all(ckpt.verify(p) is None for p in (run / "checkpoints").glob("*.pt"))
    again = expand(recipe, overrides=[f"output.path={out}"])  # space again: the cached run is reused as it is
    assert again.gan_cached is True and len(load(out / "train.h5")) == again.plan.total


def test_a_gan_run_folder_may_hold_outputs_an_image_folder_may_not(tmp_path) -> None:
    from augmentgan.data.atomic import check_not_over
    from augmentgan.errors import ConfigError

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    check_not_over(tmp_path / "run" / "synth.h5", [tmp_path / "run"])  # generate RUN --out RUN/synth.h5
    with pytest.raises(ConfigError, match="lies inside the input folder"):
        check_not_over(tmp_path / "photos" / "expanded", [tmp_path / "photos"])
    check_not_over(tmp_path / "photos.h5", [tmp_path / "photos"])  # beside it: fine
