"""Graph building blocks: adjacency constructors, degree normalisation and a node-wise GCN.

The functions are plain jnp/numpy code usable by any graph lifter. `GCN` is the GCN mixer of
MotionAGFormer (`model/modules/graph.py`): out = ReLU(z + BN(Â V(z) + U(z))), with BatchNorm over
the *nodes* (torch `BatchNorm1d(num_nodes)` on (N, nodes, C)). It works directly on (B, T, J, C) and
treats either the joints (spatial) or the frames (temporal) as the nodes, so no reshapes of the
activations are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.norms import TorchBatchNorm


def adjacency_from_neighbours(neighbours: Sequence[Sequence[int]]) -> np.ndarray:
  """A[i, j] = 1 for j in neighbours[i]; no self loops or symmetry are added.

  Args:
    neighbours: row i lists the nodes node i aggregates from.

  Returns:
    (N, N) float32 numpy array.
  """
  n = len(neighbours)
  adj = np.zeros((n, n), np.float32)
  for i, row in enumerate(neighbours):
    adj[i, list(row)] = 1.0
  return adj


def chain_adjacency(num_nodes: int, length: int) -> np.ndarray:
  """A[i, j] = 1 for i <= j <= i + length (each node and its next `length` nodes); (N, N)."""
  i = np.arange(num_nodes)[:, None]
  j = np.arange(num_nodes)[None, :]
  return ((j >= i) & (j <= i + length)).astype(np.float32)


def normalize_digraph(adj: jax.Array) -> jax.Array:
  """D^-1/2 A D^-1/2 with D the row sums (out-degrees) of A.

  Computed elementwise, A_ij d_i d_j, instead of two (N, N) matrix products with the diagonal;
  mathematically the same and O(N^2) rather than O(N^3).

  Args:
    adj: (..., N, N) adjacency, any leading batch axes.

  Returns:
    (..., N, N) normalised adjacency.
  """
  d = jax.lax.rsqrt(jnp.sum(adj, axis=-1))
  return adj * d[..., :, None] * d[..., None, :]


def kth_largest(x: jax.Array, k: int) -> jax.Array:
  """The k-th largest value along the last axis, counting repeated values (like `lax.top_k`).

  x: (..., N) -> (..., 1). For small k (<= 4) this takes k max passes, each removing one
  occurrence of the current maximum, instead of `lax.top_k`, which XLA:CPU lowers to a full sort
  of every row (about 10 ms per MotionAGFormer-XS layer at batch 16, 5% of a training step).
  """
  if k > 4:
    return jax.lax.top_k(x, k)[0][..., -1:]
  for _ in range(k - 1):
    first = jax.nn.one_hot(jnp.argmax(x, axis=-1), x.shape[-1], dtype=jnp.bool_)
    x = jnp.where(first, -jnp.inf, x)
  return jnp.max(x, axis=-1, keepdims=True)


def topk_similarity_adjacency(z: jax.Array, k: int) -> jax.Array:
  """Hard kNN graph from dot-product similarity: A_ij = 1[<z_i, z_j> >= k-th largest of row i].

  The similarity is computed in float32 at full matmul precision, because the threshold is
  discontinuous: bf16/TF32 products flip neighbours. Ties give rows with more than k ones, and the
  graph is not differentiable (like torch's comparison).

  Args:
    z: (..., N, C) node features.
    k: neighbours per node (the node itself usually among them).

  Returns:
    (..., N, N) float32 adjacency.
  """
  z = jax.lax.stop_gradient(z.astype(jnp.float32))
  sim = jnp.matmul(z, jnp.swapaxes(z, -1, -2), precision=jax.lax.Precision.HIGHEST)
  thr = kth_largest(sim, k)
  return (sim >= thr).astype(jnp.float32)


class GCN(nn.Module):
  """MotionAGFormer's GCN mixer on (B, T, J, C), nodes = joints (spatial) or frames (temporal).

  Attributes:
    mode: 'spatial' (nodes are the J joints of each frame, graph from `neighbours`) or
      'temporal' (nodes are the T frames of each joint).
    num_nodes: J or T; the BatchNorm has one channel per node, so inputs must match it.
    neighbours: spatial graph, row i lists the joints joint i aggregates from.
    use_temporal_similarity: temporal graph from the top-k similarity (recomputed every call);
      otherwise a chain to the next `temporal_connection_len` frames.
    neighbour_num: k of the top-k similarity graph.
    temporal_connection_len: chain length of the non-similarity temporal graph.
    dim_out: output width; None keeps C (and only then is the residual added, as in torch).
    bn_momentum: torch-convention BatchNorm momentum.
  """

  mode: str = 'spatial'
  num_nodes: int = 17
  neighbours: tuple[tuple[int, ...], ...] | None = None
  use_temporal_similarity: bool = True
  neighbour_num: int = 4
  temporal_connection_len: int = 1
  dim_out: int | None = None
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C) -> (B, T, J, dim_out or C)."""
    if self.mode not in ('spatial', 'temporal'):
      raise ValueError(f"GCN: mode must be 'spatial' or 'temporal', got {self.mode!r}")
    node_axis = 2 if self.mode == 'spatial' else 1
    if x.shape[node_axis] != self.num_nodes:
      raise ValueError(
        f'GCN({self.mode}): expected {self.num_nodes} nodes on axis {node_axis}, got {x.shape}'
      )
    c = x.shape[-1]
    dim_out = self.dim_out or c
    v = Linear(dim_out, kernel_init=_gcn_init, name='V')(x)
    u = Linear(dim_out, kernel_init=_gcn_init, name='U')(x)

    if self.mode == 'spatial':
      if self.neighbours is None:
        raise ValueError('GCN(spatial) needs `neighbours`')
      adj = normalize_digraph(jnp.asarray(adjacency_from_neighbours(self.neighbours)))
      agg = adj @ v  # (J, J) @ (B, T, J, C)
    elif self.use_temporal_similarity:
      zt = jnp.swapaxes(x, 1, 2)  # (B, J, T, C): one graph per joint track
      adj = normalize_digraph(topk_similarity_adjacency(zt, self.neighbour_num))
      agg = jnp.swapaxes(adj @ jnp.swapaxes(v, 1, 2), 1, 2)
    else:
      adj = normalize_digraph(
        jnp.asarray(chain_adjacency(self.num_nodes, self.temporal_connection_len))
      )
      agg = jnp.einsum('ts,bsjc->btjc', adj, v)

    y = TorchBatchNorm(axis=node_axis, momentum=self.bn_momentum, name='batch_norm')(
      agg + u, train=train
    )
    return nn.relu(x + y if dim_out == c else y)


def _gcn_init(key, shape, dtype=jnp.float32):
  # torch: weight.normal_(0, sqrt(2 / dim_in)); Dense kernel is (in, out).
  return jax.random.normal(key, shape, dtype) * jnp.sqrt(2.0 / shape[0]).astype(dtype)
