"""DeepMimic motion retargeted onto the synthetic SMPL-format body (the `deepmimic_smpl` dataset).

The 15 DeepMimic clips of pybullet (`jaxpose.data.deepmimic`, real CMU/SFU mocap on a 16-joint
ragdoll) drive `jaxpose.body.synthetic` (SMPL's file format and kinematic tree; NOT SMPL). Steps:

1. Shape: one `betas` (10,) for all clips, fitted (Gauss-Newton, ridge `BETA_RIDGE`) so the 16 bone
   lengths of the body's H36M-17 rest joints (mesh regressor) match the DeepMimic skeleton's.
2. Rest alignment, solved from the two rest skeletons (no hand-set angles). Body axes (left = left
   hip - right hip, up = neck - root, forward = left x up) give C, the rotation from SMPL's rest
   frame (y up, facing +z) to DeepMimic's (y up, facing +x). For every SMPL joint k driven by a
   DeepMimic joint d (table `DRIVEN`), A_k = arc(C b_k -> b_d) C, where b_k is SMPL's rest bone from
   k to its child and b_d DeepMimic's, and arc the shortest rotation between two directions: the
   bone maps exactly and the twist stays as close as possible to the body axes. DeepMimic's rest has
   the arms down, SMPL's is a T-pose; A_shoulder absorbs the difference.
3. Per frame, SMPL world rotations W_k = M G_d A_k, with G_d DeepMimic's world joint rotation (y-up)
   and M the y-up -> H36M z-up rotation (x, y, z) -> (x, -z, y) of `deepmimic.to_h36m17`. Then
   every posed SMPL bone k -> child points along the posed DeepMimic bone. The joints DeepMimic lacks:
   spine1, spine2, spine3 share the pelvis -> spine3 relative rotation equally (each gets its cube
   root); collars, head, feet (toes), wrists and hands keep identity local rotations (they follow
   spine3, neck, ankles and elbows; DeepMimic's wrists are fixed to the elbows, its head is rigid
   with the neck). Local rotations L_k = W_parent^T W_k; L_0 = W_0 is the H36M-world orientation.
4. Translation: `transl` puts the mesh-regressed H36M pelvis on DeepMimic's pelvis (root), frame by
   frame, in the same centred H36M world as the `deepmimic` dataset.

Remaining mismatch ('full' body; `retarget_errors`, `driven_bone_error_deg`; the tests print the
'small' body's, within 2 mm of these). The 12 driven SMPL bones (FK joints) follow DeepMimic's to
< 5e-5 deg on every frame of every clip. The H36M-17 joints REGRESSED FROM THE SKINNED MESH differ
from DeepMimic's FK H36M-17, over all clips (mm, root-relative; per clip in the table):

  joint   pelvis r/l-hip knees ankles spine thorax neck/nose head shoulders elbows wrists
  error        0   10.7   18.3   17.3   30.2   32.8     151.9 85.7      23.9   22.8   21.5

  clip           MPJPE  w/o nose+head  PA-MPJPE  bone angle (deg)  w/o nose+head
  backflip        28.4      16.3         30.3          8.3             3.9
  cartwheel       31.8      19.4         29.9          8.5             4.2
  crawl           34.0      22.2         31.3          8.8             4.5
  dance_a         32.5      21.4         29.6          8.8             4.1
  dance_b         29.2      16.3         30.8          8.5             4.1
  getup_facedown  29.9      19.8         29.2          8.8             4.0
  getup_faceup    33.9      22.8         30.8          8.6             4.2
  jump            25.0      12.8         28.4          8.4             3.8
  kick            33.3      21.6         29.9          9.2             4.6
  punch           29.1      17.4         27.8          8.7             3.9
  roll            37.9      27.6         31.0          8.9             4.1
  run             26.9      15.4         29.1          8.7             4.1
  spin            30.6      18.5         30.2          8.5             4.0
  spinkick        31.2      17.8         30.9          8.6             4.4
  walk            26.8      15.4         29.3          8.2             3.5

Where it comes from: (a) definitions: DeepMimic's "neck/nose" is the middle of its neck link and its
"head" a point above it (`deepmimic.to_h36m17`), the body's are on the face and the skull (the
thorax -> nose bone is 73 deg off on every frame, so per-frame Procrustes cannot remove it); its
thorax is the neck joint, the body's lies between the shoulders (thorax -> shoulder bones ~11 deg);
(b) skinning: joints regressed from a bent mesh move off the FK joints (limb bones 1.2-1.7 deg);
(c) proportions the 10 betas cannot reach (pelvis -> hip and pelvis -> spine ~7 deg). So the
`deepmimic_smpl` dataset's pose3d is the mesh-regressed H36M-17 (consistent with its meshes), not
`deepmimic`'s FK joints, which are kept as `pose3d_fk_cam`.

Purpose: an embedded, licence-free video mesh benchmark for PMCE (arXiv 2308.10305,
github.com/kasvii/PMCE @ 0f4075a7) and the other body-model methods; it is not an official dataset,
so errors on it are meaningful only relative to each other.

Shape: betas = (-0.105, -0.569, 1.763, 0.779, 0.540, 0.455, 0.012, -0.463, -2.915, -0.187) for
'full' (synthetic shape directions: 2 leg length, 3 shoulder width, 8 torso length, ...).
"""

