"""GLA-GCN: global-local adaptive graph convolutional network (seq2frame lifter).

Paper: Yu, Zhang, Wang, Chen, Zhao, Wang, Cao, Sun, "GLA-GCN: Global-local Adaptive Graph
Convolutional Network for 3D Human Pose Estimation from Monocular Video", ICCV 2023,
arXiv:2307.05853.
Official code: github.com/bruceyo/GLA-GCN at commit fd72990cb0983a753af6c1f9759ee29765a5409b
(`common/s_agcn.py` class `S_AGCN`, `common/agcn.py` `Graph`, `unit_gcn`, `unit_tcn`,
`TCN_GCN_unit`): the H36M/HumanEva model the released checkpoints were trained with. Written from
research/glagcn.md; no code copied (the repository has no licence file).

x (B, T, J, C_in), T = receptive field = prod(filter_widths) ->
  `data_bn` (BatchNorm over the J * C_in joint-major input channels) ->
  `expand_gcn` = TCNGCN(C_in -> C) ->
  per filter width f: res = h[:, f//2::f];  h = TCNGCN(C, stride 1)(h);  h = TCNGCN(C, stride f,
    no residual)(h) (dropout after each);  h = res + h            (T shrinks by f per stage)
  mean over the remaining frames -> the "individually connected" head as released: ONE 1x1 conv
    (C -> 3) shared by every joint (`fc`)                 -> (B, 1, J, 3), the centre frame only.
TCNGCN(x) = ReLU(TCN(AdaptiveGCN(x)) + r(x)); TCN = Conv(9 x 1 over time, stride s, explicit
padding (4, 4)) + BN; r = identity, 0, or a strided 1x1 TCN.
AdaptiveGCN (2s-AGCN `unit_gcn`, 3 subsets k = identity / inward / outward graph A_k):
  S_k = softmax over the FIRST node axis of (theta_k(x) . phi_k(x)) / (inter * T), contracted over
        (inter, T) with inter = C_out // 4 -- divided by the flattened length, not its square root;
  y   = BN(sum_k conv_d_k(x @ (S_k + A_k + PA_k)));  out = ReLU(Dropout(0.1)(y) + down(x)).
A_k are fixed (`graph_adjacency`: column-normalised inward/outward bone graphs, rebuilt from the
skeleton, not variables); PA is learnable (init 1e-6); the GCN's BN scale starts at 1e-6, so each
graph branch starts as about ReLU(down(x)).

Cost. GLA-GCN predicts ONE frame per forward pass (seq2frame): a 243-frame window costs 1.62 GMACs
for one output frame, so predicting every frame of a 243-frame clip costs about 243 x 1.62 = 394
GMACs, against about 64 GMACs (all matmuls) for MotionAGFormer-B and 154 for KTPFormer. Evaluation
must therefore batch the windows: the engine evaluates single-output models on window centres
(`data.mode = 'center'`, one edge-padded window per frame, many windows per batch).

Layout: channels-last (B, T, J, C), the NHWC form of the official NCHW (N, C, T, V) tensors; the
1x1 convolutions, the (9, 1) temporal convolution and the shared head are `nn.Conv` with the
official OIHW kernels transposed to HWIO, so `from_torch` is `convert_state_dict`. Variable names
mirror the official ones (`layers_tcngcn_3/gcn1/conv_a_0`, `down_0`, `down_1`, ...).

Deviations from the official code:
  * `causal=True` is not supported (the official causal residual slice does not line up either).
  * The per-epoch BatchNorm momentum decay of the official training (0.1 -> 0.001) is not applied by
    the jaxpose engine; `bn_momentum` sets a fixed momentum.
  * `num_joints_out` must equal `num_joints_in` (the official head reshapes per input joint).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.geometry.skeleton import get as get_skeleton
from jaxpose.geometry.skeleton import normalize_adjacency
from jaxpose.models.layers.linear import constant_init, torch_bias_init, torch_kernel_init
from jaxpose.models.layers.norms import TorchBatchNorm

# Inward links (i, j) of each dataset graph, 0-based: A_inward[j, i] = 1. For H36M-17 these are
# (child, parent) of the VideoPose3D tree; the official HumanEva-15 list orients the limbs away from
# the thorax/pelvis, which changes which links are "inward" (a published fact kept as is).
_HUMANEVA15_INWARD = (
  (14, 1),
  (1, 2),
  (2, 3),
  (3, 4),
  (1, 5),
  (5, 6),
  (6, 7),
  (1, 0),
  (0, 11),
  (11, 12),
  (12, 13),
  (0, 8),
  (8, 9),
  (9, 10),
)
INWARD: dict[str, tuple[tuple[int, int], ...]] = {
  'h36m': tuple((c, p) for c, p in enumerate(get_skeleton('h36m17').parents) if p >= 0),
  'humaneva15': _HUMANEVA15_INWARD,
}
NUM_JOINTS = {'h36m': 17, 'humaneva15': 15}

VARIANTS: dict[str, dict[str, Any]] = {
  '243': dict(filter_widths=(3, 3, 3, 3, 3)),
  '81': dict(filter_widths=(3, 3, 3, 3)),
  '27': dict(filter_widths=(3, 3, 3)),
  'humaneva15_27': dict(
    filter_widths=(3, 3, 3), dataset='humaneva15', num_joints_in=15, num_joints_out=15
  ),
}

TEST_OVERRIDES: dict[str, Any] = dict(filter_widths=(3, 3), channels=8)

# Per output frame (= per forward pass, B = 1), official class, torch FlopCounterMode / 2 (every
# conv and matmul). `macs_per_frame_clip`: predicting every frame of a 243-frame clip, one window
# per frame. The paper's own params/FLOPs are not verified here.
PAPER: dict[str, dict[str, Any]] = {
  '243': dict(
    params=1_348_856,
    macs_all=1_623_123_450,
    frames=243,
    frames_out=1,
    macs_per_frame_clip=243 * 1_623_123_450,
    reported_params='1.35M (measured, official class)',
    reported_macs='1.62G MACs per output frame, ~394G per 243-frame clip (measured)',
  ),
  '81': dict(
    params=1_096_466,
    macs_all=537_546_222,
    frames=81,
    frames_out=1,
    reported_params='1.10M (measured)',
    reported_macs='0.54G per output frame',
  ),
  '27': dict(
    params=844_076,
    macs_all=175_687_146,
    frames=27,
    frames_out=1,
    reported_params='0.84M (measured)',
    reported_macs='0.18G per output frame',
  ),
  'humaneva15_27': dict(
    params=842_724,
    macs_all=154_112_490,
    frames=27,
    frames_out=1,
    reported_params='0.84M (measured)',
    reported_macs='0.15G per output frame',
  ),
}


@functools.lru_cache(maxsize=8)
def _graph(dataset: str) -> np.ndarray:
  if dataset not in INWARD:
    raise ValueError(f'GLA-GCN graph {dataset!r} unknown; valid: {", ".join(INWARD)}')
  n = NUM_JOINTS[dataset]
  inward = np.zeros((n, n), np.float32)
  for i, j in INWARD[dataset]:
    inward[j, i] = 1.0
  # normalize_digraph: A D^-1 with column degrees (each column sums to 1 where it has links).
  return np.stack(
    [
      np.eye(n, dtype=np.float32),
      normalize_adjacency(inward, 'col'),
      normalize_adjacency(inward.T, 'col'),
    ]
  )


def graph_adjacency(dataset: str = 'h36m') -> np.ndarray:
  """The fixed 3-subset graph A (identity, inward, outward) of 2s-AGCN's spatial labelling.

  Args:
    dataset: 'h36m' (17 joints) or 'humaneva15' (15 joints).

  Returns:
    (3, J, J) float32.
  """
  return _graph(dataset).copy()


# kaiming_normal(mode='fan_out') (torch: untruncated normal, std sqrt(2 / fan_out)).
_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def _branch_init(key, shape, dtype=jnp.float32):
  """conv_d's N(0, sqrt(2 / (C_out * C_in * k_h * 3))) for a flax 1x1 kernel (1, 1, C_in, C_out)."""
  std = math.sqrt(2.0 / (shape[-1] * shape[-2] * shape[0] * 3))
  return std * jax.random.normal(key, shape, dtype)


