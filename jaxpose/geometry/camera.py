"""Camera models in the VideoPose3D conventions (research/data.md §1.4-1.5, videopose3d.md §6).

Frames and units:
  * World: Human3.6M mocap frame, z up, metres. Camera: x right, y down, z forward, metres.
  * Extrinsics: `orientation` is a unit quaternion (w, x, y, z) rotating camera-frame vectors into
    the world frame; `translation` is the camera centre in world coordinates (metres here; the raw
    H36M numbers are mm). X_cam = R(q)^T (X_world - t).
  * Intrinsics: the 9-vector [fx, fy, cx, cy, k1, k2, k3, p1, p2] *normalised by the image width*
    (f / w * 2, c / w * 2 - [1, h / w]), so projections land in normalised screen coordinates where x
    spans [-1, 1] over the image width and y spans [-h/w, h/w].
  * 2.5D (MotionBERT-style H36M data, data.md §2): x, y in pixels, z = depth relative to the root
    scaled by pixels per mm at the root depth; multiplying by the per-frame factor gives ~mm.

Array functions broadcast over leading axes, run under jit/vmap on jax inputs, and keep numpy (and
float64) when every array argument is numpy, so host-side data builders get exact VideoPose3D numbers.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace
from jaxpose.geometry.rotation import quat_conjugate, quat_rotate

H36M_CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
# Subjects whose extrinsics VideoPose3D ships; S2, S3, S4 and S10 come from mmpose (extras).
H36M_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')


def world_to_camera(x: ArrayLike, r_quat: ArrayLike, t: ArrayLike) -> ArrayLike:
  """World -> camera frame.

  Args:
    x: (..., 3) points in world coordinates (metres).
    r_quat: (4,) or broadcastable (..., 4) camera->world quaternion (w, x, y, z).
    t: (3,) or broadcastable (..., 3) camera centre in world coordinates (metres).

  Returns:
    (..., 3) points in the camera frame (metres).
  """
  xp = namespace(x, r_quat, t)
  x, r_quat, t = xp.asarray(x), xp.asarray(r_quat), xp.asarray(t)
  return quat_rotate(quat_conjugate(r_quat), x - t)


def camera_to_world(x: ArrayLike, r_quat: ArrayLike, t: ArrayLike) -> ArrayLike:
  """Camera -> world frame; the inverse of `world_to_camera` (same argument meanings)."""
  xp = namespace(x, r_quat, t)
  x, r_quat, t = xp.asarray(x), xp.asarray(r_quat), xp.asarray(t)
  return quat_rotate(r_quat, x) + t


def _align_params(xp, intrinsics: ArrayLike, x_ndim: int):
  """Inserts axes after the intrinsics' batch axes so (B, 9) broadcasts against (B, ..., 3)."""
  k = xp.asarray(intrinsics)
  extra = x_ndim - k.ndim
  if extra < 0:
    raise ValueError(f'intrinsics has {k.ndim} dims but points only {x_ndim}')
  return k.reshape(k.shape[:-1] + (1,) * extra + k.shape[-1:])


def _split_intrinsics(xp, intrinsics: ArrayLike, x_ndim: int):
  k = _align_params(xp, intrinsics, x_ndim)
  return k[..., 0:2], k[..., 2:4], k[..., 4:7], k[..., 7:9]


def _distort(xp, xy, radial_k, tangential_p):
  """VideoPose3D lens model on normalised image-plane coordinates (..., 2) -> (..., 2)."""
  r2 = xp.sum(xy**2, axis=-1, keepdims=True)
  radial = 1 + r2 * (radial_k[..., 0:1] + r2 * (radial_k[..., 1:2] + r2 * radial_k[..., 2:3]))
  tan = xp.sum(tangential_p * xy, axis=-1, keepdims=True)
  return xy * (radial + tan) + tangential_p * r2


