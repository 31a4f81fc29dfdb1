"""DiffPose: the GCNdiff denoiser, the GCNpose initialiser and their frame/video composition.

Paper: Gong, Foo, Fan, Ke, Rahmani, Liu, "DiffPose: Toward More Reliable 3D Pose Estimation",
CVPR 2023, arXiv:2211.16940. Official code: github.com/GONGJIA0208/Diffpose at commit
9a15bf80618fe21be4b01bed245d809d71b1a397 (`models/gcndiff.py`, `models/gcnpose.py`,
`models/GraFormer.py`, `models/ChebConv.py`; MIT) and github.com/GONGJIA0208/Diffpose_video at
bf8484a52d6c7d90a335495e5c809ce111523b2f (MixSTE initialiser). Written from
research/diffpose.md; no code copied. The diffusion (GMM forward process, DDIM sampler) is
`jaxpose.methods.diffpose`.

Networks (per pose, x (N, J, C)):
  ChebConv     sum_k T_k X W_k + b with the Chebyshev polynomials T_0 = I, T_1 = L, T_2 = 2 L^2 - I
               of L = I - D^-1/2 A D^-1/2 (A = row-normalised skeleton adjacency with self loops),
               precomputed once as constants; weight (3, 1, C_in, C_out) in the official layout.
  GraFormer    pre-norm layer: x + drop(MHA(LN(x))), x + drop(GraphNet(LN(x))); LN is the
               Annotated-Transformer LayerNorm (unbiased std, eps added to the std); MHA has four
               Linear(d, d) (q, k, v, out); GraphNet (LAM-GCN) = fc2(L' relu(fc1(L' X))) with a
               learnable A_hat and L' = diag(d) A_hat diag(d), d_j = (sum_i A_hat_ij + 1e-5)^-1/2.
  GCNdiff      eps-prediction on [u, v, x, y, z]: DDPM sinusoidal embedding of the float t ->
               Linear(hid, 4 hid) -> swish -> Linear(4 hid, 4 hid); ChebConv(5 -> hid); L x
               [GraFormer layer; residual Cheb block relu(cheb2(relu(cheb1(h)) +
               temb_proj(swish(temb))))]; ChebConv(hid -> 5).
  GCNpose      the same trunk without the time embedding, (u, v) -> (x, y, z).

`Model` (the registry entry) composes an initialiser and the denoiser: `Model.__call__` is the
initialiser's lift, kp2d (B, T, J, 2) -> pose3d (B, T, J, 3) (GCNpose per frame for the 'frame'
variant, a 243-frame MixSTE for 'video'), and `Model.denoise(x_t, t)` is GCNdiff applied to every
frame: (B, T, J, 5), (B,) or (B, T) -> eps (B, T, J, 5). `init` creates both parameter sets
(`{'pose': ..., 'diff': ...}`). The engine's eval goes through `methods.diffpose.predict`.

Parameters (`params` collection, counted here): GCNdiff (hid 96, 5 layers) 1,025,674 as the
official class; GCNpose 654,344, which is the official 839,432 minus its unused time-embedding
MLP (`temb.dense.*`, 185,088, constructed but never called; `from_torch` skips those keys); the
video variant MixSTE2-243 + GCNdiff = 33,783,811 + 1,025,674 = 34,809,485.

Deviations from the official code:
  * GCNpose does not carry the unused `temb` MLP (see above).
  * `emd_dim` is not a field: the official GCNdiff forces it to 4 * hid_dim whatever the config.
  * The all-True attention mask and the unused `cemd` argument are not inputs.
  * Chebyshev polynomials and the adjacency are numpy constants computed once (the official
    recomputes them in float32 on every call; same values).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import (
  convert_for_model,
  extract_state_dict,
  read_checkpoint,
)
from jaxpose.models import mixste
from jaxpose.models.layers.diffusion import timestep_embedding
from jaxpose.models.layers.linear import Linear

# H36M-17 bones (parent, child), the official `edges`.
H36M_EDGES: tuple[tuple[int, int], ...] = (
  (0, 1),
  (1, 2),
  (2, 3),
  (0, 4),
  (4, 5),
  (5, 6),
  (0, 7),
  (7, 8),
  (8, 9),
  (9, 10),
  (8, 11),
  (11, 12),
  (12, 13),
  (8, 14),
  (14, 15),
  (15, 16),
)

VARIANTS = {
  'frame': {'num_frames': 1, 'initialiser': 'gcnpose'},
  'video': {'num_frames': 243, 'initialiser': 'mixste'},
}

TEST_OVERRIDES = {'hid_dim': 16, 'num_layers': 1}

# Counts of the `params` collection (official classes measured in research/diffpose.md §2.4).
PAPER = {
  'frame': {
    'params': 1_025_674 + 654_344,
    'params_gcndiff': 1_025_674,
    'params_gcnpose': 654_344,
    'params_official_state_dicts': 1_865_106,  # + 185,088 unused GCNpose temb weights
    'frames': 1,
    'reported_params': 'not reported; measured on the official classes',
  },
  'video': {
    'params': 34_809_485,
    'params_gcndiff': 1_025_674,
    'params_mixste': 33_783_811,
    'frames': 243,
    'reported_params': 'not reported; measured on the official classes',
  },
}

# MixSTE2 as the video repo builds it (243 frames, C 512, depth 8, 2-channel input).
MIXSTE_INIT = {'dim': 512, 'depth': 8, 'num_heads': 8, 'mlp_ratio': 2.0, 'drop_path_rate': 0.1}


# ------------------------------------------------------------------------------------ graph


def adjacency(num_joints: int, edges: Sequence[Sequence[int]]) -> np.ndarray:
  """Official `adj_mx_from_edges(..., sparse=False)`: D^-1 (A + I), A symmetric 0/1 (J, J) f32."""
  a = np.zeros((num_joints, num_joints), np.float32)
  for i, j in edges:
    a[i, j] = a[j, i] = 1.0
  a = a + np.eye(num_joints, dtype=np.float32)
  return (a / a.sum(1, keepdims=True)).astype(np.float32)


def chebyshev_polynomials(adj: np.ndarray, order: int = 2) -> np.ndarray:
  """T_0..T_order of L = I - D^-1/2 adj D^-1/2 (D = rowsum(adj)), float32: (order + 1, J, J)."""
  adj = np.asarray(adj, np.float32)
  n = adj.shape[0]
  d = np.diag(adj.sum(-1) ** np.float32(-0.5)).astype(np.float32)
  eye = np.eye(n, dtype=np.float32)
  lap = eye - d @ adj @ d
  ts = [eye, lap]
  for _ in range(2, order + 1):
    ts.append(np.float32(2) * (lap @ ts[-1]) - ts[-2])
  return np.stack(ts[: order + 1]).astype(np.float32)


def _xavier_normal_4d(key, shape, dtype=jnp.float32):
  """torch xavier_normal_ on a (K, 1, in, out) tensor: fan_in = in*out, fan_out = K*in*out."""
  receptive = int(np.prod(shape[2:]))
  std = math.sqrt(2.0 / (shape[1] * receptive + shape[0] * receptive))
  return std * jax.random.normal(key, shape, dtype)


class ChebConv(nn.Module):
  """Chebyshev graph convolution of order 2 over a fixed skeleton.

  Attributes:
    features: output width C_out.
    cheb: (3, J, J) Chebyshev polynomials (numpy constant, see `chebyshev_polynomials`).
  """

  features: int
  cheb: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (N, J, C_in) -> (N, J, features)."""
    k = np.asarray(self.cheb).shape[0]
    w = self.param('weight', _xavier_normal_4d, (k, 1, x.shape[-1], self.features))
    b = self.param('bias', nn.initializers.zeros, (1, 1, self.features))
    tx = jnp.einsum('knm,bmc->kbnc', jnp.asarray(self.cheb), x)
    return jnp.einsum('kbnc,kcd->bnd', tx, w[:, 0]) + b


