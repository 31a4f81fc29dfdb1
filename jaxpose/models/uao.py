"""GUMLP: the single-frame GCN + uMLP lifter with a per-joint uncertainty head, from UAO.

Paper: Wang et al., "Uncertainty-Aware Testing-Time Optimization for 3D Human Pose Estimation",
IEEE TMM 2025, arXiv:2402.02339. Official code: github.com/xiu-cs/UAO-Pose3D at commit
cb505888df43b760cbcc6cd616f6b1232f89d131 (`model/model_Gaussian.py`, `model/graph_frames.py`).
Written from the spec in research/uao.md; no code copied. The test-time optimisation (TTO) and the
training loss live in `jaxpose/methods/uao.py`. `WithUncertainty(lifter)` (end of this file) adds
UAO's log-scale head to any other registry lifter.

Each frame is lifted on its own (B, T, J, 2) -> (B, T, J, 3): the official model is single-frame
(T = 1); other T are folded into the batch. Per frame, x: (J, 2) normalised screen coordinates:
  1. encoder: Dense(2 -> 64) -> Dense(64 -> C), no activation in between;
  2. `layers` blocks on h (J, C), each
       h = h + DropPath(GCN(LN_J(h)))
       h = h + DropPath(channel_uMLP(LN_C(h)) + spatial_uMLP(LN_J(h)^T)^T)
     LN_J normalises over the joint axis (17 affine params), LN_C over channels. The GCN is a
     Dense(C -> K*C) followed by out[w, c] = sum_k sum_v h[v, k, c] A[k, v, w] with the K = 4
     partition adjacency A (`spatial_adjacency`). channel_uMLP: C -> 256 -> 256 (+ residual)
     -> C; spatial_uMLP over joints: J -> 3J -> 6J -> 6J (+ residual) -> 3J -> J. Every Dense of
     both uMLPs, the last one included, is followed by exact GELU and dropout (0.1 / 0.05).
     DropPath rates linspace(0, 0.2, layers);
  3. heads on the same features through two separate LayerNorms:
     mu = Dense(C/2 -> 3)(Dense(C -> C/2)(LN_mu(h))), log_s likewise with one output; no activation.
All LayerNorms use eps 1e-6.

`mu` is the root-relative 3D pose in metres (the official targets have the root zeroed); `log_s`
(B, T, J, 1) is the per-joint log-scale of a Laplace-like density on the joint error norm: the
training loss is mean(||y - mu|| * exp(-log_s) + log_s) (`jaxpose.methods.uao.uncertainty_nll`).

Deviations from the official code:
  * The adjacency `adj` (K, J, J) is a `params` entry with a stop-gradient in the forward pass: the
    official model holds it as an `nn.Parameter(requires_grad=False)` (counted in its published
    4,510,215 parameters, never trained). It gets exactly zero gradients here; an optimiser with
    weight decay would still shrink it, so mask it there (the official recipe uses none).
  * The encoder's output width is the field `channel` (the official code hard-codes 512 and so
    only runs with channel = 512; the tiny parity fixture patches the same layer to `channel`).
  * The spatial uMLP widths are 3J and 6J (official literals 51 and 102 for J = 17).
  * Official CLI arguments `d_hid`, `token_dim` and the block `drop_rate` are accepted by
    `from_torch` and ignored, as in the official model.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import models
from jaxpose.convert import torch_utils as tu
from jaxpose.geometry import skeleton as skel
from jaxpose.models.layers.drop_path import DropPath
from jaxpose.models.layers.mlp import gelu
from jaxpose.models.layers.norms import LayerNorm

# Centre joint of the official H36M graph (spine): the partition distances are measured from it.
H36M_CENTER = 7

VARIANTS = {
  'published': {'channel': 512, 'layers': 3},  # train.sh, Model_Gaussian_p1_4941.pth
  'l5': {'channel': 512, 'layers': 5},  # the commented-out alternative in train.sh
}

TEST_OVERRIDES = {'channel': 32, 'layers': 1}

PAPER = {
  'published': {
    'params': 4_510_215,
    'frames': 1,
    'macs_linear': 110.2e6,  # thop, per frame (research/uao.md)
    'flops_per_frame': 223.2e6,  # torch FlopCounterMode
    'reported_params': '4.51M (measured on the official code)',
    'mpjpe_mm': 49.4,  # H36M CPN, flip test, no TTO (README)
    'mpjpe_mm_tto': 46.7,  # + UAO test-time optimisation (README)
  },
  'l5': {'params': 7_316_785, 'frames': 1, 'macs_linear': 180.3e6, 'flops_per_frame': 365.4e6},
}


def _hops_from(center: int, edges: Sequence[tuple[int, int]], num_joints: int) -> np.ndarray:
  """Breadth-first graph distance of every joint from `center` along `edges`: (J,) int."""
  nbrs = collections.defaultdict(list)
  for a, b in edges:
    nbrs[a].append(b)
    nbrs[b].append(a)
  dist = np.full(num_joints, -1)
  dist[center] = 0
  queue = collections.deque([center])
  while queue:
    a = queue.popleft()
    for b in nbrs[a]:
      if dist[b] < 0:
        dist[b] = dist[a] + 1
        queue.append(b)
  if (dist < 0).any():
    raise ValueError(f'skeleton is not connected: joints {np.flatnonzero(dist < 0)} unreachable')
  return dist


def spatial_adjacency(skeleton: str = 'h36m17', center: int = H36M_CENTER) -> np.ndarray:
  """The official 'spatial' partition adjacency of a single-frame skeleton graph.

  Edges are self-loops, bones and the skeleton's left/right pairs. The binary one-hop adjacency is
  column-normalised (A D^-1, D the column sums) and split by the relation of the entry (v, w):
  [0] v == w ("root"); [1] v farther from `center` than w ("close"); [2] v nearer ("further");
  [3] symmetric pairs. Distances to the centre are hop counts along bones; a bone between two
  joints at the same distance would be dropped, as in the official code (none in H36M).

  Args:
    skeleton: joint layout name (`jaxpose.geometry.skeleton`); the official graph is 'h36m17'.
    center: joint the partition distances are measured from (7, the spine, for H36M).

  Returns:
    adj: (4, J, J) float32; out[w] = sum_k sum_v h_k[v] adj[k, v, w].
  """
  sk = skel.get(skeleton)
  j, bones, symmetric = sk.num_joints, sk.bones, tuple(zip(sk.left, sk.right, strict=True))
  sym = {frozenset(e) for e in symmetric}
  binary = np.eye(j)
  for a, b in [*bones, *symmetric]:
    binary[a, b] = binary[b, a] = 1.0
  norm = binary / binary.sum(axis=0, keepdims=True)
  dist = _hops_from(center, bones, j)
  out = np.zeros((4, j, j))
  for v, w in zip(*np.nonzero(binary)):
    if v == w:
      k = 0
    elif frozenset((v, w)) in sym:
      k = 3
    elif dist[v] > dist[w]:
      k = 1
    elif dist[v] < dist[w]:
      k = 2
    else:
      continue
    out[k, v, w] = norm[v, w]
  return out.astype(np.float32)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of one sample."""
  return (model.num_frames, model.num_joints, model.in_channels)


