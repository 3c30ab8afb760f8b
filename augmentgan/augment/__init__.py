"""Classical augmentation (albumentations), SMOTE variants (imbalanced-learn) and the expansion planner.

Submodules are imported on use: ``from augmentgan.augment.classical import build_pipeline``,
``from augmentgan.augment.smote import smote_class_counts``, ``from augmentgan.augment.planner import make_plan``.
"""
