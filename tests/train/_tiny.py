"""A tiny lifter for engine tests: per-joint MLP with dropout, (B, T, J, C) -> (B, T, J, 3)."""

import flax.linen as nn


class TinyLifter(nn.Module):
  @nn.compact
  def __call__(self, x, *, train: bool):
    h = nn.gelu(nn.Dense(16)(x), approximate=False)
    h = nn.Dropout(0.1, deterministic=not train)(h)
    return nn.Dense(3)(h)