def project_to_2d(x: ArrayLike, intrinsics: ArrayLike) -> ArrayLike:
  """Pinhole projection with H36M radial + tangential distortion (VideoPose3D `project_to_2d`).

  X/Z and Y/Z are clamped to [-1, 1] before distortion, as the official code does (it keeps the
  polynomial from exploding on points far outside the field of view).

  Args:
    x: (..., 3) camera-frame points (any length unit; only ratios matter), Z > 0.
    intrinsics: (9,) or (B, 9) normalised [fx, fy, cx, cy, k1, k2, k3, p1, p2]; a (B, 9) vector applies
      to x[b] (left-aligned broadcasting, e.g. x (B, T, J, 3)).

  Returns:
    (..., 2) normalised screen coordinates.
  """
  xp = namespace(x, intrinsics)
  x = xp.asarray(x)
  f, c, k, p = _split_intrinsics(xp, intrinsics, x.ndim)
  xy = xp.clip(x[..., :2] / x[..., 2:3], -1, 1)
  return f * _distort(xp, xy, k, p) + c


def project_to_2d_linear(x: ArrayLike, intrinsics: ArrayLike) -> ArrayLike:
  """Distortion-free pinhole projection f * clamp(X/Z, -1, 1) + c; arguments as `project_to_2d`."""
  xp = namespace(x, intrinsics)
  x = xp.asarray(x)
  f, c, _, _ = _split_intrinsics(xp, intrinsics, x.ndim)
  return f * xp.clip(x[..., :2] / x[..., 2:3], -1, 1) + c


def unproject(
  uv: ArrayLike, depth: ArrayLike, intrinsics: ArrayLike, *, distorted: bool = True, iters: int = 20
) -> ArrayLike:
  """Back-projects screen points at given depths; inverts `project_to_2d` (or the linear one).

  The distortion is undone by the fixed-point iteration x <- (x_d - p r^2) / (radial + tan), which
  converges for mild lenses such as H36M's inside the image. Points whose X/Z or Y/Z were clamped by
  the projection cannot be recovered.

  Args:
    uv: (..., 2) normalised screen coordinates.
    depth: (...) or (..., 1) camera-frame Z of each point.
    intrinsics: as in `project_to_2d`.
    distorted: invert the distorted model (True) or the linear one (False).
    iters: fixed-point iterations.

  Returns:
    (..., 3) camera-frame points, in the unit of `depth`.
  """
  xp = namespace(uv, depth, intrinsics)
  uv = xp.asarray(uv)
  f, c, k, p = _split_intrinsics(xp, intrinsics, uv.ndim)
  xy_d = (uv - c) / f
  xy = xy_d
  if distorted:
    for _ in range(iters):
      r2 = xp.sum(xy**2, axis=-1, keepdims=True)
      radial = 1 + r2 * (k[..., 0:1] + r2 * (k[..., 1:2] + r2 * k[..., 2:3]))
      tan = xp.sum(p * xy, axis=-1, keepdims=True)
      xy = (xy_d - p * r2) / (radial + tan)
  z = xp.asarray(depth)
  if z.ndim < uv.ndim:
    z = z[..., None]
  z = xp.broadcast_to(z, xy[..., :1].shape)
  return xp.concatenate([xy * z, z], axis=-1)


def _offset(xp, w, h):
  w, h = xp.asarray(w), xp.asarray(h)
  one = xp.ones_like(h / w)
  return xp.stack([one, h / w], axis=-1)


def normalize_screen_coordinates(x: ArrayLike, w: ArrayLike, h: ArrayLike) -> ArrayLike:
  """Pixels -> normalised screen coordinates: x / w * 2 - [1, h / w].

  Args:
    x: (..., 2) pixel coordinates (x right, y down, origin top-left).
    w: image width in pixels; scalar or broadcastable to x.shape[:-1] (e.g. (N, 1) for x (N, J, 2)).
    h: image height in pixels, same shape rules as w.

  Returns:
    (..., 2); x maps [0, w] to [-1, 1], y is scaled by the same factor (keeps the aspect ratio).
  """
  xp = namespace(x, w, h)
  x = xp.asarray(x)
  wc = xp.asarray(w)[..., None]
  return x / wc * 2 - _offset(xp, w, h)


