"""KTPFormer's prior-knowledge token modules: Kinematics (KPA) and Trajectory (TPA) Prior Attention.

Paper: Peng, Zhou, Mok, "KTPFormer: Kinematics and Trajectory Prior Knowledge-Enhanced
Transformer for 3D Human Pose Estimation", CVPR 2024, arXiv:2404.00658.
Official code: github.com/JihuaPeng/KTPFormer at commit b961951a2856dfa631b71bb1058ebebb7fc9acee
(`common/model_ktpformer.py`: `LearnableGraphConv`, `KPA`, `TPA`, `StackedTPA`;
`common/graph_utils.py`: the adjacencies). Written from research/ktpformer.md; no code copied
(the repository has no licence).

In KTPFormer the tokens that enter the first spatial and the first temporal attention are made by a
graph convolution over a fixed prior graph instead of a linear map:

  KPA (spatial, nodes = the J joints of each frame):  ReLU(BN(LGC_kin(x)))
  TPA (temporal, nodes = the T frames of each joint): ReLU(BN(LGC_traj(x)))
  StackedTPA:                                         x + TPA(TPA(x))

`LearnableGraphConv` (LGC) holds two weight matrices (self and neighbour), a per-node,
per-channel modulation M and a learnable "global topology" adj2 added to the fixed graph and
symmetrised in every call:

  A   = (adj + adj2 + (adj + adj2)^T) / 2
  out = diag(A) * (M * x W0) + offdiag(A) @ (M * x W1) + b

The fixed graphs (`prior_adjacency`): the symmetric 0/1 bone graph (`kinematic_adjacency`, from a
parent list) or the frame chain t <-> t+1 (`trajectory_adjacency`), row-normalised D^-1 A, with
the diagonal then set to 1. They are constants rebuilt from the skeleton, not variables.
BatchNorm normalises the feature channel over every other axis (torch BatchNorm1d(C) on
(N, C, nodes)); with a (B, T, J, C) tensor the statistics pool over (B, T, J) for both modules.

All modules work on (B, T, J, C) directly: the node axis is a field (-2 joints, -3 frames), so no
reshapes of the activations are needed. They are plug-ins for any spatio-temporal lifter:
`jaxpose.models.ktpformer` is MixSTE with a KPA block and a TPA block in front; MixSTE, MotionBERT
and MotionAGFormer take a `prior_attention` field that inserts them (see each model's docstring).

Variable names follow the official modules (`gconv/{W, M, adj2, bias}`, `bn`, `gconv1`,
`gconv2`), so official checkpoints convert with `convert.torch_utils.convert_state_dict`. `W` is
(2, in, out) and used as x @ W[k], already the Flax layout: it is not transposed.

Deviations: none in the forward pass. Initialisation is the official one (W xavier-uniform with
gain 1.414 and torch's fan convention for a 3-D tensor, M = 1, adj2 = 1e-6, bias U(+-1/sqrt(out))).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.geometry.skeleton import adjacency_matrix, normalize_adjacency
from jaxpose.geometry.skeleton import get as get_skeleton
from jaxpose.models.layers.linear import constant_init, torch_bias_init
from jaxpose.models.layers.norms import TorchBatchNorm

H36M_PARENTS: tuple[int, ...] = get_skeleton('h36m17').parents


def prior_adjacency(num_nodes: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
  """KTPFormer's graph normalisation: symmetric 0/1 graph, D^-1 A (no self loops), then diag = 1.

  Args:
    num_nodes: N.
    edges: (i, j) links; direction is ignored.

  Returns:
    (N, N) float32; off-diagonal entries of row i are 1/deg(i) on its neighbours.
  """
  a = normalize_adjacency(adjacency_matrix(num_nodes, edges), 'row')
  a[np.diag_indices(num_nodes)] = 1.0
  return a


@functools.lru_cache(maxsize=32)
def _kinematic(parents: tuple[int, ...]) -> np.ndarray:
  edges = [(c, p) for c, p in enumerate(parents) if p >= 0]
  return prior_adjacency(len(parents), edges)


@functools.lru_cache(maxsize=32)
def _trajectory(num_frames: int) -> np.ndarray:
  return prior_adjacency(num_frames, [(t, t + 1) for t in range(num_frames - 1)])


def kinematic_adjacency(parents: Sequence[int] = H36M_PARENTS) -> np.ndarray:
  """KPA's spatial graph from a kinematic tree (official `adj_mx_from_skeleton`).

  Args:
    parents: J parent indices, -1 for the root (default: H36M-17 as the official training uses it,
      shoulders attached to the thorax).

  Returns:
    (J, J) float32.
  """
  return _kinematic(tuple(int(p) for p in parents)).copy()


def trajectory_adjacency(num_frames: int) -> np.ndarray:
  """TPA's temporal graph, the chain t <-> t+1 (official `adj_mx_from_skeleton_temporal`).

  Interior off-diagonal entries are 1/2, those of the two end frames 1, the diagonal 1.

  Args:
    num_frames: T.

  Returns:
    (T, T) float32.
  """
  return _trajectory(int(num_frames)).copy()


def parents_from_adjacency(adj: np.ndarray, root: int = 0) -> tuple[int, ...]:
  """A parent list whose `kinematic_adjacency` has the support of `adj` (any tree orientation).

  The prior graph is symmetric, so only its edges matter; this recovers a spanning tree from a
  stored adjacency (e.g. the official `adj` tensor) by breadth-first search from `root`.

  Raises:
    ValueError: if the off-diagonal support of `adj` is not a tree.
  """
  adj = np.asarray(adj)
  n = adj.shape[0]
  support = (adj + adj.T) != 0
  np.fill_diagonal(support, False)
  parents, frontier = [-2] * n, [root]
  parents[root] = -1
  while frontier:
    i = frontier.pop(0)
    for j in np.flatnonzero(support[i]):
      if parents[j] == -2:
        parents[j] = i
        frontier.append(int(j))
  if -2 in parents or int(support.sum()) != 2 * (n - 1):
    raise ValueError(f'adjacency support is not a tree over {n} nodes')
  return tuple(parents)


def _lgc_kernel_init(key, shape, dtype=jnp.float32):
  """xavier_uniform(gain=1.414) with torch's fans of a 3-D tensor (2, in, out).

  torch takes fan_in = in * out and fan_out = 2 * out (dims 1 and 0 times the "receptive field"
  prod(shape[2:]) = out), so the bound is 1.414 * sqrt(6 / (in * out + 2 * out)).
  """
  fan_in, fan_out = shape[1] * shape[2], shape[0] * shape[2]
  bound = 1.414 * (6.0 / (fan_in + fan_out)) ** 0.5
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class LearnableGraphConv(nn.Module):
  """Graph convolution with separate self/neighbour weights, node modulation and learnable topology.

  Attributes:
    features: output width C_out.
    node_axis: the axis of x holding the N graph nodes (any but the last).
    use_bias: add a learned bias.
  """

  features: int
  node_axis: int = -2
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, adj: jax.Array | np.ndarray) -> jax.Array:
    """x: (..., N, ..., C_in) with nodes at `node_axis`; adj: (N, N) fixed graph -> (..., C_out)."""
    n = adj.shape[0]
    if x.shape[self.node_axis] != n:
      raise ValueError(
        f'LearnableGraphConv: {n}-node graph but axis {self.node_axis} of {x.shape} has '
        f'{x.shape[self.node_axis]} nodes'
      )
    w = self.param('W', _lgc_kernel_init, (2, x.shape[-1], self.features))
    m = self.param('M', nn.initializers.ones, (n, self.features))
    adj2 = self.param('adj2', constant_init(1e-6), (n, n))
    a = jnp.asarray(adj, x.dtype) + adj2
    a = (a.T + a) / 2  # the learned topology stays symmetric
    off = a * (1.0 - jnp.eye(n, dtype=a.dtype))

    h = jnp.moveaxis(x, self.node_axis, -2)  # (..., N, C_in)
    # Self term: (A * I) @ Y is a per-node scaling by diag(A); neighbours: a full (N, N) product.
    out = jnp.diagonal(a)[:, None] * (m * (h @ w[0])) + off @ (m * (h @ w[1]))
    if self.use_bias:
      out = out + self.param('bias', torch_bias_init(self.features), (self.features,))
    return jnp.moveaxis(out, -2, self.node_axis)


def _lgc_bn_relu(x, adj, features: int, node_axis: int, momentum: float, train: bool):
  """LGC -> BatchNorm over the feature channel -> ReLU, as children `gconv`, `bn` of the caller."""
  h = LearnableGraphConv(features, node_axis=node_axis, name='gconv')(x, adj)
  h = TorchBatchNorm(axis=-1, momentum=momentum, name='bn')(h, train=train)
  return nn.relu(h)


class KPA(nn.Module):
  """Kinematics prior: ReLU(BN(LGC over the skeleton graph)), nodes = joints.

  In KTPFormer it replaces the joint embedding (C_in = 2 -> D); as a plug-in it may also map
  D -> D. There is no residual (as official).

  Attributes:
    features: output width D.
    parents: kinematic tree of the J joints (H36M-17 by default).
    node_axis: the joint axis of the input (-2 for (B, T, J, C)).
    bn_momentum: torch-convention BatchNorm momentum.
  """

  features: int
  parents: tuple[int, ...] = H36M_PARENTS
  node_axis: int = -2
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C_in) -> (B, T, J, features). train: BN batch statistics (mutable batch_stats)."""
    if x.shape[self.node_axis] != len(self.parents):
      raise ValueError(
        f'KPA: the skeleton has {len(self.parents)} joints, axis {self.node_axis} of input '
        f'{x.shape} has {x.shape[self.node_axis]}'
      )
    adj = _kinematic(tuple(self.parents))
    return _lgc_bn_relu(x, adj, self.features, self.node_axis, self.bn_momentum, train)


