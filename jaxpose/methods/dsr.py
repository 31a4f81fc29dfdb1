"""DSR: the SPIN-style body losses, the semantic label preparation and the DSR-MC / DSR-C losses.

Pure functions for the DSR method (Dwivedi, Athanasiou, Kocabas, Black, "Learning to Regress Bodies
from Images using Differentiable Semantic Rendering", ICCV 2021, arXiv:2110.03480; official code
github.com/saidwivedi/DSR at 7d55d173192a44ec567864befd2fb20e993098eb: `dsr/losses/losses.py`,
`dsr/semantic_rendering/{data_utils,loss,constants}.py`, `dsr/dataset/base_dataset.py`;
research/dsr.md §3). The network is `jaxpose.models.dsr`, the renderer `jaxpose.render`, the body
model `jaxpose.body`. Written from the spec; no code copied (the official licence is
non-commercial).

Training (`METHOD`, the default trainer; configs/dsr.py): `loss_fn` on image batches with body keys
(`jaxpose.data.image_pipeline` over `deepmimic_smpl_render`), settings `DEFAULTS` in
`config.method.kwargs` (every weight 0 turns its term off; dsr_mc = dsr_c = 0 is SPIN without the
semantic render). The part labels of the data are dressed as Graphonomy labels (`PART_TO_GRPH`),
prepared on device (`device_labels`, equal to `prepare_labels`), and compared with one soft render
of the predicted body with the 9 semantic textures (`semantic_terms`). Evaluation: `predict_batch`
(H36M-17 regressed from the mesh, rotated back from the crop camera, `crop_rotation`) for MPJPE and
PA-MPJPE, `eval_metrics` for PVE and PA-PVE (mm).

Body losses (per sample first, `(B,)`; the official batch value is the mean over the samples that
have the annotation, `masked_mean`):
  keypoint_2d_loss   conf * (p - g)^2 over (49, 2); conf[:25] *= openpose weight (0), conf[25:] *= gt (1)
  keypoint_3d_loss   24 GT joints (pred[:, 25:]), both centred on their mid-hip, conf * (p - g)^2
  smpl_pose_loss     MSE(pred rotmats, batch_rodrigues(gt axis-angle)) over (24, 3, 3)
  smpl_betas_loss    MSE over (10,);   vertex_loss  L1 over (V, 3) (weight 0 in DSR)
  camera_loss        exp(-10 s)^2 (keeps the weak-perspective scale positive)
  total = 60 * (5 kp2d + 5 kp3d + 1 pose + 0.001 betas + 0 vertices + cam + 0.1 DSR-MC + 0.1 DSR-C)
  (`LossWeights`, configs/dsr_train.cfg; the DSR terms only after epoch START_DSR = 2).

Semantic labels (host side, numpy, per training sample, `prepare_labels`). Graphonomy's 20 CIHP
labels (`GRPH_LABELS`, colours `GRPH_COLORS`) in the crop, as an integer map (`grph_to_labels`
reads the colour PNG; other colours -> -1, which the official code leaves black but uncounted):
  1. `remove_background`: everything outside the box of the keypoints with conf > 0.3, plus
     30 px, becomes background. Official quirk kept: the x limit is clipped with the map's height
     and the y limit with its width (harmless for square crops).
  2. DSR-MC ("minimally clothed"): the mask of the labels {leftShoe, rightShoe, leftArm, rightArm,
     face} that have more than 60 pixels; the distance map is the Euclidean distance transform of
     1 - mask (distance in px to the nearest mask pixel); the face texture is the sum of those
     labels' prior probabilities (`mc_texture`).
  3. DSR-C: the 20 labels merged to 8 classes (`DSR_C_LABELS`, `DSR_C_MERGE`); class weight
     w_c = n_min / n_c for classes with more than 60 pixels, else 0, where n_min is the smallest
     count among classes with **at least** 60 pixels (the official `>= 0` vs `> 60` mismatch: a
     class of exactly 60 pixels sets n_min but gets weight 0). The face textures are the merged
     prior (`c_textures`, (8, F)), the same for every sample.
  The prior is `semantic_prior.npy` (F = 13776 faces x 20 labels, MPI licence, user-supplied):
  `load_semantic_prior`, or `synthetic_semantic_prior` (a row-stochastic Dirichlet draw).

Semantic losses (device side, per sample). Inputs are probability maps: the official code renders
9 RGB images per sample (1 MC + 8 class textures repeated to RGB, ambient light 1, no directional
light, black background) and uses their mean over RGB. Because SoftRas' colour aggregation is
linear in the face colours, one render with the 9 textures as 9 channels (`semantic_face_colors`)
gives the same maps (`split_semantic_render`); `split_official_render` reads the official
(B * 9, 4, H, W) stack.
  dsr_mc_loss   'nIOU' (DSR's config): 1 - IoU(p, mask) with `niou='rowwise'` (official, default):
                the official call reduces only over the last axis, so the IoU is computed per image
                row, sum_x(p t) / (sum_x(p + t - p t) + 1e-6), and averaged over the H rows; rows
                with neither prediction nor target count as IoU 0. `niou='image'`: the per-image
                IoU sum(p t) / (sum(p + t - p t) + 1e-6) (what the paper describes).
                'DistM': sum_rgb(p * EDT) / ((sum_rgb p)^1.5 + 1e-6), i.e. 3 sum(p EDT) /
                ((3 sum p)^1.5 + 1e-6) on the RGB mean p.
  dsr_c_loss    cross entropy with the class weights over pixels, the 8 probability maps used
                directly as logits (no log, as the official): sum w_y (-log_softmax(p)_y) / sum w_y.
  A sample with no valid MC label gets 0 for both (the official skips it but still averages over
  the whole batch); a non-finite per-sample loss is set to 0 as the official does.
  `neg_iou_batched` is the other official negative IoU (`losses.neg_iou_loss`, 1e-6 on both the
  intersection and the union, per batch element over all remaining axes), used by SGCL, not DSR.

Deviations: the label preparation reads an integer label map (colours mapped first) instead of
comparing colours per label; a sample without any keypoint of conf > 0.3 keeps its whole map (the
official code raises on the empty minimum); the distance map of an empty mask is 0 (the official
value is never used: such samples are skipped); the distance transform is computed in 2-D (the
official runs it on the (H, W, 3) mask, which gives the same map in each channel); the cross
entropy divides by max(sum w_y, tiny) and then zeroes the non-finite case, with finite gradients.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from jax.typing import ArrayLike

from jaxpose.data.images import imagenet_normalize
from jaxpose.geometry import spin
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method
from jaxpose.metrics import mesh as metrics_mesh

# ------------------------------------------------------------------------------------------------
# label tables (dsr/semantic_rendering/constants.py)

GRPH_LABELS = tuple(
  'background hat hair glove sunglasses upperclothes dress coat socks pants jumpsuits scarf skirt '
  'face leftArm rightArm leftLeg rightLeg leftShoe rightShoe'.split()
)
# CIHP palette, RGB, in GRPH_LABELS order.
GRPH_COLORS = np.array(
  [
    int(v)
    for v in (
      '0 0 0  128 0 0  255 0 0  0 85 0  170 0 51  255 85 0  0 0 85  0 119 221  85 85 0  0 85 85  '
      '85 51 0  52 86 128  0 128 0  0 0 255  51 170 221  0 255 255  85 255 170  170 255 85  '
      '255 255 0  255 170 0'
    ).split()
  ],
  np.uint8,
).reshape(-1, 3)
DSR_MC_LABELS = ('leftShoe', 'rightShoe', 'leftArm', 'rightArm', 'face')
DSR_MC_IDS = tuple(GRPH_LABELS.index(n) for n in DSR_MC_LABELS)
DSR_C_LABELS = tuple('background head upperclothes pants leftArm rightArm leftLeg rightLeg'.split())
# Graphonomy label ids merged into each DSR-C class (GRPH_MERGE_MAP).
DSR_C_MERGE = (
  (0,),
  (1, 2, 4, 11, 13),
  (3, 5, 6, 7, 10),
  (8, 9, 12),
  (14,),
  (15,),
  (16, 18),
  (17, 19),
)
NUM_C = len(DSR_C_LABELS)
NUM_SEMANTIC_CHANNELS = 1 + NUM_C  # MC + 8 classes
MIN_LABEL_PIXELS = 60
KEYPOINT_MARGIN_PX = 30
KEYPOINT_MIN_CONF = 0.3
UNKNOWN_LABEL = -1

NIOU_MODES = ('rowwise', 'image')
MC_LOSS_TYPES = ('nIOU', 'DistM')


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """DSRLoss weights (configs/dsr_train.cfg; the constructor defaults 0.2 for the DSR terms).

  total = loss_weight * (keypoint * (kp2d + kp3d) + pose * pose + betas * betas + vertices *
  vertices + cam + dsr_mc * DSR-MC + dsr_c * DSR-C).
  """

  keypoint: float = 5.0
  pose: float = 1.0
  betas: float = 0.001
  vertices: float = 0.0
  dsr_mc: float = 0.1
  dsr_c: float = 0.1
  openpose: float = 0.0
  gt: float = 1.0
  loss_weight: float = 60.0
  start_dsr_epoch: int = 2  # DSR terms on when epoch > start_dsr_epoch


# ------------------------------------------------------------------------------------------------
# body losses (dsr/losses/losses.py), per sample


def masked_mean(per_sample: jax.Array, mask: ArrayLike | None = None) -> jax.Array:
  """Mean of (B,) values over the samples where `mask` (B,) is true; 0 when there are none (as the
  official losses return for batches without the annotation)."""
  if mask is None:
    return jnp.mean(per_sample)
  m = jnp.asarray(mask).astype(per_sample.dtype)
  return jnp.sum(per_sample * m) / jnp.maximum(jnp.sum(m), 1.0)


def keypoint_2d_loss(
  pred_kp2d: jax.Array, gt_kp2d: jax.Array, openpose_weight: float = 0.0, gt_weight: float = 1.0
) -> jax.Array:
  """Confidence-weighted squared error of the 49 projected joints.

  Args:
    pred_kp2d: (B, 49, 2) kp2d_norm in [-1, 1] (`geometry.spin.project_points`).
    gt_kp2d: (B, 49, 3) kp2d_norm + confidence.
    openpose_weight: multiplies the confidences of the 25 OpenPose joints (0 in DSR).
    gt_weight: multiplies the confidences of the 24 GT joints (1).

  Returns:
    (B,) mean over (49, 2) of conf * (p - g)^2; the batch loss is its mean.
  """
  n = spin.NUM_OPENPOSE
  w = jnp.concatenate(
    [jnp.full((n,), openpose_weight), jnp.full((gt_kp2d.shape[1] - n,), gt_weight)]
  )
  conf = gt_kp2d[..., 2:] * w[:, None]
  return jnp.mean(conf * (pred_kp2d - gt_kp2d[..., :2]) ** 2, axis=(1, 2))


def _mid_hip_centred(j: jax.Array) -> jax.Array:
  return j - 0.5 * (j[:, spin.GT_RIGHT_HIP] + j[:, spin.GT_LEFT_HIP])[:, None]


def keypoint_3d_loss(pred_j3d: jax.Array, gt_j3d: jax.Array) -> jax.Array:
  """Confidence-weighted squared error of the 24 GT joints, both centred on their mid-hip.

  Args:
    pred_j3d: (B, 49, 3) predicted joints, metres (the GT joints are pred[:, 25:]).
    gt_j3d: (B, 24, 4) GT joints, metres, + confidence.

  Returns:
    (B,) mean over (24, 3); the batch loss is `masked_mean(_, has_pose_3d)`.
  """
  p = _mid_hip_centred(pred_j3d[:, spin.NUM_OPENPOSE :])
  g = _mid_hip_centred(gt_j3d[..., :3])
  return jnp.mean(gt_j3d[..., 3:] * (p - g) ** 2, axis=(1, 2))


def smpl_pose_loss(pred_rotmat: jax.Array, gt_pose: jax.Array) -> jax.Array:
  """(B, 24, 3, 3) predicted rotations vs (B, 72) GT axis-angle -> (B,) MSE over (24, 3, 3);
  the batch loss is `masked_mean(_, has_smpl)`."""
  gt = spin.batch_rodrigues(gt_pose.reshape(gt_pose.shape[0], -1, 3))
  return jnp.mean((pred_rotmat - gt) ** 2, axis=(1, 2, 3))


def smpl_betas_loss(pred_betas: jax.Array, gt_betas: jax.Array) -> jax.Array:
  """(B, 10) vs (B, 10) -> (B,) MSE; the batch loss is `masked_mean(_, has_smpl)`."""
  return jnp.mean((pred_betas - gt_betas) ** 2, axis=1)


def vertex_loss(pred_vertices: jax.Array, gt_vertices: jax.Array) -> jax.Array:
  """(B, V, 3) vs (B, V, 3) metres -> (B,) L1 mean; the batch loss is `masked_mean(_, has_smpl)`."""
  return jnp.mean(jnp.abs(pred_vertices - gt_vertices), axis=(1, 2))


def camera_loss(cam_weak: jax.Array) -> jax.Array:
  """(B, 3) (s, tx, ty) -> (B,) exp(-10 s)^2; the batch loss is its mean."""
  return jnp.exp(-10.0 * cam_weak[:, 0]) ** 2


def body_losses(
  pred: Mapping[str, jax.Array],
  gt: Mapping[str, jax.Array],
  weights: LossWeights = LossWeights(),
) -> dict[str, jax.Array]:
  """The official HMRLoss terms as batch scalars, unweighted.

  Args:
    pred: 'body_rotmat' (B, 24, 3, 3), 'body_betas' (B, 10), 'cam_weak' (B, 3), 'kp2d_norm'
      (B, 49, 2), 'joints3d' (B, 49, 3) metres, optional 'vertices' (B, V, 3) metres.
    gt: 'pose' (B, 72) axis-angle, 'betas' (B, 10), 'kp2d_norm' (B, 49, 3), 'pose3d' (B, 24, 4)
      metres + conf, 'has_smpl' (B,), 'has_pose_3d' (B,), optional 'vertices' (B, V, 3).
    weights: only `openpose` and `gt` (the 2D confidence multipliers) are used here.

  Returns:
    {'keypoints', 'keypoints_3d', 'regr_pose', 'regr_betas', 'cam', and 'shape' when both have
    vertices}: () float32 each.
  """
  has_smpl, has_3d = gt['has_smpl'], gt['has_pose_3d']
  out = {
    'keypoints': jnp.mean(
      keypoint_2d_loss(pred['kp2d_norm'], gt['kp2d_norm'], weights.openpose, weights.gt)
    ),
    'keypoints_3d': masked_mean(keypoint_3d_loss(pred['joints3d'], gt['pose3d']), has_3d),
    'regr_pose': masked_mean(smpl_pose_loss(pred['body_rotmat'], gt['pose']), has_smpl),
    'regr_betas': masked_mean(smpl_betas_loss(pred['body_betas'], gt['betas']), has_smpl),
    'cam': jnp.mean(camera_loss(pred['cam_weak'])),
  }
  if 'vertices' in pred and 'vertices' in gt:
    out['shape'] = masked_mean(vertex_loss(pred['vertices'], gt['vertices']), has_smpl)
  return out


def total_loss(
  terms: Mapping[str, jax.Array], weights: LossWeights = LossWeights(), start_dsr: bool = True
) -> jax.Array:
  """The official weighted sum times `loss_weight` (60); 'dsr_mc'/'dsr_c' count when present and
  `start_dsr` (epoch > start_dsr_epoch). `terms` as `body_losses` (+ 'dsr_mc', 'dsr_c')."""
  w = {
    'keypoints': weights.keypoint,
    'keypoints_3d': weights.keypoint,
    'regr_pose': weights.pose,
    'regr_betas': weights.betas,
    'shape': weights.vertices,
    'cam': 1.0,
  }
  if start_dsr:
    w.update(dsr_mc=weights.dsr_mc, dsr_c=weights.dsr_c)
  return weights.loss_weight * sum(w[k] * v for k, v in terms.items() if k in w)


# ------------------------------------------------------------------------------------------------
# semantic labels (host side, numpy)


def grph_to_labels(grph_rgb: np.ndarray) -> np.ndarray:
  """Graphonomy colour map (H, W, 3) uint8 RGB (`GRPH_COLORS`) -> (H, W) int32 label ids 0..19,
  `UNKNOWN_LABEL` (-1) for any other colour."""
  g = np.asarray(grph_rgb)
  if g.ndim != 3 or g.shape[-1] != 3:
    raise ValueError(f'grph_rgb: expected (H, W, 3) RGB, got shape {g.shape}')

  def pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]

  key, table = pack(g), pack(GRPH_COLORS)
  out = np.full(key.shape, UNKNOWN_LABEL, np.int32)
  for i, k in enumerate(table):
    out[key == k] = i
  return out


def remove_background(
  labels: np.ndarray, kp2d_px: np.ndarray, conf: np.ndarray, margin: float = KEYPOINT_MARGIN_PX
) -> np.ndarray:
  """Sets the labels outside the keypoints' box (+ margin px) to background (0), as the official
  `remove_background_from_keypoints` blackens the colour map.

  Args:
    labels: (H, W) int label map.
    kp2d_px: (J, 2) keypoints in the map's pixels (x, y).
    conf: (J,) confidences; only conf > 0.3 define the box. None above it: the map is returned
      unchanged (the official code raises).
    margin: px added on every side (30).

  Returns:
    (H, W) a new label map. The x limit is clipped with H and the y limit with W (official quirk).
  """
  out = np.array(labels, copy=True)
  kp = np.asarray(kp2d_px, np.float64)[np.asarray(conf) > KEYPOINT_MIN_CONF]
  if not len(kp):
    return out
  h, w = out.shape[:2]
  xmin, xmax = int(max(kp[:, 0].min() - margin, 0)), int(min(kp[:, 0].max() + margin, h))
  ymin, ymax = int(max(kp[:, 1].min() - margin, 0)), int(min(kp[:, 1].max() + margin, w))
  out[:ymin], out[ymax:] = 0, 0
  out[:, :xmin], out[:, xmax:] = 0, 0
  return out


def mc_target(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """DSR-MC target from a (H, W) label map (after `remove_background`).

  Returns:
    mask (H, W) float32 in {0, 1}: union of the MC labels with > 60 pixels;
    valid (5,) bool per `DSR_MC_LABELS`; num_pixels (5,) int64 per label.
  """
  counts = np.array([np.count_nonzero(labels == i) for i in DSR_MC_IDS], np.int64)
  valid = counts > MIN_LABEL_PIXELS
  mask = np.isin(labels, np.asarray(DSR_MC_IDS)[valid]).astype(np.float32)
  return mask, valid, counts


def distance_map(mask: np.ndarray) -> np.ndarray:
  """(H, W) Euclidean distance in px from each pixel to the nearest mask pixel (0 on the mask);
  all zeros for an empty mask. float32."""
  from scipy import ndimage  # a dependency of jax

  m = np.asarray(mask) > 0
  if not m.any():
    return np.zeros(m.shape, np.float32)
  return ndimage.distance_transform_edt(~m).astype(np.float32)


def class_weights(counts: np.ndarray, threshold: int = MIN_LABEL_PIXELS) -> np.ndarray:
  """Official `get_class_ratio`: (C,) pixel counts -> (C,) float32 n_min / n_c for counts >
  threshold, else 0; n_min = the smallest count >= threshold (all zeros if none)."""
  c = np.asarray(counts, np.float32)
  kept = c[c >= threshold]
  if not kept.size:
    return np.zeros(c.shape, np.float32)
  n_min = np.float32(np.min(kept))
  return np.where(c > threshold, n_min / np.maximum(c, 1), 0).astype(np.float32)


def c_target(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """DSR-C target from a (H, W) label map (after `remove_background`).

  Returns:
    c_label (H, W) int32 in 0..7 (`DSR_C_LABELS`; unknown colours -> 0), class_weight (8,)
    float32 (`class_weights`), counts (8,) int64 (unknown colours uncounted).
  """
  lookup = np.zeros(len(GRPH_LABELS), np.int32)
  for c, ids in enumerate(DSR_C_MERGE):
    lookup[list(ids)] = c
  lab = np.asarray(labels)
  known = lab >= 0
  c_label = np.where(known, lookup[np.where(known, lab, 0)], 0).astype(np.int32)
  counts = np.bincount(c_label[known], minlength=NUM_C).astype(np.int64)
  return c_label, class_weights(counts), counts


def mc_texture(prior: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Per-face DSR-MC texture: (F, 20) prior, (5,) valid MC labels -> (F,) float32 sum of the
  valid labels' probabilities."""
  ids = [i for i, v in zip(DSR_MC_IDS, np.asarray(valid)) if v]
  p = np.asarray(prior, np.float32)
  return p[:, ids].sum(axis=1, dtype=np.float32) if ids else np.zeros(p.shape[0], np.float32)


