"""The domain classifier and its features, trained on the real data only.

One small CNN per dataset (:mod:`augmentgan.domain.classifier`, cached by the data's fingerprint)
gives class probabilities and L2-normalised image features; :mod:`augmentgan.domain.features`
builds the feature extractors of the metrics (this classifier, or local Inception-v3 weights) and
:class:`~augmentgan.domain.features.RealFeatures`, the per-class features of the real images and
their nearest-neighbour distances. Generation filters, ``--truncation auto``, the quality
metrics, the training monitor and ``plan.mix: auto`` all read the real data through this layer.
"""

from augmentgan.domain.classifier import ClassifierSettings, DomainClassifier, train_classifier

__all__ = ["ClassifierSettings", "DomainClassifier", "train_classifier"]
