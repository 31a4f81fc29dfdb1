"""Normalisation layers with PyTorch defaults and semantics.

`LayerNorm` is flax's with torch's eps (1e-5) and two-pass variance. `TorchBatchNorm` reproduces
`torch.nn.BatchNorm{1,2,3}d` exactly, including the running-statistics update (torch momentum
convention and the *unbiased* batch variance in `running_var`), which flax's `nn.BatchNorm` does not:
flax uses momentum = 1 - torch momentum and the biased variance. Variables are named like flax's
(`params/{scale,bias}`, `batch_stats/{mean,var}`) so converted checkpoints look the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn


class LayerNorm(nn.LayerNorm):
  """`nn.LayerNorm` with torch defaults: eps 1e-5 and the two-pass (x - mean)^2 variance."""

  epsilon: float = 1e-5
  use_fast_variance: bool = False


class TorchBatchNorm(nn.Module):
  """Batch normalisation with torch semantics over arbitrary feature axes.

  Attributes:
    axis: the feature (channel) axis or axes; statistics are pooled over all the others. For a
      torch `BatchNorm1d(C)` applied to (N, C, L) use axis=1; a channels-last conv uses axis=-1.
    momentum: **torch convention**: running = (1 - momentum) * running + momentum * batch
      (flax's `nn.BatchNorm(momentum=1 - momentum)` is the same for the mean).
    epsilon: added to the variance.
    use_scale: learn a per-channel scale (torch `affine`).
    use_bias: learn a per-channel shift (torch `affine`).
  """

  axis: int | Sequence[int] = -1
  momentum: float = 0.1
  epsilon: float = 1e-5
  use_scale: bool = True
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: any shape -> same shape. train=True uses batch statistics and updates `batch_stats`."""
    axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
    axes = tuple(sorted(a % x.ndim for a in axes))
    reduce_axes = tuple(a for a in range(x.ndim) if a not in axes)
    feat_shape = tuple(x.shape[a] for a in axes)
    bshape = tuple(x.shape[a] if a in axes else 1 for a in range(x.ndim))

    ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros(feat_shape, jnp.float32))
    ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones(feat_shape, jnp.float32))
    if train:
      mean = jnp.mean(x, axis=reduce_axes, keepdims=True)
      var = jnp.mean(jnp.square(x - mean), axis=reduce_axes, keepdims=True)
      if not self.is_initializing():
        n = 1
        for a in reduce_axes:
          n *= x.shape[a]
        # torch stores the unbiased variance in running_var while normalising with the biased one.
        unbiased = var * (n / max(n - 1, 1))
        m = self.momentum
        ra_mean.value = (1 - m) * ra_mean.value + m * mean.reshape(feat_shape)
        ra_var.value = (1 - m) * ra_var.value + m * unbiased.reshape(feat_shape)
    else:
      mean = ra_mean.value.reshape(bshape)
      var = ra_var.value.reshape(bshape)

    y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    if self.use_scale:
      y = y * self.param('scale', nn.initializers.ones, feat_shape).reshape(bshape)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, feat_shape).reshape(bshape)
    return y.astype(x.dtype)