class _BatchNorm(TorchBatchNorm):
  """`TorchBatchNorm` whose scale starts at `scale_init` (the GCN's BN starts at 1e-6)."""

  scale_init: float = 1.0

  def param(self, name, init_fn, *args, **kwargs):
    if name == 'scale':
      init_fn = constant_init(self.scale_init)
    return super().param(name, init_fn, *args, **kwargs)


def _conv(features: int, kernel: Sequence[int], name: str, **kw) -> nn.Conv:
  kw.setdefault('kernel_init', _conv_init)
  return nn.Conv(features, tuple(kernel), bias_init=nn.initializers.zeros, name=name, **kw)


class AdaptiveGCN(nn.Module):
  """2s-AGCN `unit_gcn`: three data-dependent + fixed + learned graphs over the joints.

  Attributes:
    features: C_out.
    gcn_dropout: dropout after the BN (0.1 in the official unit).
    bn_momentum: torch-convention BatchNorm momentum.
  """

  features: int
  gcn_dropout: float = 0.1
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, adj: np.ndarray, *, train: bool) -> jax.Array:
    """x: (B, T, J, C_in), adj: (3, J, J) -> (B, T, J, features)."""
    t, c_in = x.shape[1], x.shape[-1]
    inter = self.features // 4 or 3
    graph = jnp.asarray(adj, x.dtype) + self.param('PA', constant_init(1e-6), adj.shape)
    y = 0.0
    for k in range(adj.shape[0]):
      theta = _conv(inter, (1, 1), f'conv_a_{k}')(x)
      phi = _conv(inter, (1, 1), f'conv_b_{k}')(x)
      logits = jnp.einsum('btvc,btwc->bvw', theta, phi) / (inter * t)
      s = jax.nn.softmax(logits, axis=-2) + graph[k]  # columns sum to 1, then the fixed graphs
      agg = jnp.einsum('btvc,bvw->btwc', x, s)
      y = y + _conv(self.features, (1, 1), f'conv_d_{k}', kernel_init=_branch_init)(agg)
    y = _BatchNorm(momentum=self.bn_momentum, scale_init=1e-6, name='bn')(y, train=train)
    y = nn.Dropout(self.gcn_dropout, deterministic=not train)(y)
    if c_in != self.features:
      down = _conv(self.features, (1, 1), 'down_0')(x)
      down = TorchBatchNorm(momentum=self.bn_momentum, name='down_1')(down, train=train)
    else:
      down = x
    return nn.relu(y + down)


