"""The augmentgan command line (installed as ``augmentgan.cli``)."""
