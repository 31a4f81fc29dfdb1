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
