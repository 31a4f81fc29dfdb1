"""PersPose's perspective rotation (PR) and the rotation helpers it is built from.

Paper: Hao & Li, "PersPose: 3D Human Pose Estimation with Perspective Encoding and Perspective
Rotation", ICCV 2025, arXiv:2508.17239. Official code: github.com/KenAdamsJoseph/PersPose at
1863de7a455700d99280d4ce683efb726e42592b (`common/geometry.py`: `adjust_perspective`, `cal_swing`,
`cal_radian`, `batch_rodrigues`, `rot6d_to_rotmat`, `rotation2swing_twist`); research/perspose.md
§2.1 and §9. Written from the maths and the code's numerics; no code copied.

The perspective rotation turns the camera about its centre so that the ray through a pixel (the
person's bbox centre) becomes the ray through an aim pixel (the principal point, so the person ends
on the optical axis):

  a = normalise(K^-1 [c_obj, 1]),  b = normalise(K^-1 [c_aim, 1])
  R_swing = Rodrigues(normalise(a x b) * angle(a, b))        (R_swing a = b)
  R_twist = Rodrigues(twist * b)                             (in-plane rotation about the aim ray)
  R = R_twist R_swing,   H = K R K^-1                         (pixels -> rotated-camera pixels)

A pure rotation needs no depth, so H is exact for every scene point: if x ~ K X then H x ~ K (R X).
The 3D labels of the rotated view are R X.

Numerics kept from the official code (they matter for parity and for degenerate inputs):
  * Rodrigues goes through a quaternion with angle |aa + 1e-8| (the 1e-8 is added to every
    component before the norm), then renormalises the quaternion.
  * The angle between two vectors uses cos = a.b / (|a| |b| + 1e-8), clamped to +-(1 - 1e-7).
  * Normalisation is torch `F.normalize`: x / max(|x|, eps) (eps 1e-12; 1e-6 in the 6D decoder), so
    a zero cross product (a parallel to b, person already centred) gives the identity, not NaN.
    The antiparallel case also gives the identity, as in the official code.

Every function dispatches on its inputs: numpy in -> numpy out (float64 kept, for host-side data
code), jax in -> jax.numpy (jit/vmap/grad). Shapes broadcast over leading axes (...).
"""

from __future__ import annotations

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

# Official constants (common/geometry.py).
RODRIGUES_EPS = 1e-8  # added to the axis-angle before its norm (axisang2quat)
COS_EPS = 1e-8  # added to |a||b| in cal_radian
COS_CLAMP = 1e-7  # cos clamped to [-1 + 1e-7, 1 - 1e-7] before acos
NORMALIZE_EPS = 1e-12  # torch F.normalize default
ROT6D_EPS = 1e-6  # PersPose's rot6d_to_rotmat


def normalize(x: ArrayLike, eps: float = NORMALIZE_EPS) -> ArrayLike:
  """torch `F.normalize(x, dim=-1, eps)`: x / max(|x|, eps). x: (..., D) -> (..., D).

  Computed as x / sqrt(max(|x|^2, eps^2)) (the same value) so the gradient at x = 0 is finite.
  """
  xp = namespace(x)
  x = xp.asarray(x)
  sq = xp.sum(x * x, axis=-1, keepdims=True)
  return x / xp.sqrt(xp.maximum(sq, eps * eps))


def quat_to_matrix_unnormalized(q: ArrayLike) -> ArrayLike:
  """(w, x, y, z) quaternion, normalised here -> rotation matrix. q: (..., 4) -> (..., 3, 3)."""
  xp = namespace(q)
  q = xp.asarray(q)
  q = q / xp.linalg.norm(q, axis=-1, keepdims=True)
  w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
  w2, x2, y2, z2 = w * w, x * x, y * y, z * z
  rows = [
    [w2 + x2 - y2 - z2, 2 * (x * y - w * z), 2 * (w * y + x * z)],
    [2 * (w * z + x * y), w2 - x2 + y2 - z2, 2 * (y * z - w * x)],
    [2 * (x * z - w * y), 2 * (w * x + y * z), w2 - x2 - y2 + z2],
  ]
  return xp.stack([xp.stack(r, axis=-1) for r in rows], axis=-2)


def rodrigues(axis_angle: ArrayLike) -> ArrayLike:
  """Axis-angle -> rotation matrix exactly as the official `batch_rodrigues`.

  Args:
    axis_angle: (..., 3) radians (direction = axis, norm = angle).

  Returns:
    (..., 3, 3) rotation matrices acting on column vectors. A zero input gives the identity.
  """
  xp = namespace(axis_angle)
  aa = xp.asarray(axis_angle)
  angle = xp.linalg.norm(aa + RODRIGUES_EPS, axis=-1, keepdims=True)
  half = angle * 0.5
  q = xp.concatenate([xp.cos(half), xp.sin(half) * (aa / angle)], axis=-1)
  return quat_to_matrix_unnormalized(q)


