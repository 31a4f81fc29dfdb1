"""Per-pose position errors: MPJPE (P1), P-MPJPE (P2), N-MPJPE (P3) and MPJVE.

Definitions follow VideoPose3D `common/loss.py` (research/videopose3d.md §7) but return one value per
pose instead of a grand mean, so callers can mask, group by action and aggregate on the host.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.geometry import procrustes


def safe_norm(d: ArrayLike, axis: int = -1) -> jnp.ndarray:
  """Euclidean norm whose gradient is 0 (as torch's) instead of NaN where the vector is exactly 0.

  Losses hit exact zeros: a zero-initialised model predicts equal frames, and the root joint's
  target velocity is always 0, so `jnp.linalg.norm` would turn the whole gradient into NaN.
  """
  sq = jnp.sum(jnp.square(d), axis=axis)
  pos = sq > 0
  # Off the positive branch return `sq` itself: 0 (gradient 2d = 0) at zero, NaN stays NaN.
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), sq)


def joint_errors(pred: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """Euclidean distance per joint. pred, gt: (..., J, C) -> (..., J), in the input unit."""
  return safe_norm(jnp.asarray(pred) - jnp.asarray(gt))


def reduce_joints(
  err: ArrayLike, *, weights: ArrayLike | None = None, mask: ArrayLike | None = None
) -> jnp.ndarray:
  """Mean over the joint axis with optional per-joint weights and mask.

  Args:
    err: (..., J) per-joint values.
    weights: (J,) or broadcastable (..., J). VideoPose3D/MixSTE `weighted_mpjpe` semantics: the
      result is mean_j(w_j * err_j), not divided by the sum of weights.
    mask: (J,) or broadcastable (..., J) bool; only True joints count: sum(m w e) / sum(m). A pose
      with no valid joint gives NaN.

  Returns:
    (...) reduced values.
  """
  err = jnp.asarray(err)
  if weights is not None:
    err = err * jnp.asarray(weights)
  if mask is None:
    return err.mean(axis=-1)
  m = jnp.broadcast_to(jnp.asarray(mask, err.dtype), err.shape)
  return jnp.sum(err * m, axis=-1) / jnp.sum(m, axis=-1)


def mpjpe(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Mean per-joint position error (Protocol 1).

  Args:
    pred: (..., J, C) predicted poses.
    gt: (..., J, C) ground truth, same shape and unit.
    weights: optional per-joint weights, see `reduce_joints`.
    mask: optional joint mask, see `reduce_joints`.

  Returns:
    (...) error per pose, in the input unit (e.g. metres; x1000 for mm).
  """
  return reduce_joints(joint_errors(pred, gt), weights=weights, mask=mask)


def p_mpjpe(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """MPJPE after similarity Procrustes alignment of each pose (Protocol 2).

  The alignment uses all J joints (as VideoPose3D); weights/mask only affect the error average.

  Args: as `mpjpe`.

  Returns:
    (...) error per pose, in the input unit.
  """
  aligned = procrustes.align(pred, gt)
  return mpjpe(aligned, gt, weights=weights, mask=mask)


def n_mpjpe(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """MPJPE after the least-squares scale fit of each pose (Protocol 3).

  scale = sum(gt * pred) / sum(pred^2) over joints and coordinates of one pose.

  Args: as `mpjpe`.

  Returns:
    (...) error per pose, in the input unit.
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  scale = jnp.sum(gt * pred, axis=(-2, -1)) / jnp.sum(pred * pred, axis=(-2, -1))
  return mpjpe(scale[..., None, None] * pred, gt, weights=weights, mask=mask)


def mpjve(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """Mean per-joint velocity error: MPJPE of first differences over time.

  Args:
    pred: (..., T, J, C) predicted sequences; time is axis -3.
    gt: (..., T, J, C) ground truth.
    weights: optional per-joint weights, see `reduce_joints`.
    mask: optional joint mask (..., J) or (..., T-1, J), see `reduce_joints`.

  Returns:
    (..., T-1) error per frame pair, in input unit per frame (multiply by fps for unit/s).
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  return mpjpe(jnp.diff(pred, axis=-3), jnp.diff(gt, axis=-3), weights=weights, mask=mask)


def n_mpjpe_procrustes_scale(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  root: int = 0,
  weights: ArrayLike | None = None,
  mask: ArrayLike | None = None,
) -> jnp.ndarray:
  """EpipolarPose's "norm" error: MPJPE after scaling pred by the similarity-Procrustes scale.

  The official `H36M_Integral.evaluate` (github.com/mkocabas/EpipolarPose @ 299ccb0, research/
  epipolarpose.md §5, §10.7) takes the scale b of the full similarity Procrustes fit (rotation
  included) of pred to gt, applies only b (no rotation, no translation), then root-aligns both poses.
  This differs from `n_mpjpe` (Rhodin's least-squares scale, no root alignment); the EpipolarPose
  paper's w/o-R/t N-MPJPE numbers come from this definition.

  Args:
    pred: (..., J, 3) predicted poses, any scale.
    gt: (..., J, 3) ground truth.
    root: root joint index for the final alignment.
    weights, mask: see `reduce_joints`.

  Returns:
    (...) error per pose, in gt's unit.
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  scale, _, _ = procrustes.similarity_transform(pred, gt)
  p = scale[..., None, None] * pred
  p = p - p[..., root : root + 1, :]
  g = gt - gt[..., root : root + 1, :]
  return mpjpe(p, g, weights=weights, mask=mask)
