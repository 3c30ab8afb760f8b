"""`augmentgan train`: train a class-conditional GAN into a run folder."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from augmentgan.cli.console import err_console, out_console
from augmentgan.cli.data import ChannelsChoice, _keys_opt, _skip_bad_opt, _split_opt
from augmentgan.errors import ConfigError
from augmentgan.gan.presets import preset_names
from augmentgan.overrides import apply_overrides, parse_pairs
from augmentgan.progress import ProgressEvent

_SHORT = {"d_loss": "D", "g_loss": "G", "d_real": "D(x)", "d_fake": "D(G(z))", "gp": "gp", "dragan": "dragan", "r1": "r1", "ortho": "ortho", "score": "quality", "best_score": "best"}
EVAL_EVERY = 1000  # quality evaluations of a fresh `augmentgan train` run (TrainConfig's own default is 0: no monitor)


def _stats(info: dict) -> str:
    parts = [f"{_SHORT[k]} {info[k]:.3g}" for k in _SHORT if k in info]
    if "steps_per_s" in info:
        parts.insert(0, f"{info['steps_per_s']:.3g} steps/s")
    return "  ".join(parts)


class _TrainProgress(Progress):
    """Progress bars with the latest training numbers on a line of their own below them."""

    stats = ""

    def get_renderables(self):  # noqa: ANN201
        yield self.make_tasks_table(self.tasks)
        if self.stats:
            yield Text(self.stats, no_wrap=True, overflow="ellipsis")


class _ProgressView:
    """Draws library progress events (data loading, training) on stderr."""

    def __init__(self, progress: _TrainProgress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=event.total)
        if event.stage == "train" and event.info:
            self.progress.stats = _stats(event.info)
        self.progress.update(self.tasks[event.stage], completed=event.done, total=event.total)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        data: str = typer.Argument(..., help="The dataset: a class folder, .h5/.hdf5, .npz or builtin:NAME."),
        out: Path = typer.Option(..., "--out", help="Run folder, e.g. runs/NAME."),
        preset: Optional[str] = typer.Option(None, "--preset", help=f"GAN preset: {', '.join(preset_names())} (default sngan; with --resume, the run's own)."),
        steps: Optional[int] = typer.Option(None, "--steps", help="Generator steps (default: 20000)."),
        batch: Optional[int] = typer.Option(None, "--batch", help="Batch size (default: 64)."),
        set_: Optional[List[str]] = typer.Option(
            None, "--set", help="Override KEY=VALUE: a GAN key (optim.lr_g=1e-4, model.g_ch=32) or train.KEY (train.real_sampling=uniform). Repeatable."
        ),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
        force: bool = typer.Option(False, "--force", help="Start over in a non-empty --out."),
        device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)."),
        precision: Optional[str] = typer.Option(None, "--precision", help="auto (bf16 where the CPU/GPU has native bf16, else fp32), fp32, bf16 or fp16 (CUDA) (default: auto)."),
        channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Channels-last memory format (default: off)."),
        compile_: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the training step (one-off compile time) (default: off)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random stream (default: 0)."),
        sample_every: Optional[int] = typer.Option(None, "--sample-every", help="Steps between sample grids (default: 1000)."),
        ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Steps between checkpoints (default: 1000)."),
        log_every: Optional[int] = typer.Option(None, "--log-every", help="Steps between metrics lines (default: 50)."),
        eval_every: Optional[int] = typer.Option(
            None, "--eval-every", help=f"Steps between quality evaluations (per-class diversity + KID); the best step is kept as checkpoints/best.pt; 0 = off (default: {EVAL_EVERY})."
        ),
        size: Optional[int] = typer.Option(None, "--size", min=1, help="Load images resized (center crop) to SIZE x SIZE."),
        channels_choice: ChannelsChoice = typer.Option(ChannelsChoice.auto, "--channels", help="Load images with auto, 1 or 3 channels."),
        keys: Optional[str] = _keys_opt,
        split: str = _split_opt,
        skip_bad: bool = _skip_bad_opt,
        unlabeled: Optional[str] = typer.Option(
            None, "--unlabeled", help="Unlabeled images of the same size and channels (a folder without class subfolders, or .h5/.npz[:KEY]) for a semi-supervised D (--preset ssgan)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Train a class-conditional GAN on DATA; checkpoints, sample grids and metrics go to --out.

        Several processes: torchrun --nproc_per_node N -m augmentgan train ... (--batch is the global batch).
        """
        import warnings

        from augmentgan.data import load
        from augmentgan.gan.distributed import is_main_process
        from augmentgan.gan.presets import get_preset
        from augmentgan.gan.trainer import TrainConfig, read_run_config
        from augmentgan.training import train

        pairs = parse_pairs(set_ or [])
        train_pairs = {k.removeprefix("train."): v for k, v in pairs.items() if k.startswith("train.")}
        gan_pairs = {k: v for k, v in pairs.items() if not k.startswith("train.")}
        options = {
            "steps": steps, "batch": batch, "device": device, "precision": precision, "seed": seed,
            "sample_every": sample_every, "ckpt_every": ckpt_every, "log_every": log_every,
            "channels_last": channels_last, "compile": compile_, "eval_every": eval_every,
        }
        given = {k: v for k, v in options.items() if v is not None}
        both = sorted(set(given) & set(train_pairs))
        if both:  # the --set one silently won
            k = both[0]
            raise ConfigError(f"--{k.replace('_', '-')} and --set train.{k} are both given; give one of them")
        if resume and preset is None:
            gan_base, train_base = read_run_config(out)
            gan = apply_overrides(gan_base, gan_pairs)
        else:
            gan = get_preset(preset or "sngan", gan_pairs)
            train_base = TrainConfig(eval_every=EVAL_EVERY)
        cfg = apply_overrides(train_base, {**given, **train_pairs}, where="train option", prefix="train.")

        channels = channels_choice.value
        from augmentgan.data.atomic import check_not_over

        check_not_over(out, [data, unlabeled])  # a run folder over or inside the images would delete them or join them as a class
        if unlabeled is not None and gan.model.d_cond != "kplus1":
            raise ConfigError(
                f"--unlabeled needs a discriminator that can learn from unlabeled images, and this run's has model.d_cond={gan.model.d_cond!r}: "
                "use --preset ssgan (or --set model.d_cond=kplus1), or drop --unlabeled"
            )
        main = is_main_process()  # under torchrun only rank 0 draws progress and prints the result
        if not main:
            warnings.simplefilter("ignore")
        progress = _TrainProgress(
            TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=err_console, disable=not main,
        )
        with _one_writer(out) if main else contextlib.nullcontext(), progress:
            view = _ProgressView(progress) if main else None
            dataset = load(data, channels=channels if channels == "auto" else int(channels), size=size, keys=keys, split=split, skip_bad=skip_bad, callback=view)
            extra = None
            if unlabeled is not None:
                from augmentgan.data.unlabeled import check_unlabeled, read_unlabeled

                extra = check_unlabeled(read_unlabeled(unlabeled, channels=channels if channels == "auto" else int(channels), size=size, callback=view), dataset.image_shape, unlabeled)
            monitor = None
            if cfg.eval_every:
                from augmentgan.evaluate.monitor import quality_monitor

                monitor = quality_monitor(dataset, device=cfg.device, callback=view)
            result = train(dataset, gan, cfg, out, resume=resume, force=force, callback=view, data_spec=_absolute(data), monitor=monitor, unlabeled=extra)
        if not main:
            return

        summary = {
            "run": str(result.run_dir),
            "step": result.step,
            "resumed_from": result.start_step or None,
            "checkpoint": str(result.checkpoint),
            "samples": str(result.samples) if result.samples else None,
            "seconds": round(result.seconds, 2),
            "precision": result.precision,
            "best": result.best,
            "metrics": result.metrics,
            "world_size": result.world_size,
            "state_digests": list(result.state_digests),
        }
        if json_out:
            out_console.print_json(json.dumps(summary))
            return
        table = Table(title="augmentgan train", show_header=False)
        for key in ("run", "step", "resumed_from", "checkpoint", "samples", "seconds", "precision", "world_size"):
            table.add_row(key, str(summary[key]))
        if result.best is not None:
            table.add_row("best", f"step {result.best['step']}, quality score {result.best['score']:.3f} ({result.best['checkpoint']})")
        table.add_row("metrics", _stats(result.metrics))
        out_console.print(table)


