"""PersPose's label geometry, metrics, loss table and the trainer hooks (`METHOD`).

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

Trainer hooks (`METHOD`, `config.method.name = 'perspose'`, model `perspose`) on image batches
(`jaxpose.data.image_pipeline`; the crop `data.image.crop = 'perspective'` is PR on,
'perspective_nopr' the same crop without the rotation, CONTRACTS §3 keys plus perspective_R and
pe_valid). The data's joints (`data.skeleton`) occupy the model's 25 slots given by DATA_TO_MODEL
(H36M-17: the pelvis in slot 0, whose depth is forced to 0 and whose rho0 is the root's; L/R pairs
in the official flip pairs). method.kwargs (DEFAULTS):
  pe            True: the perspective encoding is fed (pe_valid from the batch, else 1); False: the
                PE map is zeroed for every sample (as the official code does for COCO).
  height_m      1.8: h of the height-normalised terms when the batch has no body (so the depth and
                xyz terms are in cm).
  loss_weights  'config' (or another LOSS_WEIGHTS key, or a tuple of 12): the official weights.
  flip_train    True: the model's training flip (one p = 0.5 coin per batch, official).
  body          '': no SMPL terms. A body model ('synthetic:small', 'synthetic:full' or an SMPL
                file) turns on the twist / beta / leaf terms for batches with body_rotmat (B, 24,
                3, 3) local rotations in the camera frame of the full view and body_betas (B, S).
Loss (`pose_loss_terms`, weights of LOSS_WEIGHTS by name): uv, depth, density_root, xyz on the
mapped joints inside the crop (kp2d_vis), plus twist, beta, leaf with a body. The 3DHP and COCO
terms need their datasets and are not used here.
Evaluation: the engine's MPJPE and PA-MPJPE (root-relative, mm) on `predict_batch` (xyz of the
mapped joints, flip test with eval.flip_test), plus `eval_metrics`: root_depth_err_mm = |Z_0 -
Z_0_gt| in the original camera frame (PR rotated back with perspective_R^T) and root_err_mm =
|X_0 - X_0_gt| (absolute root position error, rotation invariant).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from jax.typing import ArrayLike

from jaxpose import models
from jaxpose.body import hybrik
from jaxpose.body import smpl as body_smpl
from jaxpose.data.images import imagenet_normalize
from jaxpose.geometry import procrustes
from jaxpose.geometry import skeleton as skel
from jaxpose.geometry.perspective import normalize, rodrigues
from jaxpose.methods._kwargs import settings
from jaxpose.methods.base import Method
from jaxpose.metrics.pose import safe_norm
from jaxpose.models.perspose import LEAF_JOINTS, NUM_BETAS

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


# ------------------------------------------------------------------------------------------------
# Trainer hooks (module docstring)

# Model slot of each data joint. H36M-17 (pelvis, RHip, RKnee, RAnkle, LHip, LKnee, LAnkle, spine,
# thorax, nose, head, LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist) -> SMPL pelvis, R/L hip,
# knee, ankle, spine1, neck, head, slot 24, L/R shoulder, elbow, wrist.
DATA_TO_MODEL = {
  'h36m17': (0, 2, 5, 8, 1, 4, 7, 3, 12, 15, 24, 16, 18, 20, 17, 19, 21),
  'smpl24': tuple(range(24)),
}
DEFAULTS = dict(pe=True, height_m=1.8, loss_weights='config', flip_train=True, body='')


def _settings(config: mlc.ConfigDict) -> dict[str, Any]:
  return settings(config, DEFAULTS, 'perspose')


def _slots(layout: str) -> np.ndarray:
  if layout not in DATA_TO_MODEL:
    raise ValueError(
      f'perspose: data.skeleton={layout!r} has no slot table; known: {list(DATA_TO_MODEL)}'
    )
  idx = np.asarray(DATA_TO_MODEL[layout])
  if idx[skel.get(layout).root] != 0:
    raise ValueError(f'perspose: the root of {layout} must occupy model slot 0')
  return idx


def make_model(config: mlc.ConfigDict):
  """The configured `perspose` model; model.kwargs.backbone_kwargs may be a mapping (config
  files) and input_hw / flip_test default to data.image.size and eval.flip_test."""
  kw = dict(config.model.kwargs)
  bk = kw.pop('backbone_kwargs', None)
  if bk:
    items = bk.items() if hasattr(bk, 'items') else bk
    kw['backbone_kwargs'] = tuple(
      sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in items)
    )
  size = int(config.data.image.size)
  kw['input_hw'] = tuple(kw.get('input_hw', (size, size)))
  kw.setdefault('flip_test', bool(config.eval.flip_test))
  return models.build(config.model.name, config.model.variant or None, **kw)


def init_inputs(config: mlc.ConfigDict, model) -> tuple[jax.Array, ...]:
  """(image (1, H, W, 3), K_crop (1, 3, 3), pe_valid (1,)) zeros of the model's input size."""
  del config
  return models.example_inputs(model, 1)


