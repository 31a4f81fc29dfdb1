"""Metric values on hand-made poses, invariances (hypothesis), masks/weights, NaN and jit/vmap."""

import jax
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import jaxpose.metrics as M
from jaxpose.geometry.procrustes import align

_p_mpjpe = jax.jit(M.p_mpjpe)
_mpjpe = jax.jit(M.mpjpe)


def _pose(seed, shape=(4, 17, 3)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _rotation(seed):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
  return (q * np.sign(np.linalg.det(q))).astype(np.float32)


def test_exported_metrics_score_exact_and_perturbed_poses():
  """Every exported metric, called through jaxpose.metrics, is 0 (errors) or 100 (PCK, AUC) on the
  ground truth itself and moves the right way when one joint of one frame is 400 mm off."""
  gt = _pose(0) * 100.0  # (T = 4, 17, 3) mm
  off = gt.copy()
  off[2, 5] += [400.0, 0.0, 0.0]
  hyps = np.stack([off, gt], axis=1)  # (4, H = 2, 17, 3): the second hypothesis is exact
  errors = {
    'mpjpe': lambda p: M.mpjpe(p, gt),
    'p_mpjpe': lambda p: M.p_mpjpe(p, gt),
    'n_mpjpe': lambda p: M.n_mpjpe(p, gt),
    'mpjve': lambda p: M.mpjve(p, gt),
    'mpjpe_best_of': lambda p: M.mpjpe_best_of(np.stack([p, p], 1), gt),
    'mpjpe_joint_best': lambda p: M.mpjpe_joint_best(np.stack([p, p], 1), gt),
  }
  for name, f in errors.items():
    np.testing.assert_allclose(f(gt), 0.0, atol=1e-3, err_msg=name)
    assert np.max(np.asarray(f(off))) > 1.0, name
  np.testing.assert_allclose(M.pck(gt, gt), 100.0)
  assert np.min(np.asarray(M.pck(off, gt))) < 100.0
  # AUC: the 0 mm threshold never counts (errors are not below 0), so an exact pose scores 30/31.
  np.testing.assert_allclose(M.auc(gt, gt), 100.0 * 30 / 31, rtol=1e-6)
  assert np.min(np.asarray(M.auc(off, gt))) < 100.0 * 30 / 31
  np.testing.assert_allclose(M.mpjpe_best_of(hyps, gt), 0.0, atol=1e-3)  # the exact hypothesis


def test_mpjpe_known_value_and_shape():
  gt = _pose(0)
  pred = gt + np.array([3.0, 4.0, 0.0], np.float32)
  out = M.mpjpe(pred, gt)
  assert out.shape == (4,)
  np.testing.assert_allclose(out, 5.0, rtol=1e-6)
  pred2 = gt.copy()
  pred2[:, 0] += [0, 0, 17.0]  # one joint off by 17 -> mean 1
  np.testing.assert_allclose(M.mpjpe(pred2, gt), 1.0, rtol=1e-6)


def test_weights_and_mask():
  gt = np.zeros((2, 4, 3), np.float32)
  pred = gt.copy()
  pred[..., 0] = [1.0, 2.0, 3.0, 4.0]
  np.testing.assert_allclose(M.mpjpe(pred, gt, weights=[1, 1, 2, 0]), (1 + 2 + 6 + 0) / 4)
  np.testing.assert_allclose(M.mpjpe(pred, gt, mask=[True, False, True, False]), 2.0)
  np.testing.assert_allclose(M.mpjpe(pred, gt, mask=[[1, 1, 1, 1], [0, 0, 0, 1]]), [2.5, 4.0])


def test_n_mpjpe_removes_scale_only():
  gt = _pose(1)
  np.testing.assert_allclose(M.n_mpjpe(0.5 * gt, gt), 0.0, atol=1e-6)
  assert np.all(M.n_mpjpe(gt + 1.0, gt) > 0.1)  # translation is not removed


def test_mpjve():
  gt = _pose(2, (3, 6, 17, 3))
  out = M.mpjve(gt + 2.0, gt)  # a constant offset has no velocity error
  assert out.shape == (3, 5)
  np.testing.assert_allclose(out, 0.0, atol=1e-6)
  pred = gt.copy()
  pred[:, 3] += [0.0, 0.0, 1.0]  # frame 3 shifted: frame pairs (2,3) and (3,4) see 1 per joint
  np.testing.assert_allclose(M.mpjve(pred, gt), [[0, 0, 1, 1, 0]] * 3, atol=1e-6)


def test_pck_auc_thresholds_are_strict():
  gt = np.zeros((1, 17, 3), np.float32)
  pred = gt.copy()
  pred[0, :, 0] = 150.0  # exactly at the threshold: not correct
  pred[0, 0, 0] = 149.0
  pred[0, 16, 0] = 0.0  # joint 16 is outside the 14 PCK joints
  np.testing.assert_allclose(M.pck(pred, gt), 100 / 14, rtol=1e-6)
  np.testing.assert_allclose(M.pck(pred, gt, joints=None), 200 / 17, rtol=1e-6)
  np.testing.assert_allclose(M.auc(gt, gt), 100 * 30 / 31, rtol=1e-6)  # t = 0 never counts
  seven = gt + np.array([7.0, 0, 0], np.float32)
  np.testing.assert_allclose(M.auc(seven, gt), 100 * 29 / 31, rtol=1e-6)  # 10..150 count
  assert M.PCK_JOINTS_H36M == (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)


def test_multi_hypothesis():
  gt = np.zeros((2, 17, 3), np.float32)
  hyp = np.zeros((2, 3, 17, 3), np.float32)
  hyp[:, 0, :, 0] = 2.0  # hypothesis 0: every joint 2 off
  hyp[:, 1, :, 0] = 3.0
  hyp[:, 1, :5, 0] = 0.0  # hypothesis 1: 5 joints exact, 12 joints 3 off -> 36/17
  hyp[:, 2, :, 0] = 4.0
  np.testing.assert_allclose(M.mpjpe_best_of(hyp, gt), 2.0, rtol=1e-6)
  np.testing.assert_allclose(M.mpjpe_joint_best(hyp, gt), 24 / 17, rtol=1e-6)
  best = M.joint_best_pose(hyp, gt)
  np.testing.assert_allclose(M.mpjpe(best, gt), 24 / 17, rtol=1e-6)
  np.testing.assert_allclose(
    M.p_mpjpe_best_of(hyp + _pose(3, (2, 1, 17, 3)), gt + _pose(3)[:2]), 0, atol=1e-5
  )


def test_nan_propagates_per_pose():
  gt = _pose(4)
  pred = gt.copy()
  pred[1, 3, 0] = np.nan
  out = np.asarray(_mpjpe(pred, gt))
  assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2, 3]]))
  assert np.isnan(np.asarray(_p_mpjpe(pred, gt))[1])
  assert float(M.pck(pred * 0, gt * 0)[1]) == pytest.approx(100 * 13 / 14)  # NaN -> not correct


