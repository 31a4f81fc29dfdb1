"""D3DP's four multi-hypothesis protocols, for Protocol 1 (MPJPE) and 2 (P-MPJPE), per iteration.

For hypotheses from K sampler iterations, (B, K, H, T, J, 3), against the ground truth (B, T, J, 3)
(both root-relative with the root joint at 0), as in D3DP's `common/loss.py` (research/d3dp.md §3):

  P-Agg   the mean of the H hypotheses, then its error.
  J-Agg   per joint, the hypothesis chosen by JPMA (`jaxpose.methods.d3dp.jpma`, by 2D reprojection
          error, no ground truth) and its error at that joint.
  J-Best  per joint, the smallest error over H (oracle; `multihyp.mpjpe_joint_best`).
  P-Best  per hypothesis, the error averaged over a group of frames, then the smallest over H
          (oracle). The official group is the evaluation batch (`-b` windows), so P-Best is
          reduced by `reduce_protocols` over whatever is passed to it; pass one window at a time
          for a per-window oracle.

P2 versions align every pose with its own Procrustes similarity first (each hypothesis separately;
the P-Agg mean pose after averaging) and then make the same choices; J-Agg P2 keeps the JPMA
indices of the unaligned reprojection and takes the aligned error of the chosen hypothesis at each
joint (not the error of the aligned assembled pose), as the official code does.

Per-frame values come first (`protocol_errors`); `reduce_protocols` averages over (B, T) with
optional frame weights and gives one value per iteration, the official numbers of a batch.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.geometry import procrustes
from jaxpose.metrics.multihyp import mpjpe_joint_best
from jaxpose.metrics.pose import joint_errors

PROTOCOLS = ('P_Best', 'P_Agg', 'J_Best', 'J_Agg')
KEYS = PROTOCOLS + tuple(f'{p}_p2' for p in PROTOCOLS)


def _per_protocol(hyps: jnp.ndarray, gt: jnp.ndarray, index: jnp.ndarray, mean_pose) -> dict:
  """hyps (B, K, H, T, J, 3) and gt broadcast to it -> the four per-frame error arrays."""
  err = joint_errors(hyps, gt)  # (B, K, H, T, J)
  chosen = jnp.take_along_axis(err, index[:, :, None], axis=2)[:, :, 0]  # (B, K, T, J)
  return {
    'P_Best': err.mean(axis=-1),
    'P_Agg': joint_errors(mean_pose, gt[:, :, 0]).mean(axis=-1),
    # mpjpe_joint_best reads hypotheses on axis -3: (B, K, T, H, J, 3).
    'J_Best': mpjpe_joint_best(jnp.moveaxis(hyps, 2, 3), gt[:, :, 0]),
    'J_Agg': chosen.mean(axis=-1),
  }


def protocol_errors(
  hyps: ArrayLike, gt: ArrayLike, jpma_index: ArrayLike
) -> dict[str, jnp.ndarray]:
  """Per-frame errors of P-Best, P-Agg, J-Best, J-Agg and their P2 versions.

  Args:
    hyps: (B, K, H, T, J, 3) hypotheses of every iteration, root joint 0.
    gt: (B, T, J, 3) ground truth, root joint 0, same unit.
    jpma_index: (B, K, T, J) int, the hypothesis JPMA chose per joint.

  Returns:
    {'P_Best', 'P_Best_p2': (B, K, H, T) per-hypothesis errors (reduce with `reduce_protocols`);
     'P_Agg', 'J_Best', 'J_Agg' and their '_p2': (B, K, T)}, in the input unit.
  """
  hyps, gt = jnp.asarray(hyps), jnp.asarray(gt)
  index = jnp.asarray(jpma_index)
  gt_b = jnp.broadcast_to(gt[:, None, None], hyps.shape)
  mean_pose = hyps.mean(axis=2)
  out = _per_protocol(hyps, gt_b, index, mean_pose)
  aligned = procrustes.align(hyps, gt_b)
  p2 = _per_protocol(aligned, gt_b, index, procrustes.align(mean_pose, gt_b[:, :, 0]))
  out.update({f'{k}_p2': v for k, v in p2.items()})
  return out


def reduce_protocols(
  errors: dict[str, ArrayLike], weights: ArrayLike | None = None
) -> dict[str, jnp.ndarray]:
  """Per-iteration numbers of one group of windows (the official evaluation batch).

  Args:
    errors: `protocol_errors` output (any subset of its keys).
    weights: optional (B, T) frame weights (1 for a counted frame, 0 for padding).

  Returns:
    {key: (K,)}: the weighted mean over (B, T) per iteration; for P-Best the mean per
    hypothesis, then the minimum over H.
  """
  out = {}
  for key, e in errors.items():
    e = jnp.asarray(e)
    if key.startswith('P_Best'):
      e = jnp.moveaxis(e, 2, 3)  # (B, K, T, H)
    w = jnp.ones(e.shape[:1] + e.shape[2:3]) if weights is None else jnp.asarray(weights, e.dtype)
    w = w[:, None, :, None] if e.ndim == 4 else w[:, None, :]
    mean = jnp.sum(e * w, axis=(0, 2)) / jnp.sum(jnp.broadcast_to(w, e.shape), axis=(0, 2))
    out[key] = mean.min(axis=-1) if key.startswith('P_Best') else mean
  return out