class _GraphConv(nn.Module):
  """ChebConv -> ReLU -> dropout (the official's second ReLU is a no-op); torch name `gconv`."""

  features: int
  cheb: Any
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nn.relu(ChebConv(self.features, self.cheb, name='gconv')(x))
    return nn.Dropout(self.dropout)(x, deterministic=not train)


class ResChebBlock(nn.Module):
  """Residual block of two graph convs; with `time_embedding` the GCNdiff block (`temb_proj`)."""

  features: int
  cheb: Any
  dropout: float = 0.1
  time_embedding: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array | None, *, train: bool) -> jax.Array:
    """x: (N, J, D), temb: (N, 4D) or None -> (N, J, D)."""
    h = _GraphConv(self.features, self.cheb, self.dropout, name='gconv1')(x, train=train)
    if self.time_embedding:
      h = h + Linear(self.features, name='temb_proj')(nn.swish(temb))[:, None, :]
    h = _GraphConv(self.features, self.cheb, self.dropout, name='gconv2')(h, train=train)
    return x + h


# ---------------------------------------------------------------------------- GraFormer


class GraFormerLayerNorm(nn.Module):
  """a_2 (x - mean) / (std + eps) + b_2 with the unbiased std (GraFormer / Annotated Transformer)."""

  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    a = self.param('a_2', nn.initializers.ones, (d,))
    b = self.param('b_2', nn.initializers.zeros, (d,))
    mean = x.mean(-1, keepdims=True)
    std = jnp.sqrt(jnp.sum(jnp.square(x - mean), -1, keepdims=True) / (d - 1))
    return a * (x - mean) / (std + self.eps) + b


