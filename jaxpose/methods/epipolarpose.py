"""EpipolarPose: the method (supervised, 2D teacher, self-supervised, refinement) and its pure functions.

Paper: Kocabas, Karagoz, Akbas, "Self-Supervised Learning of 3D Human Pose using Multi-view
Geometry", CVPR 2019, arXiv:1903.02330; official code github.com/mkocabas/EpipolarPose at
299ccb0acd4b0c57ef875aeb77b4e4e177c6accf (research/epipolarpose.md §2, §3, §5, §6, §10). The
network is `jaxpose.models.epipolarpose` (ResNet + deconvolutions + volumetric integral), the
refinement unit `jaxpose.models.epipolarpose.RefineNet`; the offline pseudo-labelling is
`jaxpose.methods.epipolarpose_labels` (`jaxpose pseudolabel`). Written from the spec and the paper;
no code copied (the official licence is non-commercial).

Modes (`config.method.kwargs.mode`; configs/epipolarpose.py), all through the default trainer
(`jaxpose train`) and evaluator:
  sup      fully supervised: labels from the ground-truth 2D and 3D of each crop.
  teacher  the 2D teacher (the paper's MPII stage, here on the dataset's 2D labels): the same
           integral network, loss on x, y only (z weight 0); scored by `err2d_px`.
  ss       self-supervised without extrinsics: two views per example (data.image.views = 2); the
           targets are the offline pseudo-3D of `epipolarpose_labels` (teacher 2D -> F -> E -> R,
           t up to scale -> polynomial triangulation in camera-1 coordinates), re-encoded per view
           with that view's (augmented) crop. No 3D labels and no extrinsics reach the loss.
  ss_rt    as ss with the pseudo-3D triangulated with the known extrinsics ("with R/t").
  refine   the refinement unit (§3.3) on top of a frozen trained network (config.init_from): the
           network's decoded root-relative 3D (z-scored, root dropped) -> RefineNet -> refined 3D;
           loss MSE(p1) + MSE(p2) against the z-scored ground truth (the official refiner data
           pairs predictions with H36M ground truth).

Coordinates (the official label space, `lib/core/integral_loss.py`, `lib/utils/img_utils.py`):
  pose_norm  (B, J, 3) x = u_patch / P - 0.5, y = v_patch / P - 0.5, z = z_patch / P with
             z_patch = (Z - Z_root) / (R * scale) * P: P = patch side (256 px), R = depth range of
             the 3D box (2000 mm), scale = the crop's scale augmentation (1 at eval).
  patch      (B, J, 3) u, v in patch pixels and z_patch (`decode_patch`; the official
             `get_joint_location_result` without its score column).
  camera     (B, J, 3) camera frame in the unit of R and of the root depth (mm officially):
             Z = z_norm * R + Z_root (GT root depth), X, Y back-projected through the crop's
             intrinsics (`decode_camera`).
For EpipolarPose's box crop (a bbox square at the root depth, `jaxpose.data.images.pelvis_box`)
the crop's focal length f_crop = sqrt|det K_crop[:2, :2]| equals P Z_root / (R scale), so
z_norm = (Z - Z_root) f_crop / (P Z_root) (`depth_unit`, `encode_pose_labels`): the batch's
K_crop gives the official labels without the augmentation scale, and the ratio (Z - Z_root) /
Z_root makes the encoding invariant to the arbitrary scale of the extrinsics-free pseudo-3D.
This is the "scale-normalised" re-encoding of the ss targets. With non-square pixels
(fx != fy) f_crop is their geometric mean, so z differs from labels built with fx alone by
sqrt(fy / fx) (0.05 % for H36M; tests/methods/test_epipolarpose.py).

Evaluation (`predict_batch`, `eval_metrics`; the paper's protocol): decode with K_crop and the
ground-truth root depth, root-relative, metres (T_out = 1). The engine adds MPJPE and P-MPJPE
(similarity Procrustes); this method adds per frame
  n_mpjpe_mm    EpipolarPose's "norm" error (`metrics.n_mpjpe_procrustes_scale`: the similarity
                Procrustes scale applied alone, then root-aligned), the definition behind the
                paper's w/o-R/t NMPJPE; not Rhodin's least-squares-scale N-MPJPE (`metrics.n_mpjpe`).
  pss{k}        PSS@k (`metrics.pss`) with fixed k-means centres of the ground-truth training poses
                (root-relative, camera frame), fitted once per dataset on the host and cached
                (`pss_centers`), or read from method.kwargs.pss_centers.
  err2d_px   mean 2D error over the visible joints, crop pixels (the teacher's score).
`predict` (image only, no camera) returns the weak-perspective metric pose: the crop spans
data.image.bbox_mm at the root depth.

Functions:
  smooth_l1, joint_location_loss_per_sample, joint_location_loss   SmoothL1JointLocationLoss
  decode_patch, decode_camera                                       evaluation decoding
  encode_patch_labels                                               patch px + depth -> labels
  patch_labels_from_world                                           get_batch_labels_from_global_coords
  crop_focal, depth_unit, encode_pose_labels                        on-device labels from K_crop
  loss_fn, predict, predict_batch, eval_metrics, ...                the `METHOD` hooks

Deviations: the labels are computed in float64 numpy (official: float64 then float32); the crop
affine is rebuilt from the same three points as `cv2.getAffineTransform` with a linear solve.
Projection uses `jaxpose.geometry.camera.project_to_2d_linear`, which clamps X/Z and Y/Z to
[-1, 1] (points more than 45 degrees off-axis, never inside a crop); the official code does not.
The method's on-device labels use the batch's K_crop (identical to the official encoding for the
box crop, see above). Joint order: the dataset's (H36M-17 here); the paper's self-supervised
models use MPII order because their teacher is MPII-trained. The refinement unit z-scores inputs
and targets with the ground-truth training-pose statistics (official: separate statistics of
the predictions and of the targets).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from jax.typing import ArrayLike

from jaxpose import metrics, models, types
from jaxpose.data import build, image_pipeline
from jaxpose.data.images import imagenet_normalize
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method, default_train_iterator
from jaxpose.metrics.pss import fit_and_save_pss_centers, load_pss_centers
from jaxpose.models.epipolarpose import RefineNet

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


# ------------------------------------------------------------------------------------------------
# on-device label encoding from the crop's intrinsics


def crop_focal(k_crop: ArrayLike) -> jax.Array:
  """Focal length of a crop in crop pixels: sqrt|det K_crop[:2, :2]|.

  Args:
    k_crop: (..., 3, 3) projection into the crop (`K_crop`; a flipped crop has det < 0).

  Returns:
    (...) float, pixels. For the box crop this is P Z_root / (R scale) with P the patch side, R
    the box side and scale the augmentation; it is f * P / box_px for an unrotated crop.
  """
  k = jnp.asarray(k_crop)
  return jnp.sqrt(jnp.abs(k[..., 0, 0] * k[..., 1, 1] - k[..., 0, 1] * k[..., 1, 0]))


def depth_unit(k_crop: ArrayLike, root_depth: ArrayLike, patch_size: float) -> jax.Array:
  """The depth that one normalised z unit spans, R * scale = P Z_root / f_crop (box crop).

  Args:
    k_crop: (..., 3, 3) crop projection.
    root_depth: (...) root depth Z_root, any unit (the result has the same unit).
    patch_size: P, crop side in pixels.

  Returns:
    (...) depth per normalised z unit (2.0 m at eval for EpipolarPose's 2000 mm box).
  """
  return patch_size * jnp.asarray(root_depth) / crop_focal(k_crop)


def encode_pose_labels(
  pose3d_abs: ArrayLike, k_crop: ArrayLike, patch_size: float, root: int = 0
) -> jax.Array:
  """Camera-frame 3D (absolute, any scale) -> normalised integral labels of its crop.

  x, y: the projection through K_crop, u / P - 0.5, v / P - 0.5; z: (Z - Z_root) f_crop /
  (P Z_root) = (Z - Z_root) / (R scale) for the box crop (`depth_unit`). Multiplying the pose by
  any positive factor leaves the labels unchanged, so pseudo-3D known up to scale encodes as is.

  Args:
    pose3d_abs: (B, J, 3) camera frame, absolute (Z > 0), any unit or scale.
    k_crop: (B, 3, 3) projection into the crop.
    patch_size: P.
    root: root joint index.

  Returns:
    (B, J, 3) float32 labels (`pose_norm`'s space).
  """
  x = jnp.asarray(pose3d_abs)
  k = jnp.asarray(k_crop)
  q = jnp.einsum('bij,bnj->bni', k, x)
  uv = q[..., :2] / q[..., 2:3]
  z_root = x[:, root : root + 1, 2]
  z = (x[..., 2] - z_root) * crop_focal(k)[:, None] / (patch_size * z_root)
  return jnp.concatenate([uv / patch_size - 0.5, z[..., None]], axis=-1)


# ------------------------------------------------------------------------------------------------
# the method: settings, model, targets, loss, prediction, metrics

MODES = ('sup', 'teacher', 'ss', 'ss_rt', 'refine')
DEFAULTS = {
  'mode': 'sup',  # one of MODES
  'z_weight': 1.0,  # official Z_WEIGHT: weight of z in the joint-location loss
  # ss / ss_rt: the pseudo-label file (`jaxpose pseudolabel` writes it, training reads it) and
  # the teacher workdir that `jaxpose pseudolabel` runs.
  'labels': '',
  'teacher': '',
  # pseudo-labelling (jaxpose.methods.epipolarpose_labels.make_pseudo_labels)
  'pseudo_estimator': 'ransac',  # F estimator: 8point | ransac | lmeds | official
  'pseudo_pool': 'subject',  # one relative pose per camera pair and: split | subject | take | frame
  'pseudo_threshold_px': 10.0,  # RANSAC inlier distance, full-image pixels
  # '' = the paper's per mode: ss polynomial (optimal), ss_rt iterative_ls (the official code's)
  'pseudo_triangulation': '',
  'pss_k': (50, 100),  # PSS@k reported at evaluation
  'pss_centers': '',  # '' = fit on the train split and cache; else a path with '{k}'
  'refine_hidden': 1024,  # RefineNet width
  'refine_dropout': 0.5,
}


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys or modes raise with the valid ones."""
  s = _kwargs.settings(config, DEFAULTS, 'epipolarpose')
  if s['mode'] not in MODES:
    raise ValueError(f'method.kwargs.mode={s["mode"]!r}; valid: {", ".join(MODES)}')
  return s


@dataclasses.dataclass(frozen=True)
class RefineStage:
  """The networks of mode 'refine': the frozen pose network and the refinement unit.

  Variables: {'params': refiner params, 'batch_stats': refiner BatchNorm, 'frozen': the pose
  network's variables ({'params', 'batch_stats'}), 'refine_norm': {'mean', 'std'} (3 (J - 1),)
  z-score statistics in metres}.
  """

  net: Any
  refiner: RefineNet


def make_model(config: mlc.ConfigDict):
  """The configured registry network; in mode 'refine' a `RefineStage` around it."""
  s = settings(config)
  net = models.build_from_config(config)
  if s['mode'] != 'refine':
    return net
  out = 3 * (int(config.data.num_joints) - 1)
  return RefineStage(net, RefineNet(out, int(s['refine_hidden']), float(s['refine_dropout'])))


def _net(model):
  return model.net if isinstance(model, RefineStage) else model


def init_inputs(config: mlc.ConfigDict, model) -> tuple[jax.Array, ...]:
  """One zero crop (1, S, S, 3) float32, S = data.image.size."""
  del model
  size = int(config.data.image.size)
  return (jnp.zeros((1, size, size, 3), jnp.float32),)


def _root(config: mlc.ConfigDict) -> int:
  return skel.get(config.data.skeleton).root


_PER_VIEW = (*types.IMAGE_PER_VIEW_KEYS, 'view_id', 'pseudo3d')


def _flat_views(batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Multi-view batches (B, V, ...) -> (B V, ...) for the per-view keys (types.IMAGE_PER_VIEW_KEYS,
  view_id, pseudo3d) and pseudo_valid (B,) repeated per view; single-view batches unchanged."""
  if batch['image_u8'].ndim != 5:
    return batch
  b, v = batch['image_u8'].shape[:2]
  out = dict(batch)
  for k in _PER_VIEW:
    if k in batch:
      out[k] = batch[k].reshape(b * v, *batch[k].shape[2:])
  if 'pseudo_valid' in batch:
    out['pseudo_valid'] = jnp.repeat(batch['pseudo_valid'], v)
  return out


def targets(
  batch: dict[str, jax.Array], mode: str, patch_size: float, z_weight: float, root: int
) -> tuple[jax.Array, jax.Array]:
  """Integral labels and per-coordinate weights of a (view-flattened) image batch.

  sup: x, y from kp2d_px, z from pose3d_cam and K_crop, weights kp2d_vis (z x z_weight).
  teacher: the same x, y; z weight 0. ss / ss_rt: `encode_pose_labels` of pseudo3d (absolute, the
  view's camera frame, any scale) with K_crop; weights pseudo_valid x (projection inside the crop).

  Returns:
    labels (N, J, 3) and weights (N, J, 3), float32.
  """
  zw = jnp.asarray([1.0, 1.0, z_weight], jnp.float32)
  if mode in ('ss', 'ss_rt'):
    label = encode_pose_labels(batch['pseudo3d'], batch['K_crop'], patch_size, root)
    inside = jnp.all((label[..., :2] >= -0.5) & (label[..., :2] < 0.5), axis=-1)
    w = inside * batch['pseudo_valid'][:, None].astype(jnp.float32)
    return label, w[..., None] * zw
  xy = batch['kp2d_px'] / patch_size - 0.5
  pose = batch['pose3d_cam'] + batch['pose3d_root']
  z = encode_pose_labels(pose, batch['K_crop'], patch_size, root)[..., 2:]
  w = batch['kp2d_vis'][..., None] * (zw if mode == 'sup' else zw.at[2].set(0.0))
  return jnp.concatenate([xy, z], axis=-1), w


def _apply_train(net, params, model_state, images_u8, rng):
  variables = {'params': params, **model_state}
  x = imagenet_normalize(images_u8)
  rngs = {'dropout': rng}
  if model_state:
    out, new = net.apply(variables, x, train=True, rngs=rngs, mutable=list(model_state))
    return out, dict(new)
  return net.apply(variables, x, train=True, rngs=rngs), model_state


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """(loss, (scalars, model_state)): the official SmoothL1JointLocationLoss (sum over joints and
  coordinates / number of crops), or the refinement unit's MSE(p1) + MSE(p2) in mode 'refine'.

  batch: an image batch (jaxpose/types.py); two views per example (B, V, ...) in modes ss/ss_rt,
  with pseudo3d (B, V, J, 3) and pseudo_valid (B,) from the method's train iterator.
  """
  s = settings(config)
  if s['mode'] == 'refine':
    return _refine_loss(model, params, model_state, batch, rng, config)
  b = _flat_views(batch)
  size = b['image_u8'].shape[-2]
  out, new_state = _apply_train(model, params, model_state, b['image_u8'], rng)
  label, weight = targets(b, s['mode'], size, float(s['z_weight']), _root(config))
  per = smooth_l1(out['pose_norm'] - label) * weight  # (N, J, 3)
  loss = jnp.sum(per) / per.shape[0]
  scalars = {
    'loss': loss,
    'loss/xy': jnp.sum(per[..., :2]) / per.shape[0],
    'loss/z': jnp.sum(per[..., 2]) / per.shape[0],
    'label_weight': jnp.mean(weight[..., 0]),
  }
  return loss, (scalars, new_state)


def _pose_norm(model, variables, images_u8):
  """Eval-mode integral output (N, J, 3) of the pose network (frozen in mode 'refine')."""
  if isinstance(model, RefineStage):
    variables = variables['frozen']
  return _net(model).apply(variables, imagenet_normalize(images_u8), train=False)['pose_norm']


def decode_root_relative(
  pose_norm: jax.Array, k_crop: jax.Array, root_depth: jax.Array, patch_size: float, root: int
) -> jax.Array:
  """The paper's protocol: (N, J, 3) pose_norm -> (N, J, 3) root-relative camera-frame 3D in the
  unit of `root_depth` (metres), back-projected through K_crop with the GT root depth."""
  unit = depth_unit(k_crop, root_depth, patch_size)[:, None]
  cam = decode_camera(pose_norm, k_crop, root_depth, depth_range=unit, patch_size=patch_size)
  return cam - cam[:, root : root + 1]


def _refine(model: RefineStage, variables, pose_rel, root, *, train=False, rng=None):
  """Root-relative metres (N, J, 3) -> the refinement unit's (p1, p2) z-scored, and (mean, std)."""
  norm = variables['refine_norm']
  keep = [j for j in range(pose_rel.shape[1]) if j != root]
  x = (pose_rel[:, keep].reshape(pose_rel.shape[0], -1) - norm['mean']) / norm['std']
  v = {'params': variables['params'], 'batch_stats': variables['batch_stats']}
  if train:
    out, new = model.refiner.apply(v, x, train=True, rngs={'dropout': rng}, mutable=['batch_stats'])
    return out, new, keep
  return model.refiner.apply(v, x, train=False), None, keep


def _unz(model_out, norm, keep, n, j):
  pose = jnp.zeros((n, j, 3), model_out.dtype)
  return pose.at[:, keep].set((model_out * norm['std'] + norm['mean']).reshape(n, len(keep), 3))


def _refine_loss(model, params, model_state, batch, rng, config):
  root = _root(config)
  size = batch['image_u8'].shape[-2]
  variables = {'params': params, **model_state}
  pn = _pose_norm(model, variables, batch['image_u8'])
  rel = decode_root_relative(pn, batch['K_crop'], batch['pose3d_root'][:, 0, 2], size, root)
  (p1, p2), new, keep = _refine(
    model, variables, jax.lax.stop_gradient(rel), root, train=True, rng=rng
  )
  norm = model_state['refine_norm']
  target = (batch['pose3d_cam'][:, keep].reshape(rel.shape[0], -1) - norm['mean']) / norm['std']
  l1, l2 = jnp.mean((p1 - target) ** 2), jnp.mean((p2 - target) ** 2)
  scalars = {'loss': l1 + l2, 'loss/p1': l1, 'loss/p2': l2}
  return l1 + l2, (scalars, {**model_state, 'batch_stats': new['batch_stats']})


def predict(model, variables, images: jax.Array, config: mlc.ConfigDict) -> jax.Array:
  """Image only (no camera): (B, H, W, 3) ImageNet-normalised crops -> (B, 1, J, 3) metres,
  root-relative, weak perspective (the crop spans data.image.bbox_mm at the root depth; x right,
  y down, z away from the camera). Use `predict_batch` for the paper's protocol."""
  if isinstance(model, RefineStage):
    variables = variables['frozen']
  pn = _net(model).apply(variables, images, train=False)['pose_norm']
  rel = (pn - pn[:, _root(config) : _root(config) + 1]) * (float(config.data.image.bbox_mm) / 1000)
  return rel[:, None]


def predict_batch(model, variables, batch, config: mlc.ConfigDict) -> jax.Array:
  """Image batch -> (B, 1, J, 3) metres, camera frame, root-relative: decoded with K_crop and the
  ground-truth root depth (the paper's protocol); refined in mode 'refine'."""
  root = _root(config)
  size = batch['image_u8'].shape[-2]
  pn = _pose_norm(model, variables, batch['image_u8'])
  rel = decode_root_relative(pn, batch['K_crop'], batch['pose3d_root'][:, 0, 2], size, root)
  if isinstance(model, RefineStage):
    (_, p2), _, keep = _refine(model, variables, rel, root)
    rel = _unz(p2, variables['refine_norm'], keep, *rel.shape[:2])
  return rel[:, None]


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """Per-frame (B, 1) n_mpjpe_mm (EpipolarPose's Procrustes-scale definition), pss{k} (0/1) for
  each k of pss_k, err2d_px (crop pixels, visible joints)."""
  s = settings(config)
  root = _root(config)
  pred = predict_batch(model, variables, batch, config)[:, 0]  # XLA merges the repeated forward
  gt = batch['pose3d_cam']
  out = {'n_mpjpe_mm': metrics.n_mpjpe_procrustes_scale(pred * 1000, gt * 1000, root=root)}
  for k in s['pss_k']:
    centers = jnp.asarray(pss_centers(config, int(k)), jnp.float32)
    out[f'pss{int(k)}'] = metrics.pss(pred, gt, centers, root)
  size = batch['image_u8'].shape[-2]
  pn = _pose_norm(model, variables, batch['image_u8'])
  err = jnp.linalg.norm(decode_patch(pn, size)[..., :2] - batch['kp2d_px'], axis=-1)
  vis = batch['kp2d_vis']
  out['err2d_px'] = jnp.sum(err * vis, -1) / jnp.maximum(jnp.sum(vis, -1), 1.0)
  return {k: v[:, None].astype(jnp.float32) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------
# host side: PSS centres, refinement statistics, the training iterator


def _train_poses(data_cfg: Any, max_records: int = 20000) -> np.ndarray:
  """(N V, J, 3) ground-truth root-relative camera-frame poses of the train split (metres);
  evenly subsampled to at most `max_records` synchronised frames."""
  store = image_pipeline.get_store(data_cfg, data_cfg.train_split)
  root = skel.get(data_cfg.skeleton).root
  idx = np.unique(np.linspace(0, len(store) - 1, min(len(store), max_records)).astype(np.int64))
  poses = np.concatenate([np.asarray(store.read(i)['pose3d_cam'], np.float64) for i in idx])
  return poses - poses[:, root : root + 1]


@functools.lru_cache(maxsize=16)
def _fitted_centers(name: str, cfg: str, split: str, data_dir: str, skeleton: str, k: int, n: int):
  path = pathlib.Path(data_dir) / '_cache' / 'pss' / f'{name}-{cfg or "default"}-{split}-k{k}.npz'
  if path.exists():
    centers, meta = load_pss_centers(path)
    if centers.shape == (k, 3 * n) and meta.get('skeleton') == skeleton:
      return centers
  data_cfg = mlc.ConfigDict(
    dict(name=name, config=cfg, train_split=split, data_dir=data_dir, skeleton=skeleton)
  )
  poses = _train_poses(data_cfg)
  root = skel.get(skeleton).root
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(f'.{np.random.randint(1 << 30)}.tmp.npz')
  meta = dict(dataset=name, config=cfg, split=split, skeleton=skeleton)
  centers = fit_and_save_pss_centers(poses, k, tmp, root=root, meta=meta)
  tmp.replace(path)  # atomic: concurrent runs never read a partial file
  return centers


def pss_centers(config: mlc.ConfigDict, k: int) -> np.ndarray:
  """(k, 3J) PSS cluster centres: method.kwargs.pss_centers with '{k}' filled in, or k-means of
  the ground-truth training poses of config.data (`metrics.pss.fit_pss_centers`, seed 0, 10
  restarts) cached in <data_dir>/_cache/pss/ (fitted once per dataset and k)."""
  given = settings(config)['pss_centers']
  if given:
    path = pathlib.Path(str(given).format(k=k))
    centers, _ = load_pss_centers(path)
    if centers.shape != (k, 3 * int(config.data.num_joints)):
      raise ValueError(
        f'{path}: PSS centres have shape {centers.shape}, expected ({k}, '
        f'{3 * int(config.data.num_joints)}) for k={k} and data.num_joints'
      )
    return centers
  d = config.data
  return _fitted_centers(
    d.name,
    d.config or '',
    d.train_split,
    str(build.resolve_data_dir(d.data_dir or None)),
    d.skeleton,
    int(k),
    int(d.num_joints),
  )


def refine_statistics(config: mlc.ConfigDict) -> dict[str, np.ndarray]:
  """{'mean', 'std'} (3 (J - 1),) float32 of the non-root ground-truth training poses (metres,
  root-relative, camera frame): the refinement unit's z-scoring."""
  poses = _train_poses(config.data)
  root = _root(config)
  keep = [j for j in range(poses.shape[1]) if j != root]
  flat = poses[:, keep].reshape(len(poses), -1)
  return {
    'mean': flat.mean(0).astype(np.float32),
    'std': np.maximum(flat.std(0), 1e-6).astype(np.float32),
  }


def init_variables(config: mlc.ConfigDict, model, loaded: dict[str, Any] | None = None):
  """Fresh or `init_from` variables; in mode 'refine' the frozen network (`init_from`, required),
  a fresh refinement unit and its z-score statistics (see `RefineStage`)."""
  if not isinstance(model, RefineStage):
    return loaded  # None: the trainer's model.init
  if loaded is None:
    raise ValueError(
      "method.kwargs.mode='refine' needs a trained EpipolarPose network: set "
      '--config.init_from.path=<workdir of a sup/ss run>'
    )
  x = jnp.zeros((2, 3 * (int(config.data.num_joints) - 1)), jnp.float32)
  v = model.refiner.init(jax.random.PRNGKey(int(config.seed)), x, train=False)
  frozen = {k: loaded[k] for k in ('params', 'batch_stats') if k in loaded}
  norm = refine_statistics(config)
  return {
    'params': v['params'],
    'batch_stats': v['batch_stats'],
    'frozen': frozen,
    'refine_norm': {k: jnp.asarray(a) for k, a in norm.items()},
  }


def train_iterator(
  config: mlc.ConfigDict, *, seed: int, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, Any]]:
  """The image pipeline's resumable iterator; in modes ss / ss_rt two views per example with the
  offline pseudo-labels attached (pseudo3d (b, 2, J, 3), pseudo_valid (b,);
  `epipolarpose_labels.attach`)."""
  s = settings(config)
  if s['mode'] not in ('ss', 'ss_rt'):
    if int(config.data.image.views) != 1:
      raise ValueError(
        f'mode {s["mode"]!r} trains on single views: set data.image.views=1 (got '
        f'{config.data.image.views})'
      )
    return default_train_iterator(
      config, seed=seed, process_index=process_index, process_count=process_count
    )
  from jaxpose.methods import epipolarpose_labels

  return epipolarpose_labels.train_iterator(
    config, seed=seed, process_index=process_index, process_count=process_count
  )


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  make_model=make_model,
  init_inputs=init_inputs,
  init_variables=init_variables,
  train_iterator=train_iterator,
  predict_batch=predict_batch,
  eval_metrics=eval_metrics,
)
