"""Sample-set metrics: sequence-level best-of-N errors and the quantile calibration score."""

import numpy as np
import pytest

from jaxpose import metrics
from jaxpose.metrics import sampling


def _gt_and_samples(n=6, t=4, j=5, seed=0):
  rng = np.random.default_rng(seed)
  gt = rng.normal(size=(t, j, 3)).astype(np.float32)
  samples = gt + rng.normal(scale=0.3, size=(n, t, j, 3)).astype(np.float32)
  return gt, samples


def test_min_mpjpe_is_a_sequence_level_oracle():
  gt, s = _gt_and_samples()
  per = np.linalg.norm(s - gt, axis=-1).mean(axis=(1, 2))
  np.testing.assert_allclose(sampling.per_sample_mpjpe(s, gt), per, rtol=1e-5)
  np.testing.assert_allclose(metrics.min_mpjpe(s, gt), per.min(), rtol=1e-5)
  # a per-frame oracle can only be lower
  per_frame = np.linalg.norm(s - gt, axis=-1).mean(-1).min(0).mean()
  assert per_frame <= per.min() + 1e-6
  # leading batch axes
  np.testing.assert_allclose(
    metrics.min_mpjpe(np.stack([s, s]), np.stack([gt, gt])), [per.min()] * 2, rtol=1e-5
  )


def test_min_p_mpjpe_ignores_similarity_transforms():
  gt, s = _gt_and_samples()
  c, sn = np.cos(0.7), np.sin(0.7)
  rot = np.array([[c, -sn, 0], [sn, c, 0], [0, 0, 1]], np.float32)
  moved = 2.0 * s @ rot.T + np.array([1.0, -2.0, 0.5], np.float32)
  np.testing.assert_allclose(metrics.min_p_mpjpe(moved, gt), metrics.min_p_mpjpe(s, gt), rtol=1e-3)
  assert metrics.min_p_mpjpe(s, gt) <= metrics.min_mpjpe(s, gt) + 1e-6


def test_mpjve_is_taken_on_the_best_sample():
  gt, s = _gt_and_samples()
  best = int(np.argmin(np.linalg.norm(s - gt, axis=-1).mean(axis=(1, 2))))
  vel = np.linalg.norm(np.diff(s[best], axis=0) - np.diff(gt, axis=0), axis=-1).mean()
  np.testing.assert_allclose(metrics.best_sample_mpjve(s, gt), vel, rtol=1e-5)


def test_lower_median_like_torch():
  x = np.array([[4.0], [1.0], [3.0], [2.0]])
  assert float(sampling.lower_median(x, axis=0)[0]) == 2.0  # numpy's median would give 2.5


def test_coverage_and_score_of_a_calibrated_gaussian():
  """Samples and gt from the same distribution: coverage_q ~ q, ECE small; overconfident worse."""
  rng = np.random.default_rng(1)
  n, t, j = 200, 50, 3
  centre = rng.normal(size=(t, j, 3))
  gt = centre + rng.normal(size=(t, j, 3))
  samples = centre + rng.normal(size=(n, t, j, 3))
  cov = np.asarray(metrics.calibration_coverage(samples, gt))
  assert cov.shape == (21, j)
  assert np.all(np.diff(cov, axis=0) >= 0) and cov[0].max() == 0 and cov[-1].min() > 0.9
  good = float(metrics.calibration_score(cov, 1))
  narrow = centre + 0.2 * rng.normal(size=(n, t, j, 3))
  bad = float(metrics.calibration_score(metrics.calibration_coverage(narrow, gt), 1))
  assert good < 0.1 < bad


def test_score_accumulates_counts():
  q = np.asarray(sampling.QUANTILES)
  perfect = np.tile(q[:, None], (1, 17))
  assert float(metrics.calibration_score(3 * perfect, 3)) == pytest.approx(0.0, abs=1e-7)
  np.testing.assert_allclose(metrics.calibration_score(np.ones((21, 17)), 1), np.abs(1 - q).mean())


def test_official_singleton_broadcast_compares_all_joint_pairs():
  rng = np.random.default_rng(2)
  samples = rng.normal(size=(8, 1, 4, 3))
  gt = rng.normal(size=(1, 4, 3))
  fixed = np.asarray(sampling.calibration_coverage(samples, gt))
  quirk = np.asarray(sampling.calibration_coverage(samples, gt, official_singleton_broadcast=True))
  centre = np.sort(samples, axis=0)[3]
  err = np.linalg.norm(samples - centre, axis=-1)[:, 0]  # (N, J)
  true = np.linalg.norm(centre - gt, axis=-1)[0]  # (J,)
  qv = np.quantile(err, sampling.QUANTILES, axis=0)  # (Q, J)
  np.testing.assert_allclose(fixed, qv > true, atol=0)
  np.testing.assert_allclose(quirk, (qv[:, :, None] > true[None, None, :]).mean(-1), atol=1e-7)
