"""Classical augmentation (albumentations) and SMOTE variants (imbalanced-learn).

Submodules are imported on use: ``from augmentgan.augment.classical import build_pipeline``,
``from augmentgan.augment.smote import smote_class_counts``. How many samples each source adds
is the planner's business (:mod:`augmentgan.planner`).
"""