class _JointLayerNorm(nn.Module):
  """LayerNorm over the joint axis of (N, J, C) (official LN on the transposed (N, C, J))."""

  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = LayerNorm(epsilon=self.epsilon, name='ln')(jnp.swapaxes(x, -1, -2))
    return jnp.swapaxes(y, -1, -2)


class _LinearBlock(nn.Module):
  """Dense -> exact GELU -> dropout (official `linear_block`)."""

  features: int
  drop: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = gelu(nn.Dense(self.features, name='linear')(x))
    return nn.Dropout(self.drop)(x, deterministic=not train)


class _Block(nn.Module):
  """One GCN + (channel, spatial) uMLP block on h: (N, J, C)."""

  channel_hidden: int
  spatial_hidden: int
  drop_path: float
  epsilon: float

  @nn.compact
  def __call__(self, h: jax.Array, adj: jax.Array, *, train: bool) -> jax.Array:
    n, j, c = h.shape
    k = adj.shape[0]
    dp = DropPath(self.drop_path)

    g = _JointLayerNorm(self.epsilon, name='norm1')(h)
    g = nn.Dense(k * c, name='gcn1')(g).reshape(n, j, k, c)  # torch Conv1d(k=1), view (K, C)
    g = jnp.einsum('nvkc,kvw->nwc', g, adj)
    h = h + dp(g, train=train)

    ch = LayerNorm(epsilon=self.epsilon, name='norm2')(h)
    down = _LinearBlock(self.channel_hidden, 0.1, name='channel_down')(ch, train=train)
    mid = _LinearBlock(self.channel_hidden, 0.1, name='channel_mid')(down, train=train) + down
    ch = _LinearBlock(c, 0.1, name='channel_up')(mid, train=train)

    sp = jnp.swapaxes(_JointLayerNorm(self.epsilon, name='norm3')(h), -1, -2)  # (N, C, J)
    half = self.spatial_hidden // 2
    sp = _LinearBlock(half, 0.05, name='spatial_up1')(sp, train=train)
    up2 = _LinearBlock(self.spatial_hidden, 0.05, name='spatial_up2')(sp, train=train)
    sp = _LinearBlock(self.spatial_hidden, 0.05, name='spatial_mid')(up2, train=train) + up2
    sp = _LinearBlock(half, 0.05, name='spatial_down1')(sp, train=train)
    sp = _LinearBlock(j, 0.05, name='spatial_down2')(sp, train=train)
    return h + dp(ch + jnp.swapaxes(sp, -1, -2), train=train)