def c_textures(prior: np.ndarray) -> np.ndarray:
  """Per-face DSR-C textures: (F, 20) prior -> (8, F) float32 merged class probabilities."""
  p = np.asarray(prior, np.float32)
  return np.stack([p[:, list(ids)].sum(axis=1, dtype=np.float32) for ids in DSR_C_MERGE])


def prepare_labels(
  labels: np.ndarray, kp2d_px: np.ndarray, conf: np.ndarray, prior: np.ndarray
) -> dict[str, np.ndarray]:
  """Every per-sample DSR label (the official dataset's `grph_*` items) from a Graphonomy map.

  Args:
    labels: (H, W) int Graphonomy labels of the crop (`grph_to_labels` for the colour PNG).
    kp2d_px: (J, 2) keypoints in crop pixels; conf: (J,) their confidences.
    prior: (F, 20) semantic prior.

  Returns:
    'dsr_mc_mask' (H, W) float32, 'dsr_mc_dist' (H, W) float32 px, 'dsr_mc_valid' (5,) bool,
    'dsr_c_label' (H, W) int32, 'dsr_c_weight' (8,) float32, 'dsr_texture_mc' (F,) float32.
  """
  lab = remove_background(labels, kp2d_px, conf)
  mask, valid, _ = mc_target(lab)
  c_label, weight, _ = c_target(lab)
  return {
    'dsr_mc_mask': mask,
    'dsr_mc_dist': distance_map(mask),
    'dsr_mc_valid': valid,
    'dsr_c_label': c_label,
    'dsr_c_weight': weight,
    'dsr_texture_mc': mc_texture(prior, valid),
  }


