"""HRNet: the pose High-Resolution Network (W32, W48) and PersPose's HRNet-W48 with a feature head.

Paper: Sun, Xiao, Liu, Wang, "Deep High-Resolution Representation Learning for Human Pose
Estimation", CVPR 2019, arXiv:1902.09212. Official code: github.com/leoxiaobin/
deep-high-resolution-net.pytorch at 6f69e4676ad8d43d0d61b64b1b9726f0c369e7b1
(`lib/models/pose_hrnet.py`, `PoseHighResolutionNet`
with the COCO configs `experiments/coco/hrnet/w{32,48}_256x192_adam_lr1e-3.yaml`). The
classification-head variant is the one HybrIK and PersPose (arXiv:2508.17239,
github.com/KenAdamsJoseph/PersPose at 1863de7, `common/model/HRNet/HRNet_hybrik.py`,
`generate_feat=True`) use; research/perspose.md §2.2. Written from the architecture; no code copied.

Structure (C = width; channels of branch b are C * 2^b, at stride 4 * 2^b):
  stem     3x3 s2 conv (64) + BN + ReLU, 3x3 s2 conv (64) + BN + ReLU          stride 4
  layer1   4 Bottlenecks (64 -> 256)
  stage 2  1 module, 2 branches; stage 3: 4 modules, 3 branches; stage 4: 3 modules, 4 branches.
           A module runs 4 BasicBlocks per branch, then fuses: output i = ReLU(sum_j f_ij(x_j)),
           f_ii = identity, j > i: 1x1 conv + BN + nearest upsampling by 2^(j-i), j < i: (i-j)
           3x3 s2 conv + BN (ReLU between them). Transitions add a branch with a 3x3 s2 conv
           (+ BN + ReLU) from the previous lowest-resolution branch and adapt channels with a 3x3
           conv where they differ.
  pose     the last module of stage 4 keeps only output 0; `final_layer` 1x1 conv -> J heatmaps.
  cls head (PersPose) stage 4 keeps all four outputs; `incre_modules` (one Bottleneck per branch,
           to 128/256/512/1024 channels), `downsamp_modules` (3x3 s2 conv with bias + BN + ReLU)
           summing from high to low resolution, `final_feat_layer` (1x1 conv with bias to 2048 +
           BN + ReLU) and a global average pool.

Registry model `hrnet` (INPUT_KIND 'image'):
  input   x (B, H, W, 3) float32 NHWC ImageNet-normalised RGB (H, W multiples of 32; COCO 256x192);
          optional `cam_info` (B, H/4, W/4, 4 * stem_width) added to the layer1 output before the
          first transition (PersPose's perspective encoding).
  output  dict: 'features' (B, H/4, W/4, C) the highest-resolution stage-4 output;
          'heatmaps' (B, H/4, W/4, J) when num_joints > 0 (the pose HRNet's final layer, logits);
          'global_feat' (B, 2048) when cls_head (PersPose's global feature).
  Variants 'w32' 28,536,113 and 'w48' 63,595,745 parameters (pose HRNet, 17 joints);
  'w48_perspose' 75,420,864 (PersPose's backbone: no final layer, classification head; equal to
  the official `get_hrnet(48, generate_feat=True)` constructor).

Numerics: BatchNorm with torch semantics (momentum 0.1, eps 1e-5) everywhere, torch conv padding,
exact nearest upsampling. Parameter names are the flax forms of the official keys (`stage2.0.
fuse_layers.1.0.0.0` -> `stage2_0/fuse_layers_1_0_0_0`), so `from_torch` is `convert_state_dict`.
Initialisation: the official `init_weights`: every convolution N(0, 0.001), biases 0, BN 1 / 0.

Deviations: the number of modules per stage, blocks per branch, stem width, head widths and the
feature dimension are fields so tests can build toy networks; the published networks use the
defaults. Only the 'SUM' fuse method and BASIC blocks in stages 2-4 exist officially and here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.models.layers.conv import (
  BatchNorm2d,
  Conv2d,
  global_avg_pool,
  normal_init,
  upsample_nearest,
)
from jaxpose.models.resnet import BasicBlock, Bottleneck, make_stage

INPUT_KIND = 'image'
RNG_STREAMS = ()

VARIANTS = {
  'w32': {'width': 32},
  'w48': {'width': 48},
  'w48_perspose': {'width': 48, 'num_joints': 0, 'cls_head': True, 'input_hw': (256, 256)},
}
TEST_OVERRIDES = {
  'width': 4,
  'stem_width': 8,
  'num_modules': (1,),  # stage 2 only: the numerics tests cover three stages
  'num_blocks': 1,
  'cls_head': True,
  'head_width': 4,
  'feat_dim': 16,
  'input_hw': (64, 64),
}
PAPER = {
  'w32': {'params': 28_536_113, 'reported_params': '28.5M (COCO 256x192)'},
  'w48': {'params': 63_595_745, 'reported_params': '63.6M (COCO 256x192)'},
  'w48_perspose': {'params': 75_420_864, 'reported_params': 'official constructor count'},
}

_INIT = normal_init(0.001)
_ZERO = nn.initializers.zeros


def _conv(features, k, s, p, name, bias=False):
  return Conv2d(features, k, s, p, use_bias=bias, kernel_init=_INIT, bias_init=_ZERO, name=name)


class HighResolutionModule(nn.Module):
  """One multi-resolution module: parallel BasicBlock branches, then the exchange (fusion).

  Attributes:
    channels: channels of each branch (C, 2C, ...).
    num_blocks: BasicBlocks per branch.
    multi_scale_output: return every fused branch (True) or only the highest-resolution one.
    bn_momentum: torch-convention BatchNorm momentum.
  """

  channels: Sequence[int]
  num_blocks: int = 4
  multi_scale_output: bool = True
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, xs: Sequence[jax.Array], *, train: bool) -> list[jax.Array]:
    """xs: per-branch (B, H / 2^b, W / 2^b, channels[b]) -> fused list of the same shapes."""
    nb, ch, bn = len(self.channels), self.channels, self.bn_momentum
    xs = list(xs)
    for b in range(nb):
      for k in range(self.num_blocks):
        blk = BasicBlock(ch[b], 1, False, bn, _INIT, name=f'branches_{b}_{k}')
        xs[b] = blk(xs[b], train=train)
    if nb == 1:
      return xs
    out = []
    for i in range(nb if self.multi_scale_output else 1):
      y = None
      for j in range(nb):
        z = xs[j] if i == j else self._fuse(xs[j], i, j, train)
        y = z if y is None else y + z
      out.append(nn.relu(y))
    return out

  def _fuse(self, x: jax.Array, i: int, j: int, train: bool) -> jax.Array:
    """Branch j resampled to branch i's resolution and channels."""
    ch, name = self.channels, f'fuse_layers_{i}_{j}'
    if j > i:
      x = _conv(ch[i], 1, 1, 0, f'{name}_0')(x)
      x = BatchNorm2d(name=f'{name}_1')(x, train=train)
      return upsample_nearest(x, 2 ** (j - i))
    for k in range(i - j):
      last = k == i - j - 1
      x = _conv(ch[i] if last else ch[j], 3, 2, 1, f'{name}_{k}_0')(x)
      x = BatchNorm2d(name=f'{name}_{k}_1')(x, train=train)
      if not last:
        x = nn.relu(x)
    return x