def matrix_to_axis_angle(rot: ArrayLike) -> ArrayLike:
  """Rotation matrix -> axis-angle (radians, angle in [0, pi]); numpy float64 stays float64.

  The quaternion is taken from the largest of the four Shepperd candidates (stable everywhere),
  then angle = 2 atan2(|v|, w). rot: (..., 3, 3) -> (..., 3).
  """
  xp = namespace(rot)
  m = xp.asarray(rot)
  m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
  a21, a02, a10 = (
    m[..., 2, 1] - m[..., 1, 2],
    m[..., 0, 2] - m[..., 2, 0],
    m[..., 1, 0] - m[..., 0, 1],
  )
  s01, s02, s12 = (
    m[..., 0, 1] + m[..., 1, 0],
    m[..., 0, 2] + m[..., 2, 0],
    m[..., 1, 2] + m[..., 2, 1],
  )
  diag = xp.stack(
    [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
  )
  cands = xp.stack(
    [
      xp.stack([diag[..., 0], a21, a02, a10], -1),
      xp.stack([a21, diag[..., 1], s01, s02], -1),
      xp.stack([a02, s01, diag[..., 2], s12], -1),
      xp.stack([a10, s02, s12, diag[..., 3]], -1),
    ],
    -2,
  )
  best = xp.argmax(diag, axis=-1)
  q = xp.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
  q = q * xp.where(q[..., :1] < 0, -1.0, 1.0)
  q = q / xp.linalg.norm(q, axis=-1, keepdims=True)
  v = q[..., 1:]
  s = xp.linalg.norm(v, axis=-1, keepdims=True)
  angle = 2 * xp.arctan2(s, q[..., :1])
  return v * xp.where(s > 0, angle / xp.where(s > 0, s, 1.0), 2.0)


def vector_angle(v1: ArrayLike, v2: ArrayLike) -> ArrayLike:
  """Angle between vectors (official `cal_radian`), radians in [acos(1 - 1e-7), acos(-1 + 1e-7)].

  v1, v2: (..., 3) (any norm) -> (...).
  """
  xp = namespace(v1, v2)
  v1, v2 = xp.asarray(v1), xp.asarray(v2)
  cos = xp.sum(v1 * v2, axis=-1) / (
    xp.linalg.norm(v1, axis=-1) * xp.linalg.norm(v2, axis=-1) + COS_EPS
  )
  return xp.arccos(xp.clip(cos, -1 + COS_CLAMP, 1 - COS_CLAMP))


def swing_rotation(v1: ArrayLike, v2: ArrayLike, *, as_matrix: bool = True) -> ArrayLike:
  """The swing (minimal) rotation taking direction v1 to direction v2 (official `cal_swing`).

  R @ normalise(v1) == normalise(v2); the axis is normalise(v1 x v2) (F.normalize semantics, so
  parallel or antiparallel inputs give the identity).

  Args:
    v1, v2: (..., 3), any norm.
    as_matrix: return (..., 3, 3) matrices, else (..., 3) axis-angles (radians).
  """
  xp = namespace(v1, v2)
  v1, v2 = xp.asarray(v1), xp.asarray(v2)
  aa = normalize(xp.cross(v1, v2, axis=-1)) * vector_angle(v1, v2)[..., None]
  return rodrigues(aa) if as_matrix else aa


def perspective_rotation(
  K: ArrayLike, obj_center: ArrayLike, aim_center: ArrayLike, twist_deg: ArrayLike = 0.0
) -> tuple[ArrayLike, ArrayLike]:
  """PersPose's perspective rotation and its image homography (official `adjust_perspective`).

  Args:
    K: (..., 3, 3) intrinsics, pixels.
    obj_center: (..., 2) pixel of the object (bbox centre), full image.
    aim_center: (..., 2) pixel the object's ray is moved to (the principal point (cx, cy), or
      a jittered one at training time).
    twist_deg: (...) in-plane rotation about the aim ray, degrees (0 in the released configs).

  Returns:
    R: (..., 3, 3) rotation of the camera frame: X_rot = R X_cam.
    H: (..., 3, 3) homography K R K^-1: full-image pixels -> rotated-view pixels.
  """
  xp = namespace(K, obj_center, aim_center, twist_deg)
  K = xp.asarray(K)
  k_inv = xp.linalg.inv(K)

  def ray(p):
    p = xp.asarray(p, dtype=K.dtype)
    v = (k_inv @ xp.concatenate([p, xp.ones_like(p[..., :1])], axis=-1)[..., None])[..., 0]
    return v / xp.linalg.norm(v, axis=-1, keepdims=True)

  a, b = ray(obj_center), ray(aim_center)
  r_swing = swing_rotation(a, b)
  twist = xp.asarray(twist_deg, dtype=K.dtype) / 180 * np.pi
  r_twist = rodrigues(twist[..., None] * b)
  R = r_twist @ r_swing
  return R, K @ R @ k_inv


def homography(K: ArrayLike, R: ArrayLike) -> ArrayLike:
  """Image homography of a camera rotation: K R K^-1. K, R: (..., 3, 3) -> (..., 3, 3)."""
  xp = namespace(K, R)
  K = xp.asarray(K)
  return K @ xp.asarray(R) @ xp.linalg.inv(K)


def rot6d_to_rotmat(x: ArrayLike, eps: float = ROT6D_EPS) -> ArrayLike:
  """PersPose's 6D -> rotation matrix (official `rot6d_to_rotmat`, F.normalize with eps 1e-6).

  The 6 numbers are a row-major (3, 2) matrix whose columns a1, a2 give the first two columns:
  b1 = a1 / max(|a1|, eps), b2 = (a2 - (b1.a2) b1) / max(|.|, eps), b3 = b1 x b2.
  (`jaxpose.geometry.rotation.rot6d_to_matrix` adds eps to the norm instead: same for normal input,
  different for degenerate input.)

  Args:
    x: (..., 6).

  Returns:
    (..., 3, 3) with columns (b1, b2, b3).
  """
  xp = namespace(x)
  x = xp.asarray(x)
  m = x.reshape(*x.shape[:-1], 3, 2)
  b1 = normalize(m[..., 0], eps)
  a2 = m[..., 1]
  b2 = normalize(a2 - xp.sum(b1 * a2, axis=-1, keepdims=True) * b1, eps)
  b3 = xp.cross(b1, b2, axis=-1)
  return xp.stack([b1, b2, b3], axis=-1)


def rotation_angle_about(rot: ArrayLike, axis: ArrayLike) -> ArrayLike:
  """Signed angle of a rotation about a unit axis it fixes (a twist). rot (..., 3, 3), axis (..., 3).

  Uses atan2(sin, cos) with sin = vee(R - R^T)/2 . axis and cos = (trace R - 1)/2: radians in
  (-pi, pi], positive counter-clockwise looking down the axis.
  """
  xp = namespace(rot, axis)
  rot, axis = xp.asarray(rot), xp.asarray(axis)
  vee = xp.stack(
    [
      rot[..., 2, 1] - rot[..., 1, 2],
      rot[..., 0, 2] - rot[..., 2, 0],
      rot[..., 1, 0] - rot[..., 0, 1],
    ],
    axis=-1,
  )
  sin = 0.5 * xp.sum(vee * axis, axis=-1)
  cos = 0.5 * (rot[..., 0, 0] + rot[..., 1, 1] + rot[..., 2, 2] - 1)
  return xp.arctan2(sin, cos)


def swing_twist_decompose(twist_axis: ArrayLike, rot: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
  """Splits a rotation into swing then twist (official `rotation2swing_twist`).

  rot = Rodrigues(twist * n') @ swing, where n = normalise(twist_axis), n' = rot n, swing is the
  swing rotation taking n to n' (so the twist is about the *rotated* axis and applied last).
  The official code reads the twist angle through quaternion -> axis-angle with a sign from the
  axis direction; this computes the same angle in closed form (`rotation_angle_about`), so it can
  differ from the official value only by float rounding (and at exactly +-pi by the sign).

  Args:
    twist_axis: (..., 3) any norm.
    rot: (..., 3, 3) rotation.

  Returns:
    twist: (...) radians in (-pi, pi]; swing: (..., 3, 3).
  """
  xp = namespace(twist_axis, rot)
  rot = xp.asarray(rot)
  n = normalize(xp.asarray(twist_axis))
  n_rot = (rot @ n[..., None])[..., 0]
  swing = swing_rotation(n, n_rot)
  twist = rot @ xp.swapaxes(swing, -1, -2)
  return rotation_angle_about(twist, n_rot), swing


def pixel_rays(K: ArrayLike, grid_hw: tuple[int, int], stride: float) -> ArrayLike:
  """PersPose's perspective-encoding rays: the first two components of K^-1 [u, v, 1].

  u = (i + 0.5) * stride, v = (j + 0.5) * stride are the centres of the cells of a (h, w) feature
  grid of the crop (i the column, j the row). For a diagonal K that is ((u - cx)/fx, (v - cy)/fy).

  Args:
    K: (..., 3, 3) crop intrinsics, pixels.
    grid_hw: (h, w) feature-grid size.
    stride: crop pixels per grid cell.

  Returns:
    (..., h, w, 2) rays (x/z, y/z), channel last.
  """
  xp = namespace(K)
  K = xp.asarray(K)
  h, w = grid_hw
  v, u = xp.meshgrid(xp.arange(h, dtype=K.dtype), xp.arange(w, dtype=K.dtype), indexing='ij')
  uv1 = xp.stack([(u + 0.5) * stride, (v + 0.5) * stride, xp.ones_like(u)], axis=-1)
  k_inv = xp.linalg.inv(K)[..., None, None, :2, :]  # (..., 1, 1, 2, 3)
  return xp.sum(k_inv * uv1[..., None, :], axis=-1)
