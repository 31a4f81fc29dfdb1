"""Multi-head self-attention over any token axis of a (..., D) tensor.

Pose lifters attend over joints within a frame (spatial), over frames of a joint (temporal), or
over a flattened token axis; this layer takes the axis as a field so one module serves all of
them. Parameter names (`qkv`, `proj`) and the qkv channel layout [3][H][d] follow the
timm/DSTFormer convention, so torch checkpoints convert with a plain transpose.

Internally the tensors are laid out like torch, (..., H, L, d), and contracted with batched
matmuls; on XLA:CPU this is faster than an einsum over (..., L, H, d).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.matmul import matmul, transposed


def _split_heads(qkv: jax.Array, token_axis: int, num_heads: int) -> jax.Array:
  """(*lead, 3D) -> (3, *others, H, L, d): `token_axis` of lead becomes L."""
  lead = qkv.shape[:-1]
  d = qkv.shape[-1] // (3 * num_heads)
  qkv = qkv.reshape(*lead, 3, num_heads, d)
  n = len(lead)
  others = [a for a in range(n) if a != token_axis]
  return qkv.transpose(n, *others, n + 1, token_axis, n + 2)


def _merge_heads(out: jax.Array, token_axis: int) -> jax.Array:
  """(*others, H, L, d) -> (*lead, H * d) with L put back at `token_axis` (head-major channels)."""
  out = jnp.swapaxes(out, -3, -2)  # (*others, L, H, d)
  out = out.reshape(*out.shape[:-2], -1)  # (*others, L, D)
  return jnp.moveaxis(out, -2, token_axis)


def _attend_fwd_impl(q, k, v, scale, mult):
  # Scale after the product, as torch does, so logits round the same way.
  p = jax.nn.softmax(matmul(q, jnp.swapaxes(k, -1, -2)) * scale, axis=-1)
  pd = p if mult is None else p * mult
  return matmul(pd, v), p


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def attend(q: jax.Array, k: jax.Array, v: jax.Array, scale: float, mult: jax.Array | None = None):
  """softmax(q k^T * scale) [* mult] @ v with a hand-written VJP.

  q, k, v: (..., H, L, d); mult: None, or the attention-dropout multiplier (..., H, L, L) (the kept
  entries' 1 / keep_prob, zeros elsewhere). Returns (..., H, L, d). Values and gradients are those
  of the plain expression; the explicit backward (dv = P^T g, dP = g v^T, dS = P (dP - rowsum(dP P)))
  keeps XLA:CPU from fusing the softmax backward into the matmuls' operands in several layouts,
  which cost about a third of the temporal attention's backward (experiments/torch_vs_jax).
  """
  return _attend_fwd_impl(q, k, v, scale, mult)[0]


def _attend_fwd(q, k, v, scale, mult):
  out, p = _attend_fwd_impl(q, k, v, scale, mult)
  return out, (q, k, v, p, mult)


def _attend_bwd(scale, res, g):
  q, k, v, p, mult = res
  pd = p if mult is None else p * mult
  dv = matmul(transposed(pd), g)
  dp = matmul(g, jnp.swapaxes(v, -1, -2))
  if mult is not None:
    dp = dp * mult
  ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True)) * scale
  dq = matmul(ds, k)
  dk = matmul(transposed(ds), q)
  return dq, dk, dv, None if mult is None else jnp.zeros_like(mult)


attend.defvjp(_attend_fwd, _attend_bwd)


class Attention(nn.Module):
  """Multi-head scaled dot-product self-attention along `token_axis`.

  Attributes:
    num_heads: number of heads H; the input width D must be divisible by H (d = D // H).
    token_axis: the axis of the input x that holds the tokens (numpy convention, any axis but
      the last, which is the channel axis D); e.g. for x (B, T, J, D): 2 or -2 attends over
      joints, 1 or -3 over frames. The default -2 is the usual (B, L, D) layout.
    qkv_bias: whether the fused qkv projection has a bias.
    qk_scale: logit scale; None means d ** -0.5 (torch's `qk_scale or head_dim ** -0.5`).
    attn_drop: dropout on the attention probabilities (RNG stream 'dropout').
    proj_drop: dropout after the output projection (RNG stream 'dropout').
    out_dim: output width; None keeps D.
  """

  num_heads: int = 8
  token_axis: int = -2
  qkv_bias: bool = False
  qk_scale: float | None = None
  attn_drop: float = 0.0
  proj_drop: float = 0.0
  out_dim: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (..., L, ..., D) with L at `token_axis` -> same leading shape, last axis out_dim or D."""
    dim = x.shape[-1]
    if dim % self.num_heads:
      raise ValueError(f'Attention: width {dim} is not divisible by num_heads={self.num_heads}')
    if not -x.ndim <= self.token_axis < x.ndim or self.token_axis % x.ndim == x.ndim - 1:
      raise ValueError(
        f'Attention: token_axis={self.token_axis} must name a non-channel axis of input {x.shape}'
      )
    axis = self.token_axis % x.ndim
    scale = self.qk_scale or (dim // self.num_heads) ** -0.5

    qkv = Linear(3 * dim, use_bias=self.qkv_bias, name='qkv')(x)
    q, k, v = _split_heads(qkv, axis, self.num_heads)  # each (*others, H, L, d)
    mult = None  # attention dropout, drawn exactly as nn.Dropout draws it
    if train and self.attn_drop > 0.0:
      keep_prob = 1.0 - self.attn_drop
      shape = (*q.shape[:-1], k.shape[-2])  # (*others, H, L, L)
      keep = jax.random.bernoulli(self.make_rng('dropout'), keep_prob, shape)
      inv = 1.0 / keep_prob if keep_prob > 0.0 else 0.0
      mult = jnp.where(keep, inv, 0.0).astype(q.dtype)
    out = _merge_heads(attend(q, k, v, scale, mult), axis)

    out = Linear(self.out_dim or dim, name='proj')(out)
    return nn.Dropout(self.proj_drop)(out, deterministic=not train)
