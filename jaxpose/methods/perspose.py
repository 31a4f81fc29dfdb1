"""PersPose's label geometry, metrics and loss table as pure functions (no modules, no METHOD yet).

Paper: Hao & Li, "PersPose", ICCV 2025, arXiv:2508.17239. Official code:
github.com/KenAdamsJoseph/PersPose at 1863de7a455700d99280d4ce683efb726e42592b,
`src_PersPose/metric.py` (`xyz2uv_density`, `mask_mean`, `scaled_diff`, `normed_diff`,
`cal_loss_metric`), `common/loss.py` (`p_mpjpe`), configs `src_PersPose/configs/*.yaml`
(`loss_weight`); research/perspose.md §3. Written from the official semantics; no code copied.

Units: 3D in metres, camera frame of the PR crop; uv in crop pixels; density in mm per pixel
(1000 Z / f); heights h in metres (the subject's SMPL rest height, GT, also used for the
"prediction", as officially). Losses are batch scalars reduced with the official `mask_mean`
(sum over every masked element of the batch / (count + 1e-7)); the weighted total is
`sum_i LOSS_WEIGHTS[config][i] * terms[LOSS_NAMES[i]]`.

Loss table (`loss_terms`; i: name, definition):
  0 uv            mean |uv - uv_gt| px over in-crop joints of SMPL samples (BEDLAM x 0.1)
  1 uv_coco       mean relu(|duv| - 5) over 8 COCO limb joints (visible, in the crop)
  2 uv_hp3d       mean relu(|duv| - 5) over 9 3DHP joints (in the crop)
  3 depth         1.8 mean 100 |d/h - d_gt/h| (d relative to joint 0), in-crop SMPL joints
  4 depth_hp3d    1.8 mean relu(|100 d/h - 100 d_gt/h| - 4/1.8), 9 joints, relative to the pelvis
                  (prediction joint 24, GT 3DHP joint 0)
  5 density_root  1.8 |rho0/h - rho0_gt/h| (mm/px), SMPL samples
  6 density_root_hp3d  same minus a 0.04/800*1000/1.8 dead zone, 3DHP samples
  7 xyz           1.8 mean |100 xyz/h - 100 xyz_gt/h| (root-relative), in-crop SMPL joints
  8 height        |h_gt - h_pred| x 100: always 0 (h_pred = h_gt officially)
  9 twist         mean |n(t) - n(t_gt)| over the 17 twist joints (4-11, 15-23), SMPL samples
  10 beta         mean |beta - beta_gt| (11 values), SMPL samples
  11 leaf         mean |R_leaf - Rodrigues(theta_gt[leaf])|_F over the 5 leaf joints

Labels (`loss_terms`): a dict of arrays, batch first, every key present (zeros where a dataset
does not apply; masks keep them out and the labels are sanitised so no NaN reaches a gradient):
  K_crop (B, 3, 3); height (B, 1) m; is_hps, is_hp3d, is_coco, is_bedlam (B,) bool;
  smpl_j24 (B, 24, 3), smpl_j17 (B, 17, 3) m (joint 0 of smpl_j17 = H36M pelvis);
  smpl_ortho_twist (B, 24, 3); smpl_beta (B, 11); smpl_theta (B, 24, 3) axis-angle rad;
  hp3d_j17 (B, 17, 3) m (official key '3dhp_j17'); coco_kp17 (B, 17, 3) crop px + visibility.
Deviation: the norms are gradient-safe (`metrics.pose.safe_norm`), equal in value.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry import procrustes
from jaxpose.geometry.perspective import normalize, rodrigues
from jaxpose.metrics.pose import safe_norm
from jaxpose.models.perspose import LEAF_JOINTS

LOSS_NAMES = (
  'uv',
  'uv_coco',
  'uv_hp3d',
  'depth',
  'depth_hp3d',
  'density_root',
  'density_root_hp3d',
  'xyz',
  'height',
  'twist',
  'beta',
  'leaf',
)
# `loss_weight` of the official configs (src_PersPose/configs/config{,_<name>}.yaml).
LOSS_WEIGHTS = {
  'config': (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.1, 0.01, 0.01),
  '3dpw': (1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.1, 0.01, 0.01),
  'h36m': (1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.5, 0.0, 0.0, 10.0, 0.01, 0.01),
  '3dhp': (1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.1, 0.01, 0.01),
  'w_be_3dhp': (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.1, 0.01, 0.01),
  'w_be_3dpw': (1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.1, 0.01, 0.01),
}

JOINTS_WITH_TWIST = tuple(range(4, 12)) + tuple(range(15, 24))
H36M_J14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)  # SMPL-regressed H36M-17 -> 14
HP3D_EVAL_JOINTS = (0, 2, 3, 5, 6, 12, 13, 15, 16)  # H36M-order 3DHP joints in the losses
H36M_TO_SMPL = (24, 2, 5, 8, 1, 4, 7, -1, 12, -1, -1, 16, 18, 20, 17, 19, 21)
COCO_EVAL_JOINTS = (7, 8, 9, 10, 13, 14, 15, 16)
COCO_TO_SMPL = (-1, -1, -1, -1, -1, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
UV_DEAD_ZONE_PX = 5.0
DEPTH_DEAD_ZONE = 4 / 1.8
DENSITY_DEAD_ZONE = 0.04 / 800 * 1000 / 1.8
HEIGHT_REF = 1.8


def xyz2uv_density(xyz: ArrayLike, K: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Projection and density (official `xyz2uv_density`).

  Args:
    xyz: (B, J, 3) metres, camera frame (Z > 0).
    K: (B, 3, 3) intrinsics, pixels.

  Returns:
    uv (B, J, 2) pixels = (K X)[:2] / Z; density (B, J, 1) mm/px = 1000 Z / ((fx + fy) / 2).
  """
  xyz, K = jnp.asarray(xyz), jnp.asarray(K)
  q = jnp.einsum('bij,bnj->bni', K, xyz)
  f = (K[:, 0, 0] + K[:, 1, 1]) / 2
  return q[..., :2] / q[..., 2:], 1000 * q[..., 2:] / f[:, None, None]


