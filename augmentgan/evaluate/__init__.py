"""Quality metrics of generated samples: FID/KID, precision/recall, density/coverage, diversity,
memorization and CAS (:mod:`~augmentgan.evaluate.metrics`, :mod:`~augmentgan.evaluate.evaluation`),
and the training-time quality monitor (:mod:`~augmentgan.evaluate.monitor`). The features they
are computed in come from :mod:`augmentgan.domain`."""
