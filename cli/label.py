"""`augmentgan label RUN DATA --out pseudo.h5 --min-confidence P`: pseudo-labels from a semi-supervised GAN's K+1 discriminator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from augmentgan.cli.console import out_console


def register(app: typer.Typer) -> None:
    @app.command("label")
    def label_cmd(
        run: str = typer.Argument(..., help="Run folder of `augmentgan train --preset ssgan` (or one of its .pt checkpoints)."),
        data: str = typer.Argument(..., help="Unlabeled images of the run's size and channels: a folder without class subfolders, or .h5/.npz[:KEY]."),
        out: Path = typer.Option(..., "--out", help="Output HDF5: the confident images with their labels, source pseudo, and extra/confidence."),
        min_confidence: float = typer.Option(0.9, "--min-confidence", min=0.0, max=1.0, help="Keep images whose label's K+1 posterior is at least P."),
        size: Optional[int] = typer.Option(None, "--size", min=1, help="Center-crop and resize DATA to SIZE x SIZE, as `train --size` read the run's images."),
        checkpoint: str = typer.Option("final", "--checkpoint", help="auto, best, final, last or a step number (with a run folder)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Label unlabeled images with a K+1 discriminator; only confident ones are written (source pseudo, with their confidence)."""
        import numpy as np

        from augmentgan.data.atomic import check_output
        from augmentgan.data.hdf5 import write_hdf5
        from augmentgan.data.types import LabeledImages, Source
        from augmentgan.data.unlabeled import check_unlabeled, read_unlabeled
        from augmentgan.errors import DataError
        from augmentgan.gan.semi import kplus1_checkpoint, load_kplus1, pseudo_label

        check_output(out, force=force, inputs=[run, data])
        model = load_kplus1(kplus1_checkpoint(run, checkpoint))
        h, w = model.data_size
        try:
            images = check_unlabeled(read_unlabeled(data, size=size), (h, w, model.channels), data)
        except DataError as err:  # label reads DATA with --size only (and convert reads labeled data only): drop the other hints
            raise err.in_terms(lambda flag: f"pass --size {h}" if flag.option == "size" and h == w else None) from None
        result = pseudo_label(model.D, images, model.img_size, fit=model.fit, min_confidence=min_confidence)
        kept = np.flatnonzero(result.keep)
        if not len(kept):
            raise DataError(f"no image of {data} reaches --min-confidence {min_confidence:g} (the most confident: {float(result.confidence.max()):.3f}); lower it or train the run longer")
        labeled = LabeledImages(images[kept], result.labels[kept], model.class_names, np.full(len(kept), Source.pseudo.value, np.uint8))
        write_hdf5(labeled, out, force=force, extra={"confidence": result.confidence[kept], "unlabeled_index": kept.astype(np.int64)},
                   extra_attrs={"labeled_by": str(model.checkpoint), "min_confidence": float(min_confidence)})
        counts = np.bincount(result.labels[kept], minlength=len(model.class_names))
        summary = {
            "out": str(out), "images": int(len(images)), "kept": int(len(kept)), "min_confidence": min_confidence,
            "checkpoint": str(model.checkpoint), "per_class": {name: int(n) for name, n in zip(model.class_names, counts)},
        }
        if json_out:
            out_console.print_json(json.dumps(summary))
            return
        table = Table(title=f"augmentgan label: {summary['kept']} of {summary['images']} images at confidence >= {min_confidence:g} -> {out}")
        table.add_column("class")
        table.add_column("pseudo-labeled", justify="right")
        for name, n in summary["per_class"].items():
            table.add_row(name, str(n))
        out_console.print(table)