def intrinsics_px_to_norm(k_px: ArrayLike, w: ArrayLike, h: ArrayLike) -> ArrayLike:
  """Batched pixel intrinsics -> VideoPose3D's width-normalised 9-vector (jit-friendly).

  Args:
    k_px: (..., 9) [fx, fy, cx, cy, k1, k2, k3, p1, p2], pixels.
    w: (...) image width in pixels.
    h: (...) image height in pixels.

  Returns:
    (..., 9): f / w * 2, c normalised like `normalize_screen_coordinates`, distortion unchanged.
  """
  xp = namespace(k_px, w, h)
  k = xp.asarray(k_px)
  w = xp.asarray(w).astype(k.dtype)
  h = xp.asarray(h).astype(k.dtype)
  f = k[..., :2] / w[..., None] * 2
  c = normalize_screen_coordinates(k[..., 2:4], w, h)
  return xp.concatenate([f, c, k[..., 4:]], axis=-1)


def image_coordinates(x: ArrayLike, w: ArrayLike, h: ArrayLike) -> ArrayLike:
  """Normalised screen coordinates -> pixels; inverse of `normalize_screen_coordinates`."""
  xp = namespace(x, w, h)
  x = xp.asarray(x)
  wc = xp.asarray(w)[..., None]
  return (x + _offset(xp, w, h)) * wc / 2


def normalize_intrinsics(
  focal_px: ArrayLike,
  center_px: ArrayLike,
  radial: ArrayLike,
  tangential: ArrayLike,
  w: float,
  h: float,
) -> np.ndarray:
  """Pixel intrinsics -> VideoPose3D's normalised 9-vector (host side, numpy).

  Args:
    focal_px: (2,) [fx, fy] in pixels.
    center_px: (2,) [cx, cy] in pixels.
    radial: (3,) [k1, k2, k3].
    tangential: (2,) [p1, p2] (VideoPose3D order; mmpose stores them reversed).
    w: image width in pixels.
    h: image height in pixels.

  Returns:
    (9,) float32 [fx, fy, cx, cy, k1, k2, k3, p1, p2] with f / w * 2 and c / w * 2 - [1, h / w].
  """
  f = np.asarray(focal_px, np.float64) / w * 2
  c = normalize_screen_coordinates(np.asarray(center_px, np.float64), float(w), float(h))
  vec = np.concatenate([f, c, np.asarray(radial, np.float64), np.asarray(tangential, np.float64)])
  return vec.astype(np.float32)


def flip_intrinsics(intrinsics: ArrayLike) -> ArrayLike:
  """Intrinsics of the horizontally mirrored image: negates cx (index 2) and index 7.

  Index 7 is the tangential coefficient that multiplies x (p1 in this module's [.., p1, p2] order;
  research/videopose3d.md calls it "p2"); with x -> -x both changes make the projection of a mirrored
  point the mirror of the projection. This is what VideoPose3D does to a flipped training sample.
  intrinsics: (..., 9) -> (..., 9).
  """
  xp = namespace(intrinsics)
  k = xp.asarray(intrinsics)
  sign = np.ones(9, dtype=k.dtype)
  sign[[2, 7]] = -1
  return k * sign


