"""augmentgan: dataset expansion with class-conditional GANs, classical augmentation and SMOTE."""

from augmentgan._version import __version__
from augmentgan.errors import AugmentganError

__all__ = ["__version__", "AugmentganError"]
