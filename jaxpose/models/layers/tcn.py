"""Multi-scale temporal convolution (MS-TCN of MS-G3D/CTR-GCN, as used by MotionAGFormer).

Works channels-last on (B, T, J, C): the torch code permutes to (B, C, T, J) and convolves with
(k, 1) kernels, which is the same as a flax 2-D conv over (T, J) with kernel (k, 1). Sub-module
names follow the torch `nn.Sequential` indices glued flax-style (`branches.0.3.conv` ->
`branches_0_3/conv`), so `jaxpose.convert.torch_utils.convert_state_dict` maps checkpoints as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import linen as nn

from jaxpose.models.layers.linear import torch_bias_init, torch_kernel_init
from jaxpose.models.layers.norms import TorchBatchNorm


def _conv(in_features: int, features: int, kernel_t: int, dilation: int, name: str) -> nn.Conv:
  """(kernel_t, 1) conv over (T, J) with torch's 'same' padding and default initialisation."""
  pad = (kernel_t + (kernel_t - 1) * (dilation - 1) - 1) // 2
  return nn.Conv(
    features,
    (kernel_t, 1),
    padding=((pad, pad), (0, 0)),
    kernel_dilation=(dilation, 1),
    kernel_init=torch_kernel_init,
    bias_init=torch_bias_init(in_features * kernel_t),
    name=name,
  )


class TemporalConv(nn.Module):
  """Conv (k, 1) with dilation along T, then BatchNorm; torch names `conv`, `bn`."""

  features: int
  kernel_size: int
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C) -> (B, T, J, features)."""
    x = _conv(x.shape[-1], self.features, self.kernel_size, self.dilation, 'conv')(x)
    return TorchBatchNorm(name='bn')(x, train=train)


class MultiScaleTCN(nn.Module):
  """Four-or-more branch temporal conv with a residual; output width = input width.

  Branches (each C / (len(dilations) + 2) channels): for every dilation, 1x1 conv + BN + ReLU +
  TemporalConv(kernel_size, dilation); a 1x1 conv + BN + ReLU + max-pool (3, 1) + BN branch; and
  a 1x1 conv + BN branch. Outputs are concatenated and the input is added (stride 1 only).

  Attributes:
    kernel_size: temporal kernel of the dilated branches.
    dilations: one dilated branch per entry.
  """

  kernel_size: int = 5
  dilations: Sequence[int] = (1, 2)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C) -> (B, T, J, C)."""
    n_branches = len(self.dilations) + 2
    if x.shape[-1] % n_branches:
      raise ValueError(f'MultiScaleTCN: channels {x.shape[-1]} not divisible by {n_branches}')
    bc = x.shape[-1] // n_branches
    outs = []
    for i, d in enumerate(self.dilations):
      y = _conv(x.shape[-1], bc, 1, 1, f'branches_{i}_0')(x)
      y = nn.relu(TorchBatchNorm(name=f'branches_{i}_1')(y, train=train))
      outs.append(TemporalConv(bc, self.kernel_size, d, name=f'branches_{i}_3')(y, train=train))
    i = len(self.dilations)
    y = _conv(x.shape[-1], bc, 1, 1, f'branches_{i}_0')(x)
    y = nn.relu(TorchBatchNorm(name=f'branches_{i}_1')(y, train=train))
    y = nn.max_pool(y, (3, 1), strides=(1, 1), padding=((1, 1), (0, 0)))
    outs.append(TorchBatchNorm(name=f'branches_{i}_4')(y, train=train))
    y = _conv(x.shape[-1], bc, 1, 1, f'branches_{i + 1}_0')(x)
    outs.append(TorchBatchNorm(name=f'branches_{i + 1}_1')(y, train=train))
    return jax.numpy.concatenate(outs, axis=-1) + x
