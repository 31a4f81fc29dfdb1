"""PersPose's perspective-rotation crop (PR) and its labels, host side (numpy + OpenCV).

Paper: Hao & Li, "PersPose", ICCV 2025, arXiv:2508.17239. Official code:
github.com/KenAdamsJoseph/PersPose at 1863de7a455700d99280d4ce683efb726e42592b,
`datasets/transform.py` (`Transform.__call__`, `Transform.crop_aug`); research/perspose.md §2.1.
Written from the official semantics; no code copied.

The crop (`perspective_geometry`), for a person box (x, y, w, h) in an image with intrinsics K:
  1. PR: R, H = perspective_rotation(K, box centre, aim) (jaxpose.geometry.perspective), aim =
     principal point (+ a training jitter of +-10 % of max(w, h) with `center_aug`).
  2. In-plane rotation augmentation by theta (training): officially (`inplane_rotation='image'`)
     cv2.getRotationMatrix2D about the *image* centre, applied after H, while the 3D labels turn by
     Rz(theta) (exact only when the principal point is the image centre). `inplane_rotation='twist'`
     (the default here) puts theta into the PR twist about the aim ray instead, which is exact:
     kp2d_px ~ K_crop @ X_rot holds for every pixel. At evaluation (theta = 0) both are identical.
  3. Box in the rotated view: the four corners through (rotation @ H), or, when `box_points` is
     given (the official hps_* datasets use the projected body vertices `dp_uv`), those points;
     their bounds, then (PR on) symmetrised about the principal point: half size = max |corner - c|,
     so the crop centre is exactly the principal point.
  4. crop_affine = Stretch @ Scale @ Shift: shift the box centre to (W/2, H/2); scale by
     min(W/w, H/h) * scale_aug about the centre; stretch by fy/fx about the centre (clipped to
     [1/2, 2]; x by r when r > 1, else y by 1/r) so crop pixels are square.
  5. crop_from_full = crop_affine @ rotation @ H (a homography); the image is
     cv2.warpPerspective(image, crop_from_full, (W, H)), bilinear, border 0.
     K_crop = crop_affine @ K; 3D labels are rotated: X_rot = rotation_3d @ X_cam.

Two entry points:
  * `perspective_sample`: one view -> the image batch keys of CONTRACTS §3 (image_u8, kp2d_px,
    kp2d_vis, pose3d_cam in the ROTATED camera frame, pose3d_root, K_full, crop_from_full (the
    homography), K_crop = crop_affine @ K so that kp2d_px ~ K_crop @ (pose3d_cam + pose3d_root),
    dist, optional part_label_u8, rotated cam_R / cam_t) plus PersPose's extras:
      perspective_R (3, 3) float32  X_rot = perspective_R @ X_cam (rotation_3d)
      pe_valid      ()     float32  1.0: the sample has intrinsics, its PE map is used
    The image pipeline plugs it in as the 'perspective' crop (it needs the rotated 3D and K_crop
    from here: the pipeline's generic `crop_labels` would give K_crop = crop_from_full @ K =
    crop_affine K R and unrotated 3D, which projects the same but gives PersPose's encoding the
    wrong (unrotated) rays).
  * `transform_label`: the official `Transform.__call__` on its label dict (dataset_name, bbox,
    cam_intrinsics, mask + bbox_mask, dp_uv/dp_valid, coco_kp17, 3dhp_j17, smpl_*), for PersPose's
    own annotation files and the parity fixture; it does not mutate its input (the official code
    modifies `coco_kp17` and `smpl_theta` in place).

Not ported (use the image pipeline's augmentations instead): the official pixel-wise augmentations
(blur/sharpen, Gaussian noise, contrast/brightness, hue/saturation, channel mixing) and cut-out.
The random horizontal flip is done by the official model, not the data (see models/perspose.py);
`perspective_sample(..., flip_perm=...)` also supports a data-side flip with the contract's K_crop.
Randomness: numpy Generator (the official code uses Python's `random` and `np.random`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from jaxpose.geometry.perspective import (
  matrix_to_axis_angle,
  perspective_rotation,
  rodrigues,
)

FLIP_3D = np.diag([-1.0, 1.0, 1.0])


@dataclasses.dataclass(frozen=True)
class PerspectiveConfig:
  """The official TRANSFORM block (config.yaml), geometric part.

  Attributes:
    image_size: crop (W, H), pixels (IMAGE_SIZE, 256 x 256).
    perspective_center: PR on (PERSPECTIVE_CENTER).
    center_aug: jitter the aim by +-center_aug_frac * max(w, h) in training
      (PERSPECTIVE_CENTER_AUG: on in config.yaml / config_w_be_3dhp.yaml, off in the others).
    center_aug_frac: 0.1.
    dp_margin: DP_MARGIN, pixels (visibility of dp_uv points).
    prob_no_aug: probability of no augmentation at all in training (0.2).
    prob_rot, rot_deg: in-plane rotation probability and range (0.5, +-30 degrees).
    prob_scale, scale_factor: crop-scale probability and range (0.2, 0.9 +- 0.2).
    inplane_rotation: 'twist' (exact, default) or 'image' (official: about the image centre).
  """

  image_size: tuple[int, int] = (256, 256)
  perspective_center: bool = True
  center_aug: bool = False
  center_aug_frac: float = 0.1
  dp_margin: float = 1.0
  prob_no_aug: float = 0.2
  prob_rot: float = 0.5
  rot_deg: float = 30.0
  prob_scale: float = 0.2
  scale_factor: float = 0.2
  inplane_rotation: str = 'twist'


OFFICIAL = PerspectiveConfig(inplane_rotation='image')


@dataclasses.dataclass(frozen=True)
class PerspectiveAug:
  """One sample's geometric augmentation draw (identity = evaluation).

  Attributes:
    rot_deg: in-plane rotation, degrees (the 3D labels turn by Rz(rot_deg)).
    scale: crop-scale factor (> 1 zooms in).
    aim_offset: (2,) pixels added to the principal point as the PR aim.
  """

  rot_deg: float = 0.0
  scale: float = 1.0
  aim_offset: tuple[float, float] = (0.0, 0.0)


def sample_augmentation(
  rng: np.random.Generator, config: PerspectiveConfig, bbox_xywh: Sequence[float]
) -> PerspectiveAug:
  """Draws the official training augmentation (probabilities of `config`)."""
  if rng.random() < config.prob_no_aug:
    return PerspectiveAug()
  rot = (rng.random() * 2 - 1) * config.rot_deg if rng.random() < config.prob_rot else 0.0
  scale = 1.0
  if rng.random() < config.prob_scale:
    scale = 0.9 + (rng.random() * 2 - 1) * config.scale_factor
  offset = (0.0, 0.0)
  if config.perspective_center and config.center_aug:
    size = max(float(bbox_xywh[2]), float(bbox_xywh[3]))
    offset = tuple((rng.random(2) - 0.5) * 2 * config.center_aug_frac * size)
  return PerspectiveAug(rot_deg=float(rot), scale=float(scale), aim_offset=offset)


@dataclasses.dataclass(frozen=True)
class PerspectiveGeometry:
  """The matrices of one crop (float64).

  Attributes:
    R: (3, 3) the PR rotation (with the twist when inplane_rotation='twist').
    H: (3, 3) K R K^-1.
    inplane: (3, 3) the image-space in-plane rotation applied after H (identity for 'twist').
    rotation_3d: (3, 3) X_rot = rotation_3d @ X_cam (official `rotation_3d` = M_rot @ R).
    bbox_rotated: (4,) x, y, w, h of the crop box in the rotated view.
    crop_affine: (3, 3) rotated-view pixels -> crop pixels.
    crop_from_full: (3, 3) crop_affine @ inplane @ H (official `perspective_2d`).
    K_crop: (3, 3) crop_affine @ K (official new `cam_intrinsics`).
  """

  R: np.ndarray
  H: np.ndarray
  inplane: np.ndarray
  rotation_3d: np.ndarray
  bbox_rotated: np.ndarray
  crop_affine: np.ndarray
  crop_from_full: np.ndarray
  K_crop: np.ndarray


def apply_h(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
  """(3, 3) homography on (N, 2) points -> (N, 2) (official `perspective_transform`)."""
  pts = np.asarray(pts, np.float64)
  q = np.concatenate([pts, np.ones_like(pts[:, :1])], axis=-1) @ np.asarray(m, np.float64).T
  return q[:, :2] / q[:, 2:]


def rotation_matrix_2d(center: Sequence[float], angle_deg: float, scale: float) -> np.ndarray:
  """cv2.getRotationMatrix2D(center, angle_deg, scale) as a 3x3 (counter-clockwise on screen)."""
  a = np.deg2rad(angle_deg)
  al, be = scale * np.cos(a), scale * np.sin(a)
  cx, cy = float(center[0]), float(center[1])
  return np.array(
    [[al, be, (1 - al) * cx - be * cy], [-be, al, be * cx + (1 - al) * cy], [0.0, 0.0, 1.0]]
  )


def crop_affine_matrix(
  bbox_xywh: Sequence[float], image_size: tuple[int, int], scale: float, stretch: float
) -> np.ndarray:
  """Official `crop_aug` without rotation and shift: Stretch @ Scale @ Shift (3, 3).

  Args:
    bbox_xywh: box in the (rotated) source view, pixels.
    image_size: crop (W, H).
    scale: pixels of crop per source pixel (min(W/w, H/h) * scale_aug).
    stretch: fy/fx ratio; > 1 stretches x by it, else y by 1/stretch, about the crop centre.
  """
  cw, ch = image_size
  centre = np.array([cw / 2, ch / 2])
  shift = np.eye(3)
  shift[:2, 2] = centre - (np.asarray(bbox_xywh[:2], np.float64) + np.asarray(bbox_xywh[2:]) / 2)
  a = np.diag([stretch, 1.0]) if stretch > 1 else np.diag([1.0, 1.0 / stretch])
  st = np.eye(3)
  st[:2, :2] = a
  st[:2, 2] = centre - a @ centre
  return st @ rotation_matrix_2d(centre, 0.0, scale) @ shift


def _bounds(pts: np.ndarray) -> np.ndarray:
  lo, hi = pts.min(axis=0), pts.max(axis=0)
  return np.concatenate([lo, hi - lo])


def perspective_geometry(
  K: np.ndarray | None,
  bbox_xywh: Sequence[float],
  image_wh: tuple[int, int],
  config: PerspectiveConfig = PerspectiveConfig(),
  aug: PerspectiveAug = PerspectiveAug(),
  *,
  box_points: np.ndarray | None = None,
) -> PerspectiveGeometry:
  """The crop matrices of one sample (module docstring, steps 1-5).

  Args:
    K: (3, 3) full-image intrinsics, pixels; None for samples without intrinsics (COCO: no PR,
      no stretch, K_crop is then the crop affine alone).
    bbox_xywh: (4,) person box, full-image pixels (PersPose: tight box of the projected body).
    image_wh: full image (W, H), pixels (centre of the official in-plane rotation).
    config: the TRANSFORM settings.
    aug: the augmentation draw (identity at evaluation).
    box_points: optional (N, 2) full-image points whose rotated bounds replace the rotated box
      corners (official hps_* datasets: all `dp_uv` points).

  Returns:
    PerspectiveGeometry (float64).
  """
  bb = np.asarray(bbox_xywh, np.float64)
  if bb.shape != (4,) or not (bb[2] > 0 and bb[3] > 0) or not np.isfinite(bb).all():
    raise ValueError(
      f'perspective_geometry: bbox_xywh must be 4 finite numbers, w, h > 0; got {bb}'
    )
  if config.inplane_rotation not in ('twist', 'image'):
    raise ValueError(
      f"inplane_rotation must be 'twist' or 'image', got {config.inplane_rotation!r}"
    )
  has_k = K is not None
  pr = has_k and config.perspective_center
  twist = aug.rot_deg if config.inplane_rotation == 'twist' else 0.0
  R, H = np.eye(3), np.eye(3)
  if has_k:
    K = np.asarray(K, np.float64)
    pp = K[:2, 2]
  if pr:
    R, H = perspective_rotation(K, bb[:2] + bb[2:] / 2, pp + np.asarray(aug.aim_offset), twist)
  elif twist and has_k:  # no PR: the twist is a rotation about the optical axis
    R, H = perspective_rotation(K, pp, pp, twist)
  inplane, m_rot = np.eye(3), np.eye(3)
  if config.inplane_rotation == 'image' and aug.rot_deg:
    inplane = rotation_matrix_2d((image_wh[0] / 2, image_wh[1] / 2), -aug.rot_deg, 1.0)
    m_rot = inplane.copy()
    m_rot[:2, 2] = 0.0
  rot_h = inplane @ H
  if box_points is not None:
    box = _bounds(apply_h(rot_h, box_points))
  else:
    x, y, w, h = bb
    corners = np.array([[x, y], [x, y + h], [x + w, y], [x + w, y + h]])
    box = _bounds(apply_h(rot_h, corners))
  if pr:
    half = np.abs(np.stack([box[:2], box[:2] + box[2:]]) - pp).max(axis=0)
    box = np.concatenate([pp - half, 2 * half])
  cw, ch = config.image_size
  stretch = float(np.clip(K[1, 1] / K[0, 0] if has_k else 1.0, 0.5, 2.0))
  scale = min(cw / box[2], ch / box[3]) * aug.scale
  crop = crop_affine_matrix(box, config.image_size, scale, stretch)
  return PerspectiveGeometry(
    R=R,
    H=H,
    inplane=inplane,
    rotation_3d=m_rot @ R,
    bbox_rotated=box,
    crop_affine=crop,
    crop_from_full=crop @ rot_h,
    K_crop=crop @ K if has_k else crop,
  )


def warp(image: np.ndarray, crop_from_full: np.ndarray, image_size: tuple[int, int], **kw):
  """cv2.warpPerspective with the official flags: bilinear (default), border 0. (H, W[, C])."""
  return cv2.warpPerspective(image, np.asarray(crop_from_full, np.float64), tuple(image_size), **kw)


def perspective_sample(
  image_rgb: np.ndarray,
  K_full: np.ndarray,
  bbox_xywh: Sequence[float],
  kp2d_full: np.ndarray,
  kp2d_vis: np.ndarray,
  pose3d_cam_abs: np.ndarray,
  config: PerspectiveConfig = PerspectiveConfig(),
  aug: PerspectiveAug = PerspectiveAug(),
  *,
  root: int = 0,
  flip_perm: Sequence[int] | None = None,
  box_points: np.ndarray | None = None,
  dist: np.ndarray | None = None,
  part_mask: np.ndarray | None = None,
  cam_R: np.ndarray | None = None,
  cam_t: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
  """One view -> the CONTRACTS §3 keys (module docstring), PR crop, rotated 3D.

  Args:
    image_rgb: (Hf, Wf, 3) uint8 full image.
    K_full: (3, 3) intrinsics, pixels (undistorted data).
    bbox_xywh: (4,) person box, full-image pixels (e.g. `bbox_from_points` of the 2D joints).
    kp2d_full: (J, 2) full-image pixels; kp2d_vis: (J,).
    pose3d_cam_abs: (J, 3) metres, camera frame, absolute.
    config, aug: settings and augmentation draw (identity at evaluation).
    root: root joint index.
    flip_perm: the layout's L/R permutation to mirror the sample (crop mirrored about x = W/2,
      3D mirrored in x and swapped; K_crop = F @ crop_affine @ K @ diag(-1, 1, 1)).
    box_points: see `perspective_geometry`.
    dist: (5,) distortion, recorded only (PR assumes undistorted pixels).
    part_mask: (Hf, Wf) uint8 labels, warped with nearest neighbour (flip: labels not swapped).
    cam_R, cam_t: world -> camera extrinsics, returned for the rotated camera (R_rot = R cam_R).

  Returns:
    dict of float32 / uint8 numpy arrays (module docstring).
  """
  cw, ch = config.image_size
  hf, wf = image_rgb.shape[:2]
  g = perspective_geometry(K_full, bbox_xywh, (wf, hf), config, aug, box_points=box_points)
  m, k_crop, rot = g.crop_from_full, g.K_crop, g.rotation_3d
  pose = np.asarray(pose3d_cam_abs, np.float64) @ rot.T
  kp = apply_h(m, kp2d_full)
  vis = np.asarray(kp2d_vis, np.float64)
  if flip_perm is not None:
    f = np.array([[-1.0, 0.0, float(cw)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    perm = np.asarray(flip_perm)
    m, k_crop = f @ m, f @ k_crop @ FLIP_3D
    kp = apply_h(f, kp)[perm]
    vis, pose = vis[perm], pose[perm] * (-1.0, 1.0, 1.0)
  inside = (kp[:, 0] >= 0) & (kp[:, 0] < cw) & (kp[:, 1] >= 0) & (kp[:, 1] < ch)
  out = {
    'image_u8': warp(image_rgb, m, (cw, ch)),
    'kp2d_px': kp.astype(np.float32),
    'kp2d_vis': (vis * inside).astype(np.float32),
    'pose3d_cam': (pose - pose[root : root + 1]).astype(np.float32),
    'pose3d_root': pose[root : root + 1].astype(np.float32),
    'K_full': np.asarray(K_full, np.float32),
    'crop_from_full': m.astype(np.float32),
    'K_crop': k_crop.astype(np.float32),
    'dist': np.zeros(5, np.float32) if dist is None else np.asarray(dist, np.float32),
    'perspective_R': rot.astype(np.float32),
    'pe_valid': np.float32(1.0),
  }
  if part_mask is not None:
    out['part_label_u8'] = warp(part_mask, m, (cw, ch), flags=cv2.INTER_NEAREST)
  if cam_R is not None:
    r_rot, t_rot = rot @ np.asarray(cam_R, np.float64), rot @ np.asarray(cam_t, np.float64)
    if flip_perm is not None:
      r_rot, t_rot = FLIP_3D @ r_rot @ FLIP_3D, t_rot * (-1.0, 1.0, 1.0)
    out['cam_R'], out['cam_t'] = r_rot.astype(np.float32), t_rot.astype(np.float32)
  return out


def bbox_from_points(points: np.ndarray, vis: np.ndarray | None = None) -> np.ndarray:
  """Tight (x, y, w, h) box of the (visible) points, pixels. points (N, 2), vis (N,) -> (4,)."""
  pts = np.asarray(points, np.float64)
  if vis is not None:
    pts = pts[np.asarray(vis) > 0]
  if not len(pts):
    raise ValueError('bbox_from_points: no visible points')
  return _bounds(pts)


def _has_intrinsics(name: str) -> bool:
  return name == '3dhp' or name.startswith('hps_')


def transform_label(
  label: Mapping[str, Any],
  image_rgb: np.ndarray,
  config: PerspectiveConfig = OFFICIAL,
  aug: PerspectiveAug = PerspectiveAug(),
) -> tuple[np.ndarray, dict[str, Any]]:
  """The official `Transform.__call__` on a PersPose label dict (geometry; no pixel augmentation).

  Args:
    label: dict with 'dataset_name' ('3dhp', 'hps_*', 'coco', 'coco_dp'), 'bbox' (4,) xywh,
      'cam_intrinsics' (3, 3), 'mask' (256, 256) + 'bbox_mask' (4,) (the mask's box), 'dp_uv'
      (N, 2) + 'dp_valid' (N,), 'coco_kp17' (17, 3), and per dataset '3dhp_j17' (17, 3) or
      'smpl_j24', 'smpl_j17', 'smpl_vertices', 'smpl_transl', 'smpl_theta' (24, 3) axis-angle,
      'smpl_ortho_twist'; 3D in metres, camera frame.
    image_rgb: (Hf, Wf, 3) uint8.
    config: the TRANSFORM settings (default: the official ones, `inplane_rotation='image'`).
    aug: augmentation draw (`sample_augmentation`), identity at evaluation.

  Returns:
    (image_u8 (H, W, 3) crop, new label dict): 'cam_intrinsics' (crop K'), 'cam_intrinsics_origin',
    'rotation_3d', 'perspective_2d' (full px -> crop px), 'mask' (H, W) float64 (bilinear),
    'dp_uv' (N, 2) int64 (clipped to the crop, floored), 'dp_valid' (in the crop, dp_margin),
    'coco_kp17' (transformed, visibility zeroed outside the crop), rotated 3D labels.
  """
  name = str(label['dataset_name'])
  lab = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in label.items()}
  hf, wf = image_rgb.shape[:2]
  cw, ch = config.image_size
  pr_set = _has_intrinsics(name)
  pts = None
  dp_valid = np.asarray(lab['dp_valid'], bool)
  if dp_valid.any():
    if name == 'coco_dp':
      pts = np.asarray(lab['dp_uv'])[dp_valid]
    elif name.startswith('hps_'):
      pts = np.asarray(lab['dp_uv'])
    else:
      raise ValueError(
        f"transform_label: dp_valid points only for 'coco_dp' / 'hps_*', got {name!r}"
      )
  g = perspective_geometry(
    lab['cam_intrinsics'] if pr_set else None,
    lab['bbox'],
    (wf, hf),
    config,
    aug,
    box_points=pts,
  )
  if pr_set:
    lab['cam_intrinsics_origin'] = np.asarray(label['cam_intrinsics'], np.float64).copy()
    lab['cam_intrinsics'] = g.K_crop
  R = g.rotation_3d
  lab['rotation_3d'] = R
  if name.startswith('hps_'):
    j0_offset = np.asarray(lab['smpl_j24'])[0] - np.asarray(lab['smpl_transl'])
    for k in ('smpl_j24', 'smpl_j17', 'smpl_vertices', 'smpl_ortho_twist'):
      lab[k] = np.asarray(lab[k], np.float64) @ R.T
    theta = np.asarray(lab['smpl_theta'], np.float64).copy()
    theta[0] = matrix_to_axis_angle(R @ rodrigues(theta[0]))
    lab['smpl_theta'] = theta
    lab['smpl_transl'] = lab['smpl_j24'][0] - j0_offset
  m = g.crop_from_full
  lab['perspective_2d'] = m
  crop = warp(image_rgb, m, (cw, ch))
  bm = np.asarray(lab['bbox_mask'], np.float64)
  mask_from_box = np.array([[bm[2] / 256, 0, bm[0]], [0, bm[3] / 256, bm[1]], [0, 0, 1.0]])
  lab['mask'] = warp(np.asarray(lab['mask'], np.float64), m @ mask_from_box, (cw, ch))
  dp = apply_h(m, lab['dp_uv'])
  kp = np.asarray(lab['coco_kp17'], np.float64).copy()
  kp[:, :2] = apply_h(m, kp[:, :2])
  kp[:, 2] *= (kp[:, 0] > 0) & (kp[:, 0] < cw) & (kp[:, 1] > 0) & (kp[:, 1] < ch)
  lab['coco_kp17'] = kp
  if name == '3dhp':
    lab['3dhp_j17'] = np.asarray(lab['3dhp_j17'], np.float64) @ R.T
  mg = config.dp_margin
  in_frame = (dp[:, 0] > mg) & (dp[:, 0] < cw - mg) & (dp[:, 1] > mg) & (dp[:, 1] < ch - mg)
  lab['dp_valid'] = dp_valid & in_frame
  lab['dp_uv'] = np.stack(
    [dp[:, 0].clip(0, cw - 1).astype(np.int64), dp[:, 1].clip(0, ch - 1).astype(np.int64)], axis=-1
  )
  return crop, lab


# Joint boxes miss the body's extent around the joints (head top, hands, feet): enlarge them.
PIPELINE_BOX_ENLARGE = 1.2


def pipeline_view(
  view: Any,
  image_rgb: np.ndarray,
  part_mask: np.ndarray | None,
  aug: Any,
  spec: Any,
  flip_perm: Sequence[int] | None,
  cam_R: np.ndarray,
  cam_t: np.ndarray,
  *,
  pr: bool,
) -> dict[str, np.ndarray]:
  """The image pipeline's 'perspective' (pr=True) and 'perspective_nopr' crops (one view).

  The person box is the tight box of the visible 2D joints enlarged x1.2 about its centre
  (PIPELINE_BOX_ENLARGE; the official hps_* datasets use the projected SMPL vertices, which this
  data does not have). pr=False is the same crop without the perspective rotation (no
  symmetrisation about the principal point: the box is centred, K_crop = crop_affine @ K is then
  off-centre), the 'without PR' arm of the ablation.

  Args:
    view: `image_pipeline.ViewData` (K, dist, pose3d_cam absolute, root, kp2d_px, kp2d_vis).
    image_rgb: (Hf, Wf, 3) uint8 full image; part_mask: (Hf, Wf) uint8 or None.
    aug: `images.Augmentation` (scale = box enlargement, used as 1 / crop scale; rot_deg = the
      in-plane rotation, applied as the exact PR twist).
    spec: `image_pipeline.ImageSpec` (size = crop side).
    flip_perm: L/R permutation to mirror the sample, or None.
    cam_R, cam_t: world -> camera extrinsics of the full view.
    pr: perspective rotation on.

  Returns:
    `perspective_sample`'s dict (rotated 3D, K_crop = crop_affine @ K, perspective_R, pe_valid).
  """
  box = bbox_from_points(view.kp2d_px, np.asarray(view.kp2d_vis) > 0)
  centre, size = box[:2] + box[2:] / 2, np.maximum(box[2:], 1.0) * PIPELINE_BOX_ENLARGE
  box = np.concatenate([centre - size / 2, size])
  config = PerspectiveConfig(image_size=(spec.size, spec.size), perspective_center=pr)
  paug = PerspectiveAug(rot_deg=float(aug.rot_deg), scale=1.0 / float(aug.scale))
  return perspective_sample(
    image_rgb,
    view.K,
    box,
    view.kp2d_px,
    view.kp2d_vis,
    view.pose3d_cam,
    config,
    paug,
    root=view.root,
    flip_perm=flip_perm,
    dist=view.dist,
    part_mask=part_mask,
    cam_R=cam_R,
    cam_t=cam_t,
  )
