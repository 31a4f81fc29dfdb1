"""Loss terms: per-sample shapes, frame masks, the registry, and the 2D reprojection loss."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import losses
from jaxpose.geometry import camera


def _batch(b=2, t=6, seed=0):
  rng = np.random.default_rng(seed)
  gt = rng.normal(size=(b, t, 17, 3)).astype(np.float32) * 0.2
  return {'pose3d_cam': jnp.asarray(gt), 'valid': jnp.ones((b, t), bool)}


@pytest.mark.parametrize(
  'name', ['mpjpe', 'w_mpjpe', 'n_mpjpe', 'velocity', 'temporal_consistency']
)
def test_terms_are_per_sample_and_zero_at_target(name):
  batch = _batch()
  term = losses.get(name)
  pred = batch['pose3d_cam']
  out = term(pred, batch)
  assert out.shape == (2,)
  if name != 'temporal_consistency':  # a smoothness prior is not zero at the target
    np.testing.assert_allclose(out, 0.0, atol=1e-6)
  assert float(term(pred + 0.1 * jnp.arange(6.0)[None, :, None, None], batch).sum()) > 0


def test_invalid_frames_do_not_count():
  batch = _batch()
  pred = batch['pose3d_cam'].at[:, -1].add(5.0)  # a wild last frame
  batch['valid'] = batch['valid'].at[:, -1].set(False)
  np.testing.assert_allclose(losses.mpjpe(pred, batch), 0.0, atol=1e-6)
  np.testing.assert_allclose(losses.velocity(pred, batch), 0.0, atol=1e-6)
  batch['valid'] = batch['valid'].at[:, -1].set(True)
  assert float(losses.mpjpe(pred, batch).min()) > 0.5


def test_mpjpe_value_against_numpy():
  batch = _batch()
  pred = batch['pose3d_cam'] + 0.3
  ref = np.linalg.norm(np.full((3,), 0.3), axis=-1)
  np.testing.assert_allclose(losses.mpjpe(pred, batch), ref, rtol=1e-5)


def test_unknown_term_lists_valid_terms():
  with pytest.raises(ValueError, match='valid terms: mpjpe, w_mpjpe'):
    losses.get('mpjpee')


def test_combine_skips_zero_weights():
  batch = _batch()
  total, parts = losses.combine({'mpjpe': 1.0, 'velocity': 0.0}, batch['pose3d_cam'] + 0.1, batch)
  assert set(parts) == {'mpjpe'} and total.shape == (2,)


def test_reprojection_loss_zero_for_the_true_pose():
  rng = np.random.default_rng(1)
  b, t = 2, 3
  root = np.array([0.1, -0.2, 4.5], np.float32)
  pose_abs = rng.normal(size=(b, t, 17, 3)).astype(np.float32) * 0.3 + root
  k_px = np.array([1145.0, 1144.0, 512.5, 515.4, -0.2, 0.24, -0.002, -0.0007, -0.0015], np.float32)
  w, h = 1000, 1002
  k_norm = camera.normalize_intrinsics(k_px[:2], k_px[2:4], k_px[4:7], k_px[7:], w, h)
  kp2d = np.asarray(camera.project_to_2d(pose_abs, k_norm))
  batch = {
    'pose3d_cam': jnp.asarray(pose_abs - pose_abs[..., :1, :]),
    'pose3d_root': jnp.asarray(pose_abs[..., :1, :]),
    'kp2d_norm': jnp.asarray(kp2d),
    'valid': jnp.ones((b, t), bool),
    'cam_intrinsics': jnp.asarray(np.tile(k_px, (b, 1))),
    'res_w': jnp.full((b,), w),
    'res_h': jnp.full((b,), h),
  }
  np.testing.assert_allclose(losses.reprojection_2d(batch['pose3d_cam'], batch), 0.0, atol=1e-5)
  assert float(losses.reprojection_2d(batch['pose3d_cam'] * 1.2, batch).min()) > 1e-3


def test_gradients_finite_at_exact_zero_error():
  """A zero-initialised model predicts equal frames: zero velocity error on the root must give a
  zero (not NaN) gradient, as in torch."""
  import jax

  batch = _batch()
  batch['pose3d_cam'] = jnp.zeros_like(batch['pose3d_cam'])
  for name in ('mpjpe', 'w_mpjpe', 'velocity'):  # n_mpjpe's scale is 0/0 for an all-zero pose
    g = jax.grad(lambda p: losses.get(name)(p, batch).sum())(jnp.zeros_like(batch['pose3d_cam']))
    assert np.isfinite(np.asarray(g)).all(), name
