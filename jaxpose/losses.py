"""Training losses as composable, per-sample terms.

Every term has the signature `term(pred, batch, **kw) -> (B,)`: one value per sample, so the
engine can mask padded rows and weight terms before reducing. The registry is this module: a
config names terms by function name (`method.loss.velocity = 20.0`) and the engine looks them up
with `get(name)`; adding a loss is adding a function to `TERMS` here, never an edit to the loop.

Shapes: pred, pose3d_cam (B, T, J, 3) metres, root-relative; kp2d_norm (B, T, J, C).

The per-joint metrics these build on live in `jaxpose.metrics`; the terms only pick the batch
fields and reduce over time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxpose import metrics
from jaxpose.geometry import camera

# MixSTE / D3DP per-joint weights in H36M-17 order (feet and wrists heavy); see research/mixste.md.
MIXSTE_JOINT_WEIGHTS = (
  1.0,
  1.0,
  2.5,
  2.5,
  1.0,
  2.5,
  2.5,
  1.0,
  1.0,
  1.0,
  1.5,
  1.5,
  4.0,
  4.0,
  1.5,
  4.0,
  4.0,
)


def _time_mean(x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """(B, T) -> (B,), averaging over the frames where `mask` (B, T) is True (all if None)."""
  x = x.reshape(x.shape[0], -1)
  if mask is None:
    return x.mean(axis=1)
  m = mask.reshape(mask.shape[0], -1).astype(x.dtype)
  return (x * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)


def _frames(batch: Mapping[str, jax.Array]) -> jax.Array | None:
  """(B, T) frame mask: padded frames (sequences shorter than the window) are not trained on."""
  return batch.get('valid')


def _pairs(batch: Mapping[str, jax.Array]) -> jax.Array | None:
  """(B, T-1) mask of consecutive valid frame pairs, for terms on first differences."""
  v = batch.get('valid')
  return None if v is None else v[:, 1:] & v[:, :-1]


def mpjpe(pred: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
  """Mean per-joint position error, (B,) in the unit of the targets."""
  return _time_mean(metrics.mpjpe(pred, batch['pose3d_cam']), _frames(batch))


def w_mpjpe(pred: jax.Array, batch: Mapping[str, jax.Array], joint_weights=MIXSTE_JOINT_WEIGHTS):
  """Weighted MPJPE: mean over T, J of w_j * ||pred - gt|| (MixSTE, D3DP). (B,)"""
  w = jnp.asarray(joint_weights, pred.dtype)
  err = metrics.joint_errors(pred, batch['pose3d_cam'])  # (B, T, J)
  return _time_mean((err * w).mean(axis=-1), _frames(batch))


def n_mpjpe(pred: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
  """MPJPE after the per-frame optimal scale of the prediction (VideoPose3D formula). (B,)"""
  return _time_mean(metrics.n_mpjpe(pred, batch['pose3d_cam']), _frames(batch))


def velocity(pred: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
  """Mean per-joint velocity error over first differences in time (MPJVE). (B,)"""
  return _time_mean(metrics.mpjve(pred, batch['pose3d_cam']), _pairs(batch))


def temporal_consistency(
  pred: jax.Array, batch: Mapping[str, jax.Array], joint_weights=MIXSTE_JOINT_WEIGHTS
) -> jax.Array:
  """MixSTE TC loss: mean of w_j * (pred_{t+1} - pred_t)^2, elementwise (squared, not a norm). (B,)"""
  w = jnp.asarray(joint_weights, pred.dtype)[:, None]
  d = jnp.diff(pred, axis=1) ** 2 * w  # (B, T-1, J, 3), a smoothness prior on the prediction
  return _time_mean(d.mean(axis=(-2, -1)), _pairs(batch))


def reprojection_2d(pred: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
  """2D reprojection loss: project root-relative `pred` (placed at the ground-truth root depth)
  through the camera and compare with the input 2D keypoints in normalised screen units. (B,)

  Needs `cam_intrinsics (B, 9)` pixels, `res_w (B,)`, `res_h (B,)`, `pose3d_root (B, T, 1, 3)`.
  """
  root = batch['pose3d_root']
  cam = camera.intrinsics_px_to_norm(batch['cam_intrinsics'], batch['res_w'], batch['res_h'])
  proj = camera.project_to_2d(pred + root, cam[:, None, None, :])
  err = metrics.joint_errors(proj, batch['kp2d_norm'][..., :2])  # (B, T, J)
  return _time_mean(err.mean(axis=-1), _frames(batch))


TERMS: dict[str, Callable[..., jax.Array]] = {
  'mpjpe': mpjpe,
  'w_mpjpe': w_mpjpe,
  'n_mpjpe': n_mpjpe,
  'velocity': velocity,
  'temporal_consistency': temporal_consistency,
  'reprojection_2d': reprojection_2d,
}


def get(name: str) -> Callable[..., jax.Array]:
  if name not in TERMS:
    raise ValueError(f'Unknown loss term {name!r}; valid terms: {", ".join(TERMS)}')
  return TERMS[name]


def combine(weights: Mapping[str, float], pred: jax.Array, batch: Mapping[str, jax.Array]):
  """Weighted sum of the non-zero terms. Returns (total (B,), {name: (B,)})."""
  parts = {k: get(k)(pred, batch) for k, w in weights.items() if w}
  total = sum(w * parts[k] for k, w in weights.items() if w)
  return total, parts
