"""PersPose losses and label geometry (metric parity: tests/parity/test_perspose_parity.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.geometry.perspective import rodrigues
from jaxpose.methods import perspose as M
from jaxpose.models.perspose import LEAF_JOINTS

RNG = np.random.default_rng(0)
B, HW = 4, (64, 64)
K = np.tile(np.array([[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]], np.float32), (B, 1, 1))


def test_xyz2uv_density_by_hand():
  k = np.array([[[500.0, 0, 128], [0, 510.0, 120], [0, 0, 1]]], np.float32)
  uv, dens = M.xyz2uv_density(np.array([[[0.1, -0.2, 2.0]]], np.float32), k)
  np.testing.assert_allclose(uv, [[[153.0, 69.0]]], atol=1e-4)
  np.testing.assert_allclose(dens, [[[2000.0 / 505.0]]], rtol=1e-6)


def test_mask_mean_weights_broadcast_and_ignores_masked_nan():
  x = np.array([[1.0, 2.0], [3.0, np.nan]], np.float32)
  w = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)
  np.testing.assert_allclose(M.mask_mean(x, w), 2.0 / (1.5 + 1e-7), rtol=1e-6)
  y = np.ones((2, 3, 4), np.float32) * np.array([1.0, 5.0], np.float32)[:, None, None]
  np.testing.assert_allclose(M.mask_mean(y, np.array([True, False])), 12 / (12 + 1e-7), rtol=1e-6)


def _labels(kinds):
  def pose(n):
    p = RNG.normal(size=(B, n, 3)).astype(np.float32) * 0.2
    p[..., 2] += 4.0
    return p

  return {
    'K_crop': K,
    'height': np.full((B, 1), 1.7, np.float32),
    'is_hps': np.array([k.startswith('hps') for k in kinds]),
    'is_hp3d': np.array([k == '3dhp' for k in kinds]),
    'is_coco': np.array([k == 'coco' for k in kinds]),
    'is_bedlam': np.array(['bedlam' in k for k in kinds]),
    'smpl_j24': pose(24),
    'smpl_j17': pose(17),
    'smpl_ortho_twist': RNG.normal(size=(B, 24, 3)).astype(np.float32),
    'smpl_beta': RNG.normal(size=(B, 11)).astype(np.float32),
    'smpl_theta': RNG.normal(size=(B, 24, 3)).astype(np.float32) * 0.5,
    'hp3d_j17': pose(17),
    'coco_kp17': np.concatenate([RNG.uniform(5, 59, (B, 17, 2)), np.ones((B, 17, 1))], -1).astype(
      np.float32
    ),
  }


def _perfect(lab):
  """The output that reproduces the SMPL labels exactly."""
  j = np.concatenate([lab['smpl_j24'], lab['smpl_j17'][:, :1]], 1)
  uv, dens = M.xyz2uv_density(j, lab['K_crop'])
  twist = np.concatenate([lab['smpl_ortho_twist'], np.ones((B, 1, 3), np.float32)], 1)
  return {
    'uv': uv,
    'depth': j[..., 2:] - j[:, :1, 2:],
    'density': dens,
    'xyz': j - j[:, :1],
    'ortho_twist': twist * 3.0,  # only the direction counts
    'beta': lab['smpl_beta'],
    'leaf_rot': rodrigues(lab['smpl_theta'][:, list(LEAF_JOINTS)]),
  }


def test_exact_prediction_has_zero_smpl_losses_and_a_shift_is_measured():
  lab = _labels(['hps_h36m'] * B)
  out = _perfect(lab)
  t = M.loss_terms(out, lab, HW)
  for k in ('uv', 'depth', 'density_root', 'xyz', 'twist', 'beta', 'leaf', 'height'):
    assert abs(float(t[k])) < 1e-4, (k, float(t[k]))
  for k in ('uv_coco', 'uv_hp3d', 'depth_hp3d', 'density_root_hp3d'):  # no such samples
    assert float(t[k]) == 0.0
  shifted = dict(out, uv=out['uv'] + np.array([3.0, 4.0], np.float32))
  assert abs(float(M.loss_terms(shifted, lab, HW)['uv']) - 5.0) < 1e-4


def test_coco_dead_zone():
  lab = _labels(['coco'] * B)
  uv = np.zeros((B, 25, 2), np.float32)
  smpl = [M.COCO_TO_SMPL[i] for i in M.COCO_EVAL_JOINTS]
  kp = lab['coco_kp17'][:, list(M.COCO_EVAL_JOINTS), :2]
  out = dict(_perfect(_labels(['hps'] * B)), uv=uv)
  for d, want in ((np.array([3.0, 4.0]), 0.0), (np.array([6.0, 8.0]), 5.0)):
    out['uv'] = uv.copy()
    out['uv'][:, smpl] = kp + d.astype(np.float32)
    assert abs(float(M.loss_terms(out, lab, HW)['uv_coco']) - want) < 1e-4


def test_mixed_batch_gradients_are_finite_and_weights_apply():
  lab = _labels(['hps_h36m', 'coco', '3dhp', 'hps_bedlam'])
  for k in ('smpl_j24', 'smpl_j17', 'hp3d_j17'):  # absent datasets carry zero labels
    lab[k] = np.where(lab['is_hps' if k != 'hp3d_j17' else 'is_hp3d'][:, None, None], lab[k], 0)
  out = _perfect(_labels(['hps'] * B))
  out = jax.tree.map(lambda x: jnp.asarray(x) + 0.01, out)
  grads = jax.grad(lambda o: M.total_loss(M.loss_terms(o, lab, HW), 'h36m'))(out)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
  assert np.abs(np.asarray(grads['uv'])).max() > 0
  ones = {k: 1.0 for k in M.LOSS_NAMES}
  assert M.total_loss(ones, 'h36m') == pytest.approx(16.02)
  with pytest.raises(ValueError, match='expected 12'):
    M.total_loss(ones, (1.0, 2.0))


def test_sample_flip():
  key = jax.random.key(1)
  batch = np.asarray(M.sample_flip(key, 64))
  assert batch.all() or not batch.any()
  per = np.asarray(M.sample_flip(key, 64, per_sample=True))
  assert 0 < per.sum() < 64
