"""PoseDA's Local Pose Augmentation (LPA) networks: RECONSTRUCTED, not official PoseDA code.

Paper: Chai et al., "Global Adaptation meets Local Generalization: Unsupervised Domain Adaptation
for 3D Human Pose Estimation", ICCV 2023, arXiv:2303.16456. The official repository
(github.com/rese1f/PoseDA @ 7934411098ce74e88e6d97f29dc1b06e68c6bd65) releases only GPA
(`jaxpose.methods.poseda.gpa`). LPA is described in the abstract only ("an augmentation
generator that generates the parameters of pre-defined pose transformations and an anchor
discriminator to ensure the reality and quality of the augmented data"). Everything here is a
RECONSTRUCTION after PoseAug (Zhang et al., CVPR 2021, github.com/jfzhang95/PoseAug @
f469ce4a6fb3da0b7e5ba21d796c02f61e3e5caf, MIT), the closest public design (research/poseda.md
§2.2-2.3), minus PoseAug's translation (GPA handles the global position). Written from the
notes; no code copied.

Not a registry model (it maps poses to poses, not a lifter window), hence the underscore.

Pure transformations (any skeleton of `jaxpose.geometry.skeleton`; J joints, J - 1 bones):
- `bone_vectors(pose, sk)` (..., J, 3) -> (..., J-1, 3); `from_bones(root, bones, sk)` inverts it
  (forward kinematics in a topological order, so layouts whose root is not joint 0 work);
- `bone_groups(sk)`: a bone and its left/right mirror share one group (the BL ratios);
- `augment(pose, ba, bl, rt, sk)`: bone angle (offsets added to the unit bone directions,
  renormalised; lengths kept), bone length (per-group ratios), rotation about the root
  (axis-angle), in that order (PoseAug's BA -> BL -> RT). Returns the pose, root at the input's
  root, plus `ba_diff` = 1 - cos(angle change) per bone.
- `kcs(pose, sk)`: the kinematic-chain-space matrix B B^T of the bone vectors (..., (J-1)^2).

Modules:
- `Generator`: three MLP heads (BA, BL, RT) on [flattened root-relative pose (3J), Gaussian noise
  (noise_dim)]; BL ratio = 1 + bl_max tanh(.), rotation angle = rt_max tanh(.) (axis-angle
  vector). Input (N, J, 3) metres, noise (N, noise_dim) -> dict of parameters (module docstring
  of `Generator.__call__`).
- `Discriminator3D`: the "anchor" 3D discriminator: KCS of the pose -> MLP -> (N, 1) score,
  trained with the source 3D poses as anchors (real).
- `Discriminator2D`: MLP on root-relative, scale-normalised 2D poses -> (N, 1), trained with the
  target-domain 2D poses as anchors (real): it pulls the augmented, GPA-placed, projected poses
  toward the target's 2D distribution (views, pose structure).

Deviations from PoseAug (documented reconstruction choices): no BatchNorm in the generator or
discriminators (their statistics would need their own mutable collection inside the method's
nested updates); one whole-body KCS path instead of five part-wise paths; no translation head; no
fixed torso bones (the range losses of `jaxpose.methods.poseda` bound the changes instead).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.geometry import rotation
from jaxpose.geometry import skeleton as skel


@functools.cache
def _tree(name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
  """(bone parents, bone children, topological bone order, root) of a skeleton (static)."""
  sk = skel.get(name)
  bones = sk.bones
  parents = tuple(p for p, _ in bones)
  children = tuple(c for _, c in bones)
  bone_of_child = {c: i for i, c in enumerate(children)}
  order, seen, stack = [], {sk.root}, [sk.root]
  while stack:
    j = stack.pop(0)
    for p, c in bones:
      if p == j and c not in seen:
        seen.add(c)
        order.append(bone_of_child[c])
        stack.append(c)
  if len(order) != len(bones):
    raise ValueError(f'{name}: bones do not form a tree from root {sk.root}')
  return parents, children, tuple(order), sk.root


def bone_vectors(pose: jax.Array, sk: str) -> jax.Array:
  """(..., J, 3) -> (..., J-1, 3) child - parent, in `skeleton.bones` order."""
  parents, children, _, _ = _tree(sk)
  return pose[..., children, :] - pose[..., parents, :]


def from_bones(root: jax.Array, bones: jax.Array, sk: str) -> jax.Array:
  """Forward kinematics: root (..., 3), bones (..., J-1, 3) -> pose (..., J, 3)."""
  parents, children, order, r = _tree(sk)
  j = len(children) + 1
  joints: list[jax.Array | None] = [None] * j
  joints[r] = root
  for b in order:
    joints[children[b]] = joints[parents[b]] + bones[..., b, :]
  return jnp.stack(joints, axis=-2)


@functools.cache
def bone_groups(sk: str) -> tuple[tuple[int, ...], int]:
  """(group index of each bone, number of groups): a bone and its mirror share a group."""
  s = skel.get(sk)
  perm = s.flip_perm
  bones = s.bones
  index = {b: i for i, b in enumerate(bones)}
  group, ids = [], {}
  for i, (p, c) in enumerate(bones):
    mirror = index.get((perm[p], perm[c]), i)
    key = min(i, mirror)
    group.append(ids.setdefault(key, len(ids)))
  return tuple(group), len(ids)


def _unit(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  return x / jnp.sqrt(jnp.sum(x * x, -1, keepdims=True) + eps)


def augment(
  pose: jax.Array,
  ba: jax.Array,
  bl: jax.Array,
  rt: jax.Array,
  sk: str,
) -> tuple[jax.Array, jax.Array]:
  """Applies the three pre-defined transformations (BA, BL, RT) to poses.

  Args:
    pose: (N, ..., J, 3) metres (root-relative or not; the root stays where it is).
    ba: (N, J-1, 3) offsets added to the unit bone directions (then renormalised).
    bl: (N, J-1) bone length ratios (1 = unchanged).
    rt: (N, 3) axis-angle rotation about the root, radians.
    sk: skeleton name.

  The parameters of sample n apply to every frame of pose[n] (windows keep their motion).

  Returns:
    (augmented pose, same shape, root kept), ba_diff (N, ..., J-1) = 1 - cos(direction change).
  """
  _, _, _, r = _tree(sk)
  extra = pose.ndim - 3
  expand = lambda a, k: a.reshape(a.shape[:1] + (1,) * extra + a.shape[1:])  # noqa: E731
  b = bone_vectors(pose, sk)
  length = jnp.sqrt(jnp.sum(b * b, -1, keepdims=True) + 1e-12)
  d = b / length
  d_new = _unit(d + expand(ba, 0))
  ba_diff = 1.0 - jnp.sum(d * d_new, -1)
  b_new = d_new * length * expand(bl, 0)[..., None]
  rel = from_bones(jnp.zeros_like(pose[..., r, :]), b_new, sk)
  rot = rotation.axis_angle_to_matrix(rt)
  rel = jnp.einsum('n...jc,ndc->n...jd', rel, rot.astype(rel.dtype))
  return rel + pose[..., r : r + 1, :], ba_diff


def kcs(pose: jax.Array, sk: str) -> jax.Array:
  """Kinematic chain space: (..., J, 3) -> (..., (J-1)^2) flattened B B^T of the bone vectors."""
  b = bone_vectors(pose, sk)
  m = jnp.einsum('...ic,...jc->...ij', b, b)
  return m.reshape(m.shape[:-2] + (-1,))


def _mlp(x: jax.Array, widths: Sequence[int], name: str) -> jax.Array:
  for i, w in enumerate(widths):
    x = nn.leaky_relu(nn.Dense(w, name=f'{name}_{i}')(x), 0.2)
  return x


class Generator(nn.Module):
  """The LPA augmentation generator (RECONSTRUCTED after PoseAug's PoseGenerator).

  Attributes:
    skeleton: joint layout name (bones, mirror groups, root).
    hidden: MLP width (PoseAug: 256).
    depth: hidden layers per head (PoseAug: 1 + 2 x 2).
    noise_dim: Gaussian noise channels concatenated to the pose (PoseAug: 48).
    bl_max: bone length ratios within 1 +- bl_max (PoseAug: 0.2).
    rt_max: rotation angle bound, radians (PoseAug: pi).
    ba_scale: scale of the direction offsets (tanh-bounded).
  """

  skeleton: str = 'h36m17'
  hidden: int = 256
  depth: int = 3
  noise_dim: int = 48
  bl_max: float = 0.2
  rt_max: float = float(np.pi)
  ba_scale: float = 1.0

  @nn.compact
  def __call__(self, pose: jax.Array, noise: jax.Array) -> dict[str, jax.Array]:
    """pose (N, J, 3) metres (one frame per sample; root-relative), noise (N, noise_dim) ->
    {'ba': (N, J-1, 3), 'bl': (N, J-1) ratios, 'rt': (N, 3) axis-angle radians,
     'bl_group': (N, G) per-group ratio - 1}."""
    n, j, _ = pose.shape
    r = skel.get(self.skeleton).root
    x = (pose - pose[:, r : r + 1]).reshape(n, j * 3)
    x = jnp.concatenate([x, noise.astype(x.dtype)], -1)
    group, num_groups = bone_groups(self.skeleton)
    widths = [self.hidden] * self.depth
    ba = nn.Dense((j - 1) * 3, name='ba_out')(_mlp(x, widths, 'ba'))
    ba = self.ba_scale * jnp.tanh(ba).reshape(n, j - 1, 3)
    blg = self.bl_max * jnp.tanh(nn.Dense(num_groups, name='bl_out')(_mlp(x, widths, 'bl')))
    bl = 1.0 + blg[:, jnp.asarray(group)]
    rt = nn.Dense(3, name='rt_out')(_mlp(x, widths, 'rt'))
    angle = jnp.sqrt(jnp.sum(rt * rt, -1, keepdims=True) + 1e-12)
    rt = rt / angle * self.rt_max * jnp.tanh(angle)
    return {'ba': ba, 'bl': bl, 'rt': rt, 'bl_group': blg}


class Discriminator3D(nn.Module):
  """The anchor 3D discriminator: KCS features -> MLP with a residual block -> (N, 1) score.

  Attributes:
    skeleton: joint layout name.
    hidden: width (PoseAug's KCS paths: 256).
  """

  skeleton: str = 'h36m17'
  hidden: int = 256

  @nn.compact
  def __call__(self, pose: jax.Array) -> jax.Array:
    """pose (N, J, 3) metres -> (N, 1) realness score (LSGAN: real 1, fake 0)."""
    x = kcs(pose, self.skeleton)
    h = nn.leaky_relu(nn.Dense(self.hidden, name='in')(x), 0.2)
    y = nn.leaky_relu(nn.Dense(self.hidden, name='res_0')(h), 0.2)
    h = nn.leaky_relu(nn.Dense(self.hidden, name='res_1')(y) + h, 0.2)
    h = nn.leaky_relu(nn.Dense(100, name='neck')(h), 0.2)
    return nn.Dense(1, name='out')(h)


def normalize_2d(kp2d: jax.Array, root: int) -> jax.Array:
  """(N, J, 2) -> root-relative 2D divided by the pose's mean joint distance to the root
  (location and scale removed: what is left is the view and the local structure)."""
  rel = kp2d - kp2d[..., root : root + 1, :]
  scale = jnp.sqrt(jnp.mean(jnp.sum(rel * rel, -1), -1) + 1e-12)[..., None, None]
  return rel / scale


class Discriminator2D(nn.Module):
  """The anchor 2D discriminator: MLP on `normalize_2d` poses -> (N, 1) (PoseAug: 5 x 100).

  Attributes:
    skeleton: joint layout name (its root).
    hidden: width.
    depth: hidden layers.
  """

  skeleton: str = 'h36m17'
  hidden: int = 100
  depth: int = 5

  @nn.compact
  def __call__(self, kp2d: jax.Array) -> jax.Array:
    """kp2d (N, J, 2) screen coordinates (any normalisation) -> (N, 1)."""
    x = normalize_2d(kp2d, skel.get(self.skeleton).root)
    x = _mlp(x.reshape(x.shape[0], -1), [self.hidden] * self.depth, 'mlp')
    return nn.Dense(1, name='out')(x)


def param_count(variables) -> int:
  """Number of parameters of a variables tree."""
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(variables)))
