"""Shared building blocks for the lifters (torch-compatible names and numerics).

- `Attention`: multi-head self-attention over any token axis (`qkv`, `proj`).
- `Mlp`, `gelu`, `ACTIVATIONS`: feed-forward block (`fc1`, `fc2`), exact-erf GELU.
- `Linear` (+ `torch_kernel_init`, `torch_bias_init`, `constant_init`): nn.Dense names and
  torch.nn.Linear's default initialisation.
- `DropPath`, `LayerScale`: residual-branch regularisers.
- `LayerNorm` (torch eps 1e-5), `TorchBatchNorm` (torch running-stat semantics).
- `GCN`, `adjacency_from_neighbours`, `chain_adjacency`, `normalize_digraph`,
  `topk_similarity_adjacency`: graph blocks.
- `MultiScaleTCN`, `TemporalConv`: multi-scale temporal convolutions on (B, T, J, C).
- `TorchGRU`: torch.nn.GRU numerics (gate order r, z, n; two biases per gate), batch-first.

Randomness: every layer here draws from the 'dropout' RNG stream (DropPath's stream is a field).
"""

from jaxpose.models.layers.attention import Attention
from jaxpose.models.layers.drop_path import DropPath, LayerScale
from jaxpose.models.layers.gcn import (
  GCN,
  adjacency_from_neighbours,
  chain_adjacency,
  kth_largest,
  normalize_digraph,
  topk_similarity_adjacency,
)
from jaxpose.models.layers.linear import (
  Linear,
  constant_init,
  dense,
  torch_bias_init,
  torch_kernel_init,
)
from jaxpose.models.layers.mlp import ACTIVATIONS, Mlp, gelu
from jaxpose.models.layers.norms import LayerNorm, TorchBatchNorm
from jaxpose.models.layers.rnn import TorchGRU
from jaxpose.models.layers.tcn import MultiScaleTCN, TemporalConv

__all__ = [
  'ACTIVATIONS',
  'GCN',
  'Attention',
  'DropPath',
  'LayerNorm',
  'LayerScale',
  'Linear',
  'Mlp',
  'MultiScaleTCN',
  'TemporalConv',
  'TorchBatchNorm',
  'TorchGRU',
  'adjacency_from_neighbours',
  'chain_adjacency',
  'dense',
  'kth_largest',
  'gelu',
  'constant_init',
  'torch_bias_init',
  'torch_kernel_init',
  'normalize_digraph',
  'topk_similarity_adjacency',
]
