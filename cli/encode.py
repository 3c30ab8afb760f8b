"""`augmentgan encode RUN DATA --out codes.h5`: a latent code and a reconstruction error for every real image."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from augmentgan.cli.console import out_console
from augmentgan.cli.data import ChannelsChoice, _channels_opt, _keys_opt, _size_opt, _split_opt
from augmentgan.cli.evaluate import _Bars, _progress


class EncoderChoice(str, enum.Enum):
    fitted = "fitted"
    joint = "joint"


def register(app: typer.Typer) -> None:
    @app.command("encode")
    def encode_cmd(
        run: str = typer.Argument(..., help="Run folder of `augmentgan train` (or one of its .pt checkpoints)."),
        data: str = typer.Argument(..., help="Real images to encode (the run's classes and image size): a folder, .h5, .npz or builtin:NAME."),
        out: Path = typer.Option(..., "--out", help="Output HDF5 file of codes; a PNG of real images beside their reconstructions (worst first) goes beside it."),
        size: Optional[int] = _size_opt,
        channels: ChannelsChoice = _channels_opt,
        split: str = _split_opt,
        keys: Optional[str] = _keys_opt,
        checkpoint: str = typer.Option("auto", "--checkpoint", help="auto (best when the run kept one, else final), best, final, last, a step number, or a .pt file."),
        no_ema: bool = typer.Option(False, "--no-ema", help="Invert the raw generator instead of its EMA copy."),
        encoder: EncoderChoice = typer.Option(
            EncoderChoice.fitted, "--encoder", help="Initial codes from: fitted = an encoder fitted to the generator now (--encoder-steps); "
            "joint = the encoder trained with the GAN (a run trained with bigan.weight>0, BiGAN).",
        ),
        encoder_steps: int = typer.Option(300, "--encoder-steps", min=0, help="Training steps of the fitted encoder on the generator's own (image, code) pairs (unused with the joint encoder)."),
        refine_steps: int = typer.Option(50, "--refine-steps", min=0, help="Per-image latent optimisation steps after the encoder's guess (0: encoder only)."),
        feature_weight: float = typer.Option(1.0, "--feature-weight", min=0.0, help="Weight of the domain-feature distance in the reconstruction loss (pixels weigh 1)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the encoder's training."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
        no_png: bool = typer.Option(False, "--no-png", help="Do not write OUT-reconstructions.png."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output (and its PNG)."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Invert a trained generator: encode every image (the run's joint encoder, or one fitted to G), refine its code, write codes and errors."""
        from augmentgan.data import load
        from augmentgan.cli.data import reader_error
        from augmentgan.data.atomic import check_output
        from augmentgan.errors import DataError
        from augmentgan.generate.encode import EncodeSettings, encode, report_path

        check_output(out, force=force, inputs=[run, data])  # before loading anything
        if not no_png:
            check_output(report_path(out), force=force, inputs=[run, data])
        settings = EncodeSettings(encoder_steps=encoder_steps, refine_steps=refine_steps, feature_weight=feature_weight, seed=seed, encoder=encoder.value)
        try:
            images = load(data, channels=channels.value if channels.value == "auto" else int(channels.value), size=size, split=split, keys=keys)
        except DataError as err:  # encode has no --skip-bad
            raise reader_error(err, data, "DATA", frozenset({"size", "split", "keys", "channels"})) from None
        with _progress() as progress:
            result = encode(run, images, out, checkpoint=checkpoint, ema=not no_ema, settings=settings, device=device, force=force,
                            png=not no_png, callback=_Bars(progress))
        if json_out:
            out_console.print_json(json.dumps(result.to_dict()))
            return
        summary = result.to_dict()
        table = Table(title=f"augmentgan encode: {summary['images']} images -> {result.out} (z_dim {summary['z_dim']}, {summary['encoder']} encoder)")
        for column in ("class", "images", "error (mean)", "error (median)", "encoder only", "pixel RMSE", "feature dist"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, row in summary["per_class"].items():
            table.add_row(name, str(row["images"]), f"{row['error_mean']:.4f}", f"{row['error_median']:.4f}", f"{row['error_encoder_mean']:.4f}",
                          f"{row['pixel_rmse']:.1f}", f"{row['feature_distance']:.3f}")
        out_console.print(table)
        if result.report is not None:
            out_console.print(f"real beside reconstructed, worst first: {result.report}")
