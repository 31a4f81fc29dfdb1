"""Multi-hypothesis oracle metrics for probabilistic lifters (D3DP, DiffPose, ...).

Hypotheses sit on axis -3 (after any batch axes): pred_h (..., H, J, C) against gt (..., J, C).
Both oracles use the ground truth to choose, so they bound what an aggregator could reach.

Deviation from D3DP's released code (research/d3dp.md §5): its P-Best takes the min over H of the
error averaged over the whole evaluation batch; here the min is per pose, which does not depend on
the batch size.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.metrics.pose import joint_errors, mpjpe, p_mpjpe, reduce_joints


def mpjpe_best_of(
  pred_h: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Pose-wise best hypothesis (P-Best): min over H of each hypothesis's MPJPE.

  Args:
    pred_h: (..., H, J, C) hypotheses.
    gt: (..., J, C) ground truth.
    weights: optional per-joint weights (see `reduce_joints`).
    mask: optional joint mask (..., J).

  Returns:
    (...) error, input unit.
  """
  gt = jnp.asarray(gt)[..., None, :, :]
  if mask is not None:
    mask = jnp.asarray(mask)[..., None, :]
  return mpjpe(pred_h, gt, weights=weights, mask=mask).min(axis=-1)


def p_mpjpe_best_of(pred_h: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """Min over H of P-MPJPE. pred_h: (..., H, J, C), gt: (..., J, C) -> (...)."""
  gt = jnp.asarray(gt)[..., None, :, :]
  return p_mpjpe(pred_h, jnp.broadcast_to(gt, jnp.shape(pred_h))).min(axis=-1)


def mpjpe_joint_best(
  pred_h: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Joint-wise best hypothesis (J-Best, the JPMA oracle): per joint min over H, then mean over J.

  Args: as `mpjpe_best_of`.

  Returns:
    (...) error, input unit.
  """
  err = joint_errors(pred_h, jnp.asarray(gt)[..., None, :, :]).min(axis=-2)  # (..., J)
  return reduce_joints(err, weights=weights, mask=mask)


def joint_best_pose(pred_h: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """The J-Best pose: per joint, the hypothesis closest to gt. (..., H, J, C) -> (..., J, C)."""
  pred_h = jnp.asarray(pred_h)
  idx = joint_errors(pred_h, jnp.asarray(gt)[..., None, :, :]).argmin(axis=-2)  # (..., J)
  return jnp.take_along_axis(pred_h, idx[..., None, :, None], axis=-3)[..., 0, :, :]