class TPA(nn.Module):
  """Trajectory prior: ReLU(BN(LGC over the frame chain)), nodes = frames (T fixed by M, adj2).

  Attributes:
    features: output width.
    node_axis: the frame axis of the input (-3 for (B, T, J, C)).
    bn_momentum: torch-convention BatchNorm momentum.
  """

  features: int
  node_axis: int = -3
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C) -> (B, T, J, features)."""
    adj = _trajectory(x.shape[self.node_axis])
    return _lgc_bn_relu(x, adj, self.features, self.node_axis, self.bn_momentum, train)


class StackedTPA(nn.Module):
  """x + TPA(TPA(x)): KTPFormer's temporal prior, width-preserving (official `StackedTPA`).

  Attributes:
    hidden_features: width of the first TPA; None keeps C (as KTPFormer).
    node_axis: the frame axis of the input.
    bn_momentum: torch-convention BatchNorm momentum.
  """

  hidden_features: int | None = None
  node_axis: int = -3
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C) -> (B, T, J, C)."""
    c = x.shape[-1]
    kw = dict(node_axis=self.node_axis, bn_momentum=self.bn_momentum)
    h = TPA(self.hidden_features or c, **kw, name='gconv1')(x, train=train)
    return x + TPA(c, **kw, name='gconv2')(h, train=train)