class HRNet(nn.Module):
  """Pose HRNet backbone with optional heatmap layer and classification (feature) head.

  Attributes:
    width: C, channels of the highest-resolution branch (32 or 48).
    num_joints: heatmap channels of `final_layer` (17, COCO); 0 for no final layer.
    cls_head: PersPose/HybrIK variant: all stage-4 outputs kept, classification head, global
      feature of `feat_dim` channels.
    stem_width: stem and layer1 bottleneck width (64; layer1 outputs 4x).
    num_modules: modules of stages 2, 3, 4 (1, 4, 3); a shorter tuple builds fewer stages
      (toy networks only).
    num_blocks: BasicBlocks per branch in each module (4).
    final_kernel: kernel of `final_layer` (1, or 3 with padding 1).
    head_width: bottleneck width of the first incre module (32; then 64, 128, 256).
    feat_dim: channels of `final_feat_layer` (2048).
    bn_momentum: torch-convention BatchNorm momentum.
    input_hw: (H, W) of the example input (256, 192), only used by `example_inputs`.
  """

  width: int = 32
  num_joints: int = 17
  cls_head: bool = False
  stem_width: int = 64
  num_modules: Sequence[int] = (1, 4, 3)
  num_blocks: int = 4
  final_kernel: int = 1
  head_width: int = 32
  feat_dim: int = 2048
  bn_momentum: float = 0.1
  input_hw: tuple[int, int] = (256, 192)

  @nn.compact
  def __call__(
    self, x: jax.Array, cam_info: jax.Array | None = None, *, train: bool
  ) -> dict[str, jax.Array]:
    """Runs the network.

    Args:
      x: (B, H, W, 3) ImageNet-normalised RGB; H and W multiples of 32.
      cam_info: optional (B, H/4, W/4, 4 * stem_width) added to the layer1 output.
      train: batch statistics (and `batch_stats` updates) when True.

    Returns:
      {'features': (B, H/4, W/4, width), 'heatmaps': (B, H/4, W/4, num_joints) if num_joints,
      'global_feat': (B, feat_dim) if cls_head}.
    """
    bn = self.bn_momentum
    y = _conv(self.stem_width, 3, 2, 1, 'conv1')(x)
    y = nn.relu(BatchNorm2d(bn, name='bn1')(y, train=train))
    y = _conv(self.stem_width, 3, 2, 1, 'conv2')(y)
    y = nn.relu(BatchNorm2d(bn, name='bn2')(y, train=train))
    y = make_stage(
      self,
      y,
      'layer1',
      'bottleneck',
      self.stem_width,
      4,
      1,
      train=train,
      bn_momentum=bn,
      kernel_init=_INIT,
    )
    if cam_info is not None:
      y = y + cam_info

    ys, prev = [y], [y.shape[-1]]
    for s, modules in enumerate(self.num_modules):
      channels = [self.width * 2**b for b in range(s + 2)]
      xs = self._transition(ys, prev, channels, f'transition{s + 1}', train)
      for m in range(modules):
        last = s == len(self.num_modules) - 1 and m == modules - 1
        xs = HighResolutionModule(
          channels, self.num_blocks, self.cls_head or not last, bn, name=f'stage{s + 2}_{m}'
        )(xs, train=train)
      ys, prev = xs, channels

    out = {'features': ys[0]}
    if self.num_joints:
      pad = 1 if self.final_kernel == 3 else 0
      out['heatmaps'] = Conv2d(
        self.num_joints,
        self.final_kernel,
        1,
        pad,
        kernel_init=_INIT,
        bias_init=_ZERO,
        name='final_layer',
      )(ys[0])
    if self.cls_head:
      out['global_feat'] = self._cls_head(ys, train)
    return out

  def _transition(self, ys, prev, channels, name, train):
    """Adapts the previous stage's outputs to `channels`, adding one lower-resolution branch."""
    xs = []
    for i, c in enumerate(channels):
      if i < len(prev):
        x = ys[i]
        if c != prev[i]:
          x = _conv(c, 3, 1, 1, f'{name}_{i}_0')(x)
          x = nn.relu(BatchNorm2d(name=f'{name}_{i}_1')(x, train=train))
      else:
        x = ys[-1]
        for j in range(i + 1 - len(prev)):
          out = c if j == i - len(prev) else prev[-1]
          x = _conv(out, 3, 2, 1, f'{name}_{i}_{j}_0')(x)
          x = nn.relu(BatchNorm2d(name=f'{name}_{i}_{j}_1')(x, train=train))
      xs.append(x)
    return xs

  def _cls_head(self, ys, train):
    """HRNet classification head up to the pooled feature: (B, feat_dim)."""
    bn, hw = self.bn_momentum, self.head_width
    y = None
    for i, x in enumerate(ys):
      planes = hw * 2**i
      down = x.shape[-1] != 4 * planes
      x = Bottleneck(planes, 1, down, bn, _INIT, name=f'incre_modules_{i}_0')(x, train=train)
      if y is None:
        y = x
        continue
      d = _conv(4 * hw * 2**i, 3, 2, 1, f'downsamp_modules_{i - 1}_0', bias=True)(y)
      d = nn.relu(BatchNorm2d(bn, name=f'downsamp_modules_{i - 1}_1')(d, train=train))
      y = x + d
    y = _conv(self.feat_dim, 1, 1, 0, 'final_feat_layer_0', bias=True)(y)
    y = nn.relu(BatchNorm2d(bn, name='final_feat_layer_1')(y, train=train))
    return global_avg_pool(y)


