"""Host-side SMPL-format body parameters in datasets: rotations, camera frames, flips, vertices.

Datasets with bodies (`deepmimic_smpl`, `pw3d` >= 1.1.0) store per sequence of T frames:

  body_rotmat  (T, 24, 3, 3) float32  local joint rotations of the SMPL kinematic tree
                                      (`jaxpose.body.smpl.SMPL_PARENTS`); joint 0 is the global
                                      orientation in the CAMERA frame
  body_betas   (10,) float32          shape coefficients of the body model the dataset names in
                                      its metadata (`body_model`)
  body_transl  (T, 3) float32         the body model's `transl` argument, metres, camera frame:
                                      `jaxpose.body.forward(model, body_rotmat, body_betas,
                                      body_transl)` gives camera-frame vertices and joints
  has_smpl     (T,) bool              the frame has body parameters

Vertices are not stored (6890 x 3 per frame); the pipeline passes the parameters and models compute
meshes on device with `jaxpose.body.forward`; `body_vertices` does it on the host (evaluation).

Camera frame (`to_camera_frame`): for X_cam = R X_world + t, the global orientation becomes
R G_0, and because the body rotates about its rest root joint J_0 (not the origin), the
translation becomes transl_cam = R (J_0 + transl_world) + t - J_0.

Mirroring (`flip_rotmat`, `flip_transl`): the mirror x -> -x (S = diag(-1, 1, 1)) of a posed body is
the body posed with left and right joints swapped and each local rotation conjugated, S R S (for
axis-angle: (x, y, z) -> (x, -y, -z), as SPIN's `flip_pose`), and translated by
S transl + (S - I) J_0 (J_0_x = 0 for a left-right symmetric model, the default). It is exact for a
model whose rest skeleton and template are mirror-symmetric (the synthetic model); real SMPL is
symmetric to a few millimetres.

Consumers: PMCE (You et al., "Co-Evolution of Pose and Mesh for 3D Human Body Estimation from
Video", ICCV 2023, arXiv 2308.10305, github.com/kasvii/PMCE @ 0f4075a7) trains on camera-frame SMPL
meshes; its 3DPW loader reads Pose2Mesh's preprocessed JSON, whereas `tfds_builders/pw3d` derives
the camera frame from the official sequence pickles here (research/data.md §5). Written from the
equations above; no official code is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxpose.geometry import skeleton

BODY_KEYS = ('body_rotmat', 'body_betas', 'body_transl', 'has_smpl')
NUM_BETAS = 10
_SMPL = skeleton.get('smpl24')
SMPL_PARENTS: tuple[int, ...] = _SMPL.parents


def _mirror_perm() -> np.ndarray:
  perm = np.arange(_SMPL.num_joints)
  perm[list(_SMPL.left)] = _SMPL.right
  perm[list(_SMPL.right)] = _SMPL.left
  return perm


SMPL_MIRROR_PERM = _mirror_perm()  # (24,) joint j of the mirrored body is joint perm[j]
# (S R S)_ij = s_i s_j R_ij with s = (-1, 1, 1).
_MIRROR_SIGNS = np.outer([-1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# float64 numpy rotations (host code; jaxpose.geometry.rotation is jnp and float32 by default).


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
  """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3, 3) float64 matrices."""
  q = np.asarray(q, np.float64)
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  w, x, y, z = np.moveaxis(q, -1, 0)
  return np.stack(
    [
      np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
      np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
      np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ],
    -2,
  )


def axis_angle_to_rotmat(aa: np.ndarray) -> np.ndarray:
  """(..., 3) axis-angle, radians -> (..., 3, 3) float64 rotation matrices (Rodrigues)."""
  aa = np.asarray(aa, np.float64)
  angle = np.linalg.norm(aa, axis=-1, keepdims=True)
  half = 0.5 * angle
  # sin(a/2)/a, with its series near 0.
  k = np.where(angle > 1e-8, np.sin(half) / np.where(angle > 1e-8, angle, 1.0), 0.5 - angle**2 / 48)
  return quat_to_rotmat(np.concatenate([np.cos(half), aa * k], axis=-1))


def rotmat_to_axis_angle(r: np.ndarray) -> np.ndarray:
  """(..., 3, 3) rotation matrices -> (..., 3) float64 axis-angle, angle in [0, pi]."""
  r = np.asarray(r, np.float64)
  cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
  angle = np.arccos(cos)
  v = np.stack(
    [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1
  )
  sin = np.sin(angle)
  small = sin < 1e-6
  out = v * (angle / (2 * np.where(small, 1.0, sin)))[..., None]
  out = np.where(small[..., None] & (angle[..., None] < 1.0), 0.5 * v, out)
  near_pi = small & (angle >= 1.0)
  if np.any(near_pi):  # R = 2 a a^T - I: the axis is the largest column of R + I
    rp = r[near_pi] + np.eye(3)
    col = np.argmax(np.linalg.norm(rp, axis=-2), axis=-1)
    axis = rp[np.arange(len(rp)), :, col]
    axis *= np.where(np.sum(axis * v[near_pi], -1, keepdims=True) < 0, -1.0, 1.0)
    out[near_pi] = axis / np.linalg.norm(axis, axis=-1, keepdims=True) * angle[near_pi][:, None]
  return out


def rotmat_power(r: np.ndarray, t: float) -> np.ndarray:
  """R^t: the rotation about R's axis by t times its angle. (..., 3, 3) -> (..., 3, 3) float64."""
  return axis_angle_to_rotmat(t * rotmat_to_axis_angle(r))


def shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """The smallest rotation taking direction a (3,) to direction b (3,) (not antiparallel)."""
  a = np.asarray(a, np.float64) / np.linalg.norm(a)
  b = np.asarray(b, np.float64) / np.linalg.norm(b)
  axis = np.cross(a, b)
  s, c = np.linalg.norm(axis), float(a @ b)
  if c < -1 + 1e-9:
    raise ValueError(f'shortest_arc: directions {a} and {b} are antiparallel')
  return axis_angle_to_rotmat(axis / max(s, 1e-300) * np.arctan2(s, c))


def forward_kinematics(
  rotmat: np.ndarray, rest_joints: np.ndarray, parents: Sequence[int] = SMPL_PARENTS
) -> tuple[np.ndarray, np.ndarray]:
  """Poses a rest skeleton with local rotations (numpy float64 twin of `jaxpose.body.smpl`).

  Args:
    rotmat: (N, J, 3, 3) local rotations, joint 0 the global orientation.
    rest_joints: (J, 3) or (N, J, 3) rest joint positions, metres.
    parents: J parent indices (-1 for the root), parents[j] < j.

  Returns:
    (joints (N, J, 3) with the root at its rest position, global rotations (N, J, 3, 3)).
  """
  r = np.asarray(rotmat, np.float64)
  j = np.broadcast_to(np.asarray(rest_joints, np.float64), r.shape[:2] + (3,))
  g_rot, g_pos = np.empty_like(r), np.empty(r.shape[:2] + (3,))
  g_rot[:, 0], g_pos[:, 0] = r[:, 0], j[:, 0]
  for i in range(1, len(parents)):
    p = parents[i]
    g_rot[:, i] = g_rot[:, p] @ r[:, i]
    g_pos[:, i] = g_pos[:, p] + np.einsum('nij,nj->ni', g_rot[:, p], j[:, i] - j[:, p])
  return g_pos, g_rot


# ---------------------------------------------------------------------------------------------
# Frames and mirroring.


