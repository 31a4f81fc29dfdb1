"""`TorchGRU`: a multi-layer, optionally bidirectional GRU with torch.nn.GRU's numerics and names.

Flax's `GRUCell` differs from torch in where the biases sit: torch keeps two bias vectors per gate
and puts the hidden-side bias of the candidate gate *inside* the reset product,

  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
  h' = (1 - z) * n + z * h,

with the gates stacked (r, z, n) along the rows of `weight_ih_l{k}` (3H, D_in) and `weight_hh_l{k}`
(3H, H). This layer reproduces that exactly and stores the parameters under torch's own names and
layouts (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), so a torch state dict converts with no renaming
or transposing (`jaxpose.convert.torch_utils.convert_state_dict` passes these leaves through).

Layer k > 0 reads the concatenated (forward, backward) outputs of layer k - 1; torch's inter-layer
dropout (not after the last layer) is the `dropout` field, drawn from the 'dropout' RNG stream.
Initial hidden states are zero. Initialisation is torch's: every weight and bias U(-1/sqrt(H),
1/sqrt(H)).

Unlike torch's default (seq-first), the input and output here are batch-first: x (B, T, D_in) ->
(B, T, H * num_directions).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


def _uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def _gru_direction(
  x: jax.Array,
  w_ih: jax.Array,
  w_hh: jax.Array,
  b_ih: jax.Array,
  b_hh: jax.Array,
  reverse: bool,
) -> jax.Array:
  """One direction of one layer: x (B, T, D_in) -> hidden states (B, T, H)."""
  hidden = w_hh.shape[1]
  gi = x @ w_ih.T + b_ih  # (B, T, 3H): input projections of every step at once
  h0 = jnp.zeros((x.shape[0], hidden), x.dtype)

  def step(h, gi_t):
    gh = h @ w_hh.T + b_hh
    i_r, i_z, i_n = jnp.split(gi_t, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(i_r + h_r)
    z = jax.nn.sigmoid(i_z + h_z)
    n = jnp.tanh(i_n + r * h_n)
    h = (1.0 - z) * n + z * h
    return h, h

  _, hs = jax.lax.scan(step, h0, jnp.swapaxes(gi, 0, 1), reverse=reverse)
  return jnp.swapaxes(hs, 0, 1)


class TorchGRU(nn.Module):
  """torch.nn.GRU(input_size, hidden_size, num_layers, bidirectional, dropout), batch-first.

  Attributes:
    hidden_size: H.
    num_layers: stacked layers.
    bidirectional: run a reverse direction too and concatenate (forward, backward) per step.
    dropout: dropout on the outputs of every layer but the last (RNG stream 'dropout').
  """

  hidden_size: int
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, D_in) -> (B, T, H * (2 if bidirectional else 1)), every step's top-layer state."""
    h = self.hidden_size
    init = _uniform(1.0 / h**0.5)
    suffixes = ('', '_reverse') if self.bidirectional else ('',)
    for layer in range(self.num_layers):
      d_in = x.shape[-1]
      outs = []
      for suffix in suffixes:
        tag = f'l{layer}{suffix}'
        w_ih = self.param(f'weight_ih_{tag}', init, (3 * h, d_in))
        w_hh = self.param(f'weight_hh_{tag}', init, (3 * h, h))
        b_ih = self.param(f'bias_ih_{tag}', init, (3 * h,))
        b_hh = self.param(f'bias_hh_{tag}', init, (3 * h,))
        outs.append(_gru_direction(x, w_ih, w_hh, b_ih, b_hh, reverse=bool(suffix)))
      x = jnp.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]
      if layer < self.num_layers - 1:
        x = nn.Dropout(self.dropout)(x, deterministic=not train)
    return x