Model = HRNet


def input_shape(model: HRNet) -> tuple[int, int, int]:
  """(H, W, 3) of the example input."""
  return (*model.input_hw, 3)


def example_inputs(model: HRNet, batch: int = 1) -> tuple[jax.Array]:
  """One zero image batch (batch, H, W, 3)."""
  return (jnp.zeros((batch, *input_shape(model)), jnp.float32),)


def _strip(state_dict: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
  if prefix and not prefix.endswith('.'):
    prefix += '.'
  return {k[len(prefix) :]: np.asarray(v) for k, v in state_dict.items() if k.startswith(prefix)}


def _count(sd: Mapping[str, Any], head: str) -> int:
  """Number of consecutive integer children `head.{i}.` present in `sd`."""
  idx = {int(k[len(head) + 1 :].split('.', 1)[0]) for k in sd if k.startswith(head + '.')}
  return max(idx) + 1 if idx else 0


def infer_config(state_dict: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """Reads the `HRNet` fields from official-keyed weights (shapes and key structure only).

  Raises:
    ValueError: when the stem or the first transition is missing.
  """
  sd = _strip(state_dict, prefix)
  for key in ('conv1.weight', 'transition1.0.0.weight'):
    if key not in sd:
      raise ValueError(f'not an HRNet state dict: key {prefix + key!r} missing')
  cfg: dict[str, Any] = {
    'width': int(sd['transition1.0.0.weight'].shape[0]),
    'stem_width': int(sd['conv1.weight'].shape[0]),
    'num_modules': tuple(_count(sd, f'stage{s}') for s in (2, 3, 4)),
    'num_blocks': _count(sd, 'stage2.0.branches.0'),
  }
  final = sd.get('final_layer.weight')
  cfg['num_joints'] = int(final.shape[0]) if final is not None else 0
  if final is not None:
    cfg['final_kernel'] = int(final.shape[-1])
  cfg['cls_head'] = 'incre_modules.0.0.conv1.weight' in sd
  if cfg['cls_head']:
    cfg['head_width'] = int(sd['incre_modules.0.0.conv1.weight'].shape[0])
    cfg['feat_dim'] = int(sd['final_feat_layer.0.weight'].shape[0])
  return cfg


def from_torch(
  state_dict: Mapping[str, Any], *, prefix: str = '', **official_kwargs: Any
) -> tuple[HRNet, dict[str, Any]]:
  """Official HRNet state dict -> (HRNet, variables).

  Works for `PoseHighResolutionNet` checkpoints of deep-high-resolution-net.pytorch (e.g.
  `pose_hrnet_w32_256x192.pth`) and for PersPose's backbone (`backbone.` keys of a PersPose
  checkpoint with prefix='backbone.'). The architecture is read from the keys and shapes.

  Args:
    state_dict: torch key -> array, official names (conv1, bn1, layer1, transition{1,2,3},
      stage{2,3,4}.{m}.branches / fuse_layers, final_layer; incre_modules, downsamp_modules,
      final_feat_layer).
    prefix: strip it and ignore keys outside it.
    **official_kwargs: HRNet fields that override the inferred ones (e.g. input_hw).

  Returns:
    (module, variables) with `module.apply(variables, x, train=False)` = the torch model in eval.
  """
  cfg = {**infer_config(state_dict, prefix), **official_kwargs}
  module = HRNet(**cfg)
  x = jnp.zeros((1, 64, 64, 3), jnp.float32)
  ref = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return module, convert_state_dict(_strip(state_dict, prefix), ref)
