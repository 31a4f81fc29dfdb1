"""HoT's token pruning (DPC-kNN + TPC) and token recovery (TRA) blocks, for any video transformer.

Paper: Li, Liu, Liu, Wang, Cai, Sebe, "Hourglass Tokenizer for Efficient Transformer-Based 3D Human
Pose Estimation", CVPR 2024, arXiv:2311.12028.
Official code: github.com/NationalGAILab/HoT at commit 873b5bda0d38cc30ca808c519c87d2e1f22a3292
(`model/mixste/{hot_mixste,tpc_mixste}.py`, `model/motionbert/hot_motionbert.py`; MIT). Written
from research/hot.md; no code copied. The wrapped lifters are `jaxpose.models.hot`; the training
loss and the centre-frame prediction are `jaxpose.methods.hot`.

* `dpc_knn`: density-peaks clustering with k-nearest-neighbour density. For pooled frame features
  x (B, N, C): D = cdist(x, x) / sqrt(C); rho = exp(-mean of the k smallest D_i. squared) (the
  token itself included, so k = 2 means one neighbour) + a 1e-6 uniform jitter; delta_i = min D_ij
  over tokens j of higher density (D.max() for the densest); score = delta * rho; the kept tokens
  are the top-`cluster_num` scores. Runs under `stop_gradient`; shapes are static, so it jits and
  vmaps (any leading batch axes).
* `select_tokens`: the sorted kept-frame indices of TPC; `keep_center=True` is TPC-MixSTE's rule
  (the centre frame (N - 1) // 2 is removed from the clustering and appended).
* `TokenPruningCluster` (TPC): joint-mean features -> `select_tokens` -> gather the kept frames of
  every joint -> + a learnable per-slot embedding `pos_embed_token` (1, K, D) (HoT only).
* `TokenRecoveringAttention` (TRA): learnable full-length queries `x_token` (1, F, D) (zero-init)
  attend, per joint, to the K kept tokens (`CrossAttention`: separate q/k/v Linears and an output
  projection, no norm, no MLP); output x_token + attention, (B, F, J, D).

Randomness (deviation): the official code draws the jitter with `torch.rand` from torch's *global*
RNG inside the forward, so its inference is stochastic (mutual nearest neighbours have exactly equal
densities with k = 2, and only the jitter orders them; the kept set and the outputs change with the
seed). Here the jitter comes from the named RNG stream 'hot' (`RNG_STREAM`) when the caller provides
one, else from the fixed key `jax.random.key(jitter_seed)`, so a forward is a pure function of its
inputs and keys. Parity tests pass the official draw (`jitter=`) or the official kept indices
(`index=`).

Other deviations:
  * `CrossAttention` projects the (batch- and joint-independent) queries once instead of once per
    (sample, joint): the same numbers, B * J times fewer query MACs.
  * `dpc_knn(distance='torch')` reproduces torch.cdist's switch to the matmul formula
    sqrt(max(|a|^2 + |b|^2 - 2 a.b, 1e-30)) above 25 tokens (non-zero self distance, slightly
    asymmetric); its float32 rounding competes with the 1e-6 jitter, so selections at N > 25 are
    not bit-reproducible across frameworks. `distance='exact'` uses differences at any N.
  * The official `token_mask` argument (never passed by a HoT model) is not implemented; its
    `idx_cluster` output is returned (`DPCKNN.idx_cluster`) though no model reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpose.models.layers.linear import Linear

Initializer = Callable[..., jax.Array]

# torch.cdist (compute_mode 'use_mm_for_euclid_dist_if_necessary') uses the matmul formula when
# either operand has more than this many rows.
TORCH_CDIST_MM_THRESHOLD = 25
RNG_STREAM = 'hot'


class DPCKNN(NamedTuple):
  """Result of `dpc_knn` for x (..., N, C).

  Attributes:
    index_down: (..., cluster_num) int32, the cluster centres in descending score order.
    idx_cluster: (..., N) int32, each token's nearest centre (slot in index_down); centres map
      to themselves.
    density: (..., N) float32, rho including the jitter.
    score: (..., N) float32, delta * rho (-inf at an excluded centre frame).
  """

  index_down: jax.Array
  idx_cluster: jax.Array
  density: jax.Array
  score: jax.Array


def pairwise_distance(x: jax.Array, distance: str = 'torch') -> jax.Array:
  """Euclidean distances between the rows of x, as torch.cdist(x, x) computes them.

  Args:
    x: (..., N, C).
    distance: 'exact' (sqrt of summed squared differences; O(N^2 C) memory), 'matmul' (torch's
      |a|^2 + |b|^2 - 2 a.b formula, clamped at 1e-30 before the sqrt), or 'torch' (exact up to
      25 rows, matmul above, like torch.cdist).

  Returns:
    (..., N, N) float distances.
  """
  if distance == 'torch':
    distance = 'matmul' if x.shape[-2] > TORCH_CDIST_MM_THRESHOLD else 'exact'
  if distance == 'exact':
    diff = x[..., :, None, :] - x[..., None, :, :]
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1))
  if distance != 'matmul':
    raise ValueError(f"distance must be 'torch', 'exact' or 'matmul', got {distance!r}")
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  one = jnp.ones_like(sq)
  # One matmul of padded rows, as torch does: [-2a, |a|^2, 1] . [b, 1, |b|^2].
  lhs = jnp.concatenate([-2.0 * x, sq, one], axis=-1)
  rhs = jnp.concatenate([x, one, sq], axis=-1)
  d2 = jnp.matmul(lhs, jnp.swapaxes(rhs, -1, -2), precision=jax.lax.Precision.HIGHEST)
  return jnp.sqrt(jnp.maximum(d2, 1e-30))


def density_jitter(key: jax.Array, shape: tuple[int, ...], scale: float = 1e-6) -> jax.Array:
  """U[0, 1) * scale, the tie-breaking noise added to the DPC-kNN density. float32 `shape`."""
  return jax.random.uniform(key, shape, jnp.float32) * scale


def dpc_knn(
  x: jax.Array,
  cluster_num: int,
  k: int = 2,
  *,
  jitter: jax.Array | None = None,
  center: int | None = None,
  distance: str = 'torch',
) -> DPCKNN:
  """Density-peaks clustering with kNN density (the official `cluster_dpc_knn[_center]`).

  Args:
    x: (..., N, C) token features (computed in float32 or wider); no gradient flows through
      the selection.
    cluster_num: number of centres to keep (static).
    k: neighbours in the density, the token itself included.
    jitter: (..., N) added to the density (the official U[0,1) * 1e-6 draw); None adds nothing.
    center: a token excluded from the centres (its score set to -inf), as
      `cluster_dpc_knn_center`; None excludes nothing.
    distance: see `pairwise_distance`.

  Returns:
    A DPCKNN; `index_down` is in top-k (descending score) order, not sorted.
  """
  # At least float32: bfloat16 distances would reorder near-equal densities.
  x = jax.lax.stop_gradient(x).astype(jnp.promote_types(x.dtype, jnp.float32))
  n, c = x.shape[-2:]
  if not 0 < cluster_num <= n - (center is not None):
    raise ValueError(
      f'dpc_knn: cluster_num={cluster_num} must be in [1, {n - (center is not None)}]'
    )
  dist = pairwise_distance(x, distance) / (c**0.5)  # (..., N, N)
  nearest = -jax.lax.top_k(-dist, k)[0]
  density = jnp.exp(-jnp.mean(nearest**2, axis=-1))
  if jitter is not None:
    density = density + jax.lax.stop_gradient(jitter).astype(density.dtype)
  higher = density[..., None, :] > density[..., :, None]  # [i, j]: rho_j > rho_i
  dist_max = jnp.max(dist, axis=(-2, -1), keepdims=True)
  delta = jnp.min(jnp.where(higher, dist, dist_max), axis=-1)
  score = delta * density
  if center is not None:
    score = score.at[..., center].set(-jnp.inf)
  index_down = jax.lax.top_k(score, cluster_num)[1].astype(jnp.int32)
  # Each token's nearest centre; the centres themselves get their own slot.
  to_centres = jnp.take_along_axis(dist, index_down[..., :, None], axis=-2)  # (..., K, N)
  is_centre = index_down[..., :, None] == jnp.arange(n)  # (..., K, N)
  idx_cluster = jnp.where(
    is_centre.any(axis=-2), jnp.argmax(is_centre, axis=-2), jnp.argmin(to_centres, axis=-2)
  ).astype(jnp.int32)
  return DPCKNN(index_down, idx_cluster, density, score)


def select_tokens(
  x: jax.Array,
  token_num: int,
  *,
  jitter: jax.Array | None = None,
  keep_center: bool = False,
  k: int = 2,
  distance: str = 'torch',
) -> jax.Array:
  """Kept-frame indices of the Token Pruning Cluster, in temporal order.

  Args:
    x: (B, N, C) frame features (the joint mean of the tokens at the pruning block).
    token_num: frames to keep, K.
    jitter: (B, N) density jitter (see `dpc_knn`).
    keep_center: TPC-MixSTE's rule: cluster K - 1 frames with the centre (N - 1) // 2 excluded,
      then add the centre, so it is always kept.
    k: neighbours of the kNN density.
    distance: see `pairwise_distance`.

  Returns:
    (B, K) int32 frame indices, ascending.
  """
  if not keep_center:
    index = dpc_knn(x, token_num, k, jitter=jitter, distance=distance).index_down
  else:
    centre = (x.shape[-2] - 1) // 2
    index = dpc_knn(x, token_num - 1, k, jitter=jitter, center=centre, distance=distance).index_down
    index = jnp.concatenate([index, jnp.full((*index.shape[:-1], 1), centre, index.dtype)], -1)
  return jnp.sort(index, axis=-1)


def gather_frames(x: jax.Array, index: jax.Array) -> jax.Array:
  """x (B, T, ...) and index (B, K) -> (B, K, ...): the kept frames of every sample."""
  return jax.vmap(lambda a, i: jnp.take(a, i, axis=0))(x, index)


class TokenPruningCluster(nn.Module):
  """TPC: keeps the K most representative frames (all joints of a frame together).

  Attributes:
    token_num: frames kept, K.
    keep_center: always keep the centre frame (TPC-MixSTE); HoT models leave it False.
    pos_embed: add the learnable per-slot embedding `pos_embed_token` (1, K, D), zero-initialised
      (HoT); TPC-only models have none.
    k: neighbours of the kNN density.
    distance: cdist formula, see `pairwise_distance`.
    jitter_scale: amplitude of the density jitter (official 1e-6).
    jitter_seed: seed of the fixed jitter used when the 'hot' RNG stream is not provided.
  """

  token_num: int
  keep_center: bool = False
  pos_embed: bool = True
  k: int = 2
  distance: str = 'torch'
  jitter_scale: float = 1e-6
  jitter_seed: int = 0

  def draw_jitter(self, shape: tuple[int, ...]) -> jax.Array:
    """The density jitter: from the 'hot' stream if given, else from the fixed key."""
    if self.has_rng(RNG_STREAM):
      key = self.make_rng(RNG_STREAM)
    else:
      key = jax.random.key(self.jitter_seed)
    return density_jitter(key, shape, self.jitter_scale)

  @nn.compact
  def __call__(
    self, x: jax.Array, *, index: jax.Array | None = None, jitter: jax.Array | None = None
  ) -> tuple[jax.Array, jax.Array]:
    """Prunes frames.

    Args:
      x: (B, T, J, D) tokens at the pruning block.
      index: (B, K) kept frames to use instead of clustering (e.g. the official selection, or the
        plain pass's selection in a flip pass).
      jitter: (B, T) density jitter to use instead of drawing one.

    Returns:
      (x_kept (B, K, J, D), index (B, K) int32 ascending).
    """
    b, t, _, d = x.shape
    if index is None:
      feats = jnp.mean(x, axis=2)  # (B, T, D): the official AdaptiveAvgPool1d over joints
      if jitter is None:
        jitter = self.draw_jitter((b, t))
      index = select_tokens(
        feats,
        self.token_num,
        jitter=jitter,
        keep_center=self.keep_center,
        k=self.k,
        distance=self.distance,
      )
    index = jnp.asarray(index, jnp.int32)
    if index.shape != (b, self.token_num):
      raise ValueError(f'TPC: index must be (B, K) = {(b, self.token_num)}, got {index.shape}')
    x = gather_frames(x, index)
    if self.pos_embed:
      pos = self.param('pos_embed_token', nn.initializers.zeros, (1, self.token_num, d))
      x = x + pos[0, :, None, :]
    return x, index


class CrossAttention(nn.Module):
  """Multi-head attention of queries to a separate key/value sequence (official `Cross_Attention`).

  Parameter names `linear_q`, `linear_k`, `linear_v` (bias = qkv_bias) and `proj` (always a bias)
  follow the official module. Queries and keys may have different leading shapes as long as they
  broadcast, so a query set shared by every sample is projected once.

  Attributes:
    num_heads: H; D must be divisible by H.
    qkv_bias: bias on the q/k/v projections.
    qk_scale: logit scale; None means (D / H) ** -0.5.
    attn_drop: dropout on the attention probabilities (stream 'dropout').
    proj_drop: dropout after the output projection (stream 'dropout').
    kernel_init: Linear kernel initialiser; None means torch's default.
    bias_init: Linear bias initialiser; None means torch's default.
  """

  num_heads: int = 8
  qkv_bias: bool = True
  qk_scale: float | None = None
  attn_drop: float = 0.0
  proj_drop: float = 0.0
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, q: jax.Array, kv: jax.Array, *, train: bool) -> jax.Array:
    """q: (..., Lq, D), kv: (..., Lk, D) (leading axes broadcast) -> (..., Lq, D)."""
    dim = q.shape[-1]
    if dim % self.num_heads:
      raise ValueError(f'CrossAttention: width {dim} is not divisible by {self.num_heads} heads')
    h = self.num_heads
    scale = self.qk_scale or (dim // h) ** -0.5
    dense = lambda name, bias: Linear(
      dim, use_bias=bias, kernel_init=self.kernel_init, bias_init=self.bias_init, name=name
    )

    def heads(y):  # (..., L, D) -> (..., H, L, d)
      return jnp.swapaxes(y.reshape(*y.shape[:-1], h, dim // h), -2, -3)

    qh = heads(dense('linear_q', self.qkv_bias)(q))
    kh = heads(dense('linear_k', self.qkv_bias)(kv))
    vh = heads(dense('linear_v', self.qkv_bias)(kv))
    attn = jax.nn.softmax((qh @ jnp.swapaxes(kh, -1, -2)) * scale, axis=-1)
    attn = nn.Dropout(self.attn_drop)(attn, deterministic=not train)
    out = jnp.swapaxes(attn @ vh, -2, -3)  # (..., Lq, H, d)
    out = dense('proj', True)(out.reshape(*out.shape[:-2], dim))
    return nn.Dropout(self.proj_drop)(out, deterministic=not train)


class TokenRecoveringAttention(CrossAttention):
  """TRA: full-length learnable queries attend to the kept tokens of each joint.

  The inherited CrossAttention fields configure its `cross_attention` submodule (official: the
  backbone's heads and qkv_bias, no dropout); the queries `x_token` (1, F, D) start at zero.

  Attributes:
    num_frames: F, the recovered length (the input clip length).
  """

  num_frames: int = 243

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, K, J, D) pruned tokens -> (B, F, J, D) recovered tokens."""
    d = x.shape[-1]
    x_token = self.param('x_token', nn.initializers.zeros, (1, self.num_frames, d))[0]  # (F, D)
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(CrossAttention)}
    fields = {k: v for k, v in fields.items() if k not in ('parent', 'name')}
    attend = CrossAttention(**fields, name='cross_attention')
    out = x_token + attend(x_token, jnp.swapaxes(x, 1, 2), train=train)  # (B, J, F, D)
    return jnp.swapaxes(out, 1, 2)