def mask_mean(x: ArrayLike, mask: ArrayLike) -> jax.Array:
  """Official `mask_mean`: sum(x * m) / (sum(m) + 1e-7), m broadcast over x's trailing axes.

  x: (B, ...) values; mask: leading axes of x (bool or float weights). Masked-out elements are
  selected away (`where`), so NaN/inf there does not propagate. Returns a scalar.
  """
  x = jnp.asarray(x)
  m = jnp.asarray(mask, x.dtype)
  m = jnp.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape)
  return jnp.sum(jnp.where(m != 0, x * m, 0.0)) / (jnp.sum(m) + 1e-7)


def scaled_diff(val_from: ArrayLike, val_to: ArrayLike) -> jax.Array:
  """Residual after the best scale: s val_from - val_to, s = <from, to> / <from, from>.

  val_from, val_to: (B, N, D) -> (B, N, D).
  """
  a, b = jnp.asarray(val_from), jnp.asarray(val_to)
  s = jnp.sum(a * b, axis=(-1, -2)) / jnp.sum(a * a, axis=(-1, -2))
  return s[:, None, None] * a - b


def normed_diff(val_from: ArrayLike, val_to: ArrayLike) -> jax.Array:
  """Residual after the best scale and translation (official `normed_diff`). (B, N, D) -> same."""
  a, b = jnp.asarray(val_from), jnp.asarray(val_to)
  ma, mb = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
  a0, b0 = a - ma, b - mb
  s = (jnp.sum(a0 * b0, axis=(1, 2)) / jnp.sum(a0 * a0, axis=(1, 2)))[:, None, None]
  return s * a + (mb - s * ma) - b


def p_mpjpe_joints(pred: ArrayLike, gt: ArrayLike) -> jax.Array:
  """Per-joint error after similarity Procrustes (official `p_mpjpe`). (B, J, 3) -> (B, J)."""
  return safe_norm(procrustes.align(pred, gt) - jnp.asarray(gt))


def sample_flip(key: jax.Array, batch: int, *, per_sample: bool = False) -> jax.Array:
  """Training flip mask (B,) bool: one p = 0.5 coin for the batch (official) or per sample."""
  if per_sample:
    return jax.random.bernoulli(key, 0.5, (batch,))
  return jnp.broadcast_to(jax.random.bernoulli(key, 0.5), (batch,))


def _in_crop(uv: jax.Array, hw: tuple[int, int]) -> jax.Array:
  h, w = hw
  return jnp.all(uv > 0, axis=-1) & (uv[..., 0] < w) & (uv[..., 1] < h)


def _safe_pose(x: jax.Array, ok: jax.Array) -> jax.Array:
  """Replaces the poses of samples where `ok` is False by points at (0, 0, 1) (finite labels)."""
  dummy = jnp.zeros_like(x).at[..., 2].set(1.0)
  return jnp.where(ok[:, None, None], x, dummy)


