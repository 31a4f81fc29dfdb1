"""EpipolarPose's 3D pose network: ResNet + deconvolution head + volumetric integral regression.

Paper: Kocabas, Karagoz, Akbas, "Self-Supervised Learning of 3D Human Pose using Multi-view
Geometry", CVPR 2019, arXiv:1903.02330. Official code: github.com/mkocabas/EpipolarPose at
299ccb0acd4b0c57ef875aeb77b4e4e177c6accf (`lib/models/pose3d_resnet.py` `PoseResNet` with
`MODEL.VOLUME: true`, `lib/core/integral_loss.py` `softmax_integral_tensor`); research/
epipolarpose.md §2 and §10. The network is Integral Human Pose's (Sun et al., arXiv:1711.08229) on
SimpleBaselines' deconvolution head. Written from the spec; no code copied (the official licence
is non-commercial; only facts carried over).

Architecture:
  backbone  torchvision ResNet-18/34/50 (`resnet.ResNet`, layer4 at stride 32)
  head      3 x [ConvTranspose2d(k 4, s 2, p 1, output_padding 0, no bias) -> BN -> ReLU], 256
            filters: 8x8 -> 64x64 at 256x256 input; then `final_layer` 1x1 conv (with bias) to
            J * D channels, joint-major.
  integral  the (B, J, D, H, W) volume (z, y, x), softmax over each joint's D*H*W voxels, then
            x = sum(p i_x)/W - 0.5, y = sum(p i_y)/H - 0.5, z = sum(p i_z)/D - 0.5 (no +0.5).

Registry model `epipolarpose` (INPUT_KIND 'image'):
  input   x (B, 256, 256, 3) float32 NHWC ImageNet-normalised RGB crop.
  output  dict: 'pose_norm' (B, J, 3) float32 normalised patch coordinates in [-0.5, 0.5):
          x = u_patch / 256 - 0.5, y = v_patch / 256 - 0.5, z = (Z - Z_root) / (2000 mm * scale)
          (i.e. z in units of the 2 m depth range); decode with `jaxpose.methods.epipolarpose`.
          With `return_logits=True` also 'logits' (B, J, D, H, W) float32 (pre-softmax volume).
  Variants 'r50' (default, 34,274,944 parameters), 'r34', 'r18' with J = 17 (H36M order, root 0),
  D = 64; 'r50_ss' J = 16 in MPII order (root index 6), the self-supervised configs.

Numerics: torch BatchNorm semantics (momentum 0.1, eps 1e-5; running statistics at eval);
transposed convolutions with torch's padding and kernel layout (`layers.conv.ConvTranspose2d`).
Initialisation as the official `init_weights`: deconvolutions and final conv N(0, 0.001), bias 0,
BN 1 / 0; the backbone torchvision's (the official code then loads ImageNet or MPII weights).

`from_torch` maps the official keys (conv1, bn1, layer1-4 -> `backbone`; deconv_layers.{0,1,3,4,
6,7}, final_layer -> `head`). Deviations: the unused `VOLUME: false` branch (2D heatmaps +
`depth_fc`) is not ported; `width` exists only for toy tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.models import resnet
from jaxpose.models.layers.conv import (
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  conv_transpose_as_conv_weight,
  normal_init,
)
from jaxpose.models.layers.integral import channels_to_volume, softmax_integral_3d
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.norms import TorchBatchNorm

INPUT_KIND = 'image'
RNG_STREAMS = ()

VARIANTS = {
  'r50': {'depth': 50},
  'r34': {'depth': 34},
  'r18': {'depth': 18},
  'r50_ss': {'depth': 50, 'num_joints': 16},
}
TEST_OVERRIDES = {
  'depth': 18,
  'width': 8,
  'deconv_filters': (16, 16, 16),
  'depth_res': 8,
  'num_joints': 4,
  'input_size': 64,
}
PAPER = {
  'r50': {'params': 34_274_944, 'reported_params': 'SimpleBaseline-50 33,999,697 + J*D final'},
}

# kernel -> (padding, output_padding) of the official `_get_deconv_cfg`.
DECONV_CFG = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
_INIT = normal_init(0.001)
_ZERO = nn.initializers.zeros


class DeconvHead(nn.Module):
  """SimpleBaselines deconvolution head + final conv to a per-joint volume.

  Names follow the official Sequential: `deconv_layers_{3i}` (ConvTranspose2d),
  `deconv_layers_{3i+1}` (BN), then `final_layer`.

  Attributes:
    num_joints: J.
    depth_res: D, depth bins of the volume.
    filters: output channels of each deconvolution (len = number of deconvolutions).
    kernels: kernel size of each deconvolution (4, 3 or 2; padding from the official table).
    with_bias: deconvolutions with bias (official DECONV_WITH_BIAS, False).
    final_kernel: 1 (padding 0) or 3 (padding 1).
    bn_momentum: torch-convention BatchNorm momentum.
  """

  num_joints: int = 17
  depth_res: int = 64
  filters: Sequence[int] = (256, 256, 256)
  kernels: Sequence[int] = (4, 4, 4)
  with_bias: bool = False
  final_kernel: int = 1
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, h, w, C) features -> (B, J, D, h * 2^n, w * 2^n) logits volume (n deconvolutions)."""
    if len(self.filters) != len(self.kernels):
      raise ValueError(f'filters {self.filters} and kernels {self.kernels} differ in length')
    for i, (f, k) in enumerate(zip(self.filters, self.kernels)):
      if k not in DECONV_CFG:
        raise ValueError(f'deconvolution kernel must be one of {sorted(DECONV_CFG)}; got {k}')
      p, q = DECONV_CFG[k]
      x = ConvTranspose2d(
        f, k, 2, p, q, self.with_bias, _INIT, _ZERO, name=f'deconv_layers_{3 * i}'
      )(x)
      x = nn.relu(BatchNorm2d(self.bn_momentum, name=f'deconv_layers_{3 * i + 1}')(x, train=train))
    pad = 1 if self.final_kernel == 3 else 0
    x = Conv2d(
      self.num_joints * self.depth_res,
      self.final_kernel,
      1,
      pad,
      kernel_init=_INIT,
      bias_init=_ZERO,
      name='final_layer',
    )(x)
    return channels_to_volume(x, self.num_joints)