class MultiHeadedAttention(nn.Module):
  """Annotated-Transformer MHA over the joints: `linears_{0..3}` = q, k, v, out."""

  num_heads: int
  attn_dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (N, J, D) -> (N, J, D)."""
    n, j, d = x.shape
    dk = d // self.num_heads
    q, k, v = (
      Linear(d, name=f'linears_{i}')(x).reshape(n, j, self.num_heads, dk) for i in range(3)
    )
    scores = jnp.einsum('bqhd,bkhd->bhqk', q, k) / math.sqrt(dk)
    p = nn.Dropout(self.attn_dropout)(jax.nn.softmax(scores, -1), deterministic=not train)
    out = jnp.einsum('bhqk,bkhd->bqhd', p, v).reshape(n, j, d)
    return Linear(d, name='linears_3')(out)


class _LamGconv(nn.Module):
  features: int
  relu: bool

  @nn.compact
  def __call__(self, x: jax.Array, lap: jax.Array) -> jax.Array:
    x = Linear(self.features, name='fc')(jnp.einsum('nm,bmc->bnc', lap, x))
    return nn.relu(x) if self.relu else x


class GraphNet(nn.Module):
  """LAM-GCN feed-forward with a learnable adjacency `A_hat` (J, J), initialised to I."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (N, J, D) -> (N, J, D)."""
    j, d = x.shape[-2:]
    a_hat = self.param('A_hat', lambda k, s: jnp.eye(s[0], dtype=jnp.float32), (j, j))
    deg = (a_hat.sum(0) + 1e-5) ** -0.5  # column sums
    lap = deg[:, None] * a_hat * deg[None, :]
    x = _LamGconv(2 * d, True, name='gconv1')(x, lap)
    return _LamGconv(d, False, name='gconv2')(x, lap)


class GraAttenLayer(nn.Module):
  """Pre-norm GraFormer layer: MHA then GraphNet, each residual with dropout."""

  num_heads: int
  dropout: float = 0.25
  attn_dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = MultiHeadedAttention(self.num_heads, self.attn_dropout, name='self_attn')(
      GraFormerLayerNorm(name='sublayer_0_norm')(x), train=train
    )
    x = x + drop(h)
    h = GraphNet(name='feed_forward')(GraFormerLayerNorm(name='sublayer_1_norm')(x))
    return x + drop(h)


# ------------------------------------------------------------------------- GCNdiff / GCNpose


class _TimeMLP(nn.Module):
  hid_dim: int

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    e = timestep_embedding(t, self.hid_dim)
    e = nn.swish(Linear(4 * self.hid_dim, name='dense_0')(e))
    return Linear(4 * self.hid_dim, name='dense_1')(e)


