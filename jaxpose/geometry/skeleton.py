"""Joint layouts: names, kinematic trees, left/right pairs, flip permutations, graphs and joint maps.

Layouts (`get(name)`; `names()` lists them):

  h36m17       Human3.6M 17 joints in VideoPose3D order (research/data.md §1.3), root 0 (pelvis).
  mpi3dhp17    MPI-INF-3DHP 17 "relevant" joints (data.md §3.2), root 14 (pelvis).
  humaneva15   HumanEva-I 15 joints of VideoPose3D's converter (data.md §4), root 0 (pelvis).
  smpl24       SMPL body joints, root 0 (pelvis).
  coco17       COCO keypoints. No pelvis: the tree is rooted at the nose and uses only COCO skeleton
               links; `edges` is the full COCO skeleton (19 links, with the hip-hip, shoulder-shoulder
               and eye-eye cycles).
  mediapipe33  MediaPipe / BlazePose landmarks. `edges` is MediaPipe's POSE_CONNECTIONS (35 links);
               those have no face-body link, so the tree (rooted at the nose) adds nose->mouth and
               ear->shoulder links to connect it.

`parents` is always a tree (parent index, -1 for the root); `bones` are its (parent, child) pairs;
`edges` is the graph used for adjacency (equal to `bones` except for coco17 and mediapipe33).

Joint maps to H36M-17 (`conversion_matrix`, `convert`) are linear (J_dst, J_src) weight matrices:
  * mpi3dhp17 <-> h36m17: the permutation of MotionAGFormer's H36M_TO_MPI (data.md §3.2).
  * coco17 -> h36m17: as MotionBERT's `coco2h36m` (the common practice for in-the-wild lifting):
    pelvis = mean(hips), thorax = mean(shoulders), spine = mean(pelvis, thorax), neck/nose = nose,
    head = mean(eyes); limbs copied.
  * mediapipe33 -> h36m17: research/real_data.md §4 (not an official mapping): pelvis = mean(hips
    23, 24), thorax = mean(shoulders 11, 12), spine = mean(pelvis, thorax), neck/nose = nose 0,
    head = mean(ears 7, 8) (the suggested upward push is left out to keep the map linear).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace


@dataclasses.dataclass(frozen=True)
class Skeleton:
  """An immutable joint layout. Index arrays are plain tuples so the object is hashable and static.

  Attributes:
    name: registry name, e.g. 'h36m17'.
    joint_names: J names.
    parents: J parent indices, -1 for the root; a tree.
    left: joints on the subject's left; left[i] mirrors right[i].
    right: joints on the subject's right.
    root: root joint index (used by `root_relative`).
    edges: graph links (i, j) for adjacency; defaults to the tree bones.
  """

  name: str
  joint_names: tuple[str, ...]
  parents: tuple[int, ...]
  left: tuple[int, ...]
  right: tuple[int, ...]
  root: int
  edges: tuple[tuple[int, int], ...] = ()

  def __post_init__(self):
    j = len(self.joint_names)
    if len(self.parents) != j:
      raise ValueError(f'{self.name}: parents has {len(self.parents)} entries, expected {j}')
    if len(self.left) != len(self.right) or set(self.left) & set(self.right):
      raise ValueError(f'{self.name}: left {self.left} and right {self.right} do not pair up')
    if self.parents[self.root] != -1 or self.parents.count(-1) != 1:
      raise ValueError(f'{self.name}: root {self.root} must be the only joint with parent -1')
    if not self.edges:
      object.__setattr__(self, 'edges', self.bones)

  @property
  def num_joints(self) -> int:
    return len(self.joint_names)

  @property
  def bones(self) -> tuple[tuple[int, int], ...]:
    """(parent, child) pairs of the tree, in child order; J - 1 of them."""
    return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

  @property
  def flip_perm(self) -> tuple[int, ...]:
    """perm[j] is the mirror joint of j (j itself on the midline); an involution."""
    perm = list(range(self.num_joints))
    for a, b in zip(self.left, self.right, strict=True):
      perm[a], perm[b] = b, a
    return tuple(perm)

  def index(self, joint_name: str) -> int:
    """Index of a joint by name; ValueError listing the names if unknown."""
    try:
      return self.joint_names.index(joint_name)
    except ValueError:
      raise ValueError(
        f'{self.name} has no joint {joint_name!r}; joints: {", ".join(self.joint_names)}'
      ) from None

  def adjacency(self, self_loops: bool = False) -> np.ndarray:
    """Symmetric 0/1 adjacency (J, J) float32 of `edges`, optionally with the identity added."""
    return adjacency_matrix(self.num_joints, self.edges, self_loops=self_loops)


def adjacency_matrix(
  num_joints: int, edges: Sequence[tuple[int, int]], self_loops: bool = False
) -> np.ndarray:
  """Symmetric binary adjacency from an edge list.

  Args:
    num_joints: J.
    edges: (i, j) pairs; direction is ignored.
    self_loops: put ones on the diagonal.

  Returns:
    (J, J) float32 with A[i, j] = A[j, i] = 1 for each edge.
  """
  a = np.zeros((num_joints, num_joints), np.float32)
  for i, j in edges:
    a[i, j] = a[j, i] = 1.0
  if self_loops:
    a[np.diag_indices(num_joints)] = 1.0
  return a


def normalize_adjacency(a: np.ndarray, mode: str = 'sym') -> np.ndarray:
  """Degree normalisation of an adjacency matrix (host-side constant building).

  Args:
    a: (J, J) non-negative adjacency.
    mode: 'sym' D^-1/2 A D^-1/2 (GCN), 'row' D^-1 A (rows sum to 1), 'col' A D^-1 (columns sum to 1).
      Degrees are row sums for 'sym'/'row' and column sums for 'col'; zero degrees give zero rows.

  Returns:
    (J, J) float32.
  """
  a = np.asarray(a, np.float64)
  axis = 0 if mode == 'col' else 1
  deg = a.sum(axis=axis)
  with np.errstate(divide='ignore'):
    inv = np.where(deg > 0, 1.0 / deg, 0.0)
  if mode == 'sym':
    s = np.sqrt(inv)
    out = s[:, None] * a * s[None, :]
  elif mode == 'row':
    out = inv[:, None] * a
  elif mode == 'col':
    out = a * inv[None, :]
  else:
    raise ValueError(f"mode must be one of 'sym', 'row', 'col'; got {mode!r}")
  return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Layout tables. Numbers are facts from the sources cited in the module docstring.

_H36M17 = Skeleton(
  name='h36m17',
  joint_names=tuple(
    (
      'pelvis right_hip right_knee right_ankle left_hip left_knee left_ankle spine thorax neck '
      'head left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist'
    ).split()
  ),
  parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
  left=(4, 5, 6, 11, 12, 13),
  right=(1, 2, 3, 14, 15, 16),
  root=0,
)

_MPI3DHP17 = Skeleton(
  name='mpi3dhp17',
  joint_names=tuple(
    (
      'head_top neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist '
      'right_hip right_knee right_ankle left_hip left_knee left_ankle pelvis spine head'
    ).split()
  ),
  # MATLAB joint_parents_o1 (1-based) [2,16,2,3,4,2,6,7,15,9,10,15,12,13,15,15,2], root self-parent -> -1.
  parents=(1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
  left=(5, 6, 7, 11, 12, 13),
  right=(2, 3, 4, 8, 9, 10),
  root=14,
)

_HUMANEVA15 = Skeleton(
  name='humaneva15',
  joint_names=tuple(
    (
      'pelvis thorax left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist '
      'left_hip left_knee left_ankle right_hip right_knee right_ankle head'
    ).split()
  ),
  parents=(-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
  left=(2, 3, 4, 8, 9, 10),
  right=(5, 6, 7, 11, 12, 13),
  root=0,
)

_SMPL24 = Skeleton(
  name='smpl24',
  joint_names=tuple(
    (
      'pelvis left_hip right_hip spine1 left_knee right_knee spine2 left_ankle right_ankle '
      'spine3 left_foot right_foot neck left_collar right_collar head left_shoulder '
      'right_shoulder left_elbow right_elbow left_wrist right_wrist left_hand right_hand'
    ).split()
  ),
  parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
  left=(1, 4, 7, 10, 13, 16, 18, 20, 22),
  right=(2, 5, 8, 11, 14, 17, 19, 21, 23),
  root=0,
)

_COCO17 = Skeleton(
  name='coco17',
  joint_names=tuple(
    (
      'nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow '
      'right_elbow left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle '
      'right_ankle'
    ).split()
  ),
  parents=(-1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
  left=(1, 3, 5, 7, 9, 11, 13, 15),
  right=(2, 4, 6, 8, 10, 12, 14, 16),
  root=0,
  # The COCO keypoint skeleton, 0-based.
  edges=(
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
  ),
)

_MEDIAPIPE33 = Skeleton(
  name='mediapipe33',
  joint_names=tuple(
    (
      'nose left_eye_inner left_eye left_eye_outer right_eye_inner right_eye right_eye_outer '
      'left_ear right_ear mouth_left mouth_right left_shoulder right_shoulder left_elbow '
      'right_elbow left_wrist right_wrist left_pinky right_pinky left_index right_index '
      'left_thumb right_thumb left_hip right_hip left_knee right_knee left_ankle right_ankle '
      'left_heel right_heel left_foot_index right_foot_index'
    ).split()
  ),
  parents=(
    -1,
    0,
    1,
    2,
    0,
    4,
    5,
    3,
    6,
    0,
    0,
    7,
    8,
    11,
    12,
    13,
    14,
    15,
    16,
    15,
    16,
    15,
    16,
    11,
    12,
    23,
    24,
    25,
    26,
    27,
    28,
    27,
    28,
  ),
  left=(1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
  right=(4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32),
  root=0,
  # MediaPipe POSE_CONNECTIONS.
  edges=(
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
  ),
)

_REGISTRY: dict[str, Skeleton] = {
  s.name: s for s in (_H36M17, _MPI3DHP17, _HUMANEVA15, _SMPL24, _COCO17, _MEDIAPIPE33)
}

# MotionAGFormer H36M_TO_MPI: H36M index i is 3DHP index _H36M_TO_MPI[i].
_H36M_TO_MPI = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)


def _check_joints(pose, num_joints: int, arg: str, layout: str) -> None:
  # Shapes are static under jit, so this check is safe inside traced code.
  if len(pose.shape) < 2 or pose.shape[-2] != num_joints:
    raise ValueError(
      f'{arg}: expected shape (..., {num_joints}, C) for {layout}, got {tuple(pose.shape)}'
    )


def names() -> tuple[str, ...]:
  """Registered layout names."""
  return tuple(_REGISTRY)


def get(name: str | Skeleton) -> Skeleton:
  """Looks a layout up by name (a Skeleton is returned as is).

  Raises:
    ValueError: unknown name; the message lists the valid names.
  """
  if isinstance(name, Skeleton):
    return name
  try:
    return _REGISTRY[name]
  except (KeyError, TypeError):
    raise ValueError(f'unknown skeleton {name!r}; valid names: {", ".join(_REGISTRY)}') from None


def _weights(rows: dict[int, dict[int, float]], j_dst: int, j_src: int) -> np.ndarray:
  w = np.zeros((j_dst, j_src), np.float32)
  for d, srcs in rows.items():
    for s, v in srcs.items():
      w[d, s] += v
  return w


def _h36m_from_body(hips, shoulders, nose, head_pair, limbs) -> dict[int, dict[int, float]]:
  """H36M rows from a detector layout: pelvis/thorax/spine from hips and shoulders (see docstring)."""
  (lh, rh), (ls, rs) = hips, shoulders
  rows = {
    0: {lh: 0.5, rh: 0.5},
    8: {ls: 0.5, rs: 0.5},
    7: {lh: 0.25, rh: 0.25, ls: 0.25, rs: 0.25},
    9: {nose: 1.0},
    10: {head_pair[0]: 0.5, head_pair[1]: 0.5},
  }
  rows.update({d: {s: 1.0} for d, s in limbs.items()})
  return rows


def _conversion_table() -> dict[tuple[str, str], np.ndarray]:
  perm = np.zeros((17, 17), np.float32)
  perm[list(_H36M_TO_MPI), list(range(17))] = 1.0  # mpi = perm @ h36m
  coco = _h36m_from_body(
    hips=(11, 12),
    shoulders=(5, 6),
    nose=0,
    head_pair=(1, 2),
    limbs={1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10},
  )
  mediapipe = _h36m_from_body(
    hips=(23, 24),
    shoulders=(11, 12),
    nose=0,
    head_pair=(7, 8),
    limbs={
      1: 24,
      2: 26,
      3: 28,
      4: 23,
      5: 25,
      6: 27,
      11: 11,
      12: 13,
      13: 15,
      14: 12,
      15: 14,
      16: 16,
    },
  )
  return {
    ('h36m17', 'mpi3dhp17'): perm,
    ('mpi3dhp17', 'h36m17'): perm.T.copy(),
    ('coco17', 'h36m17'): _weights(coco, 17, 17),
    ('mediapipe33', 'h36m17'): _weights(mediapipe, 17, 33),
  }


_CONVERSIONS = _conversion_table()


def conversion_matrix(src: str, dst: str) -> np.ndarray:
  """Linear joint map W with pose_dst = W @ pose_src (per coordinate).

  Args:
    src: source layout name.
    dst: destination layout name.

  Returns:
    (J_dst, J_src) float32; rows sum to 1. Identity when src == dst.

  Raises:
    ValueError: no map is defined between the two layouts (the message lists the defined ones).
  """
  s, d = get(src), get(dst)
  if s.name == d.name:
    return np.eye(s.num_joints, dtype=np.float32)
  try:
    return _CONVERSIONS[(s.name, d.name)].copy()
  except KeyError:
    pairs = ', '.join(f'{a}->{b}' for a, b in _CONVERSIONS)
    raise ValueError(f'no joint map from {s.name} to {d.name}; defined: {pairs}') from None


def convert(pose: ArrayLike, src: str, dst: str) -> ArrayLike:
  """Maps joints between layouts. pose: (..., J_src, C) -> (..., J_dst, C) (numpy in, numpy out)."""
  xp = namespace(pose)
  w = conversion_matrix(src, dst)
  pose = xp.asarray(pose)
  _check_joints(pose, w.shape[1], 'pose', get(src).name)
  return xp.einsum('ds,...sc->...dc', w.astype(pose.dtype), pose)


def flip_pose(pose: ArrayLike, skeleton: str | Skeleton) -> ArrayLike:
  """Horizontal flip: negate x and swap left/right joints.

  Works for 2D and 3D poses and for extra channels (confidence is not negated). For normalised
  screen coordinates (x in [-1, 1]) and root-relative or camera-frame 3D this is the VideoPose3D
  flip; pixel coordinates must be centred first.

  Args:
    pose: (..., J, C) with x in channel 0.
    skeleton: layout name or Skeleton; J must match.

  Returns:
    (..., J, C), same array type as the input.
  """
  sk = get(skeleton)
  xp = namespace(pose)
  pose = xp.asarray(pose)
  _check_joints(pose, sk.num_joints, 'pose', sk.name)
  perm = np.asarray(sk.flip_perm)
  out = pose[..., perm, :]
  sign = np.ones(pose.shape[-1], dtype=pose.dtype)
  sign[0] = -1
  return out * sign


def root_relative(pose: ArrayLike, root: int | str | Skeleton = 0) -> ArrayLike:
  """Subtracts the root joint from every joint (the root becomes 0).

  Args:
    pose: (..., J, C).
    root: root index, or a layout (name or Skeleton) whose root is used.

  Returns:
    (..., J, C), same array type as the input. Add `pose[..., root:root+1, :]` back to invert.
  """
  if not isinstance(root, int | np.integer):
    root = get(root).root
  xp = namespace(pose)
  pose = xp.asarray(pose)
  return pose - pose[..., root : root + 1, :]