class Model(nn.Module):
  """ResNet + deconvolution head + integral regression (the official `PoseResNet`, VOLUME on).

  Attributes:
    depth: ResNet depth (18, 34, 50).
    num_joints: J (17 H36M order; 16 MPII order for the self-supervised configs).
    depth_res: D, depth bins (64).
    deconv_filters: filters of the deconvolutions (256, 256, 256).
    deconv_kernels: kernels of the deconvolutions (4, 4, 4).
    deconv_with_bias: official DECONV_WITH_BIAS (False).
    final_kernel: FINAL_CONV_KERNEL (1).
    width: ResNet stem width (64; smaller only in tests).
    input_size: side of the square input crop (256), used by `example_inputs`.
    return_logits: also return the (B, J, D, H, W) logits volume.
  """

  depth: int = 50
  num_joints: int = 17
  depth_res: int = 64
  deconv_filters: Sequence[int] = (256, 256, 256)
  deconv_kernels: Sequence[int] = (4, 4, 4)
  deconv_with_bias: bool = False
  final_kernel: int = 1
  width: int = 64
  input_size: int = 256
  return_logits: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    """x: (B, H, W, 3) ImageNet-normalised crop -> {'pose_norm': (B, J, 3)[, 'logits']}."""
    feats = resnet.ResNet(self.depth, self.width, name='backbone')(x, train=train)
    logits = DeconvHead(
      self.num_joints,
      self.depth_res,
      tuple(self.deconv_filters),
      tuple(self.deconv_kernels),
      self.deconv_with_bias,
      self.final_kernel,
      name='head',
    )(feats, train=train)
    out = {'pose_norm': softmax_integral_3d(logits)}
    if self.return_logits:
      out['logits'] = logits
    return out


_KAIMING_NORMAL = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


class _RefineBlock(nn.Module):
  """Linear -> BatchNorm1d -> ReLU -> Dropout (one layer of `RefineNet`)."""

  features: int
  dropout: float
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    y = Linear(self.features, kernel_init=_KAIMING_NORMAL, name='linear')(x)
    y = TorchBatchNorm(axis=-1, momentum=self.bn_momentum, name='bn')(y, train=train)
    return nn.Dropout(self.dropout, deterministic=not train)(nn.relu(y))


