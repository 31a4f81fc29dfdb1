"""Batched rotation conversions: quaternion, axis-angle, 6D and 3x3 matrix, plus quaternion slerp.

Conventions (shared with VideoPose3D's camera code, see research/videopose3d.md §6):
  * Quaternions are (w, x, y, z), Hamilton product, unit norm; q and -q are the same rotation.
  * Matrices act on column vectors: v_rot = R @ v. `quat_to_matrix(q) @ v == quat_rotate(q, v)`.
  * Axis-angle is a 3-vector whose direction is the axis and whose norm is the angle in radians
    (the SMPL pose convention).
  * 6D is the first two *columns* of R, laid out as R[:, :2] flattened row-major, i.e. the (3, 2)
    reshape used by SPIN / DSR / PersPose `rot6d_to_rotmat` (research/dsr.md §2, pitfall 3).

Every function broadcasts over leading axes (...), and is jit/vmap/grad friendly:
singular points (zero angle, antipodal slerp) are handled with `jnp.where` on safe values so the
gradients stay finite. Numpy inputs give jax arrays, except `quat_rotate` and `quat_conjugate`, which
keep numpy (and float64) for host-side camera code.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

Array = jnp.ndarray

# Below this angle (rad) the Taylor expansions of sin(x)/x are used; float32 sin is exact enough.
_SMALL_ANGLE = 1e-4


def _cross(a: Array, b: Array) -> Array:
  return namespace(a, b).cross(a, b, axis=-1)


def quat_normalize(q: ArrayLike) -> Array:
  """Unit-normalises quaternions. q: (..., 4) -> (..., 4)."""
  q = jnp.asarray(q)
  return q / jnp.linalg.norm(q, axis=-1, keepdims=True)


def quat_conjugate(q: ArrayLike) -> Array:
  """Conjugate (the inverse for unit quaternions). q: (..., 4) (w, x, y, z) -> (..., 4).

  numpy in, numpy out (see `_array.namespace`).
  """
  xp = namespace(q)
  q = xp.asarray(q)
  return xp.concatenate([q[..., :1], -q[..., 1:]], axis=-1)


def quat_multiply(q: ArrayLike, r: ArrayLike) -> Array:
  """Hamilton product q * r (apply r first, then q). q, r: (..., 4) broadcastable -> (..., 4)."""
  q, r = jnp.asarray(q), jnp.asarray(r)
  w1, v1 = q[..., :1], q[..., 1:]
  w2, v2 = r[..., :1], r[..., 1:]
  w = w1 * w2 - jnp.sum(v1 * v2, axis=-1, keepdims=True)
  v = w1 * v2 + w2 * v1 + _cross(v1, v2)
  return jnp.concatenate([w, v], axis=-1)


def quat_rotate(q: ArrayLike, v: ArrayLike) -> Array:
  """Rotates vectors by unit quaternions.

  Uses v' = v + 2 (w (u x v) + u x (u x v)) with u = q.xyz, which avoids building matrices and equals
  VideoPose3D's `qrot` numerically.

  Args:
    q: (..., 4) unit quaternions (w, x, y, z), broadcastable against v's leading axes.
    v: (..., 3) vectors.

  Returns:
    (..., 3) rotated vectors; numpy if both inputs are numpy (float64 kept).
  """
  xp = namespace(q, v)
  q, v = xp.asarray(q), xp.asarray(v)
  w, u = q[..., :1], q[..., 1:]
  u = xp.broadcast_to(u, xp.broadcast_shapes(u.shape, v.shape))
  uv = _cross(u, xp.broadcast_to(v, u.shape))
  uuv = _cross(u, uv)
  return v + 2.0 * (w * uv + uuv)


def quat_to_matrix(q: ArrayLike) -> Array:
  """Unit quaternion (..., 4) (w, x, y, z) -> rotation matrix (..., 3, 3)."""
  q = quat_normalize(q)
  w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
  rows = [
    [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
  ]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def matrix_to_quat(m: ArrayLike) -> Array:
  """Rotation matrix (..., 3, 3) -> unit quaternion (..., 4) with w >= 0.

  Branch-free Shepperd method: the four candidate solutions are computed and the one built from the
  largest diagonal term is kept, which is numerically stable for every rotation.
  """
  m = jnp.asarray(m)
  m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
  trace = m00 + m11 + m22
  # Candidate k has its k-th component (w, x, y, z) equal to 4 * that component^2 / (...).
  cands = jnp.stack(
    [
      jnp.stack(
        [
          1 + trace,
          m[..., 2, 1] - m[..., 1, 2],
          m[..., 0, 2] - m[..., 2, 0],
          m[..., 1, 0] - m[..., 0, 1],
        ],
        -1,
      ),
      jnp.stack(
        [
          m[..., 2, 1] - m[..., 1, 2],
          1 + m00 - m11 - m22,
          m[..., 0, 1] + m[..., 1, 0],
          m[..., 0, 2] + m[..., 2, 0],
        ],
        -1,
      ),
      jnp.stack(
        [
          m[..., 0, 2] - m[..., 2, 0],
          m[..., 0, 1] + m[..., 1, 0],
          1 - m00 + m11 - m22,
          m[..., 1, 2] + m[..., 2, 1],
        ],
        -1,
      ),
      jnp.stack(
        [
          m[..., 1, 0] - m[..., 0, 1],
          m[..., 0, 2] + m[..., 2, 0],
          m[..., 1, 2] + m[..., 2, 1],
          1 - m00 - m11 + m22,
        ],
        -1,
      ),
    ],
    axis=-2,
  )  # (..., 4 candidates, 4)
  diag = jnp.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
  best = jnp.argmax(diag, axis=-1)
  q = jnp.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
  q = quat_normalize(q)
  return jnp.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quat(aa: ArrayLike) -> Array:
  """Axis-angle (..., 3) radians -> unit quaternion (..., 4) (w, x, y, z)."""
  aa = jnp.asarray(aa)
  sq = jnp.sum(aa * aa, axis=-1, keepdims=True)
  small = sq < _SMALL_ANGLE**2
  angle = jnp.sqrt(jnp.where(small, 1.0, sq))
  half = 0.5 * angle
  # sin(a/2)/a ~ 1/2 - a^2/48 near zero; the safe sqrt keeps grad finite at aa = 0.
  k = jnp.where(small, 0.5 - sq / 48.0, jnp.sin(half) / angle)
  w = jnp.where(small, 1.0 - sq / 8.0, jnp.cos(half))
  return jnp.concatenate([w, aa * k], axis=-1)


def quat_to_axis_angle(q: ArrayLike) -> Array:
  """Unit quaternion (..., 4) -> axis-angle (..., 3) with angle in [0, pi]."""
  q = quat_normalize(q)
  q = jnp.where(q[..., :1] < 0, -q, q)
  w, v = q[..., :1], q[..., 1:]
  sin_half_sq = jnp.sum(v * v, axis=-1, keepdims=True)
  small = sin_half_sq < _SMALL_ANGLE**2
  sin_half = jnp.sqrt(jnp.where(small, 1.0, sin_half_sq))
  angle = 2.0 * jnp.arctan2(sin_half, w)
  # angle / sin(angle/2) = 2 atan(s/w) / s ~ 2/w - 2 s^2 / (3 w^3) for small s = sin(angle/2).
  k = jnp.where(small, 2.0 / w - 2.0 * sin_half_sq / (3.0 * w**3), angle / sin_half)
  return v * k


def axis_angle_to_matrix(aa: ArrayLike) -> Array:
  """Axis-angle (..., 3) radians -> rotation matrix (..., 3, 3) (Rodrigues)."""
  return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: ArrayLike) -> Array:
  """Rotation matrix (..., 3, 3) -> axis-angle (..., 3) radians, angle in [0, pi]."""
  return quat_to_axis_angle(matrix_to_quat(m))


def rot6d_to_matrix(x: ArrayLike, eps: float = 0.0) -> Array:
  """6D representation (..., 6) -> rotation matrix (..., 3, 3) by Gram-Schmidt.

  The 6 numbers are read as a (3, 2) matrix whose columns a1, a2 give R's first two columns
  (b1 = a1/|a1|, b2 = normalised a2 minus its b1 component, b3 = b1 x b2).

  Args:
    x: (..., 6) unnormalised 6D rotation.
    eps: added to the norms before dividing (PersPose uses 1e-6; SPIN/DSR use 0 via F.normalize's
      clamp, which only matters for degenerate inputs).

  Returns:
    (..., 3, 3) rotation matrices with columns (b1, b2, b3).
  """
  x = jnp.asarray(x).reshape(*jnp.shape(x)[:-1], 3, 2)
  a1, a2 = x[..., 0], x[..., 1]
  b1 = a1 / (jnp.linalg.norm(a1, axis=-1, keepdims=True) + eps)
  a2 = a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1
  b2 = a2 / (jnp.linalg.norm(a2, axis=-1, keepdims=True) + eps)
  b3 = _cross(b1, b2)
  return jnp.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(m: ArrayLike) -> Array:
  """Rotation matrix (..., 3, 3) -> 6D (..., 6): the first two columns, (3, 2) flattened row-major."""
  m = jnp.asarray(m)
  return m[..., :, :2].reshape(*m.shape[:-2], 6)


def quat_slerp(q0: ArrayLike, q1: ArrayLike, t: ArrayLike) -> Array:
  """Spherical linear interpolation along the shorter arc.

  Args:
    q0: (..., 4) unit quaternions at t = 0.
    q1: (..., 4) unit quaternions at t = 1, broadcastable with q0.
    t: interpolation parameter, scalar or broadcastable to (...), typically in [0, 1].

  Returns:
    (..., 4) unit quaternions. Nearly parallel inputs fall back to normalised lerp (exact in the limit).
  """
  q0, q1 = jnp.asarray(q0), jnp.asarray(q1)
  t = jnp.asarray(t, dtype=jnp.result_type(q0, q1))[..., None]
  dot = jnp.sum(q0 * q1, axis=-1, keepdims=True)
  # q and -q are the same rotation: flip one so the path is the short one.
  q1 = jnp.where(dot < 0, -q1, q1)
  dot = jnp.abs(dot)
  near = dot > 1.0 - 1e-6
  theta = jnp.arccos(jnp.clip(jnp.where(near, 0.5, dot), -1.0, 1.0))
  sin_theta = jnp.sin(theta)
  w0 = jnp.where(near, 1.0 - t, jnp.sin((1.0 - t) * theta) / sin_theta)
  w1 = jnp.where(near, t, jnp.sin(t * theta) / sin_theta)
  return quat_normalize(w0 * q0 + w1 * q1)
