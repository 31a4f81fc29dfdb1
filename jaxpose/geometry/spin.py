"""SPIN / HMR conventions: the crop camera, Rodrigues, the 49-joint layout's flips and selections.

The HMR family of SMPL regressors (Kanazawa et al., CVPR 2018, arXiv:1712.06584; SPIN,
Kolotouros et al., ICCV 2019, arXiv:1909.12828, github.com/nkolot/SPIN) fixed conventions that DSR
(Dwivedi et al., ICCV 2021, arXiv:2110.03480, github.com/saidwivedi/DSR at
7d55d173192a44ec567864befd2fb20e993098eb, `dsr/utils/geometry.py`, `dsr/core/constants.py`) uses
unchanged; research/dsr.md §2, §5. Written from the spec and the official semantics; no code copied.

Camera. The regressor predicts a weak-perspective camera `cam_weak = (s, tx, ty)` for a square crop
of `img_res` pixels (224). It becomes a perspective translation with a fixed focal length f = 5000 px:
`cam_t = (tx, ty, 2 f / (img_res s + 1e-9))` (metres, camera frame; the body is in metres). Points
project with identity rotation, principal point 0 and focal f, then are divided by img_res / 2, so
`kp2d_norm` lies in [-1, 1] over the crop (x right, y down; pixel u = img_res / 2 (x + 1)). The
renderer uses the same translation with K = [[f, 0, img_res/2], [0, f, img_res/2], [0, 0, 1]].

Rotations. `batch_rodrigues` follows the official route through a quaternion: the angle is the norm
of (theta + 1e-8) (1e-8 added to every component), so a zero vector gives the identity without a
special case and its gradient stays finite. 6D -> matrix is `jaxpose.geometry.rotation
.rot6d_to_matrix` (the two columns of the (3, 2) reshape; output columns b1, b2, b3).

Joints. SPIN's 49 joints are 25 OpenPose joints then 24 "ground-truth" joints (`SPIN_JOINT_NAMES`
in `jaxpose.body.regressors`, which also picks them from the SMPL mesh: `SPIN_JOINT_MAP`). Here are
the index tables that need no body model: the left/right flip permutations of the 24 GT joints, of
all 49 and of the 24 SMPL pose joints, the GT joints' hips (the 3D loss centres on their midpoint)
and the 17/14-joint evaluation subsets of the 24 GT joints.

Functions:
  batch_rodrigues              axis-angle (..., 3) -> (..., 3, 3), the official quaternion route
  weak_to_perspective          (s, tx, ty) -> camera translation (metres)
  perspective_to_weak          the inverse (for ground-truth translations)
  project_points               camera-frame points + translation -> kp2d_norm in [-1, 1]
  estimate_translation         weighted least-squares translation from 3D joints and 2D pixels
  flip_smpl_pose               mirror an axis-angle SMPL pose (72,) left <-> right
"""

from __future__ import annotations

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

FOCAL_LENGTH = 5000.0  # px, SPIN/DSR constants.FOCAL_LENGTH
IMG_RES = 224  # px, side of the square crop
NUM_OPENPOSE = 25  # the 49 joints: 25 OpenPose joints, then 24 ground-truth joints
NUM_GT = 24


def _ints(text: str) -> tuple[int, ...]:
  return tuple(int(i) for i in text.split())