from __future__ import annotations

import functools
import pathlib
import xml.etree.ElementTree as ET
from typing import Any, NamedTuple

import numpy as np

from jaxpose.data import bodies, deepmimic
from jaxpose.geometry import skeleton

BODY_VARIANT = 'full'
BETA_RIDGE = 1e-4
# y-up (DeepMimic) -> H36M z-up: (x, y, z) -> (x, -z, y).
YUP_TO_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# SMPL joint k -> (DeepMimic joint driving it, SMPL child of k, DeepMimic point at the bone's end).
DRIVEN: dict[int, tuple[str, int, str]] = {
  0: ('root', 9, 'chest'),
  1: ('left_hip', 4, 'left_knee'),
  2: ('right_hip', 5, 'right_knee'),
  4: ('left_knee', 7, 'left_ankle'),
  5: ('right_knee', 8, 'right_ankle'),
  7: ('left_ankle', 10, 'left_foot'),
  8: ('right_ankle', 11, 'right_foot'),
  9: ('chest', 12, 'neck'),
  12: ('neck', 15, 'head'),
  16: ('left_shoulder', 18, 'left_elbow'),
  17: ('right_shoulder', 19, 'right_elbow'),
  18: ('left_elbow', 20, 'left_wrist'),
  19: ('right_elbow', 21, 'right_wrist'),
}
SPINE_SPLIT = (3, 6, 9)  # share the pelvis -> spine3 relative rotation equally
_PARENTS = bodies.SMPL_PARENTS
_H36M_BONES = tuple((p, c) for c, p in enumerate(skeleton.get('h36m17').parents) if p >= 0)
# Bones whose lengths the shape fit matches: all but those of the neck/nose point (DeepMimic's is
# the middle of its neck, the body's is on the face), plus thorax -> head.
FIT_BONES = tuple(b for b in _H36M_BONES if 9 not in b) + ((8, 10),)


class Retargeted(NamedTuple):
  """One clip on the body, H36M world (z up, metres, centred as `deepmimic`), T frames at 50 Hz.

  Attributes:
    rotmat: (T, 24, 3, 3) local rotations, joint 0 the world-frame global orientation.
    betas: (10,) shape coefficients.
    transl: (T, 3) world `transl`, metres.
    rest_root: (3,) the shaped rest root joint J_0, metres (for frame changes).
    joints_mesh: (T, 17, 3) H36M-17 regressed from the posed mesh, world metres.
    joints_fk: (T, 17, 3) DeepMimic's FK H36M-17 (the `deepmimic` dataset's joints), world metres.
    joints_smpl: (T, 24, 3) the body's FK joints (SMPL tree), world metres.
  """

  rotmat: np.ndarray
  betas: np.ndarray
  transl: np.ndarray
  rest_root: np.ndarray
  joints_mesh: np.ndarray
  joints_fk: np.ndarray
  joints_smpl: np.ndarray


# ---------------------------------------------------------------------------------------------
# DeepMimic side.


@functools.cache
def _ankle_box_centre() -> tuple[np.ndarray, np.ndarray]:
  """Centres of the ankle links' foot boxes (right, left), metres, in the ankle frame."""
  path = deepmimic.pybullet_data_dir() / 'humanoid' / 'humanoid.urdf'
  root = ET.fromstring(pathlib.Path(path).read_bytes().replace(b'\x00', b'').decode())
  out = {}
  for link in root.iter('link'):
    if link.get('name') in ('right_ankle', 'left_ankle'):
      xyz = link.find('collision').find('origin').get('xyz')
      out[link.get('name')] = np.array([float(v) for v in xyz.split()]) * deepmimic.URDF_SCALE
  return out['right_ankle'], out['left_ankle']


