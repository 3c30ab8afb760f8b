"""Self-contained HTML reports: ``report.html`` of an expansion, of a training run, of a utility benchmark.

Every image is an inline base64 PNG (grids with torchvision's ``make_grid`` and PIL, plots with
matplotlib's object API, no pyplot state); CSS is inline; no script and no external resource, so a
report opens offline and can be mailed as one file.

Expansion report sections: class balance before and after (stacked bars by source), per-class grids
of real vs synthetic samples (one row per source), nearest-real-neighbour pairs of the most
suspicious synthetic samples, the truncation sweep of the GAN, its loss curves, and the metrics and
utility tables when given. "Suspicious" is measured in pixel space, not with a learned feature: the
Euclidean distance of a gan/latent-smote/classical/smote sample to the nearest real training image of its class,
divided by the class's median real-to-real nearest-neighbour distance (below 1: closer to a real
image than real images are to each other); copies are left out, they are copies by design.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from augmentgan.data.atomic import staged_output, write_failure
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source
from augmentgan.gan.checkpoint import GeneratorCheckpoint, GeneratorSource, checkpoint_file, checkpoint_target, open_generator, read_generator
from augmentgan.gan.truncation import class_latents

__all__ = ["write_expansion_report", "write_run_report", "write_utility_report", "REPORT_NAME"]

REPORT_NAME = "report.html"
TRUNCATIONS: tuple[Optional[float], ...] = (None, 2.0, 1.0, 0.5)
_PER_ROW = 8
_SUSPICIOUS = 8
_SOURCE_COLORS = {"real": "#4c72b0", "gan": "#dd8452", "classical": "#55a868", "smote": "#c44e52", "copy": "#8172b3", "latent-smote": "#937860", "pseudo": "#da8bc3"}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{image-rendering:pixelated;max-width:100%}
.grid td{vertical-align:middle}.note{color:#666;font-size:.9em}.pair{display:inline-block;margin:.3em;text-align:center;font-size:.8em}
.win{font-weight:bold;background:#e8f5e9}
"""


# --- images ------------------------------------------------------------------------------------
def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str, width: Optional[int] = None) -> str:
    """An inline image; ``width`` (px) scales it, pixels kept sharp (smaller progressive-growing grids)."""
    style = f' style="width:{width}px;image-rendering:pixelated"' if width else ""
    return f'<img src="{_data_uri(png)}" alt="{html.escape(alt)}"{style}>'


def grid_png(images: np.ndarray, nrow: int = _PER_ROW, min_tile: int = 48) -> bytes:
    """uint8 (N, H, W, C) images as one PNG grid; small images are scaled up (nearest) to ``min_tile`` px."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    grid = make_grid(x, nrow=nrow, padding=1, pad_value=255).permute(1, 2, 0).numpy()
    scale = max(1, math.ceil(min_tile / max(images.shape[1], 1)))
    img = Image.fromarray(np.ascontiguousarray(grid))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _figure_png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def balance_png(before: np.ndarray, after: np.ndarray, class_names: Sequence[str]) -> bytes:
    """Bars: real images per class before, and the expanded counts stacked by source after."""
    fig = _new_figure(max(6.0, 0.6 * len(class_names) + 2), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(class_names))
    ax.bar(x - 0.2, before, width=0.4, color="#999999", label="before (real)")
    bottom = np.zeros(len(class_names))
    for s, name in enumerate(SOURCE_NAMES):
        if after[:, s].any():
            ax.bar(x + 0.2, after[:, s], width=0.4, bottom=bottom, color=_SOURCE_COLORS[name], label=f"after: {name}")
            bottom += after[:, s]
    ax.set_xticks(x, [str(c) for c in class_names], rotation=45 if len(class_names) > 12 else 0)
    ax.set_ylabel("images")
    ax.legend(fontsize=8, ncols=2)
    return _figure_png(fig)


def loss_png(rows: list[dict[str, Any]]) -> Optional[bytes]:
    """Loss curves of a run's ``metrics.jsonl`` rows (every logged quantity except time and lr)."""
    skip = {"step", "time", "elapsed_s", "steps_per_s", "lr_g", "lr_d", "eval_s"}
    keys = sorted({k for r in rows for k, v in r.items() if k not in skip and not k.startswith("eval/") and isinstance(v, (int, float))})
    if not rows or not keys:
        return None
    fig = _new_figure(8, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=key)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _figure_png(fig)


