"""Mesh metrics: MPVPE (root-aligned), PA-MPVPE, acceleration error, rigid alignment."""

import numpy as np

from jaxpose import metrics
from jaxpose.geometry import rotation


def test_mpvpe_is_the_mean_vertex_distance_after_root_alignment():
  rng = np.random.default_rng(0)
  pred, gt = rng.normal(size=(2, 3, 50, 3)), rng.normal(size=(2, 3, 50, 3))
  expected = np.linalg.norm(pred - gt, axis=-1).mean(-1)
  np.testing.assert_allclose(metrics.mpvpe(pred, gt), expected, rtol=1e-5)
  shift_p, shift_g = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 3))
  got = metrics.mpvpe(
    pred + shift_p[..., None, :], gt + shift_g[..., None, :], pred_root=shift_p, gt_root=shift_g
  )
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_pa_mpvpe_ignores_similarity_transforms():
  rng = np.random.default_rng(1)
  gt = rng.normal(size=(4, 60, 3))
  r = np.asarray(rotation.axis_angle_to_matrix(rng.normal(size=(4, 3))))
  pred = 1.7 * gt @ np.swapaxes(r, -1, -2) + rng.normal(size=(4, 1, 3))
  np.testing.assert_allclose(metrics.pa_mpvpe(pred, gt), 0.0, atol=1e-5)
  np.testing.assert_allclose(metrics.rigid_align(pred, gt), gt, atol=1e-5)
  noisy = gt + 0.1 * rng.normal(size=gt.shape)
  assert np.all(metrics.pa_mpvpe(noisy, gt) <= metrics.mpvpe(noisy, gt) + 1e-6)


def test_accel_error_definition():
  rng = np.random.default_rng(2)
  gt = rng.normal(size=(2, 6, 5, 3))
  t = np.arange(6)[:, None, None]
  drift = gt + 0.3 * t + 0.1  # a constant velocity offset has no acceleration
  np.testing.assert_allclose(metrics.accel_error(drift, gt), 0.0, atol=1e-5)
  bump = gt.copy()
  bump[:, 3, 2] += [0.0, 0.0, 1.0]  # joint 2 of frame 3 moved by 1
  err = np.asarray(metrics.accel_error(bump, gt))
  assert err.shape == (2, 4)
  # Frame 3 enters the second differences centred at frames 2 (x1), 3 (x-2) and 4 (x1).
  np.testing.assert_allclose(err, np.tile([0.0, 1 / 5, 2 / 5, 1 / 5], (2, 1)), atol=1e-6)


def test_accel_valid_needs_three_visible_frames():
  vis = np.array([True, True, True, False, True, True, True])
  np.testing.assert_array_equal(metrics.accel_valid(vis), [True, False, False, False, True])
