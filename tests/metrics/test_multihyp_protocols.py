"""D3DP's four multi-hypothesis protocols: hand-made values, H = 1 reduction to MPJPE/P-MPJPE,
the oracle orderings (hypothesis), the batch-level P-Best and frame weights."""

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import jaxpose.metrics as M
from jaxpose.metrics import multihyp_protocols as mp

_errors = jax.jit(mp.protocol_errors)


def _poses(seed, b=2, k=2, h=3, t=4, j=5):
  rng = np.random.default_rng(seed)
  gt = rng.normal(size=(b, t, j, 3)).astype(np.float32)
  hyps = gt[:, None, None] + rng.normal(scale=0.3, size=(b, k, h, t, j, 3)).astype(np.float32)
  index = rng.integers(0, h, size=(b, k, t, j))
  return hyps, gt, index


def test_exported_from_metrics():
  assert M.protocol_errors is mp.protocol_errors and M.reduce_protocols is mp.reduce_protocols


def test_hand_made_values():
  # One frame, two joints, two hypotheses: hypothesis 0 is off by 1 at joint 0, hypothesis 1 by
  # 3 at joint 1 (x axis only).
  gt = np.zeros((1, 1, 2, 3), np.float32)
  hyps = np.zeros((1, 1, 2, 1, 2, 3), np.float32)
  hyps[0, 0, 0, 0, 0, 0] = 1.0
  hyps[0, 0, 1, 0, 1, 0] = 3.0
  index = np.array([[[[1, 1]]]])  # JPMA chose hypothesis 1 for both joints
  got = mp.reduce_protocols(mp.protocol_errors(hyps, gt, index))
  np.testing.assert_allclose(got['P_Best'], [0.5])  # min(mean(1, 0), mean(0, 3))
  np.testing.assert_allclose(got['J_Best'], [0.0])  # each joint has an exact hypothesis
  np.testing.assert_allclose(got['J_Agg'], [1.5])  # hypothesis 1 everywhere
  np.testing.assert_allclose(got['P_Agg'], [(0.5 + 1.5) / 2])  # mean pose (0.5, 0), (1.5, 0)


def test_single_hypothesis_is_mpjpe_and_p_mpjpe():
  hyps, gt, _ = _poses(0, h=1)
  errors = _errors(hyps, gt, np.zeros(hyps.shape[:2] + hyps.shape[3:5], np.int32))
  p1 = np.asarray(M.mpjpe(hyps[:, :, 0], gt[:, None]))  # (B, K, T)
  p2 = np.asarray(M.p_mpjpe(hyps[:, :, 0], np.broadcast_to(gt[:, None], hyps[:, :, 0].shape)))
  for key in ('P_Agg', 'J_Best', 'J_Agg'):
    np.testing.assert_allclose(errors[key], p1, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(errors[f'{key}_p2'], p2, rtol=1e-4, atol=1e-6, err_msg=key)
  np.testing.assert_allclose(errors['P_Best'][:, :, 0], p1, rtol=1e-5)


@given(st.integers(0, 10_000))
def test_oracle_orderings(seed):
  hyps, gt, index = _poses(seed)
  errors = _errors(hyps, gt, index)
  got = {k: np.asarray(v) for k, v in mp.reduce_protocols(errors).items()}
  for sfx in ('', '_p2'):
    # The joint oracle beats the pose oracle and any joint-wise choice.
    assert np.all(got['J_Best' + sfx] <= got['P_Best' + sfx] + 1e-6)
    assert np.all(got['J_Best' + sfx] <= got['J_Agg' + sfx] + 1e-6)
  # Convexity: the mean pose is no worse than the average hypothesis (P1).
  assert np.all(got['P_Agg'] <= np.asarray(errors['P_Best']).mean(axis=(0, 2, 3)) + 1e-6)


def test_p_best_depends_on_the_group_it_is_reduced_over():
  # Window 0 prefers hypothesis 0, window 1 hypothesis 1: per window both are exact, over the
  # batch (the official -b group) neither is.
  gt = np.zeros((2, 1, 1, 3), np.float32)
  hyps = np.zeros((2, 1, 2, 1, 1, 3), np.float32)
  hyps[0, 0, 1, ..., 0] = 2.0
  hyps[1, 0, 0, ..., 0] = 4.0
  errors = mp.protocol_errors(hyps, gt, np.zeros((2, 1, 1, 1), np.int32))
  np.testing.assert_allclose(mp.reduce_protocols(errors)['P_Best'], [1.0])  # min(2, 1)
  per_window = [
    mp.reduce_protocols({'P_Best': errors['P_Best'][i : i + 1]})['P_Best'] for i in range(2)
  ]
  np.testing.assert_allclose(np.concatenate(per_window), [0.0, 0.0])


def test_frame_weights_drop_padding():
  hyps, gt, index = _poses(3)
  errors = _errors(hyps, gt, index)
  w = np.ones((2, 4), np.float32)
  w[1, 2:] = 0  # padded frames
  weighted = mp.reduce_protocols(errors, w)
  for key in ('P_Agg', 'J_Agg', 'J_Best'):
    e = np.asarray(errors[key])
    expected = (e[0].sum(-1) + e[1, :, :2].sum(-1)) / 6
    np.testing.assert_allclose(weighted[key], expected, rtol=1e-5, err_msg=key)
  e = np.asarray(errors['P_Best'])  # (B, K, H, T)
  expected = ((e[0].sum(-1) + e[1, ..., :2].sum(-1)) / 6).min(axis=-1)
  np.testing.assert_allclose(weighted['P_Best'], expected, rtol=1e-5)
