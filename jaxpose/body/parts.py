"""Body-part segmentation of SMPL-format meshes: vertex and face part labels from the skinning.

Each vertex belongs to the joint with its largest skinning weight (SMPL's weights, like the
synthetic model's, follow the bone from a joint to its child: joint 1 `left_hip` is the thigh), and
each face to the joint with the largest summed weight over its three vertices. Joints map to the
15 parts of `PARTS` (`JOINT_PART`), the same names and order as the capsule body of
`jaxpose.data.deepmimic_render`, so both embedded image datasets share one label table (0 =
background; left and right parts are `left_*` / `right_*`, which `jaxpose.data.images.flip_lut`
swaps under a horizontal flip).

Joint -> part: pelvis, spine1-3 and the collars -> torso; neck and head -> head; hips (thighs) ->
upper legs; knees (shins) -> lower legs; ankles and feet -> feet; shoulders -> upper arms; elbows
-> lower arms; wrists and hands -> hands. For a mirror-symmetric model (the synthetic one) the
segmentation is mirror-symmetric too.

Used by `jaxpose.data.deepmimic_smpl_render` (per-pixel part labels of the rendered mesh) and DSR's
semantic prior on the synthetic body (`jaxpose.methods.dsr`). Imports numpy only.
"""

from __future__ import annotations

import numpy as np

PARTS: tuple[str, ...] = (
  'background',
  'head',
  'torso',
  'left_upper_arm',
  'right_upper_arm',
  'left_lower_arm',
  'right_lower_arm',
  'left_hand',
  'right_hand',
  'left_upper_leg',
  'right_upper_leg',
  'left_lower_leg',
  'right_lower_leg',
  'left_foot',
  'right_foot',
)
_JOINT_PART_NAMES = (
  'torso',  # 0 pelvis
  'left_upper_leg',  # 1 left_hip
  'right_upper_leg',  # 2 right_hip
  'torso',  # 3 spine1
  'left_lower_leg',  # 4 left_knee
  'right_lower_leg',  # 5 right_knee
  'torso',  # 6 spine2
  'left_foot',  # 7 left_ankle
  'right_foot',  # 8 right_ankle
  'torso',  # 9 spine3
  'left_foot',  # 10 left_foot
  'right_foot',  # 11 right_foot
  'head',  # 12 neck
  'torso',  # 13 left_collar
  'torso',  # 14 right_collar
  'head',  # 15 head
  'left_upper_arm',  # 16 left_shoulder
  'right_upper_arm',  # 17 right_shoulder
  'left_lower_arm',  # 18 left_elbow
  'right_lower_arm',  # 19 right_elbow
  'left_hand',  # 20 left_wrist
  'right_hand',  # 21 right_wrist
  'left_hand',  # 22 left_hand
  'right_hand',  # 23 right_hand
)
JOINT_PART: np.ndarray = np.array([PARTS.index(n) for n in _JOINT_PART_NAMES], np.uint8)  # (24,)


def _check_weights(weights: np.ndarray) -> np.ndarray:
  w = np.asarray(weights, np.float64)
  if w.ndim != 2 or w.shape[1] != len(JOINT_PART):
    raise ValueError(f'weights: expected (V, {len(JOINT_PART)}) skinning weights, got {w.shape}')
  return w


def vertex_parts(weights: np.ndarray) -> np.ndarray:
  """(V, 24) skinning weights -> (V,) uint8 part labels (1..14, `PARTS` indices)."""
  return JOINT_PART[np.argmax(_check_weights(weights), axis=1)]


def face_parts(weights: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """(V, 24) skinning weights, (F, 3) faces -> (F,) uint8 part labels (largest summed weight of the
  face's vertices; ties go to the lower joint index)."""
  w = _check_weights(weights)
  f = np.asarray(faces, np.int64)
  if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(w))):
    raise ValueError(f'faces: expected (F, 3) indices into {len(w)} vertices, got {f.shape}')
  return JOINT_PART[np.argmax(w[f].sum(axis=1), axis=1)]
