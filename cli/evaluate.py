"""`augmentgan evaluate SYNTH --real DATA` and `augmentgan utility DATA --recipe R`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from augmentgan.cli.console import err_console, out_console
from augmentgan.progress import ProgressEvent


class _Bars:
    """One rich bar per progress stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        name = event.info.get("name") or event.info.get("method")
        label = f"{event.stage}: {name}" if name else event.stage
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(label, total=event.total)
        self.progress.update(self.tasks[event.stage], completed=event.done, total=event.total, description=label)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_QUALITY = (("n_real", "real", 0), ("n_synth", "synth", 0), ("fid", "FID", 3), ("kid", "KID", 4), ("precision", "precision", 3), ("density", "density", 3))
_DIVERSITY = (("recall", "recall", 3), ("coverage", "coverage", 3), ("diversity_ratio", "diversity", 2), ("memorization", "memorized", 3), ("cas_recall", "CAS recall", 3))


def evaluation_tables(result: Any) -> list[Table]:
    """Two tables (fidelity, then diversity/memorization/CAS) so that each fits a terminal."""
    o = result.overall
    # the column's overall cell: the mean of the per-class recalls (balanced accuracy), as the cells above it are recalls
    overall = {**o, "cas_recall": (result.cas or {}).get("balanced_accuracy"), "mode_collapse": ", ".join(o["mode_collapse_classes"]) or "none"}
    tables = []
    for title, columns in ((f"augmentgan evaluate: fidelity ({result.features} features, {result.feature_dim}-D)", _QUALITY),
                           ("augmentgan evaluate: diversity, memorization, CAS", _DIVERSITY + (("mode_collapse", "collapse", 0),))):
        table = Table(title=title)
        table.add_column("class")
        for _, head, _ in columns:
            table.add_column(head, justify="right")
        for name, row in result.per_class.items():
            table.add_row(name, *(_fmt(row.get(key), d) for key, _, d in columns))
        table.add_row("overall", *(_fmt(overall.get(key), d) for key, _, d in columns), style="bold")
        tables.append(table)
    return tables


def register(app: typer.Typer) -> None:
    register_evaluate(app)
    register_utility(app)


