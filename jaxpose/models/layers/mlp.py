"""Transformer feed-forward block: Linear -> activation -> dropout -> Linear -> dropout."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import linen as nn

from jaxpose.models.layers.linear import Linear


def gelu(x: jax.Array) -> jax.Array:
  """Exact (erf) GELU, what torch `nn.GELU()` computes; flax's default is the tanh approximation."""
  return nn.gelu(x, approximate=False)


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