def model_inputs(batch: Mapping[str, jax.Array], config: mlc.ConfigDict):
  """Image batch -> (image (B, H, W, 3) normalised, K_crop (B, 3, 3), pe_valid (B,))."""
  image = imagenet_normalize(jnp.asarray(batch['image_u8']))
  k = jnp.asarray(batch['K_crop'], jnp.float32)
  pe = batch['pe_valid'] if 'pe_valid' in batch else jnp.ones(k.shape[:1], jnp.float32)
  pe = jnp.asarray(pe, jnp.float32) * (1.0 if _settings(config)['pe'] else 0.0)
  return image, k, pe


def pose_loss_terms(
  output: Mapping[str, jax.Array],
  batch: Mapping[str, jax.Array],
  layout: str,
  height_m: float | jax.Array,
) -> dict[str, jax.Array]:
  """uv, depth, density_root and xyz terms (the official definitions) on the mapped data joints.

  Args:
    output: the model's dict (uv (B, 25, 2) px, depth (B, 25, 1) m, density (B, 25, 1) mm/px,
      xyz (B, 25, 3) m).
    batch: pose3d_cam (B, J, 3), pose3d_root (B, 1, 3) metres (PR frame), K_crop (B, 3, 3),
      kp2d_vis (B, J) (1 inside the crop).
    layout: data skeleton (DATA_TO_MODEL key).
    height_m: h, scalar or (B,) metres.

  Returns:
    {'uv' px, 'depth', 'density_root', 'xyz'} scalars (height-normalised x 1.8, cm for h = 1.8).
  """
  idx = _slots(layout)
  root = skel.get(layout).root
  x = jnp.asarray(batch['pose3d_cam']) + jnp.asarray(batch['pose3d_root'])
  uv_gt, dens_gt = xyz2uv_density(x, batch['K_crop'])
  valid = jnp.asarray(batch['kp2d_vis']) > 0
  h = jnp.broadcast_to(jnp.asarray(height_m, x.dtype), x.shape[:1])[:, None, None]
  t = {'uv': mask_mean(safe_norm(output['uv'][:, idx] - uv_gt), valid)}
  d_gt = x[..., 2:] - x[:, root : root + 1, 2:]
  t['depth'] = HEIGHT_REF * mask_mean(100 * jnp.abs(output['depth'][:, idx] / h - d_gt / h), valid)
  dr = jnp.abs(output['density'][:, :1] / h - dens_gt[:, root : root + 1] / h)
  t['density_root'] = HEIGHT_REF * jnp.mean(dr)
  rel = 100 * (x - x[:, root : root + 1])
  t['xyz'] = HEIGHT_REF * mask_mean(safe_norm(100 * output['xyz'][:, idx] / h - rel / h), valid)
  return t


@functools.lru_cache(maxsize=4)
def load_body(name: str) -> body_smpl.BodyModel:
  """'synthetic:small' / 'synthetic:full' (jaxpose.body.synthetic) or an SMPL file path."""
  if name.startswith('synthetic:'):
    from jaxpose.body import synthetic

    return synthetic.synthetic_model(name.split(':', 1)[1])
  return body_smpl.load_model(name)