def load_semantic_prior(path: str | os.PathLike, num_faces: int | None = None) -> np.ndarray:
  """Reads `semantic_prior.npy` (squeezable to (F, 20)) as float32.

  Raises:
    ValueError: naming the file, the expected and the actual shape.
  """
  p = np.squeeze(np.load(path, allow_pickle=False))
  if p.ndim != 2 or p.shape[1] != len(GRPH_LABELS) or (num_faces and p.shape[0] != num_faces):
    expected = f'({num_faces or "F"}, {len(GRPH_LABELS)})'
    raise ValueError(f'{path}: semantic prior has shape {p.shape}, expected {expected}')
  return p.astype(np.float32)


def synthetic_semantic_prior(num_faces: int, seed: int = 0, alpha: float = 0.3) -> np.ndarray:
  """A stand-in prior: (num_faces, 20) float32 rows drawn from Dirichlet(alpha), deterministic."""
  rng = np.random.default_rng(seed)
  return rng.dirichlet(np.full(len(GRPH_LABELS), alpha), size=num_faces).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# render <-> probability maps


def semantic_face_colors(texture_mc: ArrayLike, texture_c: ArrayLike) -> jax.Array:
  """The 9 semantic textures as one multi-channel face colour for a single soft render.

  Args:
    texture_mc: (B, F) or (F,) DSR-MC texture (`mc_texture`).
    texture_c: (8, F) DSR-C textures (`c_textures`).

  Returns:
    (B, F, 9) (or (F, 9)) channel 0 = MC, 1..8 = the classes; render with a black background,
    ambient light 1 and no directional light, then `split_semantic_render`.
  """
  mc = jnp.asarray(texture_mc)
  c = jnp.moveaxis(jnp.asarray(texture_c), 0, -1)  # (F, 8)
  c = jnp.broadcast_to(c, (*mc.shape, NUM_C))
  return jnp.concatenate([mc[..., None], c], axis=-1)