def dm_rest_points() -> dict[str, np.ndarray]:
  """DeepMimic's rest skeleton (all rotations identity), y-up metres, root at the origin.

  Joints of `deepmimic.urdf_offsets` plus 'head' (the neck link's sphere centre) and
  'right_foot' / 'left_foot' (the centres of the ankle links' foot boxes).
  """
  offsets, head = deepmimic.urdf_offsets()
  pos = {'root': np.zeros(3)}
  for name, (parent, off) in offsets.items():
    pos[name] = pos[parent] + off
  right_foot, left_foot = _ankle_box_centre()
  pos['head'] = pos['neck'] + head
  pos['right_foot'] = pos['right_ankle'] + right_foot
  pos['left_foot'] = pos['left_ankle'] + left_foot
  return pos


def dm_world_rotations(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """World rotations (y-up) of DeepMimic's joints from resampled channels (`deepmimic.resample`).

  Returns:
    {joint: (T, 3, 3) float64}; knees and elbows rotate about their local z by the angle.
  """
  offsets, _ = deepmimic.urdf_offsets()
  rot = {'root': bodies.quat_to_rotmat(pose['root_rot'])}
  for name, (parent, _) in offsets.items():
    if name.endswith('wrist'):
      continue
    local = np.asarray(pose[name], np.float64)
    if local.ndim == 1:  # hinge angle about z
      local = bodies.axis_angle_to_rotmat(local[:, None] * np.array([0.0, 0.0, 1.0]))
    else:
      local = bodies.quat_to_rotmat(local)
    rot[name] = rot[parent] @ local
  return rot


def dm_rest_h36m17() -> np.ndarray:
  """DeepMimic's rest skeleton as H36M-17 (17, 3), z-up metres (the `deepmimic` mapping)."""
  offsets, _ = deepmimic.urdf_offsets()
  ident = np.array([[1.0, 0.0, 0.0, 0.0]])
  pose = {'root_pos': np.zeros((1, 3)), 'root_rot': ident}
  for name in offsets:
    pose[name] = np.zeros(1) if name.endswith(('knee', 'elbow')) else ident
  return deepmimic.to_h36m17(deepmimic.forward_kinematics(pose))[0]


# ---------------------------------------------------------------------------------------------
# Shape and rest alignment.


def fit_betas(
  arrays: dict[str, Any], h36m_regressor: np.ndarray, ridge: float = BETA_RIDGE
) -> np.ndarray:
  """Betas whose H36M-17 rest bone lengths match DeepMimic's (Gauss-Newton, ridge on betas).

  Args:
    arrays: SMPL-format arrays (`v_template` (V, 3), `shapedirs` (V, 3, S)).
    h36m_regressor: (17, V) mesh -> H36M-17 regressor.
    ridge: weight of |betas|^2 (metres^2 per unit^2).

  Returns:
    (S,) float64 betas (S = 10 for the synthetic model).
  """
  reg = np.asarray(h36m_regressor, np.float64)
  a = reg @ np.asarray(arrays['v_template'], np.float64)  # (17, 3)
  b = np.einsum('kv,vcs->kcs', reg, np.asarray(arrays['shapedirs'], np.float64))  # (17, 3, S)
  dm = dm_rest_h36m17()
  par, chi = np.array(FIT_BONES).T
  target = np.linalg.norm(dm[chi] - dm[par], axis=-1)
  da, db = a[chi] - a[par], b[chi] - b[par]  # (16, 3), (16, 3, S)
  beta = np.zeros(b.shape[-1])
  for _ in range(50):
    vec = da + db @ beta
    length = np.linalg.norm(vec, axis=-1)
    jac = np.einsum('kc,kcs->ks', vec / length[:, None], db)
    res = length - target
    step = np.linalg.solve(jac.T @ jac + ridge * np.eye(len(beta)), -(jac.T @ res + ridge * beta))
    beta += step
    if np.abs(step).max() < 1e-10:
      break
  return beta


def _body_axes(left: np.ndarray, up: np.ndarray) -> np.ndarray:
  """(3, 3) orthonormal columns (left, up, forward = left x up)."""
  left = left / np.linalg.norm(left)
  up = up - (up @ left) * left
  up = up / np.linalg.norm(up)
  return np.stack([left, up, np.cross(left, up)], axis=1)


def rest_alignment(smpl_rest: np.ndarray) -> np.ndarray:
  """Per-joint rest-alignment rotations A (24, 3, 3): SMPL rest frame -> DeepMimic rest frame.

  Args:
    smpl_rest: (24, 3) SMPL rest joints (metres, SMPL axes).

  Returns:
    A_k = arc(C b_k -> b_d) C for the driven joints (module docstring), C for the others.
  """
  j = np.asarray(smpl_rest, np.float64)
  dm = dm_rest_points()
  c = (
    _body_axes(dm['left_hip'] - dm['right_hip'], dm['neck'] - dm['root'])
    @ _body_axes(j[1] - j[2], j[12] - j[0]).T
  )
  out = np.broadcast_to(c, (24, 3, 3)).copy()
  for k, (d, child, d_end) in DRIVEN.items():
    out[k] = bodies.shortest_arc(c @ (j[child] - j[k]), dm[d_end] - dm[d]) @ c
  return out


def retarget_rotations(dm_rot: dict[str, np.ndarray], align: np.ndarray) -> np.ndarray:
  """SMPL local rotations (T, 24, 3, 3) float64 from DeepMimic world rotations (y-up).

  Joint 0 is the orientation in the H36M world (z up); see the module docstring for the rest.
  """
  t = len(dm_rot['root'])
  world = np.empty((t, 24, 3, 3))
  driven = {k: YUP_TO_ZUP @ dm_rot[d] @ align[k] for k, (d, _, _) in DRIVEN.items()}
  world[:, 0] = driven[0]
  third = bodies.rotmat_power(np.swapaxes(driven[0], -1, -2) @ driven[9], 1.0 / 3.0)
  for k in range(1, 24):
    if k in SPINE_SPLIT[:-1]:
      world[:, k] = world[:, _PARENTS[k]] @ third
    elif k in driven:
      world[:, k] = driven[k]
    else:
      world[:, k] = world[:, _PARENTS[k]]
  local = np.empty_like(world)
  local[:, 0] = world[:, 0]
  parents = np.array(_PARENTS[1:])
  local[:, 1:] = np.swapaxes(world[:, parents], -1, -2) @ world[:, 1:]
  return local


# ---------------------------------------------------------------------------------------------
# Clips.


def retarget_clips(
  clips: tuple[str, ...] = deepmimic.CLIPS, variant: str = BODY_VARIANT
) -> dict[str, Retargeted]:
  """Retargets DeepMimic clips onto the synthetic body ('full' for the dataset, 'small' in tests).

  Returns:
    {clip: Retargeted} with T frames at 50 Hz per clip (module docstring).
  """
  from jaxpose.body import synthetic

  pose = deepmimic.resample([deepmimic.read_clip(deepmimic.clip_path(c)) for c in clips])
  offsets = pose['offsets']
  fk17 = deepmimic.to_h36m17(deepmimic.forward_kinematics(pose), offsets)
  arrays = synthetic.synthetic_arrays(variant)
  reg = synthetic.synthetic_regressors(variant)['J_regressor_h36m']
  betas = fit_betas(arrays, reg)
  shaped = arrays['v_template'] + arrays['shapedirs'] @ betas
  rest = arrays['J_regressor'] @ shaped
  rotmat = retarget_rotations(dm_world_rotations(pose), rest_alignment(rest))
  verts = bodies.body_vertices(synthetic.synthetic_model(variant), rotmat, betas)
  mesh17 = np.einsum('kv,tvc->tkc', reg, verts.astype(np.float64))
  transl = fk17[:, 0] - mesh17[:, 0]
  mesh17 += transl[:, None]
  joints24 = bodies.forward_kinematics(rotmat, rest)[0] + transl[:, None]
  out = {}
  for c, s, e in zip(clips, offsets[:-1], offsets[1:]):
    out[c] = Retargeted(
      rotmat=rotmat[s:e],
      betas=betas,
      transl=transl[s:e],
      rest_root=rest[0],
      joints_mesh=mesh17[s:e],
      joints_fk=fk17[s:e],
      joints_smpl=joints24[s:e],
    )
  return out


def _procrustes(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  """pred (T, J, 3) aligned to gt per frame by the best similarity transform (numpy float64 twin
  of `jaxpose.geometry.procrustes.align`, which recompiles for every clip length)."""
  mp, mg = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
  p0, g0 = pred - mp, gt - mg
  u, s, vt = np.linalg.svd(np.swapaxes(p0, 1, 2) @ g0)  # (T, 3, 3)
  d = np.sign(np.linalg.det(u @ vt))
  s[:, -1] *= d
  u[:, :, -1] *= d[:, None]
  r = u @ vt  # pred row vectors @ r -> gt
  scale = s.sum(-1) / np.sum(p0**2, axis=(1, 2))
  return scale[:, None, None] * (p0 @ r) + mg


def retarget_errors(ret: Retargeted) -> dict[str, float]:
  """How far the body's mesh-regressed H36M-17 is from DeepMimic's FK H36M-17 on one clip.

  Both are root-relative (the pelvis is aligned by `transl` anyway). Returns, in mm and degrees:
    mpjpe_mm: mean joint distance over the 17 joints;
    mpjpe_body_mm: the same without neck/nose and head (defined differently by the two skeletons);
    n_mpjpe_mm: after one least-squares scale per clip;
    pa_mpjpe_mm: after a similarity Procrustes per frame;
    bone_angle_deg: mean angle between the 16 corresponding H36M bones;
    bone_angle_body_deg: the same over the 14 bones that do not end at neck/nose or head.
  """
  pred = ret.joints_mesh - ret.joints_mesh[:, :1]
  gt = ret.joints_fk - ret.joints_fk[:, :1]
  scaled = pred * (np.sum(pred * gt) / np.sum(pred * pred))
  frame_aligned = _procrustes(pred, gt)
  par, chi = np.array(_H36M_BONES).T
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  cos = np.sum(unit(pred[:, chi] - pred[:, par]) * unit(gt[:, chi] - gt[:, par]), -1)
  angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
  dist = lambda p: np.linalg.norm(p - gt, axis=-1) * 1000
  body = [j for j in range(17) if j not in (9, 10)]
  body_bones = [i for i, c in enumerate(chi) if c not in (9, 10)]
  return {
    'mpjpe_mm': float(dist(pred).mean()),
    'mpjpe_body_mm': float(dist(pred)[:, body].mean()),
    'n_mpjpe_mm': float(dist(scaled).mean()),
    'pa_mpjpe_mm': float(dist(frame_aligned).mean()),
    'bone_angle_deg': float(angle.mean()),
    'bone_angle_body_deg': float(angle[:, body_bones].mean()),
  }


def driven_bone_error_deg(ret: Retargeted) -> float:
  """Largest angle (deg) between a driven SMPL FK bone and its DeepMimic bone over the clip.

  The DeepMimic bone directions are recomputed from `joints_fk`'s H36M-17 points (hips, knees,
  ankles, shoulders, elbows, wrists, spine -> thorax); ankles -> feet and neck -> head have no
  H36M-17 counterpart and are checked in tests through the rotations.
  """
  j, f = ret.joints_smpl, ret.joints_fk
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  # (SMPL parent, SMPL child, H36M parent, H36M child)
  pairs = (
    (1, 4, 4, 5),
    (4, 7, 5, 6),
    (2, 5, 1, 2),
    (5, 8, 2, 3),
    (16, 18, 11, 12),
    (18, 20, 12, 13),
    (17, 19, 14, 15),
    (19, 21, 15, 16),
    (9, 12, 7, 8),
  )
  worst = 0.0
  for sp, sc, hp, hc in pairs:
    cos = np.sum(unit(j[:, sc] - j[:, sp]) * unit(f[:, hc] - f[:, hp]), -1)
    worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max()))
  return worst


