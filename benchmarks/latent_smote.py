"""latent-smote on mnist-lt: reconstruction errors, sample quality against plain GAN samples, utility.

    flock /tmp/augmentgan-heavy.lock python benchmarks/latent_smote.py --seeds 3 --out /tmp/latent-smote
    python benchmarks/latent_smote.py --recipe recipes/small-data.yaml --set gan.overrides.bigan.weight=1   # the joint encoder
    python benchmarks/latent_smote.py --seeds 1 --data builtin:digits-lt --test builtin:digits-lt-test   # quicker

What it does (the recipe is ``--recipe``, by default the quick start's ``recipes/digits-lt.yaml``: dcgan
width 32, 800 steps, with ``gan.eval_every=0`` so every seed's GAN is its final step, as in the earlier
utility numbers):

1. ``augmentgan.utility.utility`` on the training set, scored on the test set, with
   ``plan.mix={latent-smote: 1.0}`` and methods ros, smote and recipe (= latent-smote) over
   ``--seeds`` seeds; then again with ``plan.mix={gan: 1.0}`` and method recipe only (the same GANs,
   cached), so that plain GAN samples are scored the same way;
2. for the first seed's GAN: ``augmentgan.generate.encode.encode`` of every real training image
   (codes.h5 and the reconstruction PNG in ``--out``), reconstruction error per class;
3. for the same GAN: as many plain GAN samples as latent-smote samples per class (the deficits to the
   largest class), both evaluated with ``augmentgan.evaluate.evaluation.evaluate`` against the real
   training images (domain-CNN features, CAS on).

4. sample grids of the three rarest classes (rarest first): real images, the generator's own samples
   and latent-smote's (``--out/grid-rarest-*.png``; ``--grids`` redraws them from a finished run).

Everything is written to ``--out/results.json`` (with the CPU's model and the flags that decide
``precision: auto``); ``--table`` prints markdown tables from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["gan.steps=10", "latent_smote.encoder_steps=10", "latent_smote.refine_steps=3"]  # --quick: a smoke test of this script


def _load(spec: str, split: str = "train"):  # noqa: ANN202
    from augmentgan.data import load

    return load(spec, split=split)


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def run(args: argparse.Namespace) -> dict:
    from augmentgan.data.types import LabeledImages
    from augmentgan.evaluate.evaluation import evaluate
    from augmentgan.utility import utility
    from augmentgan.generate import sample_dataset
    from augmentgan.generate.encode import EncodeSettings, encode
    from augmentgan.generate.latent_smote import latent_smote
    from augmentgan.pipeline import expand_data
    from augmentgan.recipe import load_recipe

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _load(args.data)
    test = _load(args.test, "test")
    recipe = str(Path(args.recipe).resolve())
    base_sets = ["gan.eval_every=0"] + (QUICK if args.quick else []) + list(args.set or [])
    steps = 20 if args.quick else 400
    enc = EncodeSettings(seed=0, encoder_steps=10, refine_steps=3) if args.quick else EncodeSettings(seed=0)
    from augmentgan.gan.precision import cpu_flags

    flags = cpu_flags()
    model = next((line.partition(":")[2].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")), "unknown")
    results: dict = {"data": args.data, "test": args.test, "seeds": args.seeds, "recipe": recipe, "sets": base_sets,
                     "cpu": {"model": model, "cores": os.cpu_count(), "flags": sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)}}
    ls_cfg = _latent_cfg(recipe, base_sets)
    results["latent_smote"] = ls_cfg
    t0 = time.time()

    u = utility(data, recipe, seeds=args.seeds, test=test, methods=("ros", "smote", "recipe"), steps=steps, overrides=base_sets + ["plan.mix={latent-smote: 1.0}"],
                data_spec=args.data)
    results["utility_latent_smote"] = u.to_dict()
    results["utility_seconds"] = time.time() - t0
    t1 = time.time()
    g = utility(data, recipe, seeds=args.seeds, test=test, methods=("recipe",), steps=steps, overrides=base_sets + ["plan.mix={gan: 1.0}"], data_spec=args.data)
    results["utility_gan"] = g.to_dict()
    results["utility_gan_seconds"] = time.time() - t1

    # the first seed's GAN (cached by the utility run): its run folder via an expansion with the same seed
    seed0 = u.seeds[0]
    spec = load_recipe(recipe, base_sets + ["plan.mix={gan: 1.0}", "data.path=unused"]).model_dump(mode="json")
    spec["seed"] = seed0
    spec["data"]["path"] = f"{args.data} (utility seed 1/{args.seeds}: all images)"
    train = LabeledImages(data.images, data.labels, data.class_names)
    run_dir = expand_data(train, spec).gan_run
    results["gan_run"] = str(run_dir)

    t2 = time.time()
    encoded = encode(run_dir, train, out / "codes.h5", settings=enc, device="cpu", force=True)
    results["encode"] = encoded.to_dict()
    results["encode_seconds"] = time.time() - t2

    counts = train.class_counts()
    deficits = {c: int(counts.max() - n) for c, n in enumerate(counts) if counts.max() > n}
    t3 = time.time()
    ls = latent_smote(run_dir, train, deficits, seed=0, settings=enc, device="cpu", **ls_cfg)
    results["latent_smote_notes"] = ls.notes
    results["latent_smote_seconds"] = time.time() - t3
    gan, _ = sample_dataset(run_dir, counts=deficits, truncation=1.0, seed=0, device="cpu")
    for name, synth in (("latent-smote", ls.samples), ("gan", gan)):
        ev = evaluate(synth, train, cas=True, cas_steps=steps, classifier_steps=None if not args.quick else steps, device="cpu")
        results[f"evaluate_{name}"] = ev.to_dict()
    np.savez_compressed(out / "samples.npz", latent_smote=ls.samples.images[:: max(1, len(ls.samples) // 400)], gan=gan.images[:: max(1, len(gan) // 400)])
    results["grids"] = rare_grids(run_dir, train, out, enc, ls_cfg)
    results["seconds"] = time.time() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def _latent_cfg(recipe: str, sets: list) -> dict:
    """The recipe's options that :func:`latent_smote` takes beside the encoder's, as ``expand`` passes them
    (smote.method, smote.k_neighbors, latent_smote.quantile and anchor)."""
    from augmentgan.pipeline import _latent_options
    from augmentgan.recipe import load_recipe

    return _latent_options(load_recipe(recipe, list(sets) + ["data.path=unused"]))


def rare_grids(run_dir: Path, train, out: Path, enc, ls_cfg: dict, rarest: int = 3, per_class: int = 16) -> dict:  # noqa: ANN001
    """Sample grids of the ``rarest`` classes (rarest first, one row each): the generator's own samples and
    latent-smote's (``ls_cfg``: the recipe's options, :func:`_latent_cfg`), ``per_class`` of each; real images of the class in
    a third grid. Returns the PNG paths."""
    import torch
    from torchvision.utils import make_grid, save_image

    from augmentgan.generate import sample_dataset
    from augmentgan.generate.latent_smote import latent_smote

    counts = train.class_counts()
    classes = [int(c) for c in np.argsort(counts, kind="stable")[:rarest]]
    want = {c: per_class for c in classes}
    ls = latent_smote(run_dir, train, want, seed=0, settings=enc, device="cpu", **ls_cfg).samples
    gan, _ = sample_dataset(run_dir, counts=want, truncation=1.0, seed=0, device="cpu")
    paths = {}
    for name, synth in (("real", train), ("gan", gan), ("latent-smote", ls)):
        rows = []
        for c in classes:
            imgs = synth.images[synth.labels == c][:per_class]
            tiles = torch.zeros((per_class, *imgs.shape[1:]), dtype=torch.uint8)
            tiles[: len(imgs)] = torch.from_numpy(imgs)
            rows.append(tiles.permute(0, 3, 1, 2).float() / 255.0)
        path = out / f"grid-rarest-{name}.png"
        save_image(make_grid(torch.cat(rows), nrow=per_class, padding=2, pad_value=0.5), str(path))
        paths[name] = str(path)
    paths["classes"] = [train.class_names[c] for c in classes]
    return paths


def table(path: Path) -> str:
    r = json.loads(path.read_text())
    lines = [f"recipe {Path(r.get('recipe', 'recipes/digits-lt.yaml')).name}, overrides {r['sets']}, CPU {r.get('cpu', 'not recorded')}", ""]
    u, g = r["utility_latent_smote"], r["utility_gan"]
    methods = {**{m: u["methods"][m] for m in ("ros", "smote")}, "latent-smote": u["methods"]["recipe"], "gan": g["methods"]["recipe"]}
    lines += ["| method | macro-F1 | balanced accuracy | minority recall | per seed macro-F1 |", "|---|---:|---:|---:|---|"]
    for m, v in methods.items():
        f = v["macro_f1"]
        lines.append(f"| {m} | {f['mean']:.3f} ± {f['std']:.3f} | {v['balanced_accuracy']['mean']:.3f} | {v['minority_recall']['mean']:.3f} | "
                     + ", ".join(f"{x:.3f}" for x in f["values"]) + " |")
    lines += ["", "| class | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for c in u["class_names"]:
        lines.append(f"| {c} | " + " | ".join(f"{methods[m]['per_class_recall'][c]['mean']:.3f}" for m in methods) + " |")
    e = r["encode"]
    lines += ["", f"encoder: {e.get('encoder', 'fitted')}", "", "| class | images | error mean | error median | encoder only | pixel RMSE (0-255) | feature distance |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c, v in e["per_class"].items():
        lines.append(f"| {c} | {v['images']} | {v['error_mean']:.4f} | {v['error_median']:.4f} | {v['error_encoder_mean']:.4f} | {v['pixel_rmse']:.1f} | {v['feature_distance']:.3f} |")
    lines += ["", "| samples | diversity ratio | classes flagged collapsed | precision | recall | coverage | density | CAS accuracy |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("gan", "latent-smote"):
        o = r[f"evaluate_{name}"]["overall"]
        lines.append(f"| {name} | {o['diversity_ratio']:.3f} | {len(o['mode_collapse_classes'])} | {o['precision']:.3f} | {o['recall']:.3f} | {o['coverage']:.3f} | {o['density']:.3f} | {o.get('cas_accuracy', float('nan')):.3f} |")
    lines += ["", "| class | " + " | ".join(f"{n} diversity / precision / recall" for n in ("gan", "latent-smote")) + " |", "|---|---:|---:|"]
    for c in r["evaluate_gan"]["per_class"]:
        cells = []
        for name in ("gan", "latent-smote"):
            p = r[f"evaluate_{name}"]["per_class"].get(c)
            cells.append("-" if p is None else f"{p['diversity_ratio']:.2f} / {p['precision']:.2f} / {p['recall']:.2f}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", f"seconds: utility {r['utility_seconds']:.0f}, gan utility {r['utility_gan_seconds']:.0f}, encode {r['encode_seconds']:.0f}, "
              f"latent-smote {r['latent_smote_seconds']:.0f}, total {r['seconds']:.0f}"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist-lt.npz"))
    p.add_argument("--test", default=None, help="test set (default: DATA's test split)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "digits-lt.yaml"), help="the recipe whose GAN and settings every method shares")
    p.add_argument("--set", action="append", help="extra recipe overrides (dotted key=value)")
    p.add_argument("--out", default="/tmp/latent-smote-benchmark")
    p.add_argument("--quick", action="store_true", help="tiny settings: checks that the script runs, measures nothing")
    p.add_argument("--table", action="store_true", help="print markdown tables from OUT/results.json and exit")
    p.add_argument("--grids", action="store_true", help="only the sample grids of the rarest classes, from the GAN run in OUT/results.json")
    args = p.parse_args()
    if args.table:
        print(table(Path(args.out) / "results.json"))
        return
    if args.grids:
        from augmentgan.generate.encode import EncodeSettings

        path = Path(args.out) / "results.json"
        results = json.loads(path.read_text())
        sets = results["sets"] + list(args.set or [])  # --set adds to the run's overrides (latent_smote.anchor=residual)
        results["grids"] = rare_grids(Path(results["gan_run"]), _load(args.data), Path(args.out), EncodeSettings(seed=0), _latent_cfg(results["recipe"], sets))
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(json.dumps(results["grids"]))
        return
    args.test = args.test or args.data
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    run(args)
    print(table(Path(args.out) / "results.json"))


if __name__ == "__main__":
    sys.exit(main())