class Model(nn.Module):
  """GUMLP lifter with mean and per-joint log-scale heads.

  Attributes:
    channel: feature width C (512 published; the encoder outputs C).
    layers: number of GCN + uMLP blocks (3 published).
    num_joints: joints J (the default adjacency is the H36M-17 graph).
    num_frames: frames T of `example_input` (the model itself is per frame).
    in_channels: input coordinates per joint (2).
    encoder_hidden: width of the encoder's first Dense (official literal 64).
    channel_hidden: channel uMLP hidden width (official literal 256).
    spatial_hidden: spatial uMLP widest layer; None gives 6 J (official 102).
    drop_path_rate: last block's DropPath rate; rates are linspace(0, rate, layers).
    epsilon: LayerNorm eps.
    skeleton: joint layout the adjacency is built from (`spatial_adjacency`).
    center: centre joint of the adjacency partitions.
  """

  channel: int = 512
  layers: int = 3
  num_joints: int = 17
  num_frames: int = 1
  in_channels: int = 2
  encoder_hidden: int = 64
  channel_hidden: int = 256
  spatial_hidden: int | None = None
  drop_path_rate: float = 0.2
  epsilon: float = 1e-6
  skeleton: str = 'h36m17'
  center: int = H36M_CENTER

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, return_uncertainty: bool = False):
    """Lifts every frame of x independently.

    Args:
      x: kp2d_norm (B, T, J, 2) normalised screen coordinates (T = 1 in the paper).
      train: dropout and DropPath on (rng stream 'dropout').
      return_uncertainty: also return the per-joint log-scale.

    Returns:
      pose3d_cam (B, T, J, 3) root-relative metres; with `return_uncertainty`, the pair
      (pose3d_cam, log_s) with log_s (B, T, J, 1), the natural log of the per-joint scale (m).
    """
    b, t, j, c = x.shape
    if (j, c) != (self.num_joints, self.in_channels):
      raise ValueError(f'expected (B, T, {self.num_joints}, {self.in_channels}), got {x.shape}')
    adj_init = spatial_adjacency(self.skeleton, self.center)
    if adj_init.shape[-1] != j:
      raise ValueError(f'skeleton {self.skeleton!r} has {adj_init.shape[-1]} joints, input has {j}')
    adj = self.param('adj', lambda _: jnp.asarray(adj_init))
    adj = jax.lax.stop_gradient(adj)  # official: nn.Parameter(requires_grad=False)

    h = x.reshape(b * t, j, c)
    h = nn.Dense(self.encoder_hidden, name='encoder_fc1')(h)
    h = nn.Dense(self.channel, name='encoder_fc5')(h)
    rates = np.linspace(0.0, self.drop_path_rate, self.layers) if self.layers else []
    spatial_hidden = self.spatial_hidden or 6 * j
    for i, rate in enumerate(rates):
      h = _Block(
        self.channel_hidden, spatial_hidden, float(rate), self.epsilon, name=f'blocks_{i}'
      )(h, adj, train=train)

    def head(name: str, out: int) -> jax.Array:
      y = LayerNorm(epsilon=self.epsilon, name=f'norm_{name}')(h)
      y = nn.Dense(self.channel // 2, name=f'pred_{name}_fc1')(y)
      return nn.Dense(out, name=f'pred_{name}_fc5')(y).reshape(b, t, j, out)

    mu = head('mu', 3)
    if not (return_uncertainty or self.is_initializing()):
      return mu  # the log-scale head's params still exist (created at init)
    log_s = head('s', 1)
    return (mu, log_s) if return_uncertainty else mu


# ---------------------------------------------------------------------------------------------
# Official checkpoint import.


def _f32(tree):
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


def _dense(sd: Mapping[str, np.ndarray], key: str) -> dict[str, jnp.ndarray]:
  """torch Linear or Conv1d(kernel_size=1) -> {'kernel': (in, out), 'bias'} float32."""
  return _f32(tu.linear(np.asarray(sd[f'{key}.weight'], np.float32), sd[f'{key}.bias']))


def _ln(sd: Mapping[str, np.ndarray], key: str) -> dict[str, jnp.ndarray]:
  """torch LayerNorm -> {'scale', 'bias'} float32."""
  return _f32(tu.layer_norm(sd[f'{key}.weight'], sd[f'{key}.bias']))


_CHANNEL = {'channel_down': 'linear_down', 'channel_mid': 'linear_mid', 'channel_up': 'linear_up'}
_SPATIAL = ('up1', 'up2', 'mid', 'down1', 'down2')


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  channel: int = 512,
  layers: int = 3,
  n_joints: int = 17,
  **official_kwargs,
) -> tuple[Model, dict]:
  """Builds the Model and its variables from an official `model_Gaussian.Model` state dict.

  Args:
    state_dict: torch keys -> numpy arrays (`module.` prefixes already stripped).
    channel, layers, n_joints: the official CLI arguments `--channel`, `--layers`, `--n_joints`.
    **official_kwargs: other official arguments (`d_hid`, `token_dim`, ...); unused by the model.

  Returns:
    (module, {'params': ...}). The adjacency is taken from the state dict when present (`A`, or
    a block's `gcn1.adj`, as in CPU-saved or perturbed copies); the released checkpoint holds
    none, and the graph is rebuilt (`spatial_adjacency`).
  """
  del official_kwargs
  sd = dict(state_dict)
  found = sorted({int(k.split('.')[2]) for k in sd if k.startswith('GCN_MLP.blocks.')})
  if found != list(range(layers)):
    raise ValueError(f'state dict has blocks {found}, expected layers={layers}')
  hidden = sd['encoder.fc1.weight'].shape[0]
  model = Model(
    channel=channel,
    layers=layers,
    num_joints=n_joints,
    encoder_hidden=hidden,
    channel_hidden=sd['GCN_MLP.blocks.0.channel_mlp.linear_down.linear.0.weight'].shape[0],
    spatial_hidden=sd['GCN_MLP.blocks.0.spatial_mlp.linear_mid.linear.0.weight'].shape[0],
  )
  if 'A' in sd:
    adj = sd['A']
  elif 'GCN_MLP.blocks.0.gcn1.adj' in sd:
    adj = sd['GCN_MLP.blocks.0.gcn1.adj']
  else:
    adj = spatial_adjacency(model.skeleton, model.center)
  p: dict = {
    'adj': jnp.asarray(adj, jnp.float32),
    'encoder_fc1': _dense(sd, 'encoder.fc1'),
    'encoder_fc5': _dense(sd, 'encoder.fc5'),
  }
  for i in range(layers):
    t = f'GCN_MLP.blocks.{i}'
    blk = {
      'norm1': {'ln': _ln(sd, f'{t}.norm1')},
      'gcn1': _dense(sd, f'{t}.gcn1.conv1d'),
      'norm2': _ln(sd, f'{t}.norm2'),
      'norm3': {'ln': _ln(sd, f'{t}.norm3')},
    }
    for ours, theirs in _CHANNEL.items():
      blk[ours] = {'linear': _dense(sd, f'{t}.channel_mlp.{theirs}.linear.0')}
    for s in _SPATIAL:
      blk[f'spatial_{s}'] = {'linear': _dense(sd, f'{t}.spatial_mlp.linear_{s}.linear.0')}
    p[f'blocks_{i}'] = blk
  for name in ('mu', 's'):
    p[f'norm_{name}'] = _ln(sd, f'GCN_MLP.norm_{name}')
    p[f'pred_{name}_fc1'] = _dense(sd, f'pred_{name}.fc1')
    p[f'pred_{name}_fc5'] = _dense(sd, f'pred_{name}.fc5')
  return model, {'params': p}