class GraphTrunk(nn.Module):
  """The GCNdiff / GCNpose network on single poses (official `GCNdiff` / `GCNpose`).

  Attributes:
    out_channels: C_out (5 for GCNdiff, 3 for GCNpose).
    hid_dim: width (official `hid_dim`, 96).
    num_layers: GraFormer + Cheb block pairs (5).
    num_heads: attention heads (4).
    dropout: residual dropout of the GraFormer layers (0.25).
    attn_dropout: attention-probability dropout (0.1, hard-coded officially).
    gconv_dropout: dropout inside the residual Cheb blocks (0.1, hard-coded officially).
    time_embedding: GCNdiff (True: needs t) or GCNpose (False).
    num_joints: J.
    edges: skeleton bones defining the Chebyshev graph.
  """

  out_channels: int
  hid_dim: int = 96
  num_layers: int = 5
  num_heads: int = 4
  dropout: float = 0.25
  attn_dropout: float = 0.1
  gconv_dropout: float = 0.1
  time_embedding: bool = True
  num_joints: int = 17
  edges: tuple[tuple[int, int], ...] = H36M_EDGES

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array | None = None, *, train: bool) -> jax.Array:
    """x: (..., J, C_in), t: (...) float timesteps (GCNdiff only) -> (..., J, out_channels)."""
    lead = x.shape[:-2]
    x = x.reshape(-1, *x.shape[-2:])
    cheb = chebyshev_polynomials(adjacency(self.num_joints, self.edges))
    temb = None
    if self.time_embedding:
      if t is None:
        raise ValueError('GCNdiff needs the diffusion timestep t')
      t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), lead).reshape(-1)
      temb = _TimeMLP(self.hid_dim, name='temb')(t)
    h = ChebConv(self.hid_dim, cheb, name='gconv_input')(x)
    for i in range(self.num_layers):
      h = GraAttenLayer(self.num_heads, self.dropout, self.attn_dropout, name=f'atten_layers_{i}')(
        h, train=train
      )
      h = ResChebBlock(
        self.hid_dim, cheb, self.gconv_dropout, self.time_embedding, name=f'gconv_layers_{i}'
      )(h, temb, train=train)
    out = ChebConv(self.out_channels, cheb, name='gconv_output')(h)
    return out.reshape(*lead, *out.shape[-2:])


# ----------------------------------------------------------------------------- composite


