"""HybrIK analytic inverse kinematics with PersPose's ortho-twists and its beta-0 search (pure JAX).

HybrIK: Li, Xu, Chen, Bian, Yang, Lu, "HybrIK: A Hybrid Analytical-Neural Inverse Kinematics
Solution for 3D Human Pose and Shape Estimation", CVPR 2021, arXiv:2011.14672. As used by PersPose
(Hao & Li, ICCV 2025, arXiv:2508.17239; github.com/KenAdamsJoseph/PersPose at
1863de7a455700d99280d4ce683efb726e42592b: `common/smpl_tool.py` `batch_hybrIK`,
`batch_pelvis_R_t`, `batch_orient_svd`; `common/smpl_wrapper.py` `cal_rest_pose_ortho_twist`,
`cal_ortho_twist`, `compose_rot`, `ik_w_ortho_twist`); research/perspose.md §2.2. Written from the
official semantics; no code copied.

Everything works on the SMPL 24-joint tree (`jaxpose.body.smpl.SMPL_PARENTS`), batched, jit- and
vmap-friendly. B batch, J = 24 joints, S betas; positions in the body model's unit (metres).

  rest_ortho_twist(rest)              the rest skeleton's twist directions: for each bone b_k =
                                      J_k - J_parent(k), -normalise(-b_x b_z / n, -b_y b_z / n, 1),
                                      n = b_x^2 + b_y^2 (a unit vector orthogonal to b_k).
  ortho_twist(rest, rotmats)          posed twists G_parent(k) ot_k (the network's twist labels).
  pelvis_alignment(...)               rigid (R, t) of the pelvis triangle (normal swing + mean twist).
  orient_svd(...)                     Kabsch rotation of three vectors (the chest).
  hybrik_swing(aim, rest, ...)        the swing pass: pelvis and chest by alignment, every other bone
                                      along the aimed direction with its rest length -> positions,
                                      bone vectors, root and chest orientations.
  compose_rotations(...)              local rotations from bone directions + ortho-twists (a frame
                                      per bone: direction, twist, their cross), root/chest from the
                                      swing pass, the 5 leaves (22, 23, 10, 11, 15) given.
  search_beta0(model, joints, betas)  PersPose's simplified SFSR: beta_0 on the grid -2.0 ... 1.9
                                      (step 0.1) minimising the mean 2D (x, y) error of the swing
                                      pass (xy priority, no big-diff fallback); argmin, no gradient.
  ik_with_ortho_twist(...)            the whole `ik_w_ortho_twist`: beta_0 search, swing pass,
                                      composition, transl = result root - rest root.

Numerics follow the official code (acos clamp 1 - 1e-7, F.normalize eps 1e-12 through
`jaxpose.geometry.perspective`), so exact round trips agree to ~1e-3 rad in float32, not 1e-6.
Deviations: the 40 beta-0 candidates run vectorised (vmap) instead of a Python loop; the
"big diff" replacement is a `where` per sample (the official code indexes the batch); a zero
chest cross-covariance gives the identity as officially, selected with `where`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.body.smpl import SMPL_PARENTS, BodyModel, rest_joints
from jaxpose.geometry.perspective import normalize, rodrigues, swing_rotation, vector_angle

PARENTS = SMPL_PARENTS
# The single child of each joint (-1: the root and chest have three, the leaves none).
CHILDREN = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -1, -1, 15, 16, 17, -1, 18, 19, 20, 21, 22, 23, -1, -1)
LEAF_JOINTS = (22, 23, 10, 11, 15)  # PersPose's leaf_rot order
JOINTS_WITH_TWIST = tuple(range(4, 12)) + tuple(range(15, 24))
BETA0_GRID = tuple((x - 20) / 10 for x in range(40))  # -2.0, -1.9, ..., 1.9
BIG_DIFF = 0.015  # metres: fall back to the aimed bone direction beyond this (swing pass)
_ROOT_KIDS, _CHEST, _CHEST_KIDS = (1, 2, 3), 9, (12, 13, 14)


class SwingResult(NamedTuple):
  """Output of `hybrik_swing` (B batch, J = 24).

  Attributes:
    joints: (B, J, 3) positions of the fitted skeleton (aim's root frame, absolute).
    bones: (B, J, 3) bone vectors J_k - J_parent(k); bones[:, 0] = joints[:, 0].
    root_rot: (B, 3, 3) global root orientation.
    chest_rot: (B, 3, 3) global orientation of joint 9 (spine3).
  """

  joints: jax.Array
  bones: jax.Array
  root_rot: jax.Array
  chest_rot: jax.Array


def _bones(x: jax.Array) -> jax.Array:
  p = jnp.asarray([0, *PARENTS[1:]])
  return jnp.concatenate([x[:, :1], x[:, 1:] - x[:, p[1:]]], axis=1)


def rest_ortho_twist(rest: ArrayLike) -> jax.Array:
  """Twist directions of the rest skeleton (official `cal_rest_pose_ortho_twist`).

  Args:
    rest: (B, J, 3) rest joints.

  Returns:
    (B, J, 3) unit vectors orthogonal to each bone J_k - J_parent(k) (joint 0's is unused).
  """
  rest = jnp.asarray(rest)
  b = rest - rest[:, jnp.asarray((len(PARENTS) - 1, *PARENTS[1:]))]  # root: wraps as officially
  bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
  n = bx**2 + by**2
  t = jnp.stack([-bx * bz / n, -by * bz / n, jnp.ones_like(bx)], -1)
  return normalize(-t)


def global_rotations(rotmats: ArrayLike) -> jax.Array:
  """Local (B, J, 3, 3) -> global (accumulated) rotations on the SMPL tree."""
  r = jnp.asarray(rotmats)
  g = [r[:, 0]]
  for i in range(1, len(PARENTS)):
    g.append(g[PARENTS[i]] @ r[:, i])
  return jnp.stack(g, 1)


def local_rotations(global_rot: ArrayLike) -> jax.Array:
  """Global (B, J, 3, 3) -> local rotations R_j = G_parent(j)^T G_j (root: G_0)."""
  g = jnp.asarray(global_rot)
  p = jnp.asarray(PARENTS[1:])
  return jnp.concatenate([g[:, :1], jnp.swapaxes(g[:, p], -1, -2) @ g[:, 1:]], axis=1)


def ortho_twist(rest: ArrayLike, rotmats: ArrayLike) -> jax.Array:
  """Posed twist directions (official `cal_ortho_twist`): G_parent(k) ot_k.

  Args:
    rest: (B, J, 3) rest joints; rotmats: (B, J, 3, 3) local rotations.

  Returns:
    (B, J, 3) unit twist vectors in the posed (camera) frame; each is orthogonal to its posed bone.
  """
  g = global_rotations(rotmats)
  ot = rest_ortho_twist(rest)
  gp = g[:, jnp.asarray((len(PARENTS) - 1, *PARENTS[1:]))]
  return jnp.einsum('bjik,bjk->bji', gp, ot)


def _signed_angle(v1: jax.Array, v2: jax.Array, n: jax.Array) -> jax.Array:
  a = vector_angle(v1, v2)
  s = jnp.where(jnp.sum(jnp.cross(v1, v2) * n, -1) > 0, 1.0, -1.0)
  return s * a


def _circular_mean(a1: jax.Array, a2: jax.Array) -> jax.Array:
  """Mean of two angles in (-pi, pi], taking the short way round (official `cal_mean`)."""
  m = (a1 + a2) / 2
  flipped = m - jnp.where(m > 0, 1.0, -1.0) * jnp.pi
  return jnp.where(jnp.abs(a1 - a2) > jnp.pi, flipped, m)


def pelvis_alignment(p1, p2, p3, q1, q2, q3) -> tuple[jax.Array, jax.Array]:
  """Rigid map of the triangle (p1, p2, p3) onto (q1, q2, q3) (official `batch_pelvis_R_t`).

  The triangle normals are aligned by a swing, then the twist about the target normal is the
  circular mean of the three vertices' signed angles; t maps the centroid onto the centroid.

  Args:
    p1, p2, p3, q1, q2, q3: (B, 3).

  Returns:
    R (B, 3, 3), t (B, 3) with R p_i + t ~ q_i.
  """
  c1, c2 = (p1 + p2 + p3) / 3.0, (q1 + q2 + q3) / 3.0
  n1, n2 = jnp.cross(p2 - p1, p3 - p1), jnp.cross(q2 - q1, q3 - q1)
  r1 = swing_rotation(n1, n2)
  ang = [
    _signed_angle(jnp.einsum('bij,bj->bi', r1, p - c1), q - c2, n2)
    for p, q in ((p1, q1), (p2, q2), (p3, q3))
  ]
  twist = _circular_mean(_circular_mean(ang[0], ang[1]), ang[2])
  rot = rodrigues(normalize(n2) * twist[:, None]) @ r1
  return rot, c2 - jnp.einsum('bij,bj->bi', rot, c1)


def orient_svd(c1, c2, c3, d1, d2, d3) -> jax.Array:
  """Least-squares rotation taking vectors c_i to d_i (Kabsch; official `batch_orient_svd`).

  Args:
    c1, c2, c3, d1, d2, d3: (B, 3).

  Returns:
    (B, 3, 3) proper rotation; the identity where the cross-covariance sums to 0.
  """
  rest = jnp.stack([c3, c1, c2], -1)
  target = jnp.stack([d3, d1, d2], -1)
  s = rest @ jnp.swapaxes(target, -1, -2)
  zero = jnp.sum(s, axis=(-1, -2)) == 0
  s_safe = jnp.where(zero[:, None, None], jnp.eye(3, dtype=s.dtype), s)
  u, _, vh = jnp.linalg.svd(s_safe)
  v = jnp.swapaxes(vh, -1, -2)
  det = jnp.linalg.det(v @ jnp.swapaxes(u, -1, -2))
  fix = jnp.ones_like(s[:, 0]).at[:, 2].set(det)
  rot = (v * fix[:, None, :]) @ jnp.swapaxes(u, -1, -2)
  return jnp.where(zero[:, None, None], jnp.eye(3, dtype=s.dtype), rot)


def hybrik_swing(
  aim: ArrayLike, rest: ArrayLike, *, xy_priority: bool = False, big_diff: bool = True
) -> SwingResult:
  """HybrIK's swing pass (official `batch_hybrIK`) on 24 joints.

  Args:
    aim: (B, J, 3) target joints (camera frame).
    rest: (B, J, 3) rest joints of the body (its bone lengths are kept).
    xy_priority: keep each aimed bone's (x, y) and solve z for the rest length (sign of the aimed
      z) when that is possible (the beta-0 search).
    big_diff: where the result bone differs from the aimed bone (aim_k - aim_parent) by >= 1.5 cm,
      use the aimed bone's direction instead.

  Returns:
    SwingResult (joints (B, J, 3) absolute, bones, root_rot, chest_rot).
  """
  aim, rest = jnp.asarray(aim), jnp.asarray(rest)
  if aim.shape[1:] != (len(PARENTS), 3) or rest.shape != aim.shape:
    raise ValueError(
      f'hybrik_swing: aim and rest must be (B, 24, 3), got {aim.shape}, {rest.shape}'
    )
  root = aim[:, :1]
  aim, rest = aim - root, rest - rest[:, :1]
  rest_b, aim_b = _bones(rest), _bones(aim)
  out: list[jax.Array | None] = [None] * len(PARENTS)
  root_rot, root_t = pelvis_alignment(
    *(rest[:, k] for k in _ROOT_KIDS), *(aim[:, k] for k in _ROOT_KIDS)
  )
  out[0] = root_t
  for k in _ROOT_KIDS:
    out[k] = jnp.einsum('bij,bj->bi', root_rot, rest[:, k]) + root_t
  chest_rot = None
  for j in range(4, len(PARENTS)):
    if j in _CHEST_KIDS[1:]:
      continue
    if j == _CHEST_KIDS[0]:
      base = out[_CHEST]
      chest_rot = orient_svd(
        *(rest_b[:, k] for k in _CHEST_KIDS), *(aim[:, k] - base for k in _CHEST_KIDS)
      )
      for k in _CHEST_KIDS:
        out[k] = base + jnp.einsum('bij,bj->bi', chest_rot, rest_b[:, k])
      continue
    d = aim[:, j] - out[PARENTS[j]]
    length = jnp.linalg.norm(rest_b[:, j], axis=-1, keepdims=True)
    rel = length * normalize(d)
    if xy_priority:
      dz = jnp.sqrt(jax.nn.relu(length**2 - jnp.sum(d[:, :2] ** 2, -1, keepdims=True)))
      rel = jnp.where(dz > 0, jnp.concatenate([d[:, :2], jnp.sign(d[:, 2:]) * dz], -1), rel)
    if big_diff:
      alt = length * normalize(aim_b[:, j])
      far = jnp.linalg.norm(alt - rel, axis=-1, keepdims=True) >= BIG_DIFF
      rel = jnp.where(far, alt, rel)
    out[j] = out[PARENTS[j]] + rel
  joints = jnp.stack(out, 1) + root
  return SwingResult(joints, _bones(joints), root_rot, chest_rot)


def compose_rotations(
  rest: ArrayLike,
  bones: ArrayLike,
  twist: ArrayLike,
  root_rot: ArrayLike,
  chest_rot: ArrayLike,
  leaf_rot: ArrayLike,
) -> jax.Array:
  """Local rotations from bone directions and ortho-twists (official `compose_rot`, 24 joints).

  For a joint j with one child c, G_j = A_c F_c^T with F_c = [b, t, b x t] of the rest bone c and
  its rest twist, A_c the same of the aimed bone and the aimed twist Gram-Schmidt-orthogonalised
  against it. Root and chest come from the swing pass; the leaves' local rotations are given.

  Args:
    rest: (B, J, 3) rest joints.
    bones: (B, J, 3) aimed bone vectors (`SwingResult.bones`).
    twist: (B, J, 3) twist directions (any norm; only JOINTS_WITH_TWIST are used).
    root_rot, chest_rot: (B, 3, 3) global orientations of joints 0 and 9.
    leaf_rot: (B, 5, 3, 3) local rotations of LEAF_JOINTS (22, 23, 10, 11, 15).

  Returns:
    (B, J, 3, 3) local rotations (joint 0: global orientation).
  """
  rest, bones, twist = jnp.asarray(rest), jnp.asarray(bones), jnp.asarray(twist)
  leaf_rot = jnp.asarray(leaf_rot)
  rb = normalize(rest - rest[:, jnp.asarray((len(PARENTS) - 1, *PARENTS[1:]))])
  rt = normalize(rest_ortho_twist(rest))
  ab, at = normalize(bones), normalize(twist)
  at = normalize(at - ab * jnp.sum(at * ab, -1, keepdims=True))
  frame_r = jnp.stack([rb, rt, jnp.cross(rb, rt)], -1)
  frame_a = jnp.stack([ab, at, jnp.cross(ab, at)], -1)
  composed = frame_a @ jnp.swapaxes(frame_r, -1, -2)
  leaf = dict(zip(LEAF_JOINTS, range(len(LEAF_JOINTS))))
  g = []
  for j, c in enumerate(CHILDREN):
    if j == 0:
      g.append(jnp.asarray(root_rot))
    elif j == _CHEST:
      g.append(jnp.asarray(chest_rot))
    elif c < 0:
      g.append(leaf_rot[:, leaf[j]])  # placeholder: leaves have no children, replaced below
    else:
      g.append(composed[:, c])
  local = local_rotations(jnp.stack(g, 1))
  return local.at[:, jnp.asarray(LEAF_JOINTS)].set(leaf_rot)


def _swing_2d_error(model: BodyModel, joints: jax.Array, betas: jax.Array, beta0: jax.Array):
  rest = rest_joints(model, betas.at[:, 0].set(beta0))
  res = hybrik_swing(joints, rest, xy_priority=True, big_diff=False).joints
  return jnp.mean(jnp.linalg.norm((res - joints)[..., :2], axis=-1), axis=-1)


def search_beta0(
  model: BodyModel, joints: ArrayLike, betas: ArrayLike, grid: tuple[float, ...] = BETA0_GRID
) -> jax.Array:
  """PersPose's beta-0 grid search (simplified SFSR; argmin, no gradient).

  Args:
    model: SMPL-format body (24 joints).
    joints: (B, J, 3) target joints, camera frame (x, y compared).
    betas: (B, S) shape; betas[:, 1:] are kept, betas[:, 0] is searched.
    grid: candidate beta_0 values (default -2.0 ... 1.9, step 0.1).

  Returns:
    (B,) the beta_0 of the smallest mean 2D error of the xy-priority swing pass.
  """
  joints, betas = jnp.asarray(joints), jnp.asarray(betas, model.v_template.dtype)
  cand = jnp.asarray(grid, betas.dtype)
  err = jax.vmap(lambda x: _swing_2d_error(model, joints, betas, x))(cand)  # (G, B)
  return jax.lax.stop_gradient(cand[jnp.argmin(err, axis=0)])


def ik_with_ortho_twist(
  model: BodyModel,
  joints: ArrayLike,
  twist: ArrayLike,
  betas: ArrayLike,
  leaf_rot: ArrayLike,
  *,
  search: bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """PersPose's SMPL fit (official `ik_w_ortho_twist`, optimize_pose off).

  Args:
    model: SMPL-format body (24 joints, S betas).
    joints: (B, 24, 3) absolute joints in the camera frame (metres).
    twist: (B, 24, 3) ortho-twist directions (camera frame; JOINTS_WITH_TWIST used).
    betas: (B, S) initial shape (the network's); beta_0 is replaced by the search.
    leaf_rot: (B, 5, 3, 3) local rotations of LEAF_JOINTS.
    search: run the beta-0 search (official: always).

  Returns:
    betas (B, S), rotmats (B, 24, 3, 3) local rotations, transl (B, 3) so that
    `smpl.forward(model, rotmats, betas, transl).joints` matches the fitted skeleton.
  """
  joints = jnp.asarray(joints)
  betas = jnp.asarray(betas, model.v_template.dtype)
  if search:
    betas = betas.at[:, 0].set(search_beta0(model, joints, betas))
  rest = rest_joints(model, betas)
  sw = hybrik_swing(joints, rest, xy_priority=False, big_diff=True)
  rot = compose_rotations(rest, sw.bones, twist, sw.root_rot, sw.chest_rot, leaf_rot)
  return betas, rot, sw.joints[:, 0] - rest[:, 0]
