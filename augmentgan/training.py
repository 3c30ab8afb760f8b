"""Train a GAN into a run folder and write the run's ``report.html``: what ``augmentgan train`` and
the expansion pipeline call.

The loop (:func:`augmentgan.gan.trainer.train`) writes checkpoints, sample grids and metrics and
returns a :class:`~augmentgan.gan.trainer.TrainResult`; it knows nothing of reports, which render
generators and metrics from a layer above it. This function runs the loop, then writes the report
(:func:`augmentgan.report.write_run_report`: loss and quality curves, the latest sample grids, a
truncation sweep) from rank 0, the rank that wrote the run folder. A run that fails or is
interrupted gets no report, as before.
"""

from __future__ import annotations

import functools
from typing import Callable, ParamSpec

from augmentgan.gan import trainer
from augmentgan.gan.trainer import TrainResult
from augmentgan.report import write_run_report

__all__ = ["train"]

P = ParamSpec("P")


def _then_run_report(loop: Callable[P, TrainResult]) -> Callable[P, TrainResult]:
    """``loop`` with the same arguments and result, followed by the run's report on rank 0."""

    @functools.wraps(loop)
    def train(*args: P.args, **kwargs: P.kwargs) -> TrainResult:
        result = loop(*args, **kwargs)
        if result.rank == 0:
            write_run_report(result.run_dir)
        return result

    train.__doc__ = (loop.__doc__ or "") + "\n    Then writes ``out/report.html`` (:func:`augmentgan.report.write_run_report`) on rank 0.\n"
    return train


train = _then_run_report(trainer.train)
