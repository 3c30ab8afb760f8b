"""Expand a dataset with augmentgan, then train a PyTorch classifier on the expansion.

    python examples/train_classifier.py                      # digits-lt, the quick-start recipe (its GAN and plan.mix decide the time)
    python examples/train_classifier.py --compare            # also train on the real images alone
    python examples/train_classifier.py --gan-steps 20 --steps 50 --set gan.eval_every=0 --out /tmp/x   # a smoke run

Steps: ``augmentgan.expand`` runs a recipe (the GAN is cached, so a second run skips training) and
writes ``OUT/train.h5`` (real rows, then GAN/classical/SMOTE rows) and ``OUT/holdout.h5``;
``H5ImageDataset`` reads ``train.h5`` lazily as ``(float32 CHW tensor in [0, 1], int label)``
items with torchvision-style ``classes`` / ``class_to_idx``; a small CNN trains on it and is
scored on a separate balanced test set (``builtin:digits-lt-test``, never seen by the GAN). The
script prints macro-F1 on that test set (with ``--json``, one JSON object).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader, Dataset

import augmentgan
from augmentgan import H5ImageDataset, ProgressEvent

ROOT = Path(__file__).resolve().parents[1]


def small_cnn(channels: int, num_classes: int) -> nn.Module:
    """Two conv blocks and a linear head: enough for 8x8 to 32x32 images."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64 * 4, num_classes),
    )


def train(model: nn.Module, data: Dataset, steps: int, seed: int, device: str) -> nn.Module:
    """Adam on shuffled batches of 64 for ``steps`` steps (a plain loop: nothing rebalanced here)."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=generator, drop_last=len(data) > 64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.to(device).train()
    step = 0
    while step < steps:
        for images, labels in loader:
            loss = nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    return model.eval()


@torch.no_grad()
def macro_f1(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str) -> float:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).to(device)
    predicted = model(x).argmax(1).cpu().numpy()
    return float(f1_score(labels, predicted, average="macro"))


def _show(event: ProgressEvent) -> None:
    if event.stage == "expand":
        print(f"expand: {event.info.get('name', '')} ({event.done}/{event.total})", file=sys.stderr, flush=True)


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "digits-lt.yaml"), help="recipe to expand with (default: the quick start)")
    p.add_argument("--test", default="builtin:digits-lt-test", help="dataset to score on (same classes and image shape)")
    p.add_argument("--out", default=None, help="expansion folder (default: a temporary folder, deleted afterwards)")
    p.add_argument("--gan-steps", type=int, default=None, help="override gan.steps (default: the recipe's)")
    p.add_argument("--gan-width", type=int, default=None, help="override the GAN's g_ch and d_ch (default: the recipe's)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override any recipe key (as augmentgan expand --set); repeatable")
    p.add_argument("--steps", type=int, default=600, help="classifier training steps (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="device of the classifier (the GAN uses the recipe's gan.device)")
    p.add_argument("--compare", action="store_true", help="also train on the real training rows alone")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    args = p.parse_args(argv)

    overrides = [f"seed={args.seed}"]  # --set pairs, as the CLI takes them
    if args.gan_steps is not None:
        overrides.append(f"gan.steps={args.gan_steps}")
    if args.gan_width is not None:
        overrides += [f"gan.overrides.model.g_ch={args.gan_width}", f"gan.overrides.model.d_ch={args.gan_width}"]
    overrides += args.sets
    if augmentgan.load_recipe(args.recipe, overrides).output.format != "h5":  # e.g. recipes/rgb-32.yaml: this example reads train.h5
        print("note: the expansion is written as HDF5 here (output.format=h5): this example reads train.h5 with H5ImageDataset; "
              "torchvision.datasets.ImageFolder reads a folder output", file=sys.stderr)
        overrides.append("output.format=h5")
    test = augmentgan.load(args.test)
    torch.manual_seed(args.seed)  # the CNN's initial weights (a script may seed globally; the library does not)

    with tempfile.TemporaryDirectory() as tmp:
        overrides.append(f"output.path={args.out or Path(tmp) / 'expanded'}")
        result = augmentgan.expand(args.recipe, overrides=overrides, force=args.out is not None, callback=_show)
        assert result.train is not None
        expanded = H5ImageDataset(result.train)
        if list(test.class_names) != expanded.classes:
            raise SystemExit(f"error: --test has classes {list(test.class_names)}, the expansion {expanded.classes}")
        model = train(small_cnn(test.channels, len(expanded.classes)), expanded, args.steps, args.seed, args.device)
        # without --out the expansion lives in a temporary folder, gone when this script ends: no path to report
        scores: dict[str, Any] = {"train": str(result.train) if args.out else None, "train_samples": len(expanded), "steps": args.steps}
        scores["macro_f1_expanded"] = macro_f1(model, test.images, test.labels, args.device)
        if args.compare:
            real = torch.utils.data.Subset(expanded, np.flatnonzero(expanded.source == augmentgan.Source.real).tolist())
            torch.manual_seed(args.seed)
            baseline = train(small_cnn(test.channels, len(expanded.classes)), real, args.steps, args.seed, args.device)
            scores["macro_f1_real_only"] = macro_f1(baseline, test.images, test.labels, args.device)
        expanded.close()

    if args.json:
        print(json.dumps(scores))
    else:
        print(f"trained on {scores['train_samples']} expanded samples for {args.steps} steps")
        print(f"macro-F1 on {args.test}: {scores['macro_f1_expanded']:.3f} (expanded)")
        if args.compare:
            print(f"macro-F1 on {args.test}: {scores['macro_f1_real_only']:.3f} (real images only)")
    return scores


if __name__ == "__main__":
    main()
