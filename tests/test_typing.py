"""A user's script type-checks against augmentgan's public API under ``mypy --strict``: the package
ships ``py.typed`` (PEP 561), so the annotations reach the user's type checker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import augmentgan

USER_SCRIPT = '''
from pathlib import Path

import numpy as np

import augmentgan
from augmentgan import AugmentganError, ExpandResult, GANOverSampler, H5ImageDataset, ProgressEvent, expand, expand_data, load


def show(event: ProgressEvent) -> None:
    print(event.stage, event.done, event.total, event.info)


def run(recipe: Path) -> int:
    try:
        result: ExpandResult = expand(recipe, overrides=["gan.steps=10"], dry_run=False, callback=show)
    except AugmentganError as err:
        return err.exit_code
    if result.train is None:
        return 1
    ds = H5ImageDataset(result.train, transform=None)
    print(ds.classes, ds.class_to_idx["0"], result.plan.total, result.counts, augmentgan.__version__)
    more = expand_data(load("builtin:digits-lt"), recipe)
    print(len(more.data), more.data.class_names, more.notes)
    return 0


def resample(X: np.ndarray, y: np.ndarray) -> None:
    sampler = GANOverSampler(mix={"classical": 0.5, "copy": 0.5}, random_state=0, image_shape=(8, 8))
    X_res, y_res = sampler.fit_resample(X, y)
    print(sampler.sample_source_[:3], sampler.sample_parent_[:3], len(y_res), len(X_res))
'''

MISTAKES = '''
from augmentgan import ExpandResult, expand

seconds: str = expand("recipe.yaml").seconds
result: ExpandResult = expand("recipe.yaml", dry=True)
'''

CONFIG = """[mypy]
strict = True
# the heavy, typed dependencies are not what this test checks: skip them (about 3x faster)
[mypy-torch.*,torchvision.*,scipy.*,matplotlib.*,albumentations.*,h5py.*]
follow_imports = skip
"""


def test_mypy_strict_accepts_a_user_script_and_catches_its_mistakes(tmp_path: Path) -> None:
    # an installed-package layout (the test environment has an editable install, which mypy cannot
    # follow): site/augmentgan -> the package; mypy then honours py.typed as for a wheel
    site = tmp_path / "site"
    site.mkdir()
    package = Path(augmentgan.__file__).parent
    assert (package / "py.typed").is_file()
    (site / "augmentgan").symlink_to(package, target_is_directory=True)
    (tmp_path / "user.py").write_text(USER_SCRIPT, encoding="utf-8")
    (tmp_path / "mistakes.py").write_text(MISTAKES, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text(CONFIG, encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"), "user.py", "mistakes.py"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("user.py")], r.stdout
    assert any("mistakes.py:4:" in e and '"float"' in e for e in errors), r.stdout  # ExpandResult.seconds is a float
    assert any("mistakes.py:5:" in e and '"dry"' in e for e in errors), r.stdout  # expand() has no such argument
    assert len(errors) == 2, r.stdout