def camera_sequence(ret: Retargeted, cam: dict) -> dict[str, np.ndarray]:
  """One clip seen by one camera (`deepmimic.cameras()` entry): record arrays.

  Returns:
    {'kp2d_px' (T, 17, 2) pixels (projection of the mesh-regressed joints, lens distortion),
     'pose3d_cam' (T, 17, 3) mesh-regressed H36M-17, camera frame, metres,
     'pose3d_fk_cam' (T, 17, 3) DeepMimic's FK H36M-17 (the `deepmimic` dataset's pose3d_cam),
     'body_rotmat' (T, 24, 3, 3) with the camera-frame global orientation,
     'body_betas' (10,), 'body_transl' (T, 3) camera frame metres, 'has_smpl' (T,) bool}.
  """
  r_w2c = bodies.quat_to_rotmat(cam['orientation']).T
  t_w2c = -r_w2c @ np.asarray(cam['translation'], np.float64)
  rot, transl = bodies.to_camera_frame(ret.rotmat, ret.transl, ret.rest_root, r_w2c, t_w2c)
  pose, kp = deepmimic.project(ret.joints_mesh, cam)
  fk, _ = deepmimic.project(ret.joints_fk, cam)
  t = len(rot)
  return {
    'kp2d_px': kp.astype(np.float32),
    'pose3d_cam': pose.astype(np.float32),
    'pose3d_fk_cam': fk.astype(np.float32),
    'body_rotmat': rot.astype(np.float32),
    'body_betas': ret.betas.astype(np.float32),
    'body_transl': transl.astype(np.float32),
    'has_smpl': np.ones(t, bool),
  }
