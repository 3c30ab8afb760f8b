"""The cache root and the per-entry locks: waiting is said, a killed holder never blocks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from augmentgan.cache import cache_root, entry_lock, in_use, lock_path
from augmentgan.errors import AugmentganWarning, OutputError

HOLDER = """
import sys, time
from pathlib import Path
from augmentgan.cache import entry_lock

entry, flag = Path(sys.argv[1]), Path(sys.argv[2])
with entry_lock(entry, "test entry"):
    flag.write_text("held")
    deadline = time.monotonic() + 120
    while not flag.with_name("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def _hold(tmp_path: Path, entry: Path) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    flag = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, str(script), str(entry), str(flag)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    return proc


def test_cache_root_follows_augmentgan_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUGMENTGAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "augmentgan"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert cache_root() == tmp_path / "home" / ".cache" / "augmentgan"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "augmentgan"
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    # both caches use it
    from augmentgan.domain.classifier import cache_root as classifier_root
    from augmentgan.pipeline import cache_dir

    assert cache_dir() == classifier_root() == tmp_path / "mine"


def test_a_sigkilled_holder_leaves_no_lock_that_blocks(tmp_path: Path) -> None:
    entry = tmp_path / "runs" / "abc"
    proc = _hold(tmp_path, entry)
    assert in_use(entry) and lock_path(entry) == tmp_path / "runs" / "abc.lock"
    with pytest.raises(OutputError, match=r"test entry .*abc stayed locked by another process for 0\.2 s"):
        with pytest.warns(AugmentganWarning, match="waiting"):
            with entry_lock(entry, "test entry", timeout=0.2):
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and lock_path(entry).exists()  # the file stays; the OS lock went with the process
    assert not in_use(entry)
    t0 = time.monotonic()
    with entry_lock(entry, "test entry", timeout=5):
        assert not in_use(entry)  # held by this process, not by another
    assert time.monotonic() - t0 < 2


def test_a_waiter_says_so_then_gets_the_entry(tmp_path: Path) -> None:
    entry = tmp_path / "classifiers" / "x.pt"
    proc = _hold(tmp_path, entry)
    events = []

    def callback(event) -> None:  # noqa: ANN001
        events.append(event)
        if event.stage == "wait" and event.done == 0:
            (tmp_path / "release").write_text("")  # the holder finishes once someone waits

    with pytest.warns(AugmentganWarning, match=r"another augmentgan process is using the test entry .*x\.pt .*waiting for it to finish"):
        with entry_lock(entry, "test entry", callback=callback):
            assert proc.wait(timeout=60) == 0
    assert [(e.stage, e.done, e.total) for e in events] == [("wait", 0, 1), ("wait", 1, 1)]
    assert "x.pt" in events[0].info["message"]


def test_cache_list_and_clear_keep_what_another_process_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import json
    import os

    from augmentgan.cli.main import main

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    runs, classifiers = tmp_path / "cache" / "runs", tmp_path / "cache" / "classifiers"
    for name, final in (("old", True), ("busy", True), ("partial", False)):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / ("final.pt" if final else "step-000002.pt")).write_bytes(b"x" * 100)
    classifiers.mkdir()
    (classifiers / "abc.pt").write_bytes(b"y" * 10)
    week = 8 * 86400
    for path in [runs / "old", *(runs / "old").rglob("*")]:
        os.utime(path, (path.stat().st_atime - week, path.stat().st_mtime - week))

    def cli(*args: str) -> dict:
        with pytest.raises(SystemExit) as stop:
            main([*args, "--json"])
        out = capsys.readouterr().out
        assert stop.value.code == 0, out
        return json.loads(out)

    listed = {Path(e["path"]).name: e for e in cli("cache", "list")["entries"]}
    assert listed.keys() == {"old", "busy", "partial", "abc.pt"}
    assert listed["old"]["complete"] and not listed["partial"]["complete"] and listed["abc.pt"]["kind"] == "classifier"
    assert listed["old"]["bytes"] == 100 and not listed["busy"]["in_use"]
    assert [Path(e["path"]).name for e in cli("cache", "clear", "--older-than", "7d")["removed"]] == ["old"]
    proc = _hold(tmp_path, runs / "busy")  # another process uses this run
    try:
        assert {Path(e["path"]).name: e["in_use"] for e in cli("cache", "list")["entries"]}["busy"] is True
        cleared = cli("cache", "clear")
        assert sorted(Path(e["path"]).name for e in cleared["removed"]) == ["abc.pt", "partial"]
        assert [Path(e["path"]).name for e in cleared["in_use"]] == ["busy"] and (runs / "busy" / "checkpoints" / "final.pt").is_file()
    finally:
        (tmp_path / "release").write_text("")
        proc.wait(timeout=60)
    for age in ("soon", "14"):  # a bare number meant as days cleared nearly everything as seconds
        with pytest.raises(SystemExit) as stop:
            main(["cache", "clear", "--older-than", age])
        assert stop.value.code == 2


def test_train_force_does_not_clear_a_run_another_process_holds(tmp_path: Path) -> None:
    from augmentgan.errors import OutputExistsError
    from augmentgan.gan.trainer import _clear_run

    run = tmp_path / "runs" / "abc"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "final.pt").write_bytes(b"x")
    proc = _hold(tmp_path, run)
    try:
        with pytest.raises(OutputExistsError, match=r"abc is in use by another augmentgan process .*--force does not clear it"):
            _clear_run(run, force=True)
        assert (run / "checkpoints" / "final.pt").is_file()
    finally:
        (tmp_path / "release").write_text("")
        proc.wait(timeout=60)
    with entry_lock(run, "test entry"):  # our own lock does not stop us
        assert not in_use(run)
        _clear_run(run, force=True)
    assert not (run / "checkpoints").exists()


HOLD_THEN_WRITE = """
import shutil, sys, time
from pathlib import Path
from augmentgan.cache import entry_lock

entry, ready, flag = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with entry_lock(entry, "cached domain classifier"):
    flag.write_text("held")
    deadline = time.monotonic() + 120
    while not flag.with_name("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    shutil.copyfile(ready, entry)  # what a process training the classifier leaves when it is done
"""


def test_a_second_process_reads_the_classifier_another_one_is_training(tmp_path: Path) -> None:
    import numpy as np

    from augmentgan.data.types import LabeledImages
    from augmentgan.domain.classifier import train_classifier

    rng = np.random.default_rng(0)
    data = LabeledImages(rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8), np.arange(12) % 2, ("a", "b"))
    first = train_classifier(data, steps=3, batch=4, cache_dir=tmp_path / "elsewhere")
    entry = tmp_path / "classifiers" / Path(first.info["cache"]).name  # where train_classifier will look
    entry.parent.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(HOLD_THEN_WRITE)
    proc = subprocess.Popen([sys.executable, str(script), str(entry), first.info["cache"], str(tmp_path / "held")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "held").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
        time.sleep(0.02)
    events = []

    def callback(event) -> None:  # noqa: ANN001
        events.append(event.stage)
        if event.stage == "wait":
            (tmp_path / "release").write_text("")

    with pytest.warns(AugmentganWarning, match="another augmentgan process is using the cached domain classifier"):
        again = train_classifier(data, steps=3, batch=4, cache_dir=tmp_path / "classifiers", callback=callback)
    assert proc.wait(timeout=60) == 0
    assert "classifier" not in events and events == ["wait", "wait"]  # it waited, then read; it did not train
    assert again.info["cache"] == str(entry) and again.info["train_accuracy"] == first.info["train_accuracy"]
    for key, value in first.state_dict().items():
        assert (value == again.state_dict()[key]).all(), key