class TemporalConv(nn.Module):
  """2s-AGCN `unit_tcn`: Conv over time (kernel (K, 1), stride (s, 1), padding (K-1)/2) + BN.

  Attributes:
    features: C_out.
    kernel_size: K (odd).
    stride: s.
    bn_momentum: torch-convention BatchNorm momentum.
  """

  features: int
  kernel_size: int = 9
  stride: int = 1
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C_in) -> (B, (T - 1) // stride + 1, J, features)."""
    pad = (self.kernel_size - 1) // 2
    # Explicit padding: 'SAME' with stride 3 pads asymmetrically and shifts the sampled frames.
    y = _conv(
      self.features,
      (self.kernel_size, 1),
      'conv',
      strides=(self.stride, 1),
      padding=((pad, pad), (0, 0)),
    )(x)
    return TorchBatchNorm(momentum=self.bn_momentum, name='bn')(y, train=train)


class TCNGCN(nn.Module):
  """`TCN_GCN_unit`: ReLU(TCN(GCN(x)) + r(x)).

  Attributes:
    features: C_out.
    stride: temporal stride of the TCN (and of the residual TCN).
    residual: add r(x) (identity when shapes allow, else a strided 1x1 TCN); False adds 0.
    gcn_dropout: dropout inside the GCN.
    bn_momentum: torch-convention BatchNorm momentum.
  """

  features: int
  stride: int = 1
  residual: bool = True
  gcn_dropout: float = 0.1
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, adj: np.ndarray, *, train: bool) -> jax.Array:
    """x: (B, T, J, C_in) -> (B, (T - 1) // stride + 1, J, features)."""
    y = AdaptiveGCN(self.features, self.gcn_dropout, self.bn_momentum, name='gcn1')(
      x, adj, train=train
    )
    y = TemporalConv(self.features, 9, self.stride, self.bn_momentum, name='tcn1')(y, train=train)
    if self.residual and x.shape[-1] == self.features and self.stride == 1:
      y = y + x
    elif self.residual:
      y = y + TemporalConv(self.features, 1, self.stride, self.bn_momentum, name='residual')(
        x, train=train
      )
    return nn.relu(y)


