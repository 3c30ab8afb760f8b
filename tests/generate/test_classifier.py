"""The domain classifier: it learns the real classes, is deterministic, cached, and batch-independent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentgan.errors import AugmentganWarning
from augmentgan.domain import classifier as clf
from augmentgan.domain import train_classifier
from generate_data import CLASSIFIER_STEPS


def test_it_classifies_unseen_images_and_gives_probabilities(classifier, heldout):
    proba = classifier.predict_proba(heldout.images)
    assert proba.shape == (len(heldout), 3)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(len(heldout)))
    assert (proba.argmax(dim=1).numpy() == heldout.labels).mean() >= 0.85
    feats = classifier.features(heldout.images)
    assert feats.shape == (len(heldout), classifier.feature_dim)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(len(heldout), dtype=feats.dtype))


def test_outputs_of_an_image_do_not_depend_on_what_it_is_evaluated_with(classifier, heldout):
    x = heldout.images[:70]
    alone = torch.cat([classifier.features(x[i : i + 1]) for i in (0, 65)])
    assert torch.equal(alone, classifier.features(x)[[0, 65]])
    assert torch.equal(classifier.predict_proba(x[65:]), classifier.predict_proba(x)[65:])


def test_cached_by_data_and_settings(real, classifier, monkeypatch):
    cache = Path(os.environ["AUGMENTGAN_CACHE_DIR"]) / "classifiers"
    path = Path(classifier.info["cache"])
    assert path.parent == cache and path.name.startswith(real.fingerprint()[:32])
    monkeypatch.setattr(clf, "_train", lambda *a, **k: pytest.fail("a cached classifier must not be trained again"))
    again = train_classifier(real, seed=0, steps=CLASSIFIER_STEPS)
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert again.info["train_accuracy"] == classifier.info["train_accuracy"]


def test_same_seed_same_weights_and_a_corrupt_cache_is_retrained(real, tmp_path):
    a = train_classifier(real, seed=1, steps=10, cache_dir=tmp_path)
    b = train_classifier(real, seed=1, steps=10, use_cache=False)
    c = train_classifier(real, seed=2, steps=10, use_cache=False)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    Path(a.info["cache"]).write_bytes(b"not a checkpoint")
    with pytest.warns(AugmentganWarning, match="ignored"):
        d = train_classifier(real, seed=1, steps=10, cache_dir=tmp_path)
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in a.state_dict().items())
    assert torch.load(a.info["cache"], weights_only=True)["format"] == clf.FORMAT


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (16, 16), (20, 33)])
def test_any_image_size_fits(size):
    h, w = size
    model = clf.DomainClassifier((h, w, 3), ("a", "b"))
    x = np.zeros((2, h, w, 3), np.uint8)
    assert model.predict_proba(x).shape == (2, 2) and model.features(x).shape == (2, model.feature_dim)
