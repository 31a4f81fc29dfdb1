"""Stochastic depth (DropPath) and LayerScale, the two residual-branch regularisers of MetaFormers.

DropPath follows timm's `drop_path(scale_by_keep=True)`: a whole residual branch is dropped per
sample and the survivors are rescaled by 1 / keep_prob. Randomness comes from a named RNG stream,
`'dropout'` by default, so one `rngs={'dropout': key}` drives every dropout and DropPath of a model;
set `rng_collection='drop_path'` to give stochastic depth its own stream.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxpose.models.layers.linear import constant_init


class DropPath(nn.Module):
  """Per-sample stochastic depth on a residual branch.

  Attributes:
    rate: probability of dropping the branch of a sample (timm `drop_prob`).
    rng_collection: the RNG stream the Bernoulli mask is drawn from.
  """

  rate: float = 0.0
  rng_collection: str = 'dropout'

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, ...) -> (B, ...); identity when not training or rate == 0."""
    if not train or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    if keep <= 0.0:
      return jnp.zeros_like(x)
    rng = self.make_rng(self.rng_collection)
    mask = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class LayerScale(nn.Module):
  """Learned per-channel scale of a residual branch (CaiT), broadcast over all leading axes.

  The parameter is called `gamma` with shape (D,). Ports whose official checkpoints hold the
  vector directly on the block (e.g. MotionAGFormer's `layer_scale_1`) may instead declare it with
  `self.param(name, constant_init(value), (D,))` under the official name.

  Attributes:
    init_value: initial value of every channel (1e-5 in MetaFormer/MotionAGFormer).
  """

  init_value: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (..., D) -> (..., D)."""
    gamma = self.param('gamma', constant_init(self.init_value), (x.shape[-1],))
    return x * gamma