# ---------------------------------------------------------------------------------------------
# A log-scale head for any other lifter.


def center_frames(x: jax.Array, t_out: int) -> jax.Array:
  """The centre t_out frames of x (B, T, ...) -> (B, t_out, ...): what a receptive-field model
  predicts (T_out < T)."""
  pad = (x.shape[1] - t_out) // 2
  return x[:, pad : pad + t_out]


class WithUncertainty(nn.Module):
  """Adds UAO's per-joint log-scale head to any lifter.

  The wrapped lifter's variables live under `lifter`, so a trained lifter's params drop in as
  `{'params': {'lifter': lifter_params, 'uncertainty_norm': ..., 'uncertainty_fc1': ...,
  'uncertainty_fc2': ...}}`. The head is
  LayerNorm -> Dense(hidden) -> GELU -> Dense(1) per joint, on either
    * the lifter's representation: the input of its final layer named `rep_layer` (captured with
      `nn.intercept_methods`, no second pass; MotionAGFormer: 'head'), or
    * (rep_layer=None) the lifter's output pose concatenated with the centre-frame 2D input.
  This is a jaxpose addition (the paper's only uncertainty model is GUMLP); its log-scale is
  trained with `uncertainty_nll` like GUMLP's.

  Attributes:
    lifter: any model-contract lifter, (B, T, J, C) -> (B, T_out, J, 3).
    hidden: width of the head's hidden layer.
    rep_layer: name of the lifter's final layer whose input is the representation, or None.
  """

  lifter: nn.Module
  hidden: int = 64
  rep_layer: str | None = None

  @property
  def input_shape(self) -> tuple[int, ...]:
    """(T, J, C_in) of the wrapped lifter."""
    return tuple(models.example_input(self.lifter).shape[1:])

  @property
  def num_frames(self) -> int:
    return self.input_shape[0]

  @property
  def num_joints(self) -> int:
    return self.input_shape[1]

  @property
  def in_channels(self) -> int:
    return self.input_shape[2]

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, return_uncertainty: bool = False):
    """x: (B, T, J, C) -> pose (B, T_out, J, 3), or (pose, log_s (B, T_out, J, 1))."""
    captured = []
    if self.rep_layer is None:
      pose = self.lifter(x, train=train)
      feat = jnp.concatenate([pose, center_frames(x, pose.shape[1])], axis=-1)
    else:

      def grab(next_fn, args, kwargs, context):
        if context.module.name == self.rep_layer and context.method_name == '__call__':
          captured.append(args[0])
        return next_fn(*args, **kwargs)

      with nn.intercept_methods(grab):
        pose = self.lifter(x, train=train)
      if not captured:
        raise ValueError(f'lifter has no submodule named {self.rep_layer!r} (rep_layer)')
      feat = captured[-1]
    h = LayerNorm(name='uncertainty_norm')(feat)
    h = gelu(nn.Dense(self.hidden, name='uncertainty_fc1')(h))
    log_s = nn.Dense(1, name='uncertainty_fc2')(h)
    return (pose, log_s) if return_uncertainty else pose
