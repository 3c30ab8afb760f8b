"""GAN zoo: models, losses, regularizers, tricks, presets and the trainer."""