@contextlib.contextmanager
def _one_writer(out: Path) -> Iterator[None]:
    """Hold the run folder's lock (``OUT.lock`` beside it, as the cache's runs have) while training: a second
    ``augmentgan train`` into the same --out is refused instead of writing its files among the first's."""
    from augmentgan.cache import entry_lock, in_use, lock_path
    from augmentgan.errors import OutputError, OutputExistsError

    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
        busy = in_use(out)
    except OSError as err:
        raise OutputError(f"cannot write the run folder {out}: {err.strerror or err}; choose a writable folder for --out") from None
    if busy:
        raise OutputExistsError(f"run folder {out} is being written by another augmentgan process (lock {lock_path(out)}); wait for it to finish or choose another --out")
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(entry_lock(out, "run folder"))
        except OSError as err:
            raise OutputError(f"cannot write the run folder {out}: {err.strerror or err}; choose a writable folder for --out") from None
        yield


def _absolute(spec: str) -> str:
    """DATA as recorded in the run: a path made absolute (``generate`` re-reads it from any folder); builtin:NAME as it is."""
    if spec.startswith("builtin:"):
        return spec
    path, key = Path(spec), ""
    if not path.exists() and ":" in spec:  # FILE.npz:KEY
        head, key = spec.rsplit(":", 1)
        path, key = Path(head), f":{key}"
    return f"{path.resolve()}{key}" if path.exists() else spec
