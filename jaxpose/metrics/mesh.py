"""Mesh and temporal metrics: MPVPE, PA-MPVPE, acceleration error, rigid (similarity) alignment.

Definitions follow PMCE (github.com/kasvii/PMCE @ 0f4075a, `data/PW3D/dataset.py`, `lib/eval_utils.py`,
`lib/coord_utils.py`), which inherits them from Pose2Mesh and VIBE/HMMR:

* MPVPE: mean Euclidean vertex error after aligning both meshes on their root (PMCE: the pelvis
  regressed with the SMPL J_regressor; pass `pred_root`/`gt_root` or align beforehand). DSR compares
  un-aligned model-frame vertices: call it without roots.
* PA-MPVPE: the same after the similarity Procrustes fit of all vertices.
* Acceleration error (VIBE `compute_error_accel`): per frame t in 1..T-2, the mean over joints of
  |(x_{t-1} - 2 x_t + x_{t+1})_pred - (..)_gt|, in input unit per frame^2 (mm/frame^2 in the papers).
  `accel_valid` gives VIBE's visibility rule (a frame counts only when it and its two neighbours are
  visible). PMCE pads each sequence's T-2 values with a 0 at both ends, averages over T and weights
  sequences by T, i.e. sums the (T-2) values over all sequences and divides by the total frame count.
* rigid_align: PMCE's `rigid_align` (despite the name a similarity transform: scale, rotation,
  translation; reflections excluded), the same fit as `jaxpose.geometry.procrustes.align`.

Per-sample outputs ((...,) or (..., T-2)) as the rest of `jaxpose.metrics`; reduce on the host.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.geometry import procrustes
from jaxpose.metrics.pose import joint_errors


def rigid_align(pred: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """Similarity-aligns pred to gt (PMCE `rigid_align`). (..., N, 3) -> (..., N, 3) in gt's frame."""
  return procrustes.align(pred, gt, scale=True)


def mpvpe(
  pred: ArrayLike,
  gt: ArrayLike,
  *,
  pred_root: ArrayLike | None = None,
  gt_root: ArrayLike | None = None,
) -> jnp.ndarray:
  """Mean per-vertex position error.

  Args:
    pred: (..., V, 3) predicted vertices.
    gt: (..., V, 3) ground-truth vertices, same unit.
    pred_root: optional (..., 3) root subtracted from pred (e.g. the regressed pelvis).
    gt_root: optional (..., 3) root subtracted from gt.

  Returns:
    (...) mean vertex error, in the input unit.
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  if pred_root is not None:
    pred = pred - jnp.asarray(pred_root)[..., None, :]
  if gt_root is not None:
    gt = gt - jnp.asarray(gt_root)[..., None, :]
  return joint_errors(pred, gt).mean(axis=-1)


def pa_mpvpe(pred: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """MPVPE after the similarity Procrustes alignment of all vertices. (..., V, 3) -> (...)."""
  gt = jnp.asarray(gt)
  return joint_errors(rigid_align(pred, gt), gt).mean(axis=-1)


def accel_error(pred: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """Acceleration error per frame (VIBE / PMCE `compute_error_accel`).

  Args:
    pred: (..., T, J, 3) predicted joint (or vertex) sequences; time is axis -3, T >= 3.
    gt: (..., T, J, 3) ground truth, same unit.

  Returns:
    (..., T-2) mean over J of the second-difference error, in input unit per frame^2.
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)

  def second_diff(x):
    return x[..., :-2, :, :] - 2 * x[..., 1:-1, :, :] + x[..., 2:, :, :]

  return joint_errors(second_diff(pred), second_diff(gt)).mean(axis=-1)


def accel_valid(visible: ArrayLike) -> jnp.ndarray:
  """VIBE's validity of each acceleration frame. visible (..., T) bool -> (..., T-2) bool.

  Frame t (of the T-2) is valid when frames t, t+1 and t+2 are all visible.
  """
  v = jnp.asarray(visible, bool)
  return v[..., :-2] & v[..., 1:-1] & v[..., 2:]
