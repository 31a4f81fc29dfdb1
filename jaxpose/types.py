"""Shared names: batch keys, shape legend and type aliases.

Shape legend used in every docstring of jaxpose:
  B batch, T frames, J joints, C coordinates (2 or 3, +1 for confidence), V views,
  H hypotheses, S diffusion steps, D features.

Array names carry coordinate frame and unit:
  kp2d_px    (.., J, 2) pixels
  kp2d_norm  (.., J, 2|3) screen coordinates scaled to [-1, 1] by image width (+ confidence)
  pose3d_cam (.., J, 3) metres, camera frame, root-relative unless the name ends in `_abs`
"""

from typing import Any

import jax

PRNGKey = jax.Array
PyTree = Any
Array = jax.Array

# Keys of a model-ready batch (see jaxpose/data/pipeline.py). All are global-batch arrays.
KP2D = 'kp2d_norm'  # (B, T, J, C_in) float32, normalised screen coords (+ confidence)
POSE3D = 'pose3d_cam'  # (B, T, J, 3) float32, metres, camera frame, root-relative
VALID = 'valid'  # (B, T) bool, False on padded frames / padded batch rows
FRAME_IDX = 'frame_idx'  # (B, T) int32, frame index inside the source sequence
SEQ_ID = 'seq_id'  # (B,) int32, index of the source sequence in the split

# Keys of an image batch (jaxpose/data/image_pipeline.py; plan CONTRACTS §3). Single-view shapes;
# multi-view batches insert a view axis V after B in every per-view key (IMAGE_PER_VIEW_KEYS).
IMAGE = 'image_u8'  # (B, H, W, 3) uint8 RGB crop; models take imagenet_normalize(image) float32
KP2D_PX = 'kp2d_px'  # (B, J, 2) float32, crop pixels (after crop and augmentation)
KP2D_VIS = 'kp2d_vis'  # (B, J) float32, 1 visible and inside the crop, else 0
POSE3D_ROOT = 'pose3d_root'  # (B, 1, 3) float32, metres, root joint in the camera frame
K_FULL = 'K_full'  # (B, 3, 3) float32, intrinsics of the full image, pixels
CROP_FROM_FULL = (
  'crop_from_full'  # (B, 3, 3) float32, full-image px -> crop px (affine or homography)
)
K_CROP = 'K_crop'  # (B, 3, 3) float32, kp2d_px ~ K_crop @ (pose3d_cam + pose3d_root); a flipped
#                    sample has mirrored, L/R-swapped 3D and K_crop = crop_from_full @ K_full @ diag(-1, 1, 1)
DIST = 'dist'  # (B, 5) float32, full-image distortion (k1, k2, p1, p2, k3); zeros when none
PART_LABEL = 'part_label_u8'  # (B, H, W) uint8, body-part labels in the crop, 0 = background
POSE3D_WORLD = 'pose3d_world'  # (B, J, 3) float32, metres, world frame (no view axis)
CAM_R = 'cam_R'  # (B, 3, 3) float32, world -> camera rotation: X_cam = R X_world + t
CAM_T = 'cam_t'  # (B, 3) float32, metres
OWNED = 'owned'  # (B, 1) bool for image batches (T_out = 1): eval tiling ownership
VIEW_ID = 'view_id'  # (B,) or (B, V) int32, camera index within the frame record
IMAGE_PER_VIEW_KEYS = (
  IMAGE,
  KP2D_PX,
  KP2D_VIS,
  POSE3D,
  POSE3D_ROOT,
  K_FULL,
  CROP_FROM_FULL,
  K_CROP,
  DIST,
  PART_LABEL,
  CAM_R,
  CAM_T,
  VIEW_ID,
)