# Left/right permutation of the 24 GT joints (SPIN constants.J24_FLIP_PERM).
J24_FLIP_PERM = _ints('5 4 3 2 1 0 11 10 9 8 7 6 12 13 14 15 16 17 18 19 21 20 23 22')
# ... of the 25 OpenPose joints, then of all 49 (J49_FLIP_PERM).
OPENPOSE_FLIP_PERM = _ints('0 1 5 6 7 2 3 4 8 12 13 14 9 10 11 16 15 18 17 22 23 24 19 20 21')
J49_FLIP_PERM = OPENPOSE_FLIP_PERM + tuple(NUM_OPENPOSE + i for i in J24_FLIP_PERM)
# Left/right permutation of the 24 SMPL joints (SMPL_JOINTS_FLIP_PERM); pose entries 3i..3i+2.
SMPL_JOINTS_FLIP_PERM = _ints('0 2 1 3 5 4 6 8 7 9 11 10 12 14 13 15 17 16 19 18 21 20 23 22')
SMPL_POSE_FLIP_PERM = tuple(3 * i + k for i in SMPL_JOINTS_FLIP_PERM for k in range(3))
# The GT joints' right and left hip (indices into the 24; +25 into the 49): the 3D keypoint loss
# centres both poses on their midpoint.
GT_RIGHT_HIP, GT_LEFT_HIP = 2, 3
# Evaluation subsets of the 24 GT joints (J24_TO_J17; J24_TO_J14 = the 14 LSP joints).
J24_TO_J17 = _ints('0 1 2 3 4 5 6 7 8 9 10 11 12 18 14 16 17')
J24_TO_J14 = J24_TO_J17[:14]