class _RefineStage(nn.Module):
  """Two residual pairs of `_RefineBlock` (the official `LinearPG`)."""

  features: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for pair in range(2):
      y = _RefineBlock(self.features, self.dropout, name=f'block_{2 * pair}')(x, train=train)
      x = x + _RefineBlock(self.features, self.dropout, name=f'block_{2 * pair + 1}')(
        y, train=train
      )
    return x


class RefineNet(nn.Module):
  """EpipolarPose's refinement unit (paper §3.3; the official `LinearModelPG`, two stages).

  Attributes:
    out_features: 3 (J - 1), the z-scored non-root coordinates it predicts (45 officially).
    hidden: width of the linear layers (1024).
    dropout: dropout probability (0.5; RNG stream 'dropout' when training).

  Call: x (B, D_in) float32 z-scored pose -> (p1, p2), each (B, out_features): the intermediate
  and the final refined pose (z-scored).
  """

  out_features: int = 45
  hidden: int = 1024
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
    inp = _RefineBlock(self.hidden, self.dropout, name='inp')(x, train=train)
    s1 = _RefineStage(self.hidden, self.dropout, name='stage_0')(inp, train=train)
    p1 = Linear(self.out_features, kernel_init=_KAIMING_NORMAL, name='w2')(s1)
    y = s1 + _RefineBlock(self.hidden, self.dropout, name='w3')(p1, train=train) + inp
    y = inp + _RefineStage(self.hidden, self.dropout, name='stage_1')(y, train=train)
    p2 = Linear(self.out_features, kernel_init=_KAIMING_NORMAL, name='w4')(y)
    return p1, p2


def input_shape(model: Model) -> tuple[int, int, int]:
  """(H, W, 3) of the example input."""
  return (model.input_size, model.input_size, 3)


def example_inputs(model: Model, batch: int = 1) -> tuple[jax.Array]:
  """One zero image batch (batch, H, W, 3)."""
  return (jnp.zeros((batch, *input_shape(model)), jnp.float32),)


# ----------------------------------------------------------------------------------------------
# torch import