def receptive_field(filter_widths: Sequence[int]) -> int:
  """Input frames per output frame (the official `receptive_field()`; prod for all-odd widths 3)."""
  pads, dilation = [filter_widths[0] // 2], filter_widths[0]
  for fw in filter_widths[:-1]:
    pads.append((fw - 1) * dilation // 2)
    dilation *= fw
  return 1 + 2 * sum(pads[: len(filter_widths)])


class Model(nn.Module):
  """GLA-GCN `S_AGCN` (seq2frame). Field names are the official constructor's.

  Attributes:
    num_joints_in: J of the input (17 H36M, 15 HumanEva).
    in_features: C_in (2).
    num_joints_out: J of the output; must equal num_joints_in.
    filter_widths: one stage per width (stride f); T = receptive_field(filter_widths).
    causal: must be False.
    dropout: dropout after every strided-stage unit.
    channels: graph width C (96 published).
    dataset: graph of the joints, 'h36m' or 'humaneva15'.
    gcn_dropout: dropout inside every AdaptiveGCN (fixed 0.1 in the official code).
    bn_momentum: torch-convention momentum of every BatchNorm (official training decays it from
      0.1 to 0.001 per epoch; fixed here).
  """

  num_joints_in: int = 17
  in_features: int = 2
  num_joints_out: int = 17
  filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
  causal: bool = False
  dropout: float = 0.1
  channels: int = 96
  dataset: str = 'h36m'
  gcn_dropout: float = 0.1
  bn_momentum: float = 0.1

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.filter_widths)

  def _check(self, x: jax.Array) -> None:
    if self.causal:
      raise NotImplementedError('GLA-GCN: causal=True is not supported')
    if self.num_joints_out != self.num_joints_in:
      raise ValueError('GLA-GCN: num_joints_out must equal num_joints_in')
    if any(fw % 2 == 0 for fw in self.filter_widths):
      raise ValueError(f'GLA-GCN: filter widths must be odd, got {self.filter_widths}')
    if NUM_JOINTS.get(self.dataset) != self.num_joints_in:
      raise ValueError(
        f'GLA-GCN: dataset {self.dataset!r} graph has {NUM_JOINTS.get(self.dataset)} joints, '
        f'num_joints_in={self.num_joints_in}'
      )
    expected = (self.receptive_field, self.num_joints_in, self.in_features)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
      raise ValueError(f'GLA-GCN expects (B, {", ".join(map(str, expected))}), got {x.shape}')

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Lifts one window of 2D poses to the 3D pose of its centre frame.

    Args:
      x: kp2d_norm (B, T, J, C_in), T = receptive field (edge-padded at the video ends).
      train: dropout (rng stream `dropout`) and BatchNorm batch statistics (pass
        mutable=['batch_stats']).

    Returns:
      pose3d (B, 1, J, 3) of the centre frame, metres, root-relative.
    """
    self._check(x)
    b, t, j, c = x.shape
    adj = _graph(self.dataset)
    h = TorchBatchNorm(momentum=self.bn_momentum, name='data_bn')(
      x.reshape(b, t, j * c), train=train
    ).reshape(b, t, j, c)  # channel index j * C_in + c, as the official (N, J * 2, T) view
    unit = functools.partial(
      TCNGCN, self.channels, gcn_dropout=self.gcn_dropout, bn_momentum=self.bn_momentum
    )
    h = unit(name='expand_gcn')(h, adj, train=train)
    drop = nn.Dropout(self.dropout, deterministic=not train)
    for i, fw in enumerate(self.filter_widths):
      res = h[:, fw // 2 :: fw]  # the centre frame of every group of f
      h = drop(unit(name=f'layers_tcngcn_{2 * i}')(h, adj, train=train))
      h = drop(
        unit(stride=fw, residual=False, name=f'layers_tcngcn_{2 * i + 1}')(h, adj, train=train)
      )
      h = res + h
    h = jnp.mean(h, axis=1)  # (B, J, C): the remaining time axis has length 1
    head = nn.Conv(
      3, (1,), kernel_init=torch_kernel_init, bias_init=torch_bias_init(self.channels), name='fc'
    )  # one 1x1 conv shared by every joint, over the joint axis as its length
    return head(h)[:, None]


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of one window."""
  return (model.receptive_field, model.num_joints_in, model.in_features)


def from_torch(
  state_dict: Mapping[str, np.ndarray], **official_kwargs: Any
) -> tuple[Model, dict[str, Any]]:
  """Converts an official `S_AGCN` state dict (`model_pos` of the released `.bin` files).

  Args:
    state_dict: official keys (`layers_tcngcn.0.gcn1.conv_a.0.weight`, ...) -> arrays, no `module.`.
    **official_kwargs: the official constructor arguments (num_joints_in, in_features,
      num_joints_out, filter_widths, causal, dropout, channels, dataset); `channels` and
      `num_joints_in` default to what the weights say, `filter_widths` to the number of stages.

  Returns:
    (Model, variables) with variables {'params': ..., 'batch_stats': ...}.
  """
  kw = dict(official_kwargs)
  fields = {f.name for f in dataclasses.fields(Model)} - {'parent', 'name'}
  unknown = sorted(set(kw) - fields)
  if unknown:
    raise ValueError(f'from_torch: unknown GLA-GCN kwargs {unknown}; valid: {sorted(fields)}')
  sd = state_dict
  kw.setdefault('channels', int(np.asarray(sd['fc.weight']).shape[1]))
  kw.setdefault('num_joints_in', int(np.asarray(sd['expand_gcn.gcn1.PA']).shape[-1]))
  kw.setdefault('num_joints_out', kw['num_joints_in'])
  kw.setdefault('dataset', next(k for k, n in NUM_JOINTS.items() if n == kw['num_joints_in']))
  if 'filter_widths' not in kw:
    units = {k.split('.')[1] for k in sd if k.startswith('layers_tcngcn.')}
    kw['filter_widths'] = (3,) * (len(units) // 2)
  kw['filter_widths'] = tuple(int(f) for f in kw['filter_widths'])
  model = Model(**kw)
  return model, convert_for_model(sd, model, (1, *input_shape(model)))