class Model(nn.Module):
  """DiffPose: an initialiser (GCNpose or MixSTE) and the GCNdiff denoiser.

  Attributes:
    num_frames: T (1 for the frame-based model, 243 for the video model).
    num_joints: J.
    in_channels: C_in of the 2D input (2: u, v).
    initialiser: 'gcnpose' (per frame) or 'mixste' (the video model's 243-frame MixSTE2).
    hid_dim: GCNdiff (and GCNpose) width.
    num_layers: GCNdiff (and GCNpose) depth.
    num_heads: attention heads of the GraFormer layers.
    dropout: GraFormer residual dropout.
    attn_dropout: attention dropout.
    gconv_dropout: dropout inside the residual Cheb blocks.
    pose_kwargs: extra fields of the initialiser as (name, value) pairs (MixSTE: its fields,
      MIXSTE_INIT by default; GCNpose: hid_dim, num_layers, num_heads, ... overriding the above).
    edges: skeleton bones of the Chebyshev graph.
  """

  num_frames: int = 1
  num_joints: int = 17
  in_channels: int = 2
  initialiser: str = 'gcnpose'
  hid_dim: int = 96
  num_layers: int = 5
  num_heads: int = 4
  dropout: float = 0.25
  attn_dropout: float = 0.1
  gconv_dropout: float = 0.1
  pose_kwargs: tuple[tuple[str, Any], ...] = ()
  edges: tuple[tuple[int, int], ...] = H36M_EDGES

  def _trunk_kwargs(self) -> dict[str, Any]:
    return dict(
      hid_dim=self.hid_dim,
      num_layers=self.num_layers,
      num_heads=self.num_heads,
      dropout=self.dropout,
      attn_dropout=self.attn_dropout,
      gconv_dropout=self.gconv_dropout,
      num_joints=self.num_joints,
      edges=tuple(tuple(e) for e in self.edges),
    )

  def setup(self):
    extra = dict(self.pose_kwargs)
    if self.initialiser == 'gcnpose':
      self.pose = GraphTrunk(3, time_embedding=False, **{**self._trunk_kwargs(), **extra})
    elif self.initialiser == 'mixste':
      kw = {**MIXSTE_INIT, **extra}
      self.pose = mixste.Model(
        num_frames=self.num_frames, num_joints=self.num_joints, in_channels=self.in_channels, **kw
      )
    else:
      raise ValueError(f"initialiser must be 'gcnpose' or 'mixste', got {self.initialiser!r}")
    self.diff = GraphTrunk(self.in_channels + 3, time_embedding=True, **self._trunk_kwargs())

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """The initialiser's lift (what DiffPose refines).

    Args:
      x: kp2d_norm (B, T, J, C_in), T = num_frames.
      train: dropout (rng stream 'dropout').

    Returns:
      pose3d (B, T, J, 3), root-relative metres (the initialiser's training target).
    """
    expected = (self.num_frames, self.num_joints, self.in_channels)
    if x.ndim != 4 or x.shape[1:] != expected:
      raise ValueError(f'DiffPose expects (B, {", ".join(map(str, expected))}), got {x.shape}')
    out = self.initial_pose(x, train=train)
    if self.is_initializing():  # create the denoiser's parameters too
      self.denoise(
        jnp.concatenate([x[..., : self.in_channels], out], -1), jnp.zeros(x.shape[:1]), train=False
      )
    return out

  def initial_pose(self, x: jax.Array, *, train: bool) -> jax.Array:
    """kp2d_norm (B, T, J, C_in) -> initial pose3d (B, T, J, 3) (GCNpose per frame, or MixSTE)."""
    return self.pose(x, train=train)

  def denoise(self, x_t: jax.Array, t: jax.Array, *, train: bool) -> jax.Array:
    """GCNdiff on every frame.

    Args:
      x_t: (B, T, J, C_in + 3) noisy [u, v, x, y, z] (any leading shape works).
      t: timesteps broadcastable to the leading shape of x_t ((B,), (B, T) or ()), float.
      train: dropout (rng stream 'dropout').

    Returns:
      eps prediction, same shape as x_t.
    """
    t = jnp.asarray(t, jnp.float32)
    t = t.reshape(t.shape + (1,) * (x_t.ndim - 2 - t.ndim))
    return self.diff(x_t, jnp.broadcast_to(t, x_t.shape[:-2]), train=train)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) the model reads."""
  return (model.num_frames, model.num_joints, model.in_channels)


# ---------------------------------------------------------------------------- conversion


def _trunk_rename(path: str) -> str:
  # torch 'atten_layers.0.sublayer.1.norm' -> flax 'atten_layers_0/sublayer_1_norm'
  return path.replace('.sublayer.0.norm', '.sublayer_0_norm').replace(
    '.sublayer.1.norm', '.sublayer_1_norm'
  )


def trunk_from_config(config_model: Mapping[str, Any], *, time_embedding: bool) -> GraphTrunk:
  """The GraphTrunk of an official `config.model` block (hid_dim, num_layer, n_head, dropout,
  coords_dim, n_pts); `emd_dim` is ignored, as officially (forced to 4 * hid_dim)."""
  cm = dict(config_model)
  return GraphTrunk(
    out_channels=int(cm.get('coords_dim', (5, 5) if time_embedding else (2, 3))[1]),
    hid_dim=int(cm.get('hid_dim', 96)),
    num_layers=int(cm.get('num_layer', 5)),
    num_heads=int(cm.get('n_head', 4)),
    dropout=float(cm.get('dropout', 0.25)),
    time_embedding=time_embedding,
    num_joints=int(cm.get('n_pts', 17)),
  )


def convert_trunk(
  state_dict: Mapping[str, Any], trunk: GraphTrunk, in_channels: int
) -> dict[str, Any]:
  """Official GCNdiff / GCNpose state dict -> variables of `trunk` ({'params': ...}).

  GCNpose's unused `temb.dense.*` weights are skipped (explicitly, by name)."""
  t = (1,) if trunk.time_embedding else None
  skip = None if trunk.time_embedding else (lambda k: k.startswith('temb.'))
  x = (1, trunk.num_joints, in_channels)
  return convert_for_model(_clean(state_dict), trunk, x, t, rename=_trunk_rename, skip=skip)


