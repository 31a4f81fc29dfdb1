"""3D PCK and AUC with the MPI-INF-3DHP protocol (research/data.md §3.4, official MATLAB scripts).

PCK counts joints whose error is *strictly* below the threshold; AUC is 100 x the mean PCK over 31
thresholds 0, 5, ..., 150 mm (the t = 0 point included). Only the 14 joints of the official groups
count: head top, neck, shoulders, elbows, wrists, hips, knees, ankles (pelvis, spine and head are
out). Errors are in mm, so inputs must be in mm for the default thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.metrics.pose import joint_errors

# The 14 PCK joints, as indices into the mpi3dhp17 layout (0..13) and into h36m17 (the same joints
# through the MotionAGFormer H36M<->3DHP map: H36M "head" is 3DHP head_top, H36M "thorax" is neck).
PCK_JOINTS_3DHP: tuple[int, ...] = tuple(range(14))
PCK_JOINTS_H36M: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)
AUC_THRESHOLDS_MM: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.0, 150.0, 31))


def _selected_errors(pred, gt, joints: Sequence[int] | None) -> jnp.ndarray:
  err = joint_errors(pred, gt)
  if joints is not None:
    err = err[..., np.asarray(joints)]
  return err


def _fraction_below(err, thresholds, mask) -> jnp.ndarray:
  """err (..., K), thresholds (N,) -> (..., N) fraction of the (masked) K joints with err < t."""
  hit = (err[..., None, :] < thresholds[:, None]).astype(err.dtype)
  if mask is None:
    return hit.mean(axis=-1)
  m = jnp.asarray(mask, err.dtype)[..., None, :]
  return jnp.sum(hit * m, axis=-1) / jnp.sum(jnp.broadcast_to(m, hit.shape), axis=-1)


def pck(
  pred: ArrayLike,
  gt: ArrayLike,
  threshold: float = 150.0,
  *,
  joints: Sequence[int] | None = PCK_JOINTS_3DHP,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Percentage of correct keypoints per pose.

  Args:
    pred: (..., J, 3) root-relative predictions, mm.
    gt: (..., J, 3) root-relative ground truth, mm.
    threshold: a joint is correct when its error is strictly below this (mm).
    joints: joint indices that count (default: the 14 3DHP joints in mpi3dhp17 order; use
      PCK_JOINTS_H36M for h36m17-ordered poses, None for all joints).
    mask: optional (..., K) bool over the selected joints.

  Returns:
    (...) PCK in percent (0-100).
  """
  err = _selected_errors(pred, gt, joints)
  return 100.0 * _fraction_below(err, jnp.asarray([threshold], err.dtype), mask)[..., 0]


def auc(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
  joints: Sequence[int] | None = PCK_JOINTS_3DHP,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Area under the PCK curve per pose: 100 x mean over thresholds of the PCK fraction.

  Args:
    pred: (..., J, 3) root-relative predictions, mm.
    gt: (..., J, 3) root-relative ground truth, mm.
    thresholds: PCK thresholds in mm (default 0:5:150, 31 values).
    joints: as in `pck`.
    mask: as in `pck`.

  Returns:
    (...) AUC in percent (0-100).
  """
  err = _selected_errors(pred, gt, joints)
  curve = _fraction_below(err, jnp.asarray(thresholds, err.dtype), mask)
  return 100.0 * curve.mean(axis=-1)
