"""Generation: per-class samples from a trained GAN, truncated, quality-filtered and streamed out.

- :mod:`~augmentgan.generate.sampler`: :class:`Sampler` streams a generator's accepted samples
  (latents, truncation, rendering at the data size);
- :mod:`~augmentgan.generate.filters`: the quality filters (a registry) that judge candidates;
- :mod:`~augmentgan.generate.auto_truncation`: ``--truncation auto``;
- :mod:`~augmentgan.generate.generation`: :func:`generate` (to HDF5 or a folder) and
  :func:`sample_dataset` (in memory), with their output metadata;
- :mod:`~augmentgan.generate.encode` and :mod:`~augmentgan.generate.latent_smote`: GAN inversion
  and SMOTE between latent codes.

The names below are re-exported because ``augmentgan.generate.generate`` and
``augmentgan.generate.sample_dataset`` are the documented entry points (benchmarks/RESULTS.md,
the CLI); the logic lives in the submodules.
"""

from augmentgan.generate.generation import (
    CHUNK,
    FILTERS,
    ClassReport,
    FilterSpec,
    GenerationReport,
    SampleBatch,
    Sampler,
    build_filters,
    generate,
    grids_path,
    resolve_counts,
    sample_dataset,
)

__all__ = [
    "CHUNK", "ClassReport", "FILTERS", "FilterSpec", "GenerationReport", "SampleBatch", "Sampler",
    "build_filters", "generate", "grids_path", "resolve_counts", "sample_dataset",
]