def _clean(state_dict: Any) -> dict[str, np.ndarray]:
  """Released layout -> plain state dict: a list/tuple whose first entry is the state dict
  (`[state_dict, optimizer, epoch, step, ema]`), or a path to such a file; `module.` stripped."""
  if isinstance(state_dict, (str, os.PathLike)):
    state_dict = read_checkpoint(state_dict)
  if isinstance(state_dict, (list, tuple)):
    state_dict = state_dict[0]
  return extract_state_dict(state_dict)


def from_torch(
  state_dict: Any,
  *,
  pose_state_dict: Any = None,
  config_model: Mapping[str, Any] | None = None,
  config_model_pose: Mapping[str, Any] | None = None,
  initialiser: str = 'gcnpose',
  num_frames: int | None = None,
  mixste_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Model, dict[str, Any]]:
  """Converts the released DiffPose checkpoints.

  Args:
    state_dict: the GCNdiff checkpoint (`diffpose_uvxyz_{cpn,gt}.pth`, video
      `diffpose_video_uvxyz_*.pth`): a state dict, the released list `[state_dict, optimizer,
      epoch, step, ema_shadow]` (the raw weights, entry 0, are used, as the official evaluation
      does) or a path; `module.` prefixes are stripped.
    pose_state_dict: the initialiser's checkpoint in the same forms: GCNpose
      (`gcn_xyz_{cpn,gt}.pth`) or, with initialiser='mixste', MixSTE2 (`mixste_cpn_243f.bin`,
      whose weights sit under 'model_pos'). None leaves the initialiser randomly initialised.
    config_model: the official `config.model` of GCNdiff (hid_dim, num_layer, n_head, dropout,
      coords_dim, n_pts); defaults to the released yml (96, 5, 4, 0.25).
    config_model_pose: the same for GCNpose; it must have GCNdiff's sizes (one set of fields).
    initialiser: 'gcnpose' (frame model) or 'mixste' (video model).
    num_frames: T of the video model (243 when None).
    mixste_kwargs: MixSTE fields other than MIXSTE_INIT's.

  Returns:
    (Model, variables) with params {'pose': ..., 'diff': ...}.
  """
  cm = dict(config_model or {})
  diff_trunk = trunk_from_config(cm, time_embedding=True)
  in_channels = diff_trunk.out_channels - 3
  pose_params = None
  if initialiser == 'gcnpose':
    pose_cm = config_model_pose or {**cm, 'coords_dim': (in_channels, 3)}
    pose_trunk = trunk_from_config(pose_cm, time_embedding=False)
    sizes = ('hid_dim', 'num_layers', 'num_heads', 'dropout')
    pose_kw = tuple(
      (k, getattr(pose_trunk, k)) for k in sizes if getattr(pose_trunk, k) != getattr(diff_trunk, k)
    )
    if pose_state_dict is not None:
      pose_params = convert_trunk(pose_state_dict, pose_trunk, in_channels)['params']
    t = 1
  elif initialiser == 'mixste':
    kw = {**MIXSTE_INIT, **dict(mixste_kwargs or {})}
    t = num_frames or 243
    if pose_state_dict is not None:
      m, v = mixste.from_torch(_clean(pose_state_dict))
      skip = ('num_frames', 'num_joints', 'in_channels', 'parent', 'name')
      kw = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name not in skip}
      t, pose_params = m.num_frames, v['params']
    pose_kw = tuple(sorted(kw.items()))
  else:
    raise ValueError(f"initialiser must be 'gcnpose' or 'mixste', got {initialiser!r}")
  model = Model(
    num_frames=t,
    num_joints=diff_trunk.num_joints,
    in_channels=in_channels,
    initialiser=initialiser,
    hid_dim=diff_trunk.hid_dim,
    num_layers=diff_trunk.num_layers,
    num_heads=diff_trunk.num_heads,
    dropout=diff_trunk.dropout,
    pose_kwargs=pose_kw,
  )
  x = jnp.zeros((1, *input_shape(model)), jnp.float32)
  init = lambda: model.init(jax.random.key(0), x, train=False)
  # Shapes only when both networks come from checkpoints; a real init for a missing initialiser.
  variables = jax.eval_shape(init) if pose_params is not None else jax.jit(init)()
  params = dict(variables['params'])
  params['diff'] = convert_trunk(state_dict, diff_trunk, diff_trunk.out_channels)['params']
  if pose_params is not None:
    params['pose'] = pose_params
  return model, {**variables, 'params': params}