def loss_terms(
  output: Mapping[str, jax.Array], labels: Mapping[str, jax.Array], image_hw: tuple[int, int]
) -> dict[str, jax.Array]:
  """The 12 official loss terms (module docstring), each a scalar.

  Args:
    output: the model's dict (uv, depth, density, xyz, ortho_twist, leaf_rot (B, 5, 3, 3), beta).
    labels: the dict of the module docstring.
    image_hw: crop (H, W), pixels.

  Returns:
    {name: scalar} for every name of LOSS_NAMES.
  """
  hps, hp3d, coco = (jnp.asarray(labels[k], bool) for k in ('is_hps', 'is_hp3d', 'is_coco'))
  bedlam = jnp.asarray(labels['is_bedlam'], bool)
  K = labels['K_crop']
  h = labels['height'][:, :, None]  # (B, 1, 1) metres
  uv, depth, density = output['uv'], output['depth'], output['density']
  t = {}

  j3d = _safe_pose(jnp.concatenate([labels['smpl_j24'], labels['smpl_j17'][:, :1]], 1), hps)
  uv_gt, dens_gt = xyz2uv_density(j3d, K)
  valid = _in_crop(uv_gt, image_hw) & hps[:, None]
  t['uv'] = mask_mean(safe_norm(uv - uv_gt), valid * jnp.where(bedlam, 0.1, 1.0)[:, None])
  t['density_root'] = HEIGHT_REF * mask_mean(jnp.abs(density[:, :1] / h - dens_gt[:, :1] / h), hps)
  d_gt = j3d[..., 2:] - j3d[:, :1, 2:]
  t['depth'] = HEIGHT_REF * mask_mean(100 * jnp.abs(depth / h - d_gt / h), valid)
  xyz_gt = 100 * (j3d - j3d[:, :1])
  t['xyz'] = HEIGHT_REF * mask_mean(safe_norm(100 * output['xyz'] / h - xyz_gt / h), valid)

  tw = np.asarray(JOINTS_WITH_TWIST)
  n_pred = normalize(output['ortho_twist'][:, tw])
  n_gt = normalize(jnp.where(hps[:, None, None], labels['smpl_ortho_twist'][:, tw], 1.0))
  t['twist'] = mask_mean(safe_norm(n_pred - n_gt), hps)
  t['beta'] = mask_mean(jnp.abs(labels['smpl_beta'] - output['beta']), hps)
  gt_leaf = rodrigues(labels['smpl_theta'][:, np.asarray(LEAF_JOINTS)])
  leaf = output['leaf_rot'].reshape(*gt_leaf.shape[:2], 9)
  t['leaf'] = mask_mean(safe_norm(leaf - gt_leaf.reshape(leaf.shape)), hps)

  sel = np.asarray(HP3D_EVAL_JOINTS)
  sel_smpl = np.asarray([H36M_TO_SMPL[i] for i in HP3D_EVAL_JOINTS])
  j17 = _safe_pose(labels['hp3d_j17'], hp3d)
  uv_h, dens_h = xyz2uv_density(j17, K)
  valid_h = (_in_crop(uv_h, image_hw) & hp3d[:, None])[:, sel]
  du = safe_norm(uv[:, sel_smpl] - uv_h[:, sel])
  t['uv_hp3d'] = mask_mean(jax.nn.relu(du - UV_DEAD_ZONE_PX), valid_h)
  dr = jnp.abs(density[:, sel_smpl][:, :1] / h - dens_h[:, sel][:, :1] / h)
  t['density_root_hp3d'] = HEIGHT_REF * mask_mean(jax.nn.relu(dr - DENSITY_DEAD_ZONE), hp3d)
  dg = 100 * (j17[:, sel, 2:] - j17[:, :1, 2:])
  dp = 100 * (depth[:, sel_smpl] - depth[:, -1:])
  dd = jnp.abs(dp / h - dg / h)
  t['depth_hp3d'] = HEIGHT_REF * mask_mean(jax.nn.relu(dd - DEPTH_DEAD_ZONE), valid_h)

  csel = np.asarray(COCO_EVAL_JOINTS)
  csmpl = np.asarray([COCO_TO_SMPL[i] for i in COCO_EVAL_JOINTS])
  kp = labels['coco_kp17'][:, csel]
  valid_c = coco[:, None] & _in_crop(kp[..., :2], image_hw) & (kp[..., 2] > 0)
  t['uv_coco'] = mask_mean(jax.nn.relu(safe_norm(uv[:, csmpl] - kp[..., :2]) - 5), valid_c)
  t['height'] = jnp.zeros((), uv.dtype)
  return {k: t[k] for k in LOSS_NAMES}


def total_loss(terms: Mapping[str, jax.Array], weights: str | tuple[float, ...] = 'config'):
  """Weighted sum of `loss_terms` with an official config's weights (LOSS_WEIGHTS) or a tuple."""
  w = LOSS_WEIGHTS[weights] if isinstance(weights, str) else tuple(weights)
  if len(w) != len(LOSS_NAMES):
    raise ValueError(f'loss weights: expected {len(LOSS_NAMES)} values, got {len(w)}')
  return sum(wi * terms[k] for wi, k in zip(w, LOSS_NAMES) if wi)