def image_frame_2p5d(
  pose_cam_mm: ArrayLike,
  focal_px: ArrayLike,
  center_px: ArrayLike,
  root: int = 0,
  box_mm: float = 2000.0,
) -> tuple[ArrayLike, ArrayLike]:
  """Camera-frame 3D -> MotionBERT's "image frame" 3D and its 2.5D factor (data.md §2).

  xy is the distortion-free pinhole projection in pixels; z is (Z - Z_root) times the pixels-per-mm
  ratio at the root depth, where ratio = (projected width of a `box_mm` square centred on the root,
  parallel to the image plane, + 1 px) / box_mm = fx / Z_root + 1 / box_mm. The 2.5D ground truth is
  `pose_img * factor[..., None, None]` with factor = 1 / ratio (mm per pixel).

  Args:
    pose_cam_mm: (..., J, 3) camera-frame points in mm (the +1 px term makes the unit matter).
    focal_px: (2,) or (..., 2) [fx, fy] in pixels, broadcast against the poses' leading axes.
    center_px: (2,) or (..., 2) [cx, cy] in pixels.
    root: root joint index.
    box_mm: side of the reference square (2000 mm in the H36M conversion).

  Returns:
    pose_img: (..., J, 3) pixels (x, y) and root-relative depth in pixels (z).
    factor: (...) mm per pixel.
  """
  xp = namespace(pose_cam_mm, focal_px, center_px)
  x = xp.asarray(pose_cam_mm)
  f = xp.asarray(focal_px)[..., None, :]
  c = xp.asarray(center_px)[..., None, :]
  xy = x[..., :2] / x[..., 2:3] * f + c
  z_root = x[..., root : root + 1, 2:3]
  ratio = (f[..., 0:1] * box_mm / z_root + 1) / box_mm  # (..., 1, 1)
  z = (x[..., 2:3] - z_root) * ratio
  return xp.concatenate([xy, z], axis=-1), 1 / ratio[..., 0, 0]


@functools.cache
def _h36m_json() -> dict[str, Any]:
  path = importlib.resources.files('jaxpose.geometry') / 'data' / 'h36m_cameras.json'
  return json.loads(path.read_text())


def h36m_cameras(include_extra: bool = False) -> dict[str, list[dict[str, Any]]]:
  """Human3.6M cameras per subject, normalised the VideoPose3D way.

  Args:
    include_extra: also return S2, S3, S4 and S10, whose extrinsics come from mmpose's copy of the
      H36M metadata (VideoPose3D has none for them; they have no released 3D).

  Returns:
    {subject: [cam0, cam1, cam2, cam3]} in the order of `H36M_CAMERA_IDS`. Each cam is a dict with
    'id' (str), 'res_w', 'res_h' (int, pixels), 'azimuth' (degrees), 'focal_length' and 'center'
    ((2,) float32 pixels), 'radial_distortion' (3,), 'tangential_distortion' (2,), 'intrinsic' ((9,)
    float32, normalised), 'orientation' ((4,) float32 camera->world quaternion w, x, y, z) and
    'translation' ((3,) float32 camera centre, metres). A fresh copy on every call.
  """
  raw = _h36m_json()
  intr = {c['id']: c for c in raw['intrinsics']}
  extr = {s: v for s, v in raw['extrinsics'].items() if v and 'orientation' in v[0]}
  if include_extra:
    extr.update(raw['extrinsics_extra'])
  out = {}
  for subject, cams in extr.items():
    out[subject] = []
    for e in cams:
      i = intr[e['camera_id']]
      cam = {
        'id': i['id'],
        'res_w': int(i['res_w']),
        'res_h': int(i['res_h']),
        'azimuth': i['azimuth'],
        'focal_length': np.asarray(i['focal_length'], np.float32),
        'center': np.asarray(i['center'], np.float32),
        'radial_distortion': np.asarray(i['radial_distortion'], np.float32),
        'tangential_distortion': np.asarray(i['tangential_distortion'], np.float32),
        'orientation': np.asarray(e['orientation'], np.float32),
        'translation': (np.asarray(e['translation'], np.float64) / 1000).astype(np.float32),
      }
      cam['intrinsic'] = normalize_intrinsics(
        cam['focal_length'],
        cam['center'],
        cam['radial_distortion'],
        cam['tangential_distortion'],
        cam['res_w'],
        cam['res_h'],
      )
      out[subject].append(cam)
  return out
