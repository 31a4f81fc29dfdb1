"""ConvFormer: spatial and temporal convolutional transformers with dynamic multi-headed
convolutional self-attention and a temporal joints profile. RECONSTRUCTED FROM THE ABSTRACT.

Paper: Diaz-Arias, Shin, "Parameter Reduction in Transformer Models for 3D Human Pose Estimation
by Leveraging Dynamic Multi-Headed Convolutional Attention", arXiv:2304.02147 (The Visual
Computer 40(4), 2024). There is no official code, no checkpoint and no parity target; this module
is a re-implementation of what the abstract states (research/convformer.md §2), with every open
choice made here and listed below. Label results "ConvFormer (re-implementation from paper,
unverified)".

What the abstract fixes:
  * a spatial ConvFormer (relations between the joints of a frame) and a temporal ConvFormer
    (relations over the whole sequence), alternated;
  * attention in which convolutions produce the attention inputs ("dynamic multi-headed
    convolutional self-attention"), to cut parameters;
  * a "temporal joints profile" that fuses the complete temporal information of a local
    neighbourhood of joints at once.

Open choices made here (none verified against the paper body):
  1. Layout: MixSTE-style alternation on a (B, T, J, D) tensor: per-joint Linear(C_in -> D) +
     spatial position embedding (J, D); `depth` x [spatial block over joints, temporal block over
     frames] with a temporal position embedding (T, D) added before the first temporal block;
     LayerNorm + Linear(D -> 3) head; seq2seq (every frame predicted). Pre-norm blocks, torch
     LayerNorm (eps 1e-5), exact GELU MLP (ratio 2, as MixSTE), DropPath linear in depth.
  2. Dynamic multi-headed convolutional attention (`DynamicConvAttention`): Q, K and V come from
     a *grouped* 1D convolution over the token neighbourhood (kernel `kernel_size`, zero 'same'
     padding along the token axis, one group per head, so each head's d channels see only their
     own d input channels: K*D*3d weights instead of 3*D^2). "Dynamic": every tap of that
     convolution is re-weighted per token and per head by input-conditioned gates (softmax over
     the taps of Linear(D -> 3*H*K)(x)), in the spirit of dynamic convolution; separate gates for
     Q, K and V. Then ordinary scaled dot-product attention per head (scale d^-0.5) along the
     token axis, and a full Linear(D, D) output projection (the only channel mixing across heads
     inside the attention). Spatial blocks convolve over neighbouring joint indices, temporal
     blocks over neighbouring frames.
  3. Temporal joints profile (`TemporalJointsProfile`), a third residual sub-layer of every
     temporal block, between attention and MLP: for joint j, y[t, j, c] = b[t] + sum over the
     `joint_kernel` joints n around j (index order, zero padded) and over *all* frames s of
     W[n, s, t] * x[s, n, c]. One (joint_kernel, T, T) weight shared by every channel and joint:
     a dense mix of the full temporal profile of a joint neighbourhood in one step.
  4. Joint neighbourhoods follow the H36M index order (a plain convolution), not the skeleton
     graph. Sizes are this module's own: `VARIANTS` (D = 256, depth 8, 8 heads) is about a
     quarter of MixSTE's 33.78M parameters at T = 243; '243_d512' keeps MixSTE's width for the
     equal-width comparison (`MEASURED`).
  5. Initialisation: torch defaults for Linear and the grouped convolution, N(0, 0.02) position
     embeddings. No training recipe is known; use MixSTE's (configs).

There is no `from_torch`: no official checkpoint exists. `MEASURED` (not `PAPER`) holds this
port's parameter and MAC counts.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.models.layers.drop_path import DropPath
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.mlp import Mlp
from jaxpose.models.layers.norms import LayerNorm

RECONSTRUCTED_FROM_PAPER = True

VARIANTS = {
  '243': {'num_frames': 243},
  '81': {'num_frames': 81},
  '27': {'num_frames': 27},
  # MixSTE's width (D = 512) at equal depth, for the parameter comparison.
  '243_d512': {'num_frames': 243, 'dim': 512},
}

TEST_OVERRIDES = {'num_frames': 9, 'dim': 32, 'depth': 2}

# This port's own sizes (jaxpose.models.param_count, jaxpose.bench.flops at B = 1, one clip). They
# are deliberately not called PAPER: the paper's tables are not available (research/convformer.md
# §3), so the zoo shows no paper column. MixSTE at T = 243: 33,783,811 params, 138.62G Linear
# MACs, 147.42G with attention (same walker).
MEASURED: dict[str, dict[str, Any]] = {
  '243': {
    'params': 8_255_475,
    'macs_linear': 33_922_582_272,
    'macs_all': 38_474_217_216,
    'frames': 243,
  },
  '81': {
    'params': 6_952_995,
    'macs_linear': 9_936_960_768,
    'macs_all': 10_540_461_312,
    'frames': 81,
  },
  '27': {
    'params': 6_798_771,
    'macs_linear': 3_160_035_072,
    'macs_all': 3_259_678_464,
    'frames': 27,
  },
  '243_d512': {
    'params': 27_935_731,
    'macs_linear': 120_908_090_880,
    'macs_all': 130_011_360_768,
    'frames': 243,
  },
}


def _uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def neighbours(x: jax.Array, size: int, axis: int) -> jax.Array:
  """Zero-padded 'same' windows along `axis`: (..., L, ..., C) -> (..., L, ..., size, C).

  Window element k of position l is x[l + k - size // 2] (zero outside the sequence).
  """
  axis = axis % x.ndim
  n = x.shape[axis]
  lo = size // 2
  pad = [(0, 0)] * x.ndim
  pad[axis] = (lo, size - 1 - lo)
  xp = jnp.pad(x, pad)
  return jnp.stack([jax.lax.slice_in_dim(xp, k, k + n, axis=axis) for k in range(size)], axis=-2)


class DynamicConvAttention(nn.Module):
  """Self-attention whose Q/K/V are dynamic grouped convolutions over the token neighbourhood.

  Attributes:
    num_heads: H; D must be divisible by H (d = D // H); one convolution group per head.
    kernel_size: K, taps of the Q/K/V convolution along the token axis.
    token_axis: axis of the tokens in x (any but the last).
    attn_drop: dropout on the attention probabilities (rng 'dropout').
    proj_drop: dropout after the output projection (rng 'dropout').
  """

  num_heads: int = 8
  kernel_size: int = 3
  token_axis: int = -2
  attn_drop: float = 0.0
  proj_drop: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (..., L, ..., D) with L at `token_axis` -> same shape."""
    dim, h, k = x.shape[-1], self.num_heads, self.kernel_size
    if dim % h:
      raise ValueError(f'DynamicConvAttention: width {dim} not divisible by num_heads={h}')
    axis = self.token_axis % x.ndim
    if axis == x.ndim - 1:
      raise ValueError('DynamicConvAttention: token_axis must not be the channel axis')
    d = dim // h
    bound = 1.0 / np.sqrt(k * d)  # torch Conv1d default for a grouped conv: fan_in = K * D / H
    kernel = self.param('qkv_kernel', _uniform(bound), (k, h, d, 3 * d))
    bias = self.param('qkv_bias', _uniform(bound), (3, h, d))
    patches = neighbours(x, k, axis).reshape(*x.shape[:-1], k, h, d)
    taps = jnp.einsum('...khd,khde->...khe', patches, kernel)  # grouped conv, tap by tap
    taps = taps.reshape(*x.shape[:-1], k, h, 3, d)
    gates = Linear(3 * h * k, name='gate')(x).reshape(*x.shape[:-1], 3, h, k)
    gates = jax.nn.softmax(gates, axis=-1)  # input-conditioned tap weights per token and head
    qkv = jnp.einsum('...khsd,...shk->...shd', taps, gates) + bias  # (..., 3, H, d)
    # (..., L, ..., 3, H, d) -> (3, others..., H, L, d)
    qkv = jnp.moveaxis(qkv, axis, -2)  # (others, 3, H, L, d)
    qkv = jnp.moveaxis(qkv, -4, 0)
    q, kk, v = qkv[0], qkv[1], qkv[2]
    logits = (q @ jnp.swapaxes(kk, -1, -2)) * d**-0.5
    attn = nn.Dropout(self.attn_drop)(jax.nn.softmax(logits, axis=-1), deterministic=not train)
    out = jnp.swapaxes(attn @ v, -3, -2)  # (others, L, H, d)
    out = jnp.moveaxis(out.reshape(*out.shape[:-2], dim), -2, axis)
    out = Linear(dim, name='proj')(out)
    return nn.Dropout(self.proj_drop)(out, deterministic=not train)


class TemporalJointsProfile(nn.Module):
  """Mixes the full temporal profile of a neighbourhood of joints: (B, T, J, D) -> same.

  y[b, t, j, c] = bias[t] + sum_{n, s} W[n, s, t] x[b, s, j + n - K // 2, c].

  Attributes:
    joint_kernel: K, joints in the neighbourhood (index order, zero padded).
  """

  joint_kernel: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, T, J, D) -> (B, T, J, D)."""
    t = x.shape[1]
    bound = 1.0 / np.sqrt(self.joint_kernel * t)
    w = self.param('kernel', _uniform(bound), (self.joint_kernel, t, t))
    b = self.param('bias', _uniform(bound), (t,))
    nb = neighbours(x, self.joint_kernel, axis=2)  # (B, T, J, K, D)
    return jnp.einsum('bsjkc,kst->btjc', nb, w) + b[:, None, None]


class ConvFormerBlock(nn.Module):
  """Pre-norm block: x + DP(attn(LN x)) [+ DP(profile(LN x))] + DP(MLP(LN x)).

  Attributes:
    token_axis: -2 for the spatial block (joints), -3 for the temporal block (frames).
    profile: add the temporal joints profile sub-layer (temporal blocks).
    num_heads, kernel_size, joint_kernel, mlp_ratio, drop, attn_drop, drop_path: see `Model`.
  """

  token_axis: int
  profile: bool = False
  num_heads: int = 8
  kernel_size: int = 3
  joint_kernel: int = 3
  mlp_ratio: float = 2.0
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, D) -> (B, T, J, D)."""
    dp = lambda name: DropPath(self.drop_path, name=name)
    y = DynamicConvAttention(
      self.num_heads, self.kernel_size, self.token_axis, self.attn_drop, self.drop, name='attn'
    )(LayerNorm(name='norm1')(x), train=train)
    x = x + dp('drop_path1')(y, train=train)
    if self.profile:
      y = TemporalJointsProfile(self.joint_kernel, name='profile')(LayerNorm(name='norm_p')(x))
      y = nn.Dropout(self.drop)(y, deterministic=not train)
      x = x + dp('drop_path_p')(y, train=train)
    y = Mlp(int(x.shape[-1] * self.mlp_ratio), drop=self.drop, name='mlp')(
      LayerNorm(name='norm2')(x), train=train
    )
    return x + dp('drop_path2')(y, train=train)


class Model(nn.Module):
  """ConvFormer lifter (reconstruction): (B, T, J, C_in) -> (B, T, J, 3).

  Attributes:
    num_frames: T (fixed by the temporal position embedding and the joints profile).
    num_joints: J.
    in_channels: C_in (2, or 3 with confidence).
    dim: width D.
    depth: spatial/temporal block pairs.
    num_heads: H.
    kernel_size: taps of the Q/K/V convolutions along the token axis.
    joint_kernel: joints in a temporal-joints-profile neighbourhood.
    mlp_ratio: MLP hidden width / D.
    drop_rate: dropout after the embeddings, attention projections, profiles and MLPs.
    attn_drop_rate: dropout on the attention probabilities.
    drop_path_rate: stochastic depth of the last block pair (linear from 0).
  """

  num_frames: int = 243
  num_joints: int = 17
  in_channels: int = 2
  dim: int = 256
  depth: int = 8
  num_heads: int = 8
  kernel_size: int = 3
  joint_kernel: int = 3
  mlp_ratio: float = 2.0
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Lifts a clip of 2D poses to 3D, frame by frame.

    Args:
      x: kp2d_norm (B, T, J, C_in), T = num_frames.
      train: dropout and stochastic depth (rng 'dropout').

    Returns:
      pose3d (B, T, J, 3), root-relative in the unit of the targets.
    """
    b, t, j, c = x.shape
    if (t, j, c) != (self.num_frames, self.num_joints, self.in_channels):
      raise ValueError(
        f'convformer.Model expects (B, {self.num_frames}, {self.num_joints}, '
        f'{self.in_channels}), got {x.shape}'
      )
    pos_init = nn.initializers.normal(0.02)
    s_pos = self.param('spatial_pos_embed', pos_init, (j, self.dim))
    t_pos = self.param('temporal_pos_embed', pos_init, (t, 1, self.dim))
    h = Linear(self.dim, name='joint_embed')(x) + s_pos
    h = nn.Dropout(self.drop_rate)(h, deterministic=not train)
    rates = np.linspace(0.0, self.drop_path_rate, self.depth) if self.depth else []
    common = dict(
      num_heads=self.num_heads,
      kernel_size=self.kernel_size,
      joint_kernel=self.joint_kernel,
      mlp_ratio=self.mlp_ratio,
      drop=self.drop_rate,
      attn_drop=self.attn_drop_rate,
    )
    for i in range(self.depth):
      dpr = float(rates[i])
      h = ConvFormerBlock(-2, False, drop_path=dpr, name=f'spatial_{i}', **common)(h, train=train)
      if i == 0:
        h = nn.Dropout(self.drop_rate)(h + t_pos, deterministic=not train)
      h = ConvFormerBlock(-3, True, drop_path=dpr, name=f'temporal_{i}', **common)(h, train=train)
    h = LayerNorm(name='norm')(h)
    return Linear(3, name='head')(h)
