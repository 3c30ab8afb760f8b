"""Known-answer tests of the metrics: identical sets, shifted Gaussians, disjoint sets, copies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augmentgan.evaluate import metrics as M


@pytest.fixture
def gauss() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 8))


def test_fid_zero_for_identical_sets(gauss):
    assert M.fid(gauss, gauss) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_shifted_set_is_squared_mean_shift(gauss):
    # the same points shifted: equal covariances, so FID = ||mu1 - mu2||^2 exactly
    shift = np.array([1.0, -2.0, 0.5, 0, 0, 0, 0, 3.0])
    assert M.fid(gauss, gauss + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_frechet_distance_matches_closed_form_for_different_covariances():
    # 1-D: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (m1 - m2)^2 + (sqrt s1 - sqrt s2)^2
    value = M.frechet_distance(np.array([0.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]]), eps=0.0)
    assert value == pytest.approx(9.0 + 1.0)


def test_fid_of_tiny_sets_is_finite_and_nan_below_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 50)), rng.normal(size=(3, 50))  # fewer rows than dimensions: singular covariances
    assert math.isfinite(M.fid(a, b)) and M.fid(a, b) > 0
    assert M.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(M.fid(a[:1], b))


def test_kid_near_zero_for_same_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = M.kid(a, b, subsets=20, subset_size=200, rng=np.random.default_rng(0))
    shifted, std = M.kid(a, b + 1.0, subsets=20, subset_size=200, rng=np.random.default_rng(0))
    assert abs(same) < 0.02
    assert shifted > 0.5 and shifted > 20 * abs(same) and std >= 0


def test_kid_is_unbiased_mmd_with_cubic_kernel():
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [4.0]])
    k = lambda a, b: (a * b + 1) ** 3  # D = 1
    expected = 2 * k(0, 1) / 2 + 2 * k(2, 4) / 2 - 2 * (k(0, 2) + k(0, 4) + k(1, 2) + k(1, 4)) / 4
    value, std = M.kid(x, y, subsets=3, subset_size=2)
    assert value == pytest.approx(expected) and std == pytest.approx(0.0)


def test_prdc_identical_sets(gauss):
    out = M.prdc(gauss, gauss)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    assert out["density"] == pytest.approx(1.0)  # each point's ball holds itself and its k-1 nearer neighbours


def test_prdc_disjoint_far_sets(gauss):
    out = M.prdc(gauss, gauss + 100.0)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_precision_high_recall_low_for_a_collapsed_generator(gauss):
    collapsed = gauss[0] + 1e-3 * np.random.default_rng(3).normal(size=(50, 8))  # every sample near one real point
    precision, recall = M.precision_recall(gauss, collapsed)
    density, coverage = M.coverage_density(gauss, collapsed)
    assert precision == 1.0 and recall == pytest.approx(1 / 300) and coverage < 0.1


def test_knn_radii_clamps_k_for_tiny_sets():
    x = np.array([[0.0], [1.0], [3.0]])
    assert M.knn_radii(x, k=5).tolist() == [3.0, 2.0, 3.0]  # k clamped to 2
    assert M.knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0]
    assert M.knn_radii(x[:1]).size == 0


def test_diversity_is_mean_pairwise_distance():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert M.diversity(x) == pytest.approx((5 + 4 + 3) / 3)
    assert math.isnan(M.diversity(x[:1]))


def test_row_chunking_gives_the_same_answers(monkeypatch, gauss):
    full = M.prdc(gauss, gauss[::-1] + 0.1)
    monkeypatch.setattr(M, "_ROWS", 7)
    assert M.prdc(gauss, gauss[::-1] + 0.1) == full


def test_frechet_distance_agrees_with_sqrtm_of_the_product():
    from scipy import linalg

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T, b @ b.T + np.eye(6)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(linalg.sqrtm(s1 @ s2)))
    assert M.frechet_distance(np.zeros(6), s1, np.zeros(6), s2, eps=0.0) == pytest.approx(expected, rel=1e-8)