def test_jit_vmap_agree():
  pred, gt = _pose(5, (3, 4, 17, 3)), _pose(6, (3, 4, 17, 3))
  for fn in (M.mpjpe, M.p_mpjpe, M.n_mpjpe, M.pck, M.auc):
    direct = fn(pred * 100, gt * 100)
    np.testing.assert_allclose(jax.vmap(jax.jit(fn))(pred * 100, gt * 100), direct, rtol=2e-5)


@given(st.integers(0, 2**31 - 1), st.floats(0.2, 5.0), st.floats(-3.0, 3.0))
@example(522, 1.0, 0.0)  # P-MPJPE > MPJPE for this seed
def test_p_mpjpe_invariant_to_similarity_of_prediction(seed, scale, shift):
  gt = _pose(seed)
  pred = gt + 0.2 * _pose(seed + 1)
  r = _rotation(seed + 2)
  moved = scale * pred @ r + np.float32(shift)
  base = np.asarray(_p_mpjpe(pred, gt))
  np.testing.assert_allclose(_p_mpjpe(moved, gt), base, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(_p_mpjpe(scale * gt @ r + np.float32(shift), gt), 0, atol=1e-5)
  # Procrustes minimises the summed squared error, not the mean distance: P-MPJPE may exceed
  # MPJPE (seed 522 does), but the aligned RMS error never exceeds the unaligned one.
  aligned = np.asarray(align(pred, gt))
  rms = lambda a: np.sqrt(np.mean(np.sum((a - gt) ** 2, axis=-1), axis=-1))
  assert np.all(rms(aligned) <= rms(pred) + 1e-6)


@given(st.integers(0, 2**31 - 1))
def test_zero_error_on_identical_poses(seed):
  x = _pose(seed)
  np.testing.assert_array_equal(_mpjpe(x, x), 0.0)
  np.testing.assert_allclose(M.n_mpjpe(x, x), 0.0, atol=1e-6)
  np.testing.assert_array_equal(M.pck(x, x), 100.0)
  assert np.all(np.asarray(_mpjpe(x + 1e-3, x)) > 0)