def register_evaluate(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        synth: str = typer.Argument(..., help="Synthetic dataset: generate output, an expanded train.h5 (only its non-real rows are evaluated), a folder, .npz... (with --all-rows: every row)."),
        real: str = typer.Option(..., "--real", help="Real dataset to compare with (best a holdout the GAN never saw, e.g. OUT/holdout.h5)."),
        features: str = typer.Option("domain", "--features", help="Feature space: domain (a small CNN trained on --real, offline) or inception (local weights only)."),
        inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Local Inception-v3 weights (torchvision inception_v3_google-*.pth); never downloaded."),
        real_split: str = typer.Option("train", "--real-split", help="NPZ only: the x_<split>/y_<split> arrays of --real."),
        k: int = typer.Option(5, "--k", min=1, help="Neighbours for precision/recall/density/coverage (clamped for tiny classes)."),
        cas: bool = typer.Option(True, "--cas/--no-cas", help="Classification accuracy score: train on synthetic only, test on --real."),
        cas_steps: int = typer.Option(400, "--cas-steps", min=1, help="Optimisation steps of the CAS classifier."),
        classifier_steps: int = typer.Option(400, "--classifier-steps", min=1, help="Training steps of the domain feature classifier (cached per data and settings)."),
        max_samples: int = typer.Option(10000, "--max-samples", min=2, help="Subsample larger sets (seeded) for the metrics."),
        seed: int = typer.Option(0, "--seed", help="Seed of the classifiers and subsampling."),
        device: str = typer.Option("auto", "--device", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps."),
        all_rows: bool = typer.Option(False, "--all-rows", help="Evaluate every row of SYNTH, those marked real too: images of another generator (files that record no provenance read as real), or a real split as a sanity check."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Sample quality of a synthetic set against real data: FID, KID, precision/recall, density/coverage, diversity, memorization, CAS."""
        from augmentgan.data.io import load
        from augmentgan.evaluate.evaluation import evaluate

        from augmentgan.cli.data import reader_error
        from augmentgan.errors import DataError

        try:
            real_data = load(real, split=real_split)
        except DataError as err:  # evaluate has --real-split and no other reader option
            raise reader_error(err, real, "--real", spelled={"split": "--real-split"}) from None
        try:
            synth_data = load(synth)
        except DataError as err:
            raise reader_error(err, synth, "SYNTH") from None
        with _progress() as progress:
            result = evaluate(
                synth_data, real_data, features=features, inception_weights=inception_weights, k=k, cas=cas, cas_steps=cas_steps, classifier_steps=classifier_steps,
                max_samples=max_samples, seed=seed, device=device, callback=_Bars(progress), all_rows=all_rows,
            )
        if json_out:
            out_console.print_json(json.dumps(result.to_dict()))
            return
        for table in evaluation_tables(result):
            out_console.print(table)
        s = result.settings
        out_console.print(
            f"k={s['k']}; memorized = nearest real closer than the {s['memorization_q']} quantile of real-to-real NN distances; "
            f"diversity = synthetic/real mean pairwise distance, collapse below {s['collapse_ratio']}", markup=False,
        )
        if result.cas is not None:
            out_console.print(f"CAS (train on synthetic, test on real): accuracy {result.cas['accuracy']:.3f}, balanced accuracy {result.cas['balanced_accuracy']:.3f}")
        for note in result.notes:
            out_console.print(f"note: {note}", markup=False)


def utility_tables(result: Any) -> list[Table]:
    """Summary (one row per method, winner marked) and recall per class."""
    scored = "holdout scores" if result.settings.get("scored_on", "holdout") == "holdout" else f"test-set scores ({result.settings['test_size']} images)"
    k = result.settings.get("classifiers", 1)
    each = f" ({k} classifiers each, averaged)" if k > 1 else ""
    summary = Table(title=f"augmentgan utility: {scored}, mean ± std over {len(result.seeds)} seed(s){each}")
    for column in ("method", "macro-F1", "balanced acc.", "minority recall", "train size"):
        summary.add_column(column, justify="left" if column == "method" else "right")
    for method, entry in result.methods.items():
        cells = [f"{entry[m]['mean']:.3f} ± {entry[m]['std']:.3f}" for m in ("macro_f1", "balanced_accuracy", "minority_recall")]
        size = result.sizes[method]
        label = f"{method} (winner)" if method == result.winner else method
        summary.add_row(label, *cells, str(size[0]) if len(set(size)) == 1 else f"{min(size)}-{max(size)}", style="bold green" if method == result.winner else None)
    per_class = Table(title="recall per class (mean over seeds)")
    per_class.add_column("class")
    for method in result.methods:
        per_class.add_column(method, justify="right")
    for name in result.class_names:
        minority = " *" if name in result.minority_classes else ""
        per_class.add_row(name + minority, *(_fmt(result.methods[m]["per_class_recall"].get(name, {}).get("mean")) for m in result.methods))
    return [summary, per_class]


def register_utility(app: typer.Typer) -> None:
    @app.command("utility")
    def utility_cmd(
        data: str = typer.Argument(..., help="Real dataset (folder, .h5, .npz, builtin:digits-lt)."),
        recipe: Path = typer.Option(..., "--recipe", help="Recipe whose expansion is benchmarked (its data/holdout/output sections are not used)."),
        seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds to average over: stratified splits (none with --test), method and classifier seeds."),
        holdout: Optional[float] = typer.Option(None, "--holdout", min=0.01, max=0.99, help="Share of every class held out for scoring (default 0.2; not with --test)."),
        test: Optional[str] = typer.Option(None, "--test", help="Score on this dataset (same classes and image shape) instead of a holdout; every seed trains on all of DATA."),
        test_split: str = typer.Option("test", "--test-split", help="NPZ only: the x_<split>/y_<split> arrays of --test."),
        steps: int = typer.Option(400, "--steps", min=1, help="Optimisation steps of the classifier, the same for every method."),
        classifiers: int = typer.Option(1, "--classifiers", min=1, help="Classifiers trained per method and seed (different seeds, the same for every method), scores averaged: less classifier noise in the comparison, no extra GAN training."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe key, e.g. --set gan.steps=300; repeatable."),
        method: Optional[List[str]] = typer.Option(None, "--method", help="Only these methods (none, ros, classical, smote, recipe); repeatable."),
        split: str = typer.Option("train", "--split", help="NPZ only: the x_<split>/y_<split> arrays of DATA."),
        device: str = typer.Option("auto", "--device", help="Device of the classifiers: auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps (the GAN uses the recipe's gan.device)."),
        report_path: Optional[Path] = typer.Option(None, "--report", help="Also write the tables as a self-contained HTML file."),
        force: bool = typer.Option(False, "--force", help="Replace an existing --report file."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Does the recipe help a classifier? Compare it with none / random oversampling / classical / SMOTE on held-out real data or a --test set."""
        from augmentgan.data.atomic import check_output
        from augmentgan.data.io import load
        from augmentgan.errors import ConfigError, DataError
        from augmentgan.utility import METHODS, utility

        if test is not None and holdout is not None:
            raise ConfigError("--holdout with --test: every seed trains on all of DATA and scores on --test; drop --holdout (or --test to score on a holdout)")
        if report_path is not None:  # before any training: an existing file, a folder, the recipe or the data itself
            check_output(report_path, force=force, inputs=[data, test, recipe])
            if report_path.is_dir():
                raise ConfigError(f"--report {report_path} is a folder; give an HTML file path, e.g. {report_path / 'utility.html'}")
        from augmentgan.cli.data import reader_error

        try:  # utility reads DATA with --split and --test with --test-split, and has no other reader option
            real = load(data, split=split)
        except DataError as err:
            raise reader_error(err, data, "DATA", frozenset({"split"})) from None
        test_data = None
        if test is not None:
            try:
                test_data = load(test, split=test_split)
            except DataError as err:
                raise reader_error(err, test, "--test", spelled={"split": "--test-split"}) from None
        with _progress() as progress:
            result = utility(real, recipe, seeds=seeds, holdout=0.2 if holdout is None else holdout, steps=steps, overrides=set_ or [], methods=method or METHODS,
                             device=device, callback=_Bars(progress), test=test_data, data_spec=data, classifiers=classifiers)
        if report_path is not None:
            from augmentgan.report import write_utility_report

            scored_on = f", scored on {test}" if test is not None else ""
            write_utility_report(report_path, result, title=f"augmentgan utility: {data} with {recipe}{scored_on}", force=force)
        if json_out:
            out_console.print_json(json.dumps(result.to_dict()))
            return
        for table in utility_tables(result):
            out_console.print(table)
        line = result.comparison()
        if line is not None:
            out_console.print(line, markup=False)
        for seed, decision in enumerate(result.mix_decisions.get("recipe", []), start=1):
            out_console.print(f"recipe, seed {seed}: plan.mix auto chose {decision['mix']} ({decision['why'][-1] if decision['why'] else ''})", markup=False)
        out_console.print("* minority classes (the third with the fewest images); classifier batches drawn uniformly over images", markup=False)
        for note in result.notes:
            out_console.print(f"note: {note}", markup=False)
