"""Pure per-window transforms `(example, ...) -> example` on host numpy arrays.

A window example (what `pipeline.WindowSource` yields) holds:
  kp2d_px (T, J2, 2) pixels, kp2d_conf (T, J2), pose3d_cam (T_out, J3, 3) camera frame,
  valid / owned (T_out,) bool, frame_idx (T_out,) int32, scale_2_5d (T_out,) float32,
  seq_id () int32, cam_intrinsics (9,) pixels, res_w / res_h () int32.
After `normalize_2d`, `add_confidence` and `root_relative` it holds kp2d_norm (T, J2, C_in) in
normalised screen coordinates (x in [-1, 1] across the image width, y scaled alike) and a
root-relative pose3d_cam. `flip` mirrors an example horizontally; `random_flip` does it with
probability p from a per-element numpy Generator (grain `random_map`), so augmentation is
reproducible for a seed whatever the worker count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxpose.data import bodies
from jaxpose.geometry import camera, skeleton

Example = dict[str, Any]


def normalize_2d(ex: Example) -> Example:
  """kp2d_px (T, J, 2) pixels -> kp2d_norm (T, J, 2) = px / w * 2 - [1, h / w] (VideoPose3D
  screen normalisation; w, h = res_w, res_h pixels). kp2d_px is replaced."""
  out = {k: v for k, v in ex.items() if k != 'kp2d_px'}
  out['kp2d_norm'] = camera.normalize_screen_coordinates(
    ex['kp2d_px'], float(ex['res_w']), float(ex['res_h'])
  ).astype(np.float32)
  return out


def add_confidence(ex: Example, use_conf: bool) -> Example:
  """kp2d_norm (T, J, 2) + kp2d_conf (T, J) in [0, 1] -> kp2d_norm (T, J, 3) if `use_conf`, else
  unchanged (T, J, 2); kp2d_conf is dropped either way."""
  out = {k: v for k, v in ex.items() if k != 'kp2d_conf'}
  if use_conf:
    conf = np.asarray(ex['kp2d_conf'], np.float32)[..., None]
    out['kp2d_norm'] = np.concatenate([ex['kp2d_norm'], conf], axis=-1)
  return out


def root_relative(ex: Example, root: int) -> Example:
  """pose3d_cam minus its root joint (the root becomes 0); units unchanged (metres). The root
  trajectory is kept as pose3d_root (T, 1, 3), for losses that reproject through the camera.
  pose3d_cam: (T, J, 3); `root`: the root joint's index."""
  out = dict(ex)
  p = np.asarray(ex['pose3d_cam'], np.float32)
  out['pose3d_root'] = p[..., int(root) : int(root) + 1, :].copy()
  out['pose3d_cam'] = skeleton.root_relative(p, int(root)).astype(np.float32)
  return out


def _negate_x(p: np.ndarray) -> np.ndarray:
  """Mirrors a trajectory (..., 1, 3): the root has no left/right partner, only x changes sign."""
  return np.asarray(p) * np.asarray([-1.0, 1.0, 1.0], np.float32)


def flip_intrinsics_px(k: np.ndarray, res_w: np.ndarray | float) -> np.ndarray:
  """Pixel intrinsics of the mirrored image: cx -> w - cx and p1 -> -p1 (k: (..., 9)).

  With VideoPose3D's lens model, projecting mirrored 3D (x -> -x) with these gives the mirrored
  pixels (u -> w - u); it is `geometry.camera.flip_intrinsics` in pixel units. All-zero (unknown)
  intrinsics stay zero.
  """
  k = np.array(k, np.float32, copy=True)
  known = np.any(k != 0, axis=-1)
  k[..., 2] = np.where(known, np.asarray(res_w, np.float32) - k[..., 2], 0.0)
  k[..., 7] = -k[..., 7]
  return k


def flip(ex: Example, layout_2d: str, layout_3d: str) -> Example:
  """Horizontal mirror: negates x of kp2d_norm and pose3d_cam and swaps left/right joints.

  Args:
    ex: a normalised example (kp2d_norm present; pose3d_cam camera-frame or root-relative).
    layout_2d: skeleton layout of kp2d_norm (its flip pairs are used).
    layout_3d: skeleton layout of pose3d_cam.

  Returns:
    The mirrored example; cam_intrinsics are mirrored too (`flip_intrinsics_px`), and SMPL-format
    body keys (`bodies.flip_body`).
  """
  out = bodies.flip_body(ex)
  out['kp2d_norm'] = skeleton.flip_pose(ex['kp2d_norm'], layout_2d)
  out['pose3d_cam'] = skeleton.flip_pose(ex['pose3d_cam'], layout_3d)
  if 'pose3d_root' in ex:
    out['pose3d_root'] = _negate_x(ex['pose3d_root'])
  if 'cam_intrinsics' in ex:
    out['cam_intrinsics'] = flip_intrinsics_px(ex['cam_intrinsics'], ex['res_w'])
  return out


def random_flip(
  ex: Example, rng: np.random.Generator, layout_2d: str, layout_3d: str, p: float = 0.5
) -> Example:
  """`flip` with probability p (a numpy Generator `rng` decides); shapes as `flip`."""
  return flip(ex, layout_2d, layout_3d) if rng.random() < p else ex


def flip_batch(
  batch: Example,
  skeleton_2d: str | skeleton.Skeleton,
  skeleton_3d: str | skeleton.Skeleton | None = None,
) -> Example:
  """Mirrors a batch for test-time flip augmentation.

  Args:
    batch: dict with kp2d_norm (B, T, J2, C) and optionally pose3d_cam (B, T_out, J3, 3) and
      cam_intrinsics (B, 9) with res_w (B,).
    skeleton_2d: layout of kp2d_norm.
    skeleton_3d: layout of pose3d_cam (defaults to skeleton_2d).

  Returns:
    A new dict with those entries mirrored (x negated, left/right swapped; body_rotmat and
    body_transl by `bodies.flip_body`); other keys shared. Un-flip predictions with
    `jaxpose.geometry.flip_pose(pred, skeleton_3d)` (an involution).
  """
  out = bodies.flip_body(batch)
  out['kp2d_norm'] = skeleton.flip_pose(batch['kp2d_norm'], skeleton_2d)
  if 'pose3d_cam' in batch:
    out['pose3d_cam'] = skeleton.flip_pose(batch['pose3d_cam'], skeleton_3d or skeleton_2d)
  if 'pose3d_root' in batch:
    out['pose3d_root'] = _negate_x(batch['pose3d_root'])
  if 'pose3d_cam_window' in batch:
    out['pose3d_cam_window'] = skeleton.flip_pose(
      batch['pose3d_cam_window'], skeleton_3d or skeleton_2d
    )
  if 'cam_intrinsics' in batch and 'res_w' in batch:
    out['cam_intrinsics'] = flip_intrinsics_px(batch['cam_intrinsics'], np.asarray(batch['res_w']))
  return out
