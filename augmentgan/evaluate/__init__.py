"""Evaluation: the domain classifier / feature extractor trained on the real data."""

from augmentgan.evaluate.classifier import ClassifierSettings, DomainClassifier, train_classifier

__all__ = ["ClassifierSettings", "DomainClassifier", "train_classifier"]