def batch_rodrigues(aa: ArrayLike) -> ArrayLike:
  """Axis-angle -> rotation matrix through a quaternion, as the official `batch_rodrigues`.

  angle = |aa + 1e-8| (the offset on every component), q = (cos(angle/2), sin(angle/2) aa / angle),
  normalised, then the quaternion's matrix. Equal to the Rodrigues formula up to ~1e-8 rad.

  Args:
    aa: (..., 3) axis-angle, radians (the SMPL pose convention).

  Returns:
    (..., 3, 3) rotation matrices acting on column vectors; numpy in -> numpy out.
  """
  xp = namespace(aa)
  aa = xp.asarray(aa)
  angle = xp.sqrt(xp.sum((aa + 1e-8) ** 2, axis=-1, keepdims=True))
  half = 0.5 * angle
  q = xp.concatenate([xp.cos(half), xp.sin(half) * aa / angle], axis=-1)
  q = q / xp.sqrt(xp.sum(q * q, axis=-1, keepdims=True))
  w, x, y, z = (q[..., i] for i in range(4))
  rows = [
    [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (w * y + x * z)],
    [2 * (w * z + x * y), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
    [2 * (x * z - w * y), 2 * (w * x + y * z), w * w - x * x - y * y + z * z],
  ]
  return xp.stack([xp.stack(r, axis=-1) for r in rows], axis=-2)


def weak_to_perspective(
  cam_weak: ArrayLike, focal_length: float = FOCAL_LENGTH, img_res: float = IMG_RES
) -> ArrayLike:
  """Weak-perspective crop camera -> perspective camera translation.

  Args:
    cam_weak: (..., 3) (s, tx, ty): scale and translation in normalised crop units.
    focal_length: px (5000).
    img_res: crop side in px (224).

  Returns:
    (..., 3) translation (tx, ty, 2 f / (img_res s + 1e-9)), metres, camera frame.
  """
  xp = namespace(cam_weak)
  c = xp.asarray(cam_weak)
  tz = 2.0 * focal_length / (img_res * c[..., 0] + 1e-9)
  return xp.stack([c[..., 1], c[..., 2], tz], axis=-1)


def perspective_to_weak(
  cam_t: ArrayLike, focal_length: float = FOCAL_LENGTH, img_res: float = IMG_RES
) -> ArrayLike:
  """Inverse of `weak_to_perspective` (without its 1e-9): (..., 3) metres -> (..., 3) (s, tx, ty)."""
  xp = namespace(cam_t)
  t = xp.asarray(cam_t)
  s = 2.0 * focal_length / (img_res * t[..., 2])
  return xp.stack([s, t[..., 0], t[..., 1]], axis=-1)


def project_points(
  points: ArrayLike,
  cam_t: ArrayLike,
  focal_length: float = FOCAL_LENGTH,
  img_res: float = IMG_RES,
  normalize: bool = True,
) -> ArrayLike:
  """Perspective projection with identity rotation and principal point 0 (official
  `perspective_projection` as the SMPL head calls it, `normalize_joints2d=True`).

  Args:
    points: (..., J, 3) camera-axis-aligned points, metres (body frame before translation).
    cam_t: (..., 3) camera translation, metres (`weak_to_perspective`).
    focal_length: px.
    img_res: crop side, px; with `normalize` the result is divided by img_res / 2.
    normalize: return kp2d_norm in [-1, 1] over the crop (else px relative to the crop centre).

  Returns:
    (..., J, 2) kp2d_norm (x right, y down), or centred pixels when `normalize` is False.
  """
  xp = namespace(points, cam_t)
  p = xp.asarray(points) + xp.asarray(cam_t)[..., None, :]
  uv = focal_length * p[..., :2] / p[..., 2:3]
  return uv / (img_res / 2.0) if normalize else uv


def estimate_translation(
  joints3d: np.ndarray,
  kp2d_px: np.ndarray,
  conf: np.ndarray,
  focal_length: float = FOCAL_LENGTH,
  img_size: float = IMG_RES,
) -> np.ndarray:
  """Camera translation that best projects `joints3d` onto `kp2d_px` (official
  `estimate_translation_np`, used to render ground-truth bodies): weighted linear least squares
  with weights sqrt(conf) on the two equations per joint, principal point at the crop centre.

  Host-side numpy in float64. A singular system returns (1, 1, 1) as the official code does.

  Args:
    joints3d: (..., J, 3) joints, metres, camera-axis aligned (the 24 GT joints officially).
    kp2d_px: (..., J, 2) 2D joints in crop pixels.
    conf: (..., J) confidences (0 drops a joint).
    focal_length: px.
    img_size: crop side, px.

  Returns:
    (..., 3) float32 translations, metres.
  """
  s = np.asarray(joints3d, np.float64)
  uv = np.asarray(kp2d_px, np.float64) - img_size / 2.0
  w = np.sqrt(np.asarray(conf, np.float64))[..., None]  # (..., J, 1)
  # Per joint and axis a (x, y): f * t_a - uv_a * t_z = uv_a * Z - f * S_a.
  z = s[..., 2:3]
  rows = np.zeros((*uv.shape, 3))  # (..., J, 2, 3)
  rows[..., 0, 0] = focal_length
  rows[..., 1, 1] = focal_length
  rows[..., :, 2] = -uv
  rhs = uv * z - focal_length * s[..., :2]  # (..., J, 2)
  a = (w[..., None] * rows).reshape(*uv.shape[:-2], -1, 3)
  b = (w * rhs).reshape(*uv.shape[:-2], -1)
  ata = np.einsum('...ki,...kj->...ij', a, a)
  atb = np.einsum('...ki,...k->...i', a, b)
  out = np.ones((*ata.shape[:-2], 3))
  flat_ata, flat_atb, flat_out = ata.reshape(-1, 3, 3), atb.reshape(-1, 3), out.reshape(-1, 3)
  for i in range(flat_ata.shape[0]):
    try:
      flat_out[i] = np.linalg.solve(flat_ata[i], flat_atb[i])
    except np.linalg.LinAlgError:
      pass
  return flat_out.reshape(out.shape).astype(np.float32)


def flip_smpl_pose(pose: ArrayLike) -> ArrayLike:
  """Mirrors an axis-angle SMPL pose across the x = 0 plane (official `flip_pose`): left and right
  joints swap (`SMPL_POSE_FLIP_PERM`) and the y, z components change sign, so every joint rotation
  R becomes M R M with M = diag(-1, 1, 1).

  Args:
    pose: (..., 72) axis-angle, radians (24 joints x 3).

  Returns:
    (..., 72) the mirrored pose; numpy in -> numpy out.
  """
  xp = namespace(pose)
  p = xp.asarray(pose)[..., list(SMPL_POSE_FLIP_PERM)]
  sign = xp.asarray(np.tile(np.array([1.0, -1.0, -1.0], np.float32), 24), dtype=p.dtype)
  return p * sign
