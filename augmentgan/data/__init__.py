"""Datasets: the in-memory type, readers and writers."""

from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source

__all__ = ["LabeledImages", "Source", "SOURCE_NAMES"]