def quality_png(rows: list[dict[str, Any]]) -> Optional[bytes]:
    """Quality curves of a run's evaluation rows (``eval/...`` keys of metrics.jsonl): score, diversity, KID."""
    rows = [r for r in rows if "eval/score" in r]
    if not rows:
        return None
    fig = _new_figure(8, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    steps = [r["step"] for r in rows]
    for key, label in (("eval/score", "score"), ("eval/diversity_mean", "diversity ratio, mean"), ("eval/diversity_min", "diversity ratio, worst class")):
        ax.plot(steps, [r.get(key) if r.get(key) is not None else math.nan for r in rows], marker=".", label=label)
    ax.axhline(0.5, color="#c44e52", linestyle=":", linewidth=1, label="collapse flag (0.5)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    kid = ax.twinx()
    kid.plot(steps, [r.get("eval/kid") if r.get("eval/kid") is not None else math.nan for r in rows], color="#8172b3", linestyle="--", label="KID (right axis)")
    kid.set_ylabel("KID")
    handles = ax.get_legend_handles_labels()[0] + kid.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8)
    return _figure_png(fig)


def rarest_first(counts: Sequence[int]) -> list[int]:
    """Class indices ordered by their real image counts, smallest first (ties: class order)."""
    return [int(c) for c in np.argsort(np.asarray(counts), kind="stable")]


# --- html ----------------------------------------------------------------------------------------
def _page(title: str, sections: Iterable[str]) -> str:
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], highlight: Optional[int] = None) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    out = [f"<table><tr>{head}</tr>"]
    for r, row in enumerate(rows):
        cls = ' class="win"' if r == highlight else ""
        cells = "".join(f'<td class="{"l" if i == 0 else ""}">{html.escape(_fmt(v))}</td>' for i, v in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    return "".join(out) + "</table>"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 0.01 and value != 0 else f"{value:.3f}"
    return str(value)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
    return rows


def metrics_section(result: Any) -> str:
    """The evaluation metrics (an :class:`~augmentgan.evaluate.evaluation.EvaluationResult`) as a table."""
    keys = ("n_real", "n_synth", "fid", "kid", "precision", "recall", "density", "coverage", "diversity_ratio", "memorization", "mode_collapse")
    rows = [[name, *(row.get(k) for k in keys)] for name, row in result.per_class.items()]
    o = result.overall
    rows.append(["overall", *(o.get(k) for k in keys[:-1]), ", ".join(o["mode_collapse_classes"]) or "none"])
    s = result.settings
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    return (f"<h2>Metrics ({html.escape(result.features)} features)</h2>" + _table(["class", *keys], rows)
            + f'<p class="note">k={s["k"]}; memorization: nearest real closer than the {s["memorization_q"]} quantile of real-to-real '
            f'nearest-neighbour distances; mode collapse: diversity ratio below {s["collapse_ratio"]}.</p>' + notes)


def utility_section(result: Any) -> str:
    """The utility benchmark (a :class:`~augmentgan.utility.UtilityResult`) as two tables."""
    methods = list(result.methods)
    rows = [[m + (" (winner)" if m == result.winner else ""),
             *(f"{result.methods[m][k]['mean']:.3f} ± {result.methods[m][k]['std']:.3f}" for k in ("macro_f1", "balanced_accuracy", "minority_recall"))]
            for m in methods]
    per_class = [[c + (" *" if c in result.minority_classes else ""), *(result.methods[m]["per_class_recall"].get(c, {}).get("mean") for m in methods)]
                 for c in result.class_names]
    scored = "test-set" if result.settings.get("scored_on") == "test" else "holdout"
    line = result.comparison()
    verdict = f'<p class="note">{html.escape(line)}</p>' if line else ""
    k = result.settings.get("classifiers", 1)
    each = f", {k} classifiers each" if k > 1 else ""
    return (f"<h2>Utility ({scored} scores over {len(result.seeds)} seed(s){each})</h2>"
            + _table(["method", "macro-F1", "balanced accuracy", "minority recall"], rows, highlight=methods.index(result.winner)) + verdict
            + "<h3>Recall per class</h3>" + _table(["class", *methods], per_class)
            + '<p class="note">* minority classes. Same classifier and steps for every method; batches drawn uniformly over images.</p>')


def _class_grids(real: LabeledImages, expanded: LabeledImages) -> str:
    rows = ['<h2>Real vs synthetic, per class</h2><p class="note">rarest class first (by real training images)</p>'
            '<table class="grid"><tr><th class="l">class</th><th class="l">source</th><th class="l">samples</th></tr>']
    counts = real.class_counts()
    for c in rarest_first(counts):
        name = expanded.class_names[c]
        # the first row indices only: a boolean mask would copy all of a large class's images for one row of them
        groups = [("real", real.images[np.flatnonzero(real.labels == c)[:_PER_ROW]])]
        for s in (Source.gan, Source.latent_smote, Source.classical, Source.smote, Source.copy, Source.pseudo):
            groups.append((SOURCE_NAMES[s.value], expanded.images[np.flatnonzero((expanded.labels == c) & (expanded.source == s.value))[:_PER_ROW]]))
        shown = [(label, imgs) for label, imgs in groups if len(imgs)]
        for i, (label, imgs) in enumerate(shown):
            head = f'<td class="l" rowspan="{len(shown)}">{html.escape(name)}<br>({int(counts[c])} real)</td>' if i == 0 else ""
            rows.append(f'<tr>{head}<td class="l">{label}</td><td class="l">{_img(grid_png(imgs), f"{name} {label}")}</td></tr>')
    return "".join(rows) + "</table>"


NEAREST_CHUNK = 128
"""Rows of each side of the nearest-real search read at once (as float32; torch.cdist copies both): about
4 x 2 x 128 x the pixels of one image, 13 MB at 64x64 RGB, whatever the class sizes (256 held 49 MiB at
the peak of a 64x64 expansion, memray; the same distances, computed in more, smaller blocks)."""


def _float_rows(images: Any, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images[rows].reshape(len(rows), -1).astype(np.float32))


def _nearest(images: Any, rows: np.ndarray, real: Any, real_rows: np.ndarray, *, own: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, position in ``real_rows``) of the nearest of ``real[real_rows]`` to each of
    ``images[rows]`` in pixel space. Both sides are read :data:`NEAREST_CHUNK` rows at a time as
    float32 (never a float copy of a whole class, nor the full distance matrix); ties go to the
    first real row, as one ``min`` over the whole matrix would give. ``own``: ``rows`` are
    ``real_rows`` themselves, and a row is not its own neighbour."""
    dist, index = [], []
    for start in range(0, len(rows), NEAREST_CHUNK):
        x = _float_rows(images, rows[start:start + NEAREST_CHUNK])
        best = torch.full((len(x),), float("inf"))
        at = torch.zeros(len(x), dtype=torch.long)
        for r0 in range(0, len(real_rows), NEAREST_CHUNK):
            d = torch.cdist(x, _float_rows(real, real_rows[r0:r0 + NEAREST_CHUNK]))
            lo, hi = max(start, r0), min(start + len(x), r0 + d.shape[1])
            if own and lo < hi:  # query i is real position start + i
                i = torch.arange(lo, hi)
                d[i - start, i - r0] = float("inf")
            v, j = d.min(dim=1)
            closer = v < best
            best[closer], at[closer] = v[closer], j[closer] + r0
        dist.append(best)
        index.append(at)
    return torch.cat(dist), torch.cat(index)


def suspicious_pairs(real: LabeledImages, synth: LabeledImages, n: int = _SUSPICIOUS) -> list[tuple[int, int, float]]:
    """(synthetic index, nearest real index, distance ratio) of the ``n`` lowest ratios (pixel space)."""
    out: list[tuple[int, int, float]] = []
    for c in range(real.num_classes):
        r_idx, s_idx = np.flatnonzero(real.labels == c), np.flatnonzero(synth.labels == c)
        if len(r_idx) < 2 or not len(s_idx):
            continue
        scale = max(float(_nearest(real.images, r_idx, real.images, r_idx, own=True)[0].median()), 1e-6)
        d, j = _nearest(synth.images, s_idx, real.images, r_idx)
        out += [(int(s_idx[i]), int(r_idx[int(j[i])]), float(d[i]) / scale) for i in range(len(s_idx))]
    return sorted(out, key=lambda t: t[2])[:n]


def _suspicious_section(real: LabeledImages, expanded: LabeledImages) -> str:
    synth = expanded[np.flatnonzero(np.isin(expanded.source, [Source.gan.value, Source.classical.value, Source.smote.value, Source.latent_smote.value]))]
    pairs = suspicious_pairs(real, synth)
    head = ("<h2>Most suspicious synthetic samples and their nearest real images</h2>"
            '<p class="note">pixel-space distance to the nearest real training image of the class, as a multiple of the '
            "class's median real-to-real nearest-neighbour distance (below 1: closer than real images are to each other).</p>")
    if not pairs:
        return head + '<p class="note">no gan, classical or smote samples.</p>'
    cells = []
    for s_i, r_i, ratio in pairs:
        png = grid_png(np.stack([synth.images[s_i], real.images[r_i]]), nrow=2)
        label = f"{expanded.class_names[synth.labels[s_i]]}, {SOURCE_NAMES[synth.source[s_i]]}: ratio {ratio:.2f}"
        cells.append(f'<div class="pair">{_img(png, label)}<br>{html.escape(label)}<br>synthetic | nearest real</div>')
    return head + "".join(cells)


def _latent_smote_section(real: LabeledImages, expanded: LabeledImages, parent2: Optional[np.ndarray], per_class: int = 4) -> str:
    """latent-smote samples between their two parents (parent | sample | second parent), rarest class first."""
    rows = np.flatnonzero(expanded.source == Source.latent_smote.value)
    if not len(rows) or parent2 is None:
        return ""
    cells = []
    for c in rarest_first(real.class_counts()):
        for i in rows[expanded.labels[rows] == c][:per_class]:
            p1, p2 = int(expanded.parent[i]), int(parent2[i])
            blank = np.zeros_like(expanded.images[i])
            trio = [expanded.images[p1] if p1 >= 0 else blank, expanded.images[i], expanded.images[p2] if p2 >= 0 else blank]
            label = f"{expanded.class_names[c]}: rows {p1}, {i}, {p2}"
            cells.append(f'<div class="pair">{_img(grid_png(np.stack(trio), nrow=3), label)}<br>{html.escape(label)}</div>')
    return ("<h2>latent-smote samples between their parents</h2>"
            '<p class="note">first parent | sample (SMOTE between the two parents\' GAN latent codes, or with latent_smote.partners all a '
            "small step from the first parent's code towards the second's, an image of another class; with latent_smote.anchor residual, "
            "the default, the first parent plus the change the generator draws from its code to the new one, else the generator's "
            "decoding of the new code) | second parent; rarest class first.</p>" + "".join(cells))


def _pseudo_section(expanded: LabeledImages, confidence: Optional[np.ndarray], threshold: Optional[float]) -> str:
    """Pseudo rows (unlabeled real images labeled by the GAN's K+1 discriminator): per class, how many and how confident."""
    rows = np.flatnonzero(expanded.source == Source.pseudo.value)
    if not len(rows):
        return ""
    table = []
    for c, name in enumerate(expanded.class_names):
        mine = rows[expanded.labels[rows] == c]
        conf = confidence[mine] if confidence is not None and len(mine) else None
        table.append([name, len(mine), None if conf is None else float(conf.min()), None if conf is None else float(conf.mean())])
    bar = f" at confidence >= {threshold:g}" if threshold is not None else ""
    return ("<h2>Pseudo-labeled images</h2>"
            f'<p class="note">{len(rows)} unlabeled real images whose labels come from the GAN\'s K+1 discriminator{html.escape(bar)}, not from a person '
            "(source pseudo; their confidence is extra/confidence in HDF5, the confidence column of manifest.csv). They are counted apart from the real "
            "images and never enter the holdout.</p>"
            + _table(["class", "pseudo images", "lowest confidence", "mean confidence"], table))


def truncation_rows(run: GeneratorSource, per_class: int = 4, seed: int = 0, checkpoint: str = "auto") -> tuple[Any, list[tuple[int, bytes]]]:
    """The GAN's samples at each threshold of :data:`TRUNCATIONS`, one PNG row per class, rarest class first.

    Returns the checkpoint's :class:`~augmentgan.gan.checkpoint.GeneratorInfo` (``checkpoint``: the one
    generation uses by default, ``best.pt`` when the run kept one; or the
    :class:`~augmentgan.gan.checkpoint.GeneratorCheckpoint` given, read already) and
    ``[(class index, png)]`` ordered by the real class counts the GAN was trained on, smallest first.
    """
    G, info = open_generator(run, checkpoint).generator(device="cpu")
    rows = []
    with torch.no_grad():
        for c in rarest_first(info.class_counts):  # one generator call per class, all thresholds at once
            z = torch.cat([class_latents(seed, c, 0, per_class, G.z_dim, t) for t in TRUNCATIONS])
            x = G(z, torch.full((len(z),), c, dtype=torch.long)).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            rows.append((c, grid_png(x, nrow=per_class * len(TRUNCATIONS), min_tile=32)))
    return info, rows


def _truncation_section(run: Optional[GeneratorSource]) -> str:
    if run is None:
        return ""
    info, rows = truncation_rows(run)
    labels = ", ".join("none" if t is None else str(t) for t in TRUNCATIONS)
    which = "best.pt (the best quality score)" if info.checkpoint.name == "best.pt" else info.checkpoint.name
    table = ['<table class="grid"><tr><th class="l">class (real images)</th><th class="l">samples</th></tr>']
    for c, png in rows:
        name = info.class_names[c]
        table.append(f'<tr><td class="l">{html.escape(name)} ({int(info.class_counts[c])})</td><td class="l">{_img(png, f"{name} truncation sweep")}</td></tr>')
    return (f"<h2>Truncation sweep</h2><p class=\"note\">{html.escape(which)}, step {info.step}; one row per class, rarest class first; "
            f"groups of 4 columns at thresholds {labels} (the same latents, resampled inside the threshold).</p>" + "".join(table) + "</table>")


def _quality_section(run: Optional[Path]) -> str:
    if run is None:
        return ""
    rows = _read_metrics(run / "metrics.jsonl")
    png = quality_png(rows)
    if png is None:
        return ""
    evals = [r for r in rows if "eval/score" in r and r["eval/score"] is not None]
    best = max(evals, key=lambda r: r["eval/score"]) if evals else None
    note = (f'<p class="note">best score {best["eval/score"]:.3f} at step {best["step"]} (kept as checkpoints/best.pt); score = mean over classes '
            "of min(diversity ratio, 1) x fidelity, fidelity = clip(1 - KID / KID of another class's real images, 0, 1), "
            "in the domain classifier's features.</p>") if best else ""
    return "<h2>Sample quality during training</h2>" + _img(png, "quality curves") + note


def _loss_section(run: Optional[Path]) -> str:
    if run is None:
        return ""
    png = loss_png(_read_metrics(run / "metrics.jsonl"))
    return "<h2>Loss curves</h2>" + (_img(png, "loss curves") if png else '<p class="note">no metrics.jsonl rows.</p>')


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# --- the reports ---------------------------------------------------------------------------------
def write_expansion_report(
    out_dir: str | Path,
    *,
    real: LabeledImages,
    expanded: LabeledImages,
    gan_run: Optional[str | Path] = None,
    metrics: Any = None,
    utility: Any = None,
    notes: Sequence[str] = (),
    title: str = "augmentgan expansion report",
    mix_decision: Any = None,
    parent2: Optional[np.ndarray] = None,
    generator: Optional[GeneratorCheckpoint] = None,
    confidence: Optional[np.ndarray] = None,
    pseudo_min_confidence: Optional[float] = None,
) -> Path:
    """Write ``out_dir/report.html`` for an expansion of ``real`` (the real training rows) into ``expanded``
    (``parent2``: the second parents of latent-smote rows, ``extra/parent2`` of the output; ``confidence``:
    the K+1 posteriors of pseudo rows, ``extra/confidence``, labeled at ``pseudo_min_confidence`` or more).

    The truncation sweep shows the run's default checkpoint (``best.pt`` when kept, else
    ``final.pt``); ``generator``, when it is that checkpoint read already, is used instead of
    reading the file again."""
    run = Path(gan_run) if gan_run is not None else None
    sweep: Optional[GeneratorSource] = run
    if run is not None and generator is not None and generator.path == checkpoint_file(*checkpoint_target(run, "auto")):
        sweep = generator
    before = real.class_counts()
    after = expanded.counts_by_class_and_source()
    totals = expanded.source_counts()
    summary = ", ".join(f"{k}: {v}" for k, v in totals.items() if v)
    sections = [
        f"<p>{len(real)} real training images -> {len(expanded)} images ({html.escape(summary)}).</p>",
        "".join(f'<p class="note">note: {html.escape(n)}</p>' for n in notes),
        "<h2>Class balance before and after</h2>" + _img(balance_png(before, after, real.class_names), "class balance"),
        _table(["class", "before", *SOURCE_NAMES, "after"],
               [[name, int(before[c]), *(int(v) for v in after[c]), int(after[c].sum())] for c, name in enumerate(real.class_names)]),
        mix_section(mix_decision) if mix_decision is not None else "",
        _class_grids(real, expanded),
        _suspicious_section(real, expanded),
        _latent_smote_section(real, expanded, parent2),
        _pseudo_section(expanded, confidence, pseudo_min_confidence),
        _truncation_section(sweep),
        _loss_section(run),
    ]
    if metrics is not None:
        sections.append(metrics_section(metrics))
    if utility is not None:
        sections.append(utility_section(utility))
    return _atomic_write(Path(out_dir) / REPORT_NAME, _page(title, sections))


def mix_section(decision: Any) -> str:
    """``plan.mix: auto``: the candidates with their cross-validated scores, the choice and the GAN checks."""
    d = decision.to_dict()
    winner = d["winner"]
    rows = [[c["name"], ", ".join(f"{s} {v:g}" for s, v in c["mix"].items()), c["macro_f1"]["mean"], c["macro_f1"]["std"],
             " ".join(f"{v:.3f}" for v in c["macro_f1"]["folds"])] for c in d["candidates"]]
    best = next((i for i, c in enumerate(d["candidates"]) if c["name"] == winner), None)
    proxy = d["proxy"]
    on = proxy.get("scored_on", "cross-validation")
    how = (
        f'Each candidate expanded the training part of {proxy["folds"]} stratified folds; the evaluation CNN ({proxy["steps"]} steps) '
        f'trained on it was scored by macro-F1 on the fold\'s held-out real images.' if on == "cross-validation" else
        f'Each candidate expanded {"the training images outside the held-out split" if on.startswith("plan.auto.split") else "all training images"}; '
        f'{proxy["folds"]} evaluation CNNs ({proxy["steps"]} steps, one seed each) trained on it were scored by macro-F1 on {html.escape(on)}.'
    )
    parts = [
        "<h2>How the mix was chosen (plan.mix: auto)</h2>",
        f'<p>Chosen: <b>{html.escape(", ".join(f"{s} {v:g}" for s, v in d["mix"].items()))}</b>. {how}</p>',
        _table(["candidate", "shares", "macro-F1 mean", "std", "per fold" if on == "cross-validation" else "per seed"], rows, highlight=best) if rows else "",
        "".join(f'<p class="note">{html.escape(w)}</p>' for w in d["why"] + d["notes"]),
    ]
    if d["gan_checks"]:
        parts.append("<h3>GAN samples checked per class</h3>" + _table(
            ["class", "pool", "recognized", "realistic", "diversity ratio", "used", "why not"],
            [[k, v["pool"], v["recognized"], v["realistic"], v["diversity_ratio"], "yes" if v["usable"] else "no", v["reason"] or ""] for k, v in d["gan_checks"].items()],
        ))
    return "".join(parts)


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for a training run: loss and quality curves, the latest sample grids, the truncation sweep."""
    run = Path(run_dir)
    sections = [_loss_section(run), _quality_section(run)]
    generator, info = None, None
    if (run / "checkpoints" / "final.pt").is_file():  # a finished run: read its default checkpoint once, for the names and the sweep
        generator = read_generator(run, "auto")
        info = generator.info()
    grids = sorted((run / "samples").glob("step-*.png"))[-3:]
    if grids:
        order = ""
        if info is not None:
            order = ": " + ", ".join(f"{info.class_names[c]} ({info.class_counts[c]})" for c in rarest_first(info.class_counts))
        sections.append(f'<h2>Samples (fixed noise, one row per class)</h2><p class="note">rows from the top, rarest class first{html.escape(order)}</p>')
        pngs = [p.read_bytes() for p in grids]
        widths = [Image.open(io.BytesIO(png)).width for png in pngs]  # progressive growing: earlier grids are smaller
        sections += [
            f"<h3>{html.escape(p.stem)}</h3>" + _img(png, p.stem, max(widths) if w < max(widths) else None)
            for p, png, w in zip(grids, pngs, widths)
        ]
    if generator is not None:
        sections.append(_truncation_section(generator))
    return _atomic_write(run / REPORT_NAME, _page(f"augmentgan training run {run.name}", sections))


def write_utility_report(path: str | Path, result: Any, *, title: str = "augmentgan utility", force: bool = False) -> Path:
    """Write the utility tables as one HTML file at ``path`` (staged: OutputExistsError when it exists and not ``force``,
    OutputError when it cannot be written; nothing is left under ``path`` on an error)."""
    page = _page(title, [utility_section(result)])
    try:
        with staged_output(path, force=force) as tmp:
            Path(tmp).write_text(page, encoding="utf-8")
    except OSError as err:
        raise write_failure(path, err) from None
    return Path(path)
