"""EpipolarPose: the joint-location loss, decoding of integral outputs and the patch labels.

Pure functions for the EpipolarPose method (Kocabas, Karagoz, Akbas, CVPR 2019, arXiv:1903.02330;
official code github.com/mkocabas/EpipolarPose at 299ccb0, research/epipolarpose.md §2, §3, §10).
The network is `jaxpose.models.epipolarpose`; the trainer hooks (`loss_fn`, `predict`) are wired
later from these pieces. Written from the spec; no code copied.

Coordinates (the official label space, `lib/core/integral_loss.py`, `lib/utils/img_utils.py`):
  pose_norm  (B, J, 3) x = u_patch / P - 0.5, y = v_patch / P - 0.5, z = z_patch / P with
             z_patch = (Z - Z_root) / (R * scale) * P: P = patch side (256 px), R = depth range of
             the 3D box (2000 mm), scale = the crop's scale augmentation (1 at eval).
  patch      (B, J, 3) u, v in patch pixels and z_patch (`decode_patch`; the official
             `get_joint_location_result` without its score column).
  camera     (B, J, 3) camera frame in the unit of R and of the root depth (mm officially):
             Z = z_norm * R + Z_root (GT root depth), X, Y back-projected through the crop's
             intrinsics (`decode_camera`).

Functions:
  smooth_l1, joint_location_loss_per_sample, joint_location_loss   SmoothL1JointLocationLoss
  decode_patch, decode_camera                                       evaluation decoding
  encode_patch_labels                                               patch px + depth -> labels
  patch_labels_from_world                                           get_batch_labels_from_global_coords

Deviations: the labels are computed in float64 numpy (official: float64 then float32); the crop
affine is rebuilt from the same three points as `cv2.getAffineTransform` with a linear solve.
Projection uses `jaxpose.geometry.camera.project_to_2d_linear`, which clamps X/Z and Y/Z to
[-1, 1] (points more than 45 degrees off-axis, never inside a crop); the official code does not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry import camera

PATCH_SIZE = 256
DEPTH_RANGE_MM = 2000.0


# ------------------------------------------------------------------------------------------------
# loss


def smooth_l1(diff: jax.Array, beta: float = 1.0) -> jax.Array:
  """Elementwise Smooth-L1 (Huber) of a difference: 0.5 d^2 / beta if |d| < beta, else |d| - beta/2.

  With beta = 1 (EpipolarPose) this is `torch.where(|d| < 1, 0.5 d^2, |d| - 0.5)`.
  """
  a = jnp.abs(diff)
  return jnp.where(a < beta, 0.5 * diff**2 / beta, a - 0.5 * beta)


def joint_location_loss_per_sample(
  pose_norm: jax.Array, label_norm: jax.Array, label_weight: jax.Array, beta: float = 1.0
) -> jax.Array:
  """Weighted Smooth-L1 summed over joints and coordinates.

  Args:
    pose_norm: (B, J, 3) predicted normalised coordinates (or flattened (B, 3J)).
    label_norm: same shape, targets (`encode_patch_labels`).
    label_weight: same shape, per-coordinate weights (visibility, x Z_WEIGHT on z).
    beta: Smooth-L1 threshold (1).

  Returns:
    (B,) per-sample loss; its batch mean is the official loss (sum / batch size).
  """
  b = pose_norm.shape[0]
  per = smooth_l1(pose_norm - label_norm, beta) * label_weight
  return jnp.sum(per.reshape(b, -1), axis=-1)


def joint_location_loss(
  pose_norm: jax.Array, label_norm: jax.Array, label_weight: jax.Array, beta: float = 1.0
) -> jax.Array:
  """Official `SmoothL1JointLocationLoss` (size_average): sum of weighted Smooth-L1 / batch size.

  Shapes as `joint_location_loss_per_sample`; returns a scalar.
  """
  return jnp.mean(joint_location_loss_per_sample(pose_norm, label_norm, label_weight, beta))


# ------------------------------------------------------------------------------------------------
# decoding


def decode_patch(pose_norm: ArrayLike, patch_size: float = PATCH_SIZE) -> jax.Array:
  """Normalised integral output -> patch coordinates (official `get_joint_location_result`).

  Args:
    pose_norm: (B, J, 3) normalised (x, y, z).
    patch_size: P, side of the square input crop in pixels (256).

  Returns:
    (B, J, 3): u = (x + 0.5) P, v = (y + 0.5) P (patch pixels), z_patch = z P.
  """
  p = jnp.asarray(pose_norm)
  return jnp.concatenate([(p[..., :2] + 0.5) * patch_size, p[..., 2:] * patch_size], axis=-1)


def decode_camera(
  pose_norm: ArrayLike,
  k_crop: ArrayLike,
  root_depth: ArrayLike,
  *,
  depth_range: float = DEPTH_RANGE_MM,
  patch_size: float = PATCH_SIZE,
) -> jax.Array:
  """Normalised integral output -> camera-frame 3D with the ground-truth root depth.

  The official evaluation maps the patch (u, v) back to the image with the inverse crop affine,
  sets Z = z_patch / P * R + Z_root and back-projects X = (u - c_x) / f_x * Z, Y likewise. With
  the crop's intrinsics K_crop = A_crop @ K this is Z * K_crop^-1 [u_patch, v_patch, 1].

  Args:
    pose_norm: (B, J, 3) normalised (x, y, z).
    k_crop: (B, 3, 3) projection into the patch (`K_crop` of the image batch contract).
    root_depth: (B,) or (B, 1) ground-truth root depth Z_root, in the unit of `depth_range`.
    depth_range: R, depth extent of the normalised z (2000.0 mm officially; 2.0 for metres).
    patch_size: P (256).

  Returns:
    (B, J, 3) camera-frame points (absolute, unit of `depth_range`); subtract the root for the
    root-relative pose.
  """
  p = jnp.asarray(pose_norm)
  uvz = decode_patch(p, patch_size)
  z = p[..., 2] * depth_range + jnp.reshape(jnp.asarray(root_depth), (p.shape[0], 1))
  uv1 = jnp.concatenate([uvz[..., :2], jnp.ones_like(uvz[..., :1])], axis=-1)
  rays = jnp.einsum('bij,bnj->bni', jnp.linalg.inv(jnp.asarray(k_crop)), uv1)
  return rays / rays[..., 2:3] * z[..., None]


# ------------------------------------------------------------------------------------------------
# labels (host side, numpy)


def encode_patch_labels(
  uv_patch: ArrayLike,
  z_rel: ArrayLike,
  scale: ArrayLike = 1.0,
  *,
  depth_range: float = DEPTH_RANGE_MM,
  patch_size: float = PATCH_SIZE,
) -> np.ndarray:
  """Patch pixels and root-relative depth -> normalised labels (`generate_joint_location_label`).

  Args:
    uv_patch: (B, J, 2) joints in patch pixels.
    z_rel: (B, J) Z - Z_root, unit of `depth_range`.
    scale: (B,) or scalar crop scale augmentation (the box covers R * scale).
    depth_range: R (2000.0 mm).
    patch_size: P (256).

  Returns:
    (B, J, 3) float64: (u / P - 0.5, v / P - 0.5, z_rel / (R scale)).
  """
  uv = np.asarray(uv_patch, np.float64)
  s = np.reshape(np.asarray(scale, np.float64), (-1, 1)) if np.ndim(scale) else float(scale)
  z = np.asarray(z_rel, np.float64) / (depth_range * s) * patch_size
  return np.concatenate([uv / patch_size - 0.5, (z / patch_size)[..., None]], axis=-1)


def _rotate(v: np.ndarray, rad: float) -> np.ndarray:
  s, c = np.sin(rad), np.cos(rad)
  return np.array([v[0] * c - v[1] * s, v[0] * s + v[1] * c], np.float32)


def _crop_affine(
  center: ArrayLike, size: ArrayLike, patch: float, scale: float, rot_deg: float
) -> np.ndarray:
  """(2, 3) image -> patch affine of the official `gen_trans_from_patch_cv` (square patch).

  The source box (centre, size * scale, rotated by rot_deg) maps to the patch: centre -> (P/2,
  P/2), centre + rotated (0, h s / 2) -> (P/2, P), centre + rotated (w s / 2, 0) -> (P, P/2).
  Points are rounded to float32 as the official code does before `cv2.getAffineTransform`.
  """
  c = np.asarray(center, np.float64)
  w, h = (float(v) * scale for v in size)
  rad = np.pi * rot_deg / 180.0
  down, right = (
    _rotate(np.array([0.0, h * 0.5], np.float32), rad),
    _rotate(np.array([w * 0.5, 0.0], np.float32), rad),
  )
  src = np.stack([c, c + down, c + right]).astype(np.float32).astype(np.float64)
  half = patch * 0.5
  dst = np.array([[half, half], [half, patch], [patch, half]], np.float32).astype(np.float64)
  a = np.concatenate([src, np.ones((3, 1))], axis=1)
  return np.linalg.solve(a, dst).T


def patch_labels_from_world(
  pose_world: ArrayLike,
  cam_r: ArrayLike,
  cam_t: ArrayLike,
  k: ArrayLike,
  center: ArrayLike,
  box_size: ArrayLike,
  scale: ArrayLike,
  rot_deg: ArrayLike,
  *,
  root: int = 0,
  depth_range: float = DEPTH_RANGE_MM,
  patch_size: float = PATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
  """World 3D -> each view's normalised patch labels (`get_batch_labels_from_global_coords`).

  Reprojects the (triangulated or ground-truth) world pose into every view, applies that view's
  crop affine with its augmentation (scale, rotation) and encodes (u/P - 0.5, v/P - 0.5,
  (Z - Z_root) / (R scale)). H36M convention: X_cam = R (X_world - T), T the camera centre.

  Args:
    pose_world: (B, J, 3) or (J, 3) (shared by all views) world joints, unit of `depth_range`.
    cam_r: (B, 3, 3) world -> camera rotations.
    cam_t: (B, 3) or (B, 3, 1) camera centres in world coordinates.
    k: (B, 3, 3) intrinsics of the full images (pixels).
    center: (B, 2) crop box centres (pixels).
    box_size: (B, 2) crop box (width, height) in pixels, before `scale`.
    scale: (B,) crop scale augmentation.
    rot_deg: (B,) crop rotation augmentation, degrees.
    root: root joint index (0 H36M order, 6 MPII order).
    depth_range: R (2000.0 mm).
    patch_size: P (256).

  Returns:
    labels (B, J, 3) float32 and weights (B, J, 3) float32 (ones, as the official code).
  """
  r = np.asarray(cam_r, np.float64)
  b = r.shape[0]
  x = np.broadcast_to(np.asarray(pose_world, np.float64), (b, *np.shape(pose_world)[-2:]))
  t = np.asarray(cam_t, np.float64).reshape(b, 1, 3)
  x_cam = np.einsum('bij,bnj->bni', r, x - t)
  kk = np.asarray(k, np.float64)
  intr = np.concatenate(
    [kk[:, [0, 1], [0, 1]], kk[:, [0, 1], [2, 2]], np.zeros((b, 5))], axis=-1
  )  # [fx, fy, cx, cy, k1, k2, k3, p1, p2] in pixels
  uv = camera.project_to_2d_linear(x_cam, intr)
  center, box = np.asarray(center, np.float64), np.asarray(box_size, np.float64)
  sc, rot = np.broadcast_to(scale, (b,)), np.broadcast_to(rot_deg, (b,))
  uv_patch = np.empty_like(uv)
  for i in range(b):
    aff = _crop_affine(center[i], box[i], patch_size, float(sc[i]), float(rot[i]))
    uv_patch[i] = uv[i] @ aff[:, :2].T + aff[:, 2]
  z_rel = x_cam[..., 2] - x_cam[:, root : root + 1, 2]
  labels = encode_patch_labels(
    uv_patch, z_rel, np.asarray(sc, np.float64), depth_range=depth_range, patch_size=patch_size
  )
  return labels.astype(np.float32), np.ones_like(labels, np.float32)
