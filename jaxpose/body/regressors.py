"""Joint sets regressed from SMPL-format meshes: Human3.6M-17 and SPIN's 49 joints.

* H36M-17: a (17, V) vertex regressor, `J_regressor_h36m.npy` (SPIN/DSR) or
  `J_regressor_h36m_correct.npy` (Pose2Mesh/PMCE, PersPose) for SMPL. The synthetic regressor uses
  the VideoPose3D order (`jaxpose.geometry.skeleton` 'h36m17': pelvis, right leg, left leg, spine,
  thorax, neck/nose, head, left arm, right arm), which is PMCE's `human36_joints_name` order.
  Evaluations take the pelvis (row 0) as root. PMCE scores `PMCE_H36M_EVAL14` (all but pelvis, spine
  and nose). SPIN/DSR score `SPIN_H36M_TO_J14` = SPIN's `H36M_TO_J17[:14]`, rows of SPIN's own
  regressor listed in LSP order (right ankle, right knee, right hip, left hip, ...); SPIN reads rows
  4-6 as the right leg, the reverse of the VideoPose3D names, so check the leg order of a regressor
  before combining it with that selection.
* SPIN-49 (SPIN `constants.JOINT_NAMES`, github.com/nkolot/SPIN; DSR uses it unchanged): 25
  OpenPose joints then 24 "ground-truth" joints. They are picked (`SPIN_JOINT_MAP`) from 54
  candidates: the 24 SMPL joints of forward kinematics, 21 mesh vertices (smplx's
  `VertexJointSelector` for SMPL: nose, eyes, ears, feet, fingertips, `SMPL_VERTEX_JOINT_IDS` for the
  real SMPL topology), then the 9 rows of `J_regressor_extra.npy` (right hip, left hip, neck (LSP),
  head top (LSP), pelvis (MPII), thorax (MPII), spine (H36M), jaw (H36M), head (H36M)).

For the real SMPL mesh, users bring `J_regressor_h36m.npy` and `J_regressor_extra.npy` (SMPL-derived,
licence-gated) and load them with `load_regressor`; `jaxpose.body.synthetic` defines the same sets on
the synthetic mesh (`JointRegressors`).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry import skeleton

H36M_JOINT_NAMES: tuple[str, ...] = skeleton.get('h36m17').joint_names
# PMCE `human36_eval_joint`: the 14 scored rows of a VideoPose3D-ordered H36M regressor.
PMCE_H36M_EVAL14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)
# SPIN constants.H36M_TO_J17 / H36M_TO_J14: rows of SPIN's J_regressor_h36m in LSP-style order.
SPIN_H36M_TO_J17 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)
SPIN_H36M_TO_J14 = SPIN_H36M_TO_J17[:14]

# smplx VertexJointSelector order for SMPL (face, feet, then left and right fingertips).
VERTEX_JOINT_NAMES = (
  'nose',
  'right_eye',
  'left_eye',
  'right_ear',
  'left_ear',
  'left_big_toe',
  'left_small_toe',
  'left_heel',
  'right_big_toe',
  'right_small_toe',
  'right_heel',
  'left_thumb',
  'left_index',
  'left_middle',
  'left_ring',
  'left_pinky',
  'right_thumb',
  'right_index',
  'right_middle',
  'right_ring',
  'right_pinky',
)
# Vertex ids of those landmarks on the real SMPL topology (smplx `vertex_ids['smplh']`).
SMPL_VERTEX_JOINT_IDS = (
  332,
  6260,
  2800,
  4071,
  583,
  3216,
  3226,
  3387,
  6617,
  6624,
  6787,
  2746,
  2319,
  2445,
  2556,
  2673,
  6191,
  5782,
  5905,
  6016,
  6133,
)
EXTRA_JOINT_NAMES = (
  'right_hip',
  'left_hip',
  'neck_lsp',
  'head_top_lsp',
  'pelvis_mpii',
  'thorax_mpii',
  'spine_h36m',
  'jaw_h36m',
  'head_h36m',
)

SPIN_JOINT_NAMES = (
  'OP Nose',
  'OP Neck',
  'OP RShoulder',
  'OP RElbow',
  'OP RWrist',
  'OP LShoulder',
  'OP LElbow',
  'OP LWrist',
  'OP MidHip',
  'OP RHip',
  'OP RKnee',
  'OP RAnkle',
  'OP LHip',
  'OP LKnee',
  'OP LAnkle',
  'OP REye',
  'OP LEye',
  'OP REar',
  'OP LEar',
  'OP LBigToe',
  'OP LSmallToe',
  'OP LHeel',
  'OP RBigToe',
  'OP RSmallToe',
  'OP RHeel',
  'Right Ankle',
  'Right Knee',
  'Right Hip',
  'Left Hip',
  'Left Knee',
  'Left Ankle',
  'Right Wrist',
  'Right Elbow',
  'Right Shoulder',
  'Left Shoulder',
  'Left Elbow',
  'Left Wrist',
  'Neck (LSP)',
  'Top of Head (LSP)',
  'Pelvis (MPII)',
  'Thorax (MPII)',
  'Spine (H36M)',
  'Jaw (H36M)',
  'Head (H36M)',
  'Nose',
  'Left Eye',
  'Right Eye',
  'Left Ear',
  'Right Ear',
)
# SPIN constants.JOINT_MAP in SPIN_JOINT_NAMES order: index into [24 SMPL, 21 vertex, 9 extra].
SPIN_JOINT_MAP = tuple(
  int(i)
  for i in (
    '24 12 17 19 21 16 18 20 0 2 5 8 1 4 7 25 26 27 28 29 30 31 32 33 34 '
    '8 5 45 46 4 7 21 19 17 16 18 20 47 48 49 50 51 52 53 24 26 25 28 27'
  ).split()
)


@dataclasses.dataclass(frozen=True)
class JointRegressors:
  """Vertex regressors of one mesh topology (V vertices).

  Attributes:
    h36m: (17, V) Human3.6M-17 regressor.
    extra: (9, V) SPIN's extra joints (`EXTRA_JOINT_NAMES`).
    vertex_ids: (21,) int32 landmark vertices (`VERTEX_JOINT_NAMES`).
  """

  h36m: jax.Array
  extra: jax.Array
  vertex_ids: jax.Array


jax.tree_util.register_dataclass(
  JointRegressors, data_fields=['h36m', 'extra', 'vertex_ids'], meta_fields=[]
)


def load_regressor(
  path: str | os.PathLike, *, num_vertices: int, num_joints: int | None = None
) -> np.ndarray:
  """Loads a (K, V) float32 vertex regressor from `.npy` (e.g. J_regressor_h36m.npy, (17, 6890)).

  Raises:
    ValueError: naming the file, the expected and the actual shape.
  """
  r = np.load(path, allow_pickle=False)
  if r.ndim != 2 or r.shape[1] != num_vertices or (num_joints and r.shape[0] != num_joints):
    expected = f'({num_joints if num_joints else "K"}, {num_vertices})'
    raise ValueError(f'{path}: regressor has shape {r.shape}, expected {expected}')
  if not np.all(np.isfinite(r)):
    raise ValueError(f'{path}: regressor has non-finite values')
  return r.astype(np.float32)


def smpl_regressors(h36m_path: str | os.PathLike, extra_path: str | os.PathLike) -> JointRegressors:
  """The real SMPL set: user-provided `J_regressor_h36m.npy` (17, 6890), `J_regressor_extra.npy`
  (9, 6890) and smplx's landmark vertex ids."""
  return JointRegressors(
    h36m=jnp.asarray(load_regressor(h36m_path, num_vertices=6890, num_joints=17)),
    extra=jnp.asarray(load_regressor(extra_path, num_vertices=6890, num_joints=9)),
    vertex_ids=jnp.asarray(SMPL_VERTEX_JOINT_IDS, jnp.int32),
  )


def h36m_joints(regressors: JointRegressors, vertices: ArrayLike) -> jax.Array:
  """H36M-17 joints from vertices. (..., V, 3) -> (..., 17, 3), same unit."""
  return jnp.einsum('kv,...vc->...kc', regressors.h36m, jnp.asarray(vertices))


def spin_joints(regressors: JointRegressors, joints: ArrayLike, vertices: ArrayLike) -> jax.Array:
  """SPIN's 49 joints.

  Args:
    regressors: the mesh's regressors.
    joints: (..., 24, 3) SMPL joints from forward kinematics (`BodyOutput.joints`).
    vertices: (..., V, 3) posed vertices, same frame.

  Returns:
    (..., 49, 3) in `SPIN_JOINT_NAMES` order.
  """
  v = jnp.asarray(vertices)
  picked = v[..., regressors.vertex_ids, :]
  extra = jnp.einsum('kv,...vc->...kc', regressors.extra, v)
  cand = jnp.concatenate([jnp.asarray(joints), picked, extra], axis=-2)  # (..., 54, 3)
  return cand[..., jnp.asarray(SPIN_JOINT_MAP), :]