def _head_config(sd: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
  """DeconvHead fields (except num_joints/depth_res) from `{prefix}deconv_layers.*` shapes."""
  filters, kernels, bias = [], [], False
  i = 0
  while f'{prefix}deconv_layers.{3 * i}.weight' in sd:
    w = sd[f'{prefix}deconv_layers.{3 * i}.weight']  # (C_in, C_out, k, k)
    filters.append(int(w.shape[1]))
    kernels.append(int(w.shape[2]))
    bias = bias or f'{prefix}deconv_layers.{3 * i}.bias' in sd
    i += 1
  if not filters:
    raise ValueError(f'no deconvolution layers: key {prefix}deconv_layers.0.weight missing')
  final = sd.get(f'{prefix}final_layer.weight')
  if final is None:
    raise ValueError(f'key {prefix}final_layer.weight missing')
  return {
    'filters': tuple(filters),
    'kernels': tuple(kernels),
    'with_bias': bias,
    'final_kernel': int(final.shape[-1]),
    'out_channels': int(final.shape[0]),
  }


def head_variables(
  state_dict: Mapping[str, Any], module: DeconvHead, in_channels: int, *, prefix: str = ''
) -> dict[str, Any]:
  """Converts `{prefix}deconv_layers.*` and `{prefix}final_layer.*` for a `DeconvHead`.

  ConvTranspose2d weights (C_in, C_out, k, k) are first rewritten as the equivalent direct
  convolution's weight (`conv_transpose_as_conv_weight`: flipped, in/out swapped); then
  everything goes through `convert_state_dict`.

  Args:
    state_dict: torch key -> array.
    module: the head the variables are for.
    in_channels: channels of the features the head is applied to.
    prefix: key prefix of `deconv_layers` / `final_layer`.

  Returns:
    {'params': ..., 'batch_stats': ...} for `module.apply`.
  """
  sd = {
    k[len(prefix) :]: np.asarray(v)
    for k, v in state_dict.items()
    if k.startswith(prefix)
    and k[len(prefix) :].split('.', 1)[0] in ('deconv_layers', 'final_layer')
  }
  for k, v in sd.items():
    if k.startswith('deconv_layers.') and k.endswith('.weight') and v.ndim == 4:
      sd[k] = conv_transpose_as_conv_weight(v)
  x = jnp.zeros((1, 2, 2, in_channels), jnp.float32)
  ref = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return convert_state_dict(sd, ref)


def head_from_torch(
  state_dict: Mapping[str, Any],
  in_channels: int,
  *,
  num_joints: int,
  depth_res: int,
  prefix: str = '',
) -> tuple[DeconvHead, dict[str, Any]]:
  """A stand-alone `DeconvHead` and its variables from `{prefix}deconv_layers.*` /
  `{prefix}final_layer.*` keys; the layer count, filters, kernels and bias come from the shapes.

  Args:
    state_dict: torch key -> array.
    in_channels: channels of the features the head is applied to.
    num_joints: J (MODEL.NUM_JOINTS).
    depth_res: D (MODEL.DEPTH_RES); J * D must equal the final layer's channels.
    prefix: key prefix of the head.
  """
  sd = {k[len(prefix) :]: np.asarray(v) for k, v in state_dict.items() if k.startswith(prefix)}
  cfg = _head_config(sd, '')
  if num_joints * depth_res != cfg['out_channels']:
    raise ValueError(
      f'{prefix}final_layer.weight has {cfg["out_channels"]} channels != num_joints '
      f'{num_joints} x depth_res {depth_res}'
    )
  module = DeconvHead(
    num_joints, depth_res, cfg['filters'], cfg['kernels'], cfg['with_bias'], cfg['final_kernel']
  )
  return module, head_variables(sd, module, in_channels)


def from_torch(
  state_dict: Mapping[str, Any],
  *,
  num_joints: int | None = None,
  depth_res: int = 64,
  prefix: str = '',
  **official_kwargs: Any,
) -> tuple[Model, dict[str, Any]]:
  """Official EpipolarPose `PoseResNet` state dict -> (Model, variables).

  Args:
    state_dict: official keys: conv1, bn1, layer1-4 (torchvision names), deconv_layers.{0,1,3,
      4,6,7}, final_layer (weight, bias). A DataParallel `module.` prefix is passed as `prefix`.
    num_joints: MODEL.NUM_JOINTS (17, or 16 for the MPII-order self-supervised models); with
      `depth_res` it splits the final layer's J*D channels. Default: channels / depth_res.
    depth_res: MODEL.DEPTH_RES (64).
    prefix: key prefix to strip (keys outside it are ignored).
    **official_kwargs: `Model` fields that override the inferred ones (e.g. input_size).

  Returns:
    (module, variables) with `module.apply(variables, x, train=False)['pose_norm']` = the official
    `softmax_integral_tensor` of the model's eval-mode output.
  """
  if prefix and not prefix.endswith('.'):
    prefix += '.'
  sd = {k[len(prefix) :]: np.asarray(v) for k, v in state_dict.items() if k.startswith(prefix)}
  backbone_cfg = resnet.infer_config(sd)
  head = _head_config(sd, '')
  channels = head.pop('out_channels')
  if num_joints is None:
    num_joints = channels // depth_res
  if num_joints * depth_res != channels:
    raise ValueError(
      f'final_layer.weight has {channels} channels != num_joints {num_joints} x depth_res '
      f'{depth_res}'
    )
  cfg = {
    'depth': backbone_cfg['depth'],
    'width': backbone_cfg['width'],
    'num_joints': num_joints,
    'depth_res': depth_res,
    'deconv_filters': head['filters'],
    'deconv_kernels': head['kernels'],
    'deconv_with_bias': head['with_bias'],
    'final_kernel': head['final_kernel'],
    **official_kwargs,
  }
  module = Model(**cfg)
  backbone = resnet.ResNet(module.depth, module.width)
  head_module = DeconvHead(
    num_joints,
    depth_res,
    module.deconv_filters,
    module.deconv_kernels,
    module.deconv_with_bias,
    module.final_kernel,
  )
  bb = resnet.backbone_variables(sd, backbone)
  hd = head_variables(sd, head_module, backbone.out_channels)
  known = {k for k in sd if k.split('.', 1)[0] in ('conv1', 'bn1', *resnet.STAGES)}
  known |= {k for k in sd if k.split('.', 1)[0] in ('deconv_layers', 'final_layer')}
  extra = sorted(set(sd) - known)
  if extra:
    raise ValueError(f'unexpected keys in the EpipolarPose state dict: {extra[:20]}')
  variables = {
    col: {'backbone': bb[col], 'head': hd[col]} for col in ('params', 'batch_stats') if col in bb
  }
  return module, variables