def body_labels(body: body_smpl.BodyModel, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """SMPL labels of the loss in the crop's camera frame: smpl_ortho_twist (B, 24, 3) (root
  rotated by perspective_R when present), smpl_beta (B, 11) (zero-padded), leaf_rot_gt (B, 5, 3, 3)
  local rotations of LEAF_JOINTS."""
  rot = jnp.asarray(batch['body_rotmat'], jnp.float32)
  betas = jnp.asarray(batch['body_betas'], jnp.float32)
  if 'perspective_R' in batch:
    rot = rot.at[:, 0].set(jnp.asarray(batch['perspective_R'], jnp.float32) @ rot[:, 0])
  rest = body_smpl.rest_joints(body, betas[:, : body.num_betas])
  pad = jnp.zeros((betas.shape[0], max(NUM_BETAS - betas.shape[1], 0)), betas.dtype)
  return {
    'smpl_ortho_twist': hybrik.ortho_twist(rest, rot),
    'smpl_beta': jnp.concatenate([betas, pad], -1)[:, :NUM_BETAS],
    'leaf_rot_gt': rot[:, np.asarray(LEAF_JOINTS)],
  }


def body_loss_terms(
  output: Mapping[str, jax.Array], labels: Mapping[str, jax.Array], body_valid: jax.Array
) -> dict[str, jax.Array]:
  """twist, beta and leaf terms (official definitions) of `body_labels`, over body_valid (B,)."""
  tw = np.asarray(JOINTS_WITH_TWIST)
  n_pred = normalize(output['ortho_twist'][:, tw])
  n_gt = normalize(labels['smpl_ortho_twist'][:, tw])
  b = output['leaf_rot'].shape[0]
  leaf = output['leaf_rot'].reshape(b, -1, 9) - labels['leaf_rot_gt'].reshape(b, -1, 9)
  return {
    'twist': mask_mean(safe_norm(n_pred - n_gt), body_valid),
    'beta': mask_mean(jnp.abs(labels['smpl_beta'] - output['beta']), body_valid),
    'leaf': mask_mean(safe_norm(leaf), body_valid),
  }


def smpl_fit(
  body: body_smpl.BodyModel, output: Mapping[str, jax.Array], *, search: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The official forward's SMPL step: HybrIK IK with the predicted twists (`ik_w_ortho_twist`).

  Args:
    body: SMPL-format body (24 joints, S betas).
    output: the model's dict (xyz (B, 25, 3) m root-relative, xyz0 (B, 1, 3) m, ortho_twist
      (B, 25, 3), beta (B, 11), leaf_rot (B, 5, 3, 3)), camera frame of the crop.
    search: the beta-0 grid search (official: on).

  Returns:
    betas (B, S), rotmats (B, 24, 3, 3) local rotations, transl (B, 3) metres: `body.forward`
    with them gives the camera-frame mesh (PVE, rendering, the 14 H36M joints of the protocol).
  """
  joints = output['xyz'][:, :24] + output['xyz0']
  beta = output['beta']
  s = body.num_betas
  beta = jnp.pad(beta, ((0, 0), (0, max(s - beta.shape[1], 0))))[:, :s]
  return hybrik.ik_with_ortho_twist(
    body, joints, output['ortho_twist'][:, :24], beta, output['leaf_rot'], search=search
  )


def _weights(s: Mapping[str, Any]) -> dict[str, float]:
  w = s['loss_weights']
  w = LOSS_WEIGHTS[w] if isinstance(w, str) else tuple(w)
  if len(w) != len(LOSS_NAMES):
    raise ValueError(f'method.kwargs.loss_weights: expected {len(LOSS_NAMES)} values, got {len(w)}')
  return dict(zip(LOSS_NAMES, (float(v) for v in w)))


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """Weighted PersPose terms on an image batch. Returns (loss, (scalars, new_model_state))."""
  s = _settings(config)
  image, k, pe = model_inputs(batch, config)
  flip = sample_flip(rng, image.shape[0]) if s['flip_train'] else None
  variables = {'params': params, **model_state}
  if model_state:
    out, new_state = model.apply(
      variables, image, k, pe, train=True, flip=flip, mutable=list(model_state)
    )
  else:
    out, new_state = model.apply(variables, image, k, pe, train=True, flip=flip), model_state
  terms = pose_loss_terms(out, batch, config.data.skeleton, s['height_m'])
  if s['body'] and 'body_rotmat' in batch:
    labels = body_labels(load_body(s['body']), batch)
    valid = batch['body_valid'] if 'body_valid' in batch else jnp.ones(image.shape[:1], bool)
    terms.update(body_loss_terms(out, labels, valid))
  w = _weights(s)
  loss = sum(w[n] * v for n, v in terms.items() if w[n])
  scalars = {'loss': loss, **{f'loss/{n}': v for n, v in terms.items()}}
  return loss, (scalars, new_state)


def _forward(model, variables, batch, config):
  return model.apply(variables, *model_inputs(batch, config), train=False)


def predict(model, variables, batch: Mapping[str, jax.Array], config: mlc.ConfigDict) -> jax.Array:
  """Image batch -> pose3d_cam (B, 1, J, 3) metres, root-relative, in the crop's (PR) camera
  frame, the data joints' slots of the model's xyz (flip test with eval.flip_test, via the
  model's flip_test field set by `make_model`). Also `METHOD.predict_batch`."""
  out = _forward(model, variables, batch, config)
  return out['xyz'][:, _slots(config.data.skeleton)][:, None]


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """{'root_depth_err_mm', 'root_err_mm'}: (B, 1) root errors in the original camera frame."""
  out = _forward(model, variables, batch, config)
  r = batch['perspective_R'] if 'perspective_R' in batch else jnp.eye(3)[None]
  r = jnp.broadcast_to(jnp.asarray(r, jnp.float32), (out['xyz0'].shape[0], 3, 3))
  back = lambda x: jnp.einsum('bji,bnj->bni', r, x)  # R^T x
  pred, gt = back(out['xyz0']), back(jnp.asarray(batch['pose3d_root'], jnp.float32))
  return {
    'root_depth_err_mm': 1000 * jnp.abs(pred[..., 2] - gt[..., 2]),
    'root_err_mm': 1000 * safe_norm(pred - gt),
  }


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  make_model=make_model,
  init_inputs=init_inputs,
  predict_batch=predict,
  eval_metrics=eval_metrics,
)
