"""The LayerNorm of the annotated-transformer / StridedTransformer / P-STMO / MPM code family.

It differs from `torch.nn.LayerNorm` (and `flax.linen.LayerNorm`) twice: the spread is the
*unbiased* standard deviation (divisor N - 1), and eps is added to the standard deviation, outside
the square root:

  y = a_2 * (x - mean) / (std_unbiased(x) + eps) + b_2,   eps = 1e-6.

Parameters keep the official names `a_2` (scale, ones) and `b_2` (shift, zeros), so converted
checkpoints read the same way as the torch state dicts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


class PstmoLayerNorm(nn.Module):
  """Normalises the last axis with the unbiased std and eps added to the std.

  Attributes:
    epsilon: added to the standard deviation (not to the variance).
  """

  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (..., D) -> (..., D)."""
    d = x.shape[-1]
    if d < 2:
      raise ValueError(f'PstmoLayerNorm needs at least 2 features for the unbiased std, got {d}')
    a_2 = self.param('a_2', nn.initializers.ones, (d,))
    b_2 = self.param('b_2', nn.initializers.zeros, (d,))
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    std = jnp.sqrt(jnp.sum(jnp.square(centred), axis=-1, keepdims=True) / (d - 1))
    return a_2 * centred / (std + self.epsilon) + b_2
