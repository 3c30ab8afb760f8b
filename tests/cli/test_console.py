"""CLI output as a pipeline sees it: no hard wraps when piped, JSON errors under --json, shell
completion, presets in --help, one device default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

NO_GAN = {
    "seed": 0,
    "data": {"path": "builtin:digits-lt"},
    "plan": {"target": 20, "mix": {"classical": 0.5, "copy": 0.5}},
    "classical": {"pipeline": "light"},
}


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # stdout and stderr are pipes, as in `augmentgan ... | cat` or `> log 2>&1`
    full_env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", **(env or {})}
    full_env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "augmentgan", *args], capture_output=True, text=True, timeout=120, env=full_env, cwd=cwd)


def test_piped_output_keeps_a_long_path_on_one_line(tmp_path: Path) -> None:
    out = tmp_path / ("a-rather-long-folder-name-for-the-expanded-dataset-" * 2) / "expanded-digits-lt-classical-and-copies"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**NO_GAN, "output": {"path": str(out)}}), encoding="utf-8")
    assert len(str(out / "train.h5")) > 160
    r = run("expand", str(recipe))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    wrote = next(line for line in lines if str(out / "train.h5") in line)  # the "wrote ..." line names every file in the output
    assert all(p.name in wrote for p in out.iterdir()), (wrote, sorted(out.iterdir()))
    assert any(str(out) in line for line in lines if "->" in line), r.stdout  # the table title


def test_errors_under_json_are_a_json_object_on_stdout(tmp_path: Path) -> None:
    r = run("expand", str(tmp_path / "missing.yaml"), "--json")
    assert r.returncode == 4
    err = json.loads(r.stdout)
    assert err["exit_code"] == 4 and err["type"] == "ConfigError" and "missing.yaml" in err["error"]
    assert r.stderr.strip().startswith("error: ")  # the usual line stays on stderr
    r = run("inspect", "builtin:nope", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["type"] == "DataError"
    r = run("inspect", "builtin:digits", "--json", "--no-such-option")  # usage error
    assert r.returncode == 2 and json.loads(r.stdout)["exit_code"] == 2
    r = run("inspect", str(tmp_path / "missing"))  # without --json stdout stays empty
    assert r.returncode == 3 and r.stdout == ""


def test_shell_completion_is_enabled(tmp_path: Path) -> None:
    r = run("--help")
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
    env = {"_AUGMENTGAN_COMPLETE": "complete_bash", "COMP_WORDS": "augmentgan tr", "COMP_CWORD": "1"}
    r = subprocess.run([sys.executable, "-m", "augmentgan"], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert r.returncode == 0 and r.stdout.split() == ["train"]
    # the shell named, not detected: typer asks shellingham for the parent shell, and a suite started without one
    # (a detached job, some IDEs) got "Shell None is not supported"; typer's own switch makes it take the name
    r = run("--install-completion", "bash", env={"HOME": str(tmp_path), "SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.returncode == 0, r.stderr
    assert "augmentgan" in (tmp_path / ".bashrc").read_text(encoding="utf-8")


def test_train_help_lists_the_presets_and_every_device_defaults_to_auto() -> None:
    from augmentgan.gan.presets import preset_names

    r = run("train", "--help", env={"COLUMNS": "300"})
    assert all(name in r.stdout for name in preset_names())
    from augmentgan.cli.main import app
    import typer.main

    command = typer.main.get_command(app)
    defaults = {}
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        for param in sub.params:
            if param.name == "device":
                defaults[name] = param.default
    assert {"train", "generate", "evaluate", "utility"} <= set(defaults)
    assert set(defaults.values()) <= {"auto", None}, defaults  # None: train resolves it to TrainConfig's auto


def test_recipe_validate_checks_several_files_and_reports_each(tmp_path: Path) -> None:
    recipes = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: x}\noutput: {path: o}\nsmote: {method: smoote}\n", encoding="utf-8")
    r = run("recipe", "validate", *map(str, recipes))
    assert r.returncode == 0 and r.stderr.count(": valid") == len(recipes) >= 2
    r = run("recipe", "validate", str(bad), *map(str, recipes), "--json")
    assert r.returncode == 4
    summary = json.loads(r.stdout)
    assert summary["valid"] is False and [f["valid"] for f in summary["files"]] == [False] + [True] * len(recipes)
    assert "bad.yaml line 3: smote.method" in summary["files"][0]["error"]


def test_cache_dir_option_reads_and_sets_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from augmentgan.cli.main import app

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", "unused")
    r = CliRunner().invoke(app, ["--cache-dir", str(tmp_path / "c"), "recipe", "schema"])
    assert r.exit_code == 0 and os.environ["AUGMENTGAN_CACHE_DIR"] == str(tmp_path / "c")
    r = run("--help", env={"COLUMNS": "300"})
    assert "AUGMENTGAN_CACHE_DIR" in r.stdout  # shown in --help


def test_a_warning_repeated_within_one_command_is_shown_once(tmp_path: Path) -> None:
    # plan.mix auto expands the training set once per proxy seed, and k-means SMOTE warns each time
    # that class 9 goes to plain SMOTE (the same text); the user reads it once
    recipe = {
        "seed": 0,
        "data": {"path": "builtin:digits-lt"},
        "smote": {"method": "kmeans-smote"},  # with the default 20% holdout class 9 keeps 6 images: no cluster holds them
        "plan": {"target": "max", "mix": "auto", "auto": {"sources": ["copy", "smote"], "blends": False, "steps": 30, "validation": "builtin:digits-lt-val"}},
        "output": {"path": str(tmp_path / "out")},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run("expand", str(path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning: kmeans-smote made")]
    assert any("class '9'" in line for line in lines), result.stderr
    assert len(lines) == len(set(lines)), lines


def test_help_shows_the_defaults_it_writes_out() -> None:
    # "[default: 20000]" in a help text is Rich markup to typer's help formatter: it vanished ("Generator steps .")
    def words(out: str) -> str:  # the help's text, without its box and line breaks
        return " ".join(out.replace("│", " ").split())

    r = run("train", "--help")
    assert r.returncode == 0 and "Generator steps (default: 20000)" in words(r.stdout) and "Steps between metrics lines (default: 50)" in words(r.stdout)
    assert "HDF5 compression (default: gzip)" in words(run("convert", "--help").stdout)