def split_semantic_render(color: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(B, H, W, 9) render of `semantic_face_colors` -> (mc_prob (B, H, W), c_prob (B, H, W, 8))."""
  return color[..., 0], color[..., 1:]


def split_official_render(rendered: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """The official SoftRas stack (B * 9, 4, H, W) RGBA (per sample: MC, then 8 classes) ->
  (mc_prob (B, H, W), c_prob (B, H, W, 8)), each the mean over RGB."""
  r = jnp.asarray(rendered)
  n, _, h, w = r.shape
  if n % NUM_SEMANTIC_CHANNELS:
    raise ValueError(f'rendered: first axis {n} is not a multiple of {NUM_SEMANTIC_CHANNELS}')
  rgb = jnp.mean(r[:, :3], axis=1).reshape(-1, NUM_SEMANTIC_CHANNELS, h, w)
  return rgb[:, 0], jnp.moveaxis(rgb[:, 1:], 1, -1)


# ------------------------------------------------------------------------------------------------
# semantic losses (dsr/semantic_rendering/loss.py, dsr/losses/losses.py)


def neg_iou_rowwise(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Official DSR-MC nIOU on 2-D maps: 1 - mean over rows of sum_x(p t) / (sum_x(p + t - p t) +
  1e-6). (..., H, W) -> (...)."""
  inter = jnp.sum(pred * target, axis=-1)
  union = jnp.sum(pred + target - pred * target, axis=-1) + 1e-6
  return 1.0 - jnp.mean(inter / union, axis=-1)


def neg_iou_image(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Per-image IoU loss: 1 - sum(p t) / (sum(p + t - p t) + 1e-6). (..., H, W) -> (...)."""
  inter = jnp.sum(pred * target, axis=(-2, -1))
  union = jnp.sum(pred + target - pred * target, axis=(-2, -1)) + 1e-6
  return 1.0 - inter / union


def neg_iou_batched(pred: jax.Array, target: jax.Array) -> jax.Array:
  """`losses.neg_iou_loss`: (N, ...) -> () 1 - mean_n (sum(p t) + 1e-6) / (sum(p + t - p t) +
  1e-6), sums over every axis after the first."""
  axes = tuple(range(1, pred.ndim))
  inter = jnp.sum(pred * target, axis=axes) + 1e-6
  union = jnp.sum(pred + target - pred * target, axis=axes) + 1e-6
  return 1.0 - jnp.mean(inter / union)


def distance_map_loss(mc_prob: jax.Array, dist: jax.Array, channels: int = 3) -> jax.Array:
  """Official 'DistM' on a render with `channels` RGB channels whose mean is `mc_prob`:
  sum_rgb(p EDT) / ((sum_rgb p)^1.5 + 1e-6). (B, H, W), (B, H, W) px -> (B,)."""
  prod = channels * jnp.sum(mc_prob * dist, axis=(-2, -1))
  norm = (channels * jnp.sum(mc_prob, axis=(-2, -1))) ** 1.5
  return prod / (norm + 1e-6)


def dsr_mc_loss(
  mc_prob: jax.Array,
  mask: jax.Array,
  dist: jax.Array | None = None,
  *,
  loss_type: str = 'nIOU',
  niou: str = 'rowwise',
) -> jax.Array:
  """DSR-MC per sample, before the validity mask.

  Args:
    mc_prob: (B, H, W) MC render, mean over RGB, in [0, 1].
    mask: (B, H, W) `dsr_mc_mask`.
    dist: (B, H, W) `dsr_mc_dist` px (for 'DistM').
    loss_type: 'nIOU' (DSR's config) or 'DistM' (the constructor default).
    niou: 'rowwise' (official, default) or 'image' (per-image IoU).

  Returns:
    (B,) float32.
  """
  if loss_type == 'DistM':
    if dist is None:
      raise ValueError("loss_type='DistM' needs dist (the dsr_mc_dist map)")
    return distance_map_loss(mc_prob, dist)
  if loss_type != 'nIOU':
    raise ValueError(f'loss_type must be one of {MC_LOSS_TYPES}; got {loss_type!r}')
  if niou == 'rowwise':
    return neg_iou_rowwise(mc_prob, mask)
  if niou == 'image':
    return neg_iou_image(mc_prob, mask)
  raise ValueError(f'niou must be one of {NIOU_MODES}; got {niou!r}')


def dsr_c_loss(c_prob: jax.Array, c_label: jax.Array, class_weight: jax.Array) -> jax.Array:
  """DSR-C per sample: class-weighted cross entropy with probabilities as logits.

  Args:
    c_prob: (B, H, W, 8) class renders, mean over RGB, in [0, 1], used directly as logits.
    c_label: (B, H, W) int class per pixel (`dsr_c_label`).
    class_weight: (B, 8) `dsr_c_weight`.

  Returns:
    (B,) sum over pixels of w_y (-log_softmax(p)_y) / sum of w_y; NaN (all weights 0) where the
    official gives NaN, which `dsr_losses` zeroes.
  """
  logp = jax.nn.log_softmax(c_prob, axis=-1)
  nll = -jnp.take_along_axis(logp, c_label[..., None].astype(jnp.int32), axis=-1)[..., 0]
  w = class_weight[jnp.arange(c_label.shape[0])[:, None, None], c_label]
  num = jnp.sum(w * nll, axis=(1, 2))
  den = jnp.sum(w, axis=(1, 2))
  return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def dsr_losses(
  mc_prob: jax.Array,
  c_prob: jax.Array,
  labels: Mapping[str, jax.Array],
  *,
  loss_type: str = 'nIOU',
  niou: str = 'rowwise',
) -> dict[str, jax.Array]:
  """DSR-MC and DSR-C as the official `sr_losses` reduces them.

  Args:
    mc_prob: (B, H, W) MC probability render; c_prob: (B, H, W, 8) class probability renders.
    labels: 'dsr_mc_mask' (B, H, W), 'dsr_mc_valid' (B, 5) bool, 'dsr_c_label' (B, H, W) int,
      'dsr_c_weight' (B, 8), and 'dsr_mc_dist' (B, H, W) for 'DistM'.
    loss_type, niou: as `dsr_mc_loss`.

  Returns:
    {'dsr_mc', 'dsr_c'}: () means over the whole batch of the per-sample losses, with 0 for samples
    without any valid MC label and for non-finite values; 'dsr_mc_per_sample',
    'dsr_c_per_sample' (B,) the values averaged.
  """
  valid = jnp.any(jnp.asarray(labels['dsr_mc_valid']), axis=-1)
  mc = dsr_mc_loss(
    mc_prob, labels['dsr_mc_mask'], labels.get('dsr_mc_dist'), loss_type=loss_type, niou=niou
  )
  c = dsr_c_loss(c_prob, labels['dsr_c_label'], labels['dsr_c_weight'])
  ok = valid & jnp.isfinite(mc) & jnp.isfinite(c)
  mc = jnp.where(ok, mc, 0.0)
  c = jnp.where(ok, c, 0.0)
  return {
    'dsr_mc': jnp.mean(mc),
    'dsr_c': jnp.mean(c),
    'dsr_mc_per_sample': mc,
    'dsr_c_per_sample': c,
  }


def stack_labels(samples: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Stacks per-sample `prepare_labels` outputs into batch arrays (B, ...)."""
  return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


# ------------------------------------------------------------------------------------------------
# training in the default trainer (METHOD)

# Settings (`config.method.kwargs`): see the section docstring of `loss_fn`.
DEFAULTS = dict(
  body='small',  # 'small' | 'full' (jaxpose.body.synthetic) or a path to an SMPL .pkl / .npz
  regressor_h36m='',  # (17, V) .npy for a real SMPL body ('' = the synthetic body's own)
  prior='',  # semantic_prior.npy ('' = from the body's part segmentation, `parts_prior`)
  prior_smoothing=0.05,  # parts_prior: (1 - e) one-hot + e / 20
  keypoint=5.0,  # 2D reprojection, normalised crop coordinates
  keypoint_3d=5.0,  # 3D joints, pelvis-centred, metres
  pose=1.0,  # SMPL rotations (has_smpl)
  betas=0.001,  # SMPL betas (has_smpl)
  vertices=0.0,  # L1 on model-frame vertices (has_smpl)
  cam=1.0,  # exp(-10 s)^2
  betas_prior=0.0,  # mean(betas^2): a Gaussian shape prior (not in DSR's config)
  dsr_mc=0.1,  # DSR-MC (0 turns it off)
  dsr_c=0.1,  # DSR-C (0 turns it off)
  loss_weight=60.0,
  mc_loss='nIOU',  # 'nIOU' | 'DistM' (DistM needs the host distance map: not in the trainer)
  niou='rowwise',  # 'rowwise' (official) | 'image'
  sigma=1e-5,
  gamma=0.1,
  tile_size=8,
  max_faces_per_tile=0,  # 0 = every face (exact)
)
# The body parts of `jaxpose.body.parts` dressed as Graphonomy labels: a short-sleeved shirt
# (torso, upper arms), trousers (thighs), bare forearms and hands, bare shins, shoes, a face.
PART_TO_GRPH = {
  'background': 'background',
  'head': 'face',
  'torso': 'upperclothes',
  'left_upper_arm': 'upperclothes',
  'right_upper_arm': 'upperclothes',
  'left_lower_arm': 'leftArm',
  'right_lower_arm': 'rightArm',
  'left_hand': 'leftArm',
  'right_hand': 'rightArm',
  'left_upper_leg': 'pants',
  'right_upper_leg': 'pants',
  'left_lower_leg': 'leftLeg',
  'right_lower_leg': 'rightLeg',
  'left_foot': 'leftShoe',
  'right_foot': 'rightShoe',
}
OFFICIAL_CROP = 224  # px: the crop DSR's pixel thresholds (60 px, 30 px margin) are written for


def _settings(config: mlc.ConfigDict) -> dict:
  s = _kwargs.settings(config, DEFAULTS, 'dsr')
  if s['mc_loss'] != 'nIOU':
    raise ValueError(
      f"method.kwargs.mc_loss={s['mc_loss']!r}: the trainer supports 'nIOU' only (DistM needs "
      'the per-sample distance transform, `prepare_labels`, on the host)'
    )
  if s['niou'] not in NIOU_MODES:
    raise ValueError(f'method.kwargs.niou must be one of {NIOU_MODES}; got {s["niou"]!r}')
  return s


def part_label_lut(part_names: Sequence[str]) -> np.ndarray:
  """(P,) int32: a dataset's part label -> Graphonomy label id (`PART_TO_GRPH`; unknown -> 0)."""
  return np.array(
    [GRPH_LABELS.index(PART_TO_GRPH.get(n, 'background')) for n in part_names], np.int32
  )


def parts_prior(face_parts: np.ndarray, smoothing: float = 0.05) -> np.ndarray:
  """A semantic prior from a body's part segmentation: (F,) `jaxpose.body.parts` labels ->
  (F, 20) float32 rows (1 - smoothing) one-hot(PART_TO_GRPH) + smoothing / 20."""
  from jaxpose.body import parts

  grph = part_label_lut(parts.PARTS)[np.asarray(face_parts)]
  out = np.full((len(grph), len(GRPH_LABELS)), smoothing / len(GRPH_LABELS), np.float32)
  out[np.arange(len(grph)), grph] += 1.0 - smoothing
  return out


@functools.lru_cache(maxsize=4)
def body_assets(body: str, regressor_h36m: str, prior: str, prior_smoothing: float) -> dict:
  """The body model, its H36M-17 regressor (17, V), faces (F, 3) and semantic prior (F, 20).

  `body` 'small' / 'full' is the synthetic model (its regressor and `parts_prior`); anything else
  is a real SMPL file (`jaxpose.body.load_model`), which needs `regressor_h36m` and `prior`.
  """
  with jax.ensure_compile_time_eval():  # cached across traces: concrete arrays only
    return _body_assets(body, regressor_h36m, prior, prior_smoothing)


def _body_assets(body: str, regressor_h36m: str, prior: str, prior_smoothing: float) -> dict:
  from jaxpose import body as body_lib
  from jaxpose.body import parts

  if body in ('small', 'full'):
    model = body_lib.synthetic_model(body)
    reg = body_lib.synthetic_joint_regressors(body).h36m
  else:
    if not (regressor_h36m and prior):
      raise ValueError(
        f'method.kwargs.body={body!r} (a real body file) needs regressor_h36m and prior paths'
      )
    model = body_lib.load_model(body)
    reg = jnp.asarray(np.load(regressor_h36m), jnp.float32)
  faces = np.asarray(model.faces)
  if prior:
    pri = load_semantic_prior(prior, len(faces))
  else:
    fp = parts.face_parts(np.asarray(model.weights), faces)
    pri = parts_prior(fp, prior_smoothing)
  return {'model': model, 'h36m': reg, 'faces': faces, 'prior': pri}


def _assets(s: dict) -> dict:
  return body_assets(s['body'], s['regressor_h36m'], s['prior'], float(s['prior_smoothing']))


def crop_rotation(K_crop: jax.Array) -> jax.Array:
  """(B, 3, 3) crop intrinsics -> (B, 3, 3) the in-plane rotation R_z of the crop.

  An augmented crop rotates the image about the optical axis: K_crop ~ K_ideal R_z with K_ideal
  upper triangular. R_z's 2D block is the rotation closest to K_crop's top-left 2x2 block
  (atan2 of its antisymmetric and symmetric parts; exact for square pixels). The crop camera sees
  a camera-frame point X at R_z X, which is the frame the regressor predicts in (SPIN rotates its
  3D targets and global orientation the same way). Flipped samples (mirrored 3D, K_crop with the
  mirror on both sides) have a proper rotation too.
  """
  a = K_crop[:, :2, :2]
  theta = jnp.arctan2(a[:, 1, 0] - a[:, 0, 1], a[:, 0, 0] + a[:, 1, 1])
  c, s = jnp.cos(theta), jnp.sin(theta)
  zero, one = jnp.zeros_like(c), jnp.ones_like(c)
  return jnp.stack(
    [jnp.stack([c, -s, zero], -1), jnp.stack([s, c, zero], -1), jnp.stack([zero, zero, one], -1)],
    axis=-2,
  )


def device_labels(
  grph: jax.Array,
  kp2d_px: jax.Array,
  conf: jax.Array,
  prior: jax.Array,
  *,
  min_pixels: float = MIN_LABEL_PIXELS,
  margin: float = KEYPOINT_MARGIN_PX,
) -> dict[str, jax.Array]:
  """`prepare_labels` on device for a batch (without the distance map, which only 'DistM' reads).

  Args:
    grph: (B, H, W) int Graphonomy labels of the crops.
    kp2d_px: (B, J, 2) keypoints in crop pixels; conf: (B, J).
    prior: (F, 20) semantic prior.
    min_pixels: a label counts with more than this many pixels (60 at 224 px).
    margin: px around the keypoint box (30 at 224 px).

  Returns:
    'dsr_mc_mask' (B, H, W) float32, 'dsr_mc_valid' (B, 5) bool, 'dsr_c_label' (B, H, W) int32,
    'dsr_c_weight' (B, 8) float32, 'dsr_texture_mc' (B, F) float32 (as `prepare_labels`).
  """
  b, h, w = grph.shape
  keep = conf > KEYPOINT_MIN_CONF
  big = jnp.asarray(1e9, kp2d_px.dtype)
  lo = jnp.min(jnp.where(keep[..., None], kp2d_px, big), axis=1) - margin
  hi = jnp.max(jnp.where(keep[..., None], kp2d_px, -big), axis=1) + margin
  x0, y0 = jnp.floor(jnp.maximum(lo[:, 0], 0)), jnp.floor(jnp.maximum(lo[:, 1], 0))
  x1, y1 = jnp.floor(jnp.minimum(hi[:, 0], h)), jnp.floor(jnp.minimum(hi[:, 1], w))  # quirk
  ys, xs = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  inside = (ys >= y0[:, None, None]) & (ys < y1[:, None, None])
  inside &= (xs >= x0[:, None, None]) & (xs < x1[:, None, None])
  inside |= ~jnp.any(keep, axis=1)[:, None, None]
  lab = jnp.where(inside, grph, 0)
  mc_ids = jnp.asarray(DSR_MC_IDS)
  counts = jnp.sum(lab[..., None] == mc_ids, axis=(1, 2))  # (B, 5)
  valid = counts > min_pixels
  mask = jnp.any((lab[..., None] == mc_ids) & valid[:, None, None, :], axis=-1)
  merge = np.zeros(len(GRPH_LABELS), np.int32)
  for c, ids in enumerate(DSR_C_MERGE):
    merge[list(ids)] = c
  known = lab >= 0
  c_label = jnp.where(known, jnp.asarray(merge)[jnp.where(known, lab, 0)], 0)
  onehot = (c_label[..., None] == jnp.arange(NUM_C)) & known[..., None]
  c_counts = jnp.sum(onehot, axis=(1, 2)).astype(jnp.float32)  # (B, 8)
  kept = c_counts >= min_pixels
  n_min = jnp.min(jnp.where(kept, c_counts, jnp.inf), axis=1, keepdims=True)
  weight = jnp.where(
    (c_counts > min_pixels) & jnp.any(kept, axis=1, keepdims=True),
    n_min / jnp.maximum(c_counts, 1.0),
    0.0,
  )
  texture = valid.astype(prior.dtype) @ prior[:, mc_ids].T  # (B, F)
  return {
    'dsr_mc_mask': mask.astype(jnp.float32),
    'dsr_mc_valid': valid,
    'dsr_c_label': c_label.astype(jnp.int32),
    'dsr_c_weight': weight.astype(jnp.float32),
    'dsr_texture_mc': texture,
  }


def _apply(model, variables, images, *, train: bool, rng=None):
  x = imagenet_normalize(images)
  if not train:
    return model.apply(variables, x, train=False), None
  mutable = [k for k in variables if k != 'params']
  return model.apply(variables, x, train=True, rngs={'dropout': rng}, mutable=mutable)


def _crop_size(config: mlc.ConfigDict) -> int:
  return int(config.data.image.size)


def crop_projection(focal_length: float, cam_t: jax.Array, size: int) -> jax.Array:
  """(B, 3, 4) SoftRas projection matrices of the regressor's crop camera.

  K = [[f, 0, S/2], [0, f, S/2], [0, 0, 1]] with the predicted `cam_t` (metres), pixel centres on
  integers like the crops' label maps (`camera.projection_matrix(pixel_center=0)`); DSR's own
  `dsr_projection_matrix` is the same with SoftRas' half-pixel centres.
  """
  from jaxpose.render import camera

  f = focal_length
  K = jnp.array([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]], cam_t.dtype)
  K = jnp.broadcast_to(K, (cam_t.shape[0], 3, 3))
  return camera.projection_matrix(K, size, t=cam_t, pixel_center=0.0)


def dataset_part_lut(config: mlc.ConfigDict) -> np.ndarray:
  """`part_label_lut` of the configured dataset's `part_names` metadata (default: the
  `jaxpose.body.parts` table, which both embedded image datasets use)."""
  from jaxpose.body import parts
  from jaxpose.data import image_pipeline

  names = parts.PARTS
  try:
    store = image_pipeline.get_store(config.data, config.data.train_split)
    names = tuple(store.metadata.get('part_names') or names)
  except Exception:  # noqa: BLE001  (not built yet, or a dataset without part labels)
    pass
  return part_label_lut(names)


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """DSR's training loss on an image batch (`jaxpose.data.image_pipeline`, with body keys).

  Terms (per sample, then the batch mean; SMPL terms over `has_smpl`), weighted by
  `method.kwargs` and multiplied by `loss_weight` (60):
    keypoints     mean over joints of vis * (p - g)^2, kp2d_norm = 2 kp2d_px / S - 1, p the
                  predicted H36M-17 projected with the model's focal length and cam_t
    keypoints_3d  mean (p - g)^2 of the pelvis-centred H36M-17, metres, in the crop camera frame
                  (`crop_rotation`)
    regr_pose     MSE of the 24 rotations (global orientation in the crop camera frame)
    regr_betas    MSE of betas;  shape  L1 of the model-frame vertices;  cam  exp(-10 s)^2
    betas_prior   mean(betas^2)
    dsr_mc, dsr_c the semantic losses on a soft render of the predicted body (`semantic_render`,
                  textures from the prior, labels by `device_labels` from `part_label_u8`
                  through `part_label_lut`); a term with weight 0 is not computed (no render
                  when both are 0).
  Deviations from the official DSR: the data's joints are H36M-17 regressed from the mesh (no
  SPIN-49 / 24 GT joints, so the 2D and 3D keypoint terms use those 17); the pixel thresholds
  scale with the crop (60 (S/224)^2 px, margin 30 S/224 px); the DSR terms are on from the
  first step (the official starts them after epoch 2; the default trainer does not pass the step
  to losses, so fine-tune from a checkpoint trained without them for the official schedule).
  """
  s = _settings(config)
  assets = _assets(s)
  size = _crop_size(config)
  variables = {'params': params, **model_state}
  out, new_state = _apply(model, variables, batch['image_u8'], train=True, rng=rng)
  new_state = new_state or {}
  rz = crop_rotation(batch['K_crop'])
  body = body_forward(assets, out['body_rotmat'], out['body_betas'])
  verts = body.vertices
  j17 = jnp.einsum('kv,bvc->bkc', assets['h36m'], verts)
  kp_pred = spin.project_points(j17, out['cam_t'], model.focal_length, size)
  kp_gt = 2.0 * batch['kp2d_px'] / size - 1.0
  vis = batch['kp2d_vis'][..., None]
  gt3d = jnp.einsum('bij,bkj->bki', rz, batch['pose3d_cam'])
  pred3d = j17 - j17[:, :1]
  has_smpl = batch['has_smpl'].astype(jnp.float32)
  gt_rot = batch['body_rotmat'].at[:, 0].set(rz @ batch['body_rotmat'][:, 0])
  terms = {
    'keypoints': jnp.mean(vis * (kp_pred - kp_gt) ** 2, axis=(1, 2)),
    'keypoints_3d': jnp.mean((pred3d - gt3d) ** 2, axis=(1, 2)),
    'regr_pose': jnp.mean((out['body_rotmat'] - gt_rot) ** 2, axis=(1, 2, 3)) * has_smpl,
    'regr_betas': smpl_betas_loss(out['body_betas'], batch['body_betas']) * has_smpl,
    'cam': camera_loss(out['cam_weak']),
    'betas_prior': jnp.mean(out['body_betas'] ** 2, axis=1),
  }
  weights = {
    'keypoints': s['keypoint'],
    'keypoints_3d': s['keypoint_3d'],
    'regr_pose': s['pose'],
    'regr_betas': s['betas'],
    'cam': s['cam'],
    'betas_prior': s['betas_prior'],
  }
  n_smpl = jnp.maximum(jnp.sum(has_smpl), 1.0)
  scalars = {
    k: (jnp.sum(v) / n_smpl if k in ('regr_pose', 'regr_betas') else jnp.mean(v))
    for k, v in terms.items()
  }
  if s['vertices']:
    gt_verts = body_forward(assets, gt_rot, batch['body_betas']).vertices
    scalars['shape'] = jnp.sum(vertex_loss(verts, gt_verts) * has_smpl) / n_smpl
    weights['shape'] = s['vertices']
  if s['dsr_mc'] or s['dsr_c']:
    lut = dataset_part_lut(config)
    sem = semantic_terms(model, out, verts, batch, assets, lut, s, size)
    scalars.update(sem)
    weights.update(dsr_mc=s['dsr_mc'], dsr_c=s['dsr_c'])
  loss = s['loss_weight'] * sum(weights[k] * scalars[k] for k in weights)
  scalars = {'loss': loss, **{f'loss/{k}': v for k, v in scalars.items()}}
  return loss, (scalars, new_state)


def body_forward(assets: dict, rotmat: jax.Array, betas: jax.Array):
  """The body model (`jaxpose.body.forward`) without translation: model-frame vertices."""
  from jaxpose import body as body_lib

  return body_lib.forward(assets['model'], rotmat, betas)


def semantic_terms(
  model, out, verts, batch, assets, lut: np.ndarray, s: dict, size: int
) -> dict[str, jax.Array]:
  """{'dsr_mc', 'dsr_c'} batch means (`dsr_losses`) of the predicted bodies' semantic render.

  One soft render with the 9 semantic textures as channels (`semantic_face_colors`) of the
  model-frame vertices through `crop_projection`; labels from `part_label_u8` through `lut`.
  """
  from jaxpose.render import camera, soft

  scale = size / OFFICIAL_CROP
  prior = jnp.asarray(assets['prior'])
  grph = jnp.asarray(lut)[batch['part_label_u8'].astype(jnp.int32)]
  labels = device_labels(
    grph,
    batch['kp2d_px'],
    batch['kp2d_vis'],
    prior,
    min_pixels=MIN_LABEL_PIXELS * scale**2,
    margin=KEYPOINT_MARGIN_PX * scale,
  )
  colors = semantic_face_colors(labels['dsr_texture_mc'], c_textures(assets['prior']))
  screen = camera.project(verts, crop_projection(model.focal_length, out['cam_t'], size), size)
  rendered = soft.soft_rasterize(
    screen,
    assets['faces'],
    image_size=size,
    face_colors=colors,
    sigma=s['sigma'],
    gamma=s['gamma'],
    background=0.0,
    tile_size=s['tile_size'],
    max_faces_per_tile=s['max_faces_per_tile'] or None,
  )
  mc_prob, c_prob = split_semantic_render(rendered.color)
  res = dsr_losses(mc_prob, c_prob, labels, loss_type=s['mc_loss'], niou=s['niou'])
  return {'dsr_mc': res['dsr_mc'], 'dsr_c': res['dsr_c']}


def _predict_body(model, variables, image_u8: jax.Array, config: mlc.ConfigDict):
  s = _settings(config)
  assets = _assets(s)
  out, _ = _apply(model, variables, image_u8, train=False)
  verts = body_forward(assets, out['body_rotmat'], out['body_betas']).vertices
  return out, verts, jnp.einsum('kv,bvc->bkc', assets['h36m'], verts)


def predict(model, variables, image_u8: jax.Array, config: mlc.ConfigDict) -> jax.Array:
  """Image crops (B, S, S, 3) uint8 -> H36M-17 regressed from the predicted mesh (B, 1, 17, 3),
  metres, pelvis-centred, in the crop camera's frame (an image method: the input is the image
  batch, not 2D keypoints; the evaluation uses `predict_batch`)."""
  _, _, j17 = _predict_body(model, variables, image_u8, config)
  return (j17 - j17[:, :1])[:, None]


def predict_batch(model, variables, batch, config: mlc.ConfigDict) -> jax.Array:
  """(B, 1, 17, 3) metres, pelvis-centred, rotated from the crop camera into the camera frame of
  `pose3d_cam` (`crop_rotation`; the identity for unaugmented evaluation crops)."""
  pred = predict(model, variables, batch['image_u8'], config)
  return pred @ crop_rotation(batch['K_crop'])[:, None]  # rows: x_cam = R_z^T x_crop


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """{'pve_mm', 'pa_pve_mm'}: (B, 1) mean vertex errors in mm of the predicted mesh against the
  ground-truth body (`has_smpl` rows; NaN elsewhere, which the evaluator skips), both centred on
  their regressed H36M pelvis (PVE) or similarity-aligned (PA-PVE). The official DSR PVE compares
  un-aligned model-frame vertices; in the camera frame the translation must go, so both are
  pelvis-aligned here (as PMCE and most works)."""
  assets = _assets(_settings(config))
  _, verts, j17 = _predict_body(model, variables, batch['image_u8'], config)
  rz = crop_rotation(batch['K_crop'])
  pred = (verts - j17[:, :1]) @ rz
  gt = body_forward(assets, batch['body_rotmat'], batch['body_betas']).vertices
  gt = gt - jnp.einsum('kv,bvc->bkc', assets['h36m'][:1], gt)
  ok = batch['has_smpl'].astype(bool)
  pve = jnp.where(ok, metrics_mesh.mpvpe(pred, gt) * 1000.0, jnp.nan)
  pa = jnp.where(ok, metrics_mesh.pa_mpvpe(pred, gt) * 1000.0, jnp.nan)
  return {'pve_mm': pve[:, None], 'pa_pve_mm': pa[:, None]}


def init_inputs(config: mlc.ConfigDict, model) -> tuple[jax.Array, ...]:
  """One zero crop (1, S, S, 3) float32, S = data.image.size."""
  del model
  size = _crop_size(config)
  return (jnp.zeros((1, size, size, 3), jnp.float32),)


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  init_inputs=init_inputs,
  predict_batch=predict_batch,
  eval_metrics=eval_metrics,
)
