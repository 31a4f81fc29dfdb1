"""Transformer feed-forward block: Linear -> activation -> dropout -> Linear -> dropout."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax.scipy.special import erf

from jaxpose.models.layers.linear import Linear

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@jax.custom_jvp
def gelu(x: jax.Array) -> jax.Array:
  """Exact GELU, x * Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2: torch `nn.GELU()`'s formula.

  flax's default is the tanh approximation, and `nn.gelu(approximate=False)` goes through `erfc`,
  which XLA's CPU backend lowers to an exp plus a select-heavy rational approximation: it made the
  activation and its derivative about 10x slower than this form inside the lifters' training step
  (profile in experiments/torch_vs_jax). The derivative Phi(x) + x phi(x) is written out so the
  backward pass reuses the forward's erf. Agrees with `nn.gelu(approximate=False)` to 1e-6.
  """
  return x * (0.5 + 0.5 * erf(x * _SQRT_HALF))


@gelu.defjvp
def _gelu_jvp(primals, tangents):
  (x,), (tx,) = primals, tangents
  cdf = 0.5 + 0.5 * erf(x * _SQRT_HALF)
  pdf = jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI
  return x * cdf, tx * (cdf + x * pdf)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  'gelu': gelu,
  'gelu_tanh': lambda x: nn.gelu(x, approximate=True),
  'relu': nn.relu,
  'silu': nn.silu,
}


class Mlp(nn.Module):
  """timm/MotionBERT-style MLP with torch parameter names `fc1`, `fc2`.

  Attributes:
    hidden_dim: width of the hidden layer (usually mlp_ratio * D).
    out_dim: output width; None keeps the input width D.
    drop: dropout rate after the activation and after `fc2` (RNG stream 'dropout').
    activation: elementwise non-linearity; exact GELU by default.
  """

  hidden_dim: int
  out_dim: int | None = None
  drop: float = 0.0
  activation: Callable[[jax.Array], jax.Array] = gelu

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (..., D) -> (..., out_dim or D)."""
    out_dim = self.out_dim or x.shape[-1]
    x = Linear(self.hidden_dim, name='fc1')(x)
    x = self.activation(x)
    x = nn.Dropout(self.drop)(x, deterministic=not train)
    x = Linear(out_dim, name='fc2')(x)
    return nn.Dropout(self.drop)(x, deterministic=not train)