def to_camera_frame(
  rotmat: np.ndarray,
  transl: np.ndarray,
  rest_root: np.ndarray,
  cam_r: np.ndarray,
  cam_t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
  """World-frame body parameters -> camera frame (X_cam = cam_r X_world + cam_t).

  Args:
    rotmat: (T, 24, 3, 3) local rotations, joint 0 the world-frame global orientation.
    transl: (T, 3) world-frame `transl`, metres.
    rest_root: (3,) the body's rest root joint J_0 (depends on betas), metres.
    cam_r: (3, 3) or (T, 3, 3) world -> camera rotation.
    cam_t: (3,) or (T, 3) world -> camera translation, metres.

  Returns:
    (rotmat (T, 24, 3, 3) with the camera-frame global orientation, transl (T, 3) camera frame),
    float64.
  """
  rot = np.array(rotmat, np.float64)
  cam_r = np.broadcast_to(np.asarray(cam_r, np.float64), (len(rot), 3, 3))
  j0 = np.asarray(rest_root, np.float64)
  rot[:, 0] = cam_r @ rot[:, 0]
  root = np.einsum('tij,tj->ti', cam_r, np.asarray(transl, np.float64) + j0) + cam_t
  return rot, root - j0


def flip_rotmat(rotmat: np.ndarray) -> np.ndarray:
  """Mirrors local rotations (..., 24, 3, 3): swap left/right joints, conjugate by diag(-1, 1, 1)."""
  r = np.asarray(rotmat)
  return r[..., SMPL_MIRROR_PERM, :, :] * _MIRROR_SIGNS.astype(r.dtype)


def flip_transl(transl: np.ndarray, rest_root: np.ndarray | None = None) -> np.ndarray:
  """Mirrored `transl` (..., 3): S transl + (S - I) J_0 (J_0 = rest root; None: J_0_x = 0)."""
  t = np.array(transl, copy=True)
  t[..., 0] = -t[..., 0]
  if rest_root is not None:
    t[..., 0] -= 2 * np.asarray(rest_root, t.dtype)[..., 0]
  return t


def flip_body(ex: dict[str, Any]) -> dict[str, Any]:
  """Mirrors the body keys of an example or batch (others untouched); shapes as the inputs."""
  out = dict(ex)
  if 'body_rotmat' in ex:
    out['body_rotmat'] = flip_rotmat(ex['body_rotmat'])
  if 'body_transl' in ex:
    out['body_transl'] = flip_transl(ex['body_transl'])
  return out


def sequence_body(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """A decoded record's body keys as per-frame arrays ({} when the dataset has no bodies).

  Returns:
    {'body_rotmat' (L, 24, 3, 3), 'body_betas' (L, 10) (the sequence's betas on every frame),
     'body_transl' (L, 3) metres camera frame, float32; 'has_smpl' (L,) bool}.
  """
  if 'body_rotmat' not in record:
    return {}
  rot = np.asarray(record['body_rotmat'], np.float32)
  n = len(rot)
  return {
    'body_rotmat': rot,
    'body_betas': np.broadcast_to(np.asarray(record['body_betas'], np.float32), (n, NUM_BETAS)),
    'body_transl': np.asarray(record['body_transl'], np.float32),
    'has_smpl': np.asarray(record['has_smpl'], bool),
  }


# ---------------------------------------------------------------------------------------------
# Meshes on the host.


def body_vertices(
  model: Any,
  rotmat: np.ndarray,
  betas: np.ndarray,
  transl: np.ndarray | None = None,
  *,
  chunk: int = 128,
) -> np.ndarray:
  """Vertices of N posed bodies on the host, in chunks (for evaluation and dataset builds).

  Args:
    model: a `jaxpose.body.BodyModel` (e.g. `jaxpose.body.synthetic_model('full')`).
    rotmat: (N, 24, 3, 3) local rotations.
    betas: (N, S) or (S,) shape coefficients, S = model.num_betas.
    transl: (N, 3) or None, metres.
    chunk: frames per jitted call (the last chunk is padded, so one compile per model).

  Returns:
    (N, V, 3) float32 vertices, the model's unit and the frame of rotmat/transl.
  """
  from jaxpose.body import smpl

  rotmat = np.asarray(rotmat, np.float32)
  n = len(rotmat)
  betas = np.broadcast_to(np.asarray(betas, np.float32), (n, model.num_betas))
  transl = np.zeros((n, 3), np.float32) if transl is None else np.asarray(transl, np.float32)
  smpl.check_rotmats(rotmat, name='body_rotmat')
  fn = _jitted_vertices()
  out = np.empty((n, model.num_vertices, 3), np.float32)
  for s in range(0, n, chunk):
    e = min(s + chunk, n)
    pad = lambda x: np.concatenate([x[s:e], np.repeat(x[s : s + 1], chunk - (e - s), 0)])  # noqa: B023
    out[s:e] = np.asarray(fn(model, pad(rotmat), pad(betas), pad(transl)))[: e - s]
  return out


_JIT = {}


def _jitted_vertices():
  if 'v' not in _JIT:
    import jax

    from jaxpose.body import smpl

    _JIT['v'] = jax.jit(lambda m, r, b, t: smpl.forward(m, r, b, t).vertices)
  return _JIT['v']
