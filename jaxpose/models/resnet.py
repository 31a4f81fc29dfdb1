"""ResNet-18/34/50: the torchvision-layout image backbone shared by the image models.

Paper: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385. Layout and names of torchvision's `torchvision.models.resnet` (the "v1.5"
ResNet: the Bottleneck puts its stride on the 3x3 convolution; downsample = 1x1 conv with stride
+ BatchNorm), which EpipolarPose (mkocabas/EpipolarPose@299ccb0 `lib/models/pose3d_resnet.py`),
SimpleBaselines and HMR-style regressors (DSR, PMCE) embed and initialise from torchvision's
ImageNet checkpoints. Written from the architecture description; no code copied.

Registry model `resnet` (INPUT_KIND 'image'): the ImageNet classifier.
  input   x (B, H, W, 3) float32 NHWC RGB, ImageNet-normalised (any H, W >= 32; 224 as published).
  output  logits (B, num_classes) float32 (num_classes=None: layer4 features (B, H/32, W/32, C)).
  Variants '50' (default), '18', '34': 25,557,032 / 11,689,512 / 21,797,672 parameters.

`ResNet` is the reusable feature backbone (same module, `num_classes=None`): it returns the layer4
features (B, H/32, W/32, 8 * width * expansion) = (B, H/32, W/32, 2048) for ResNet-50 and 512 for
18/34, or with `return_stages=True` a dict of every stage ('stem' after the max-pool at stride 4,
'layer1'..'layer4' at strides 4, 8, 16, 32, and 'logits' when it has a classifier). Models embed
it as a submodule (e.g. `ResNet(depth=50, name='backbone')`) and load its weights with
`backbone_variables(state_dict, module, prefix=...)`.

Numerics: BatchNorm with torch semantics (`TorchBatchNorm`, torch momentum 0.1, eps 1e-5, running
statistics at eval, collection `batch_stats`); convolutions with torch padding
(`layers.conv.Conv2d`); max-pool 3x3 s2 p1 padding with -inf like torch. Parameter names mirror the
torchvision keys (`layer1.0.downsample.0` -> `layer1_0/downsample_0`), so conversion is the shared
`convert_state_dict`. Initialisation is torchvision's: convolutions kaiming-normal (fan_out, ReLU),
BatchNorm scale 1 / bias 0, fc torch's Linear default.

Deviations: none in the forward pass. `width` (torchvision's 64) is a field only so that tests can
build toy-width networks; `zero_init_residual`, groups and dilation are not supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.models.layers.conv import (
  BatchNorm2d,
  Conv2d,
  Initializer,
  global_avg_pool,
  kaiming_normal_fan_out,
  max_pool2d,
)
from jaxpose.models.layers.linear import Linear

INPUT_KIND = 'image'
RNG_STREAMS = ()

# depth -> (block, blocks per stage); torchvision's resnet18 ... resnet152.
SPECS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
  18: ('basic', (2, 2, 2, 2)),
  34: ('basic', (3, 4, 6, 3)),
  50: ('bottleneck', (3, 4, 6, 3)),
  101: ('bottleneck', (3, 4, 23, 3)),
  152: ('bottleneck', (3, 8, 36, 3)),
}
EXPANSION = {'basic': 1, 'bottleneck': 4}

VARIANTS = {
  '50': {'depth': 50},
  '18': {'depth': 18},
  '34': {'depth': 34},
}
TEST_VARIANT = '18'
TEST_OVERRIDES = {'width': 8, 'num_classes': 10, 'input_size': 32}

PAPER = {
  '50': {'params': 25_557_032, 'reported_params': '25.6M (torchvision resnet50)'},
  '18': {'params': 11_689_512, 'reported_params': '11.7M (torchvision resnet18)'},
  '34': {'params': 21_797_672, 'reported_params': '21.8M (torchvision resnet34)'},
}

STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with an identity (or 1x1 conv + BN) shortcut; expansion 1.

  Attributes:
    planes: output channels.
    strides: stride of the first 3x3 convolution (and of the shortcut).
    downsample: project the shortcut with `downsample_0` (1x1 conv) + `downsample_1` (BN).
    bn_momentum: torch-convention BatchNorm momentum.
    kernel_init: convolution initialiser (torchvision: kaiming-normal, fan_out, ReLU gain).
  """

  planes: int
  strides: int = 1
  downsample: bool = False
  bn_momentum: float = 0.1
  kernel_init: Initializer = kaiming_normal_fan_out

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, H, W, C_in) -> (B, H/s, W/s, planes)."""
    init, bn = self.kernel_init, self.bn_momentum
    y = Conv2d(self.planes, 3, self.strides, 1, use_bias=False, kernel_init=init, name='conv1')(x)
    y = nn.relu(BatchNorm2d(bn, name='bn1')(y, train=train))
    y = Conv2d(self.planes, 3, 1, 1, use_bias=False, kernel_init=init, name='conv2')(y)
    y = BatchNorm2d(bn, name='bn2')(y, train=train)
    return nn.relu(y + _shortcut(self, x, self.planes, train))


class Bottleneck(nn.Module):
  """1x1 reduce, 3x3 (carrying the stride: torchvision v1.5), 1x1 expand x4; projection shortcut.

  Attributes:
    planes: bottleneck width; the output has 4 * planes channels.
    strides: stride of the 3x3 convolution (and of the shortcut).
    downsample: project the shortcut with `downsample_0` (1x1 conv) + `downsample_1` (BN).
    bn_momentum: torch-convention BatchNorm momentum.
    kernel_init: convolution initialiser (torchvision: kaiming-normal, fan_out, ReLU gain).
  """

  planes: int
  strides: int = 1
  downsample: bool = False
  bn_momentum: float = 0.1
  kernel_init: Initializer = kaiming_normal_fan_out

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, H, W, C_in) -> (B, H/s, W/s, 4 * planes)."""
    init, bn, p = self.kernel_init, self.bn_momentum, self.planes
    y = Conv2d(p, 1, use_bias=False, kernel_init=init, name='conv1')(x)
    y = nn.relu(BatchNorm2d(bn, name='bn1')(y, train=train))
    y = Conv2d(p, 3, self.strides, 1, use_bias=False, kernel_init=init, name='conv2')(y)
    y = nn.relu(BatchNorm2d(bn, name='bn2')(y, train=train))
    y = Conv2d(4 * p, 1, use_bias=False, kernel_init=init, name='conv3')(y)
    y = BatchNorm2d(bn, name='bn3')(y, train=train)
    return nn.relu(y + _shortcut(self, x, 4 * p, train))


def _shortcut(block: nn.Module, x: jax.Array, out: int, train: bool) -> jax.Array:
  if not block.downsample:
    return x
  y = Conv2d(
    out,
    1,
    block.strides,
    use_bias=False,
    kernel_init=block.kernel_init,
    parent=block,
    name='downsample_0',
  )(x)
  return BatchNorm2d(block.bn_momentum, parent=block, name='downsample_1')(y, train=train)


BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}


def make_stage(
  parent: nn.Module,
  x: jax.Array,
  name: str,
  block: str,
  planes: int,
  blocks: int,
  strides: int,
  *,
  train: bool,
  bn_momentum: float = 0.1,
  kernel_init: Initializer = kaiming_normal_fan_out,
) -> jax.Array:
  """torchvision `_make_layer`: `blocks` blocks named `{name}_{i}`, the first one strided and
  projecting its shortcut when the stride or the channel count changes.

  Call from inside a compact `parent`; x: (B, H, W, C) -> (B, H/s, W/s, planes * expansion).
  """
  cls, out = BLOCKS[block], planes * EXPANSION[block]
  for i in range(blocks):
    s = strides if i == 0 else 1
    down = i == 0 and (s != 1 or x.shape[-1] != out)
    x = cls(planes, s, down, bn_momentum, kernel_init, parent=parent, name=f'{name}_{i}')(
      x, train=train
    )
  return x


class ResNet(nn.Module):
  """ResNet feature backbone / classifier, torchvision names and numerics.

  Attributes:
    depth: 18, 34, 50, 101 or 152.
    width: stem channels (torchvision: 64); stage i has width * 2^i planes.
    num_classes: classifier outputs (avg-pool + `fc`); None for the feature backbone.
    bn_momentum: torch-convention BatchNorm momentum (0.1).
  """

  depth: int = 50
  width: int = 64
  num_classes: int | None = None
  bn_momentum: float = 0.1

  @property
  def block(self) -> str:
    if self.depth not in SPECS:
      raise ValueError(f'ResNet depth must be one of {sorted(SPECS)}; got {self.depth}')
    return SPECS[self.depth][0]

  @property
  def out_channels(self) -> int:
    """Channels of the layer4 features: 8 * width * expansion (2048 for ResNet-50)."""
    return 8 * self.width * EXPANSION[self.block]

  @nn.compact
  def __call__(
    self, x: jax.Array, *, train: bool, return_stages: bool = False
  ) -> jax.Array | dict[str, jax.Array]:
    """Runs the network.

    Args:
      x: (B, H, W, 3) float32 NHWC, ImageNet-normalised RGB.
      train: batch statistics (and `batch_stats` updates) when True, running statistics else.
      return_stages: return every stage in a dict instead of the final output.

    Returns:
      logits (B, num_classes) when `num_classes`, else layer4 features (B, H/32, W/32,
      out_channels); with `return_stages` a dict {'stem': (B, H/4, W/4, width), 'layer1' ..
      'layer4', and 'logits' when present}.
    """
    block, blocks = self.block, SPECS[self.depth][1]
    init, bn = kaiming_normal_fan_out, self.bn_momentum
    y = Conv2d(self.width, 7, 2, 3, use_bias=False, kernel_init=init, name='conv1')(x)
    y = nn.relu(BatchNorm2d(bn, name='bn1')(y, train=train))
    y = max_pool2d(y, 3, 2, 1)
    stages = {'stem': y}
    for i, (name, n) in enumerate(zip(STAGES, blocks)):
      y = make_stage(
        self, y, name, block, self.width * 2**i, n, 1 if i == 0 else 2, train=train, bn_momentum=bn
      )
      stages[name] = y
    if self.num_classes:
      y = Linear(self.num_classes, name='fc')(global_avg_pool(y))
      stages['logits'] = y
    return stages if return_stages else y


class Model(ResNet):
  """The registry's ResNet: the ImageNet classifier (torchvision `resnet{18,34,50}`).

  Attributes (besides `ResNet`'s):
    num_classes: 1000 (ImageNet); None turns it into the feature backbone.
    input_size: side of the square example input (224), only used by `example_inputs`.
  """

  num_classes: int | None = 1000
  input_size: int = 224


def input_shape(model: Model) -> tuple[int, int, int]:
  """(H, W, 3) of the example input."""
  return (model.input_size, model.input_size, 3)


def example_inputs(model: Model, batch: int = 1) -> tuple[jax.Array]:
  """One zero image batch (batch, H, W, 3)."""
  return (jnp.zeros((batch, *input_shape(model)), jnp.float32),)


# ----------------------------------------------------------------------------------------------
# torch import


def _strip(state_dict: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
  if prefix and not prefix.endswith('.'):
    prefix += '.'
  return {k[len(prefix) :]: np.asarray(v) for k, v in state_dict.items() if k.startswith(prefix)}


def _is_backbone_key(key: str, with_fc: bool) -> bool:
  head = key.split('.', 1)[0]
  return head in ('conv1', 'bn1', *STAGES) or (with_fc and head == 'fc')


def infer_config(state_dict: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """Reads depth, width and num_classes from torchvision-keyed weights.

  Args:
    state_dict: torch key -> array; the ResNet keys may sit under `prefix` (e.g. 'backbone.').
    prefix: key prefix of the ResNet (a trailing '.' is optional).

  Returns:
    {'depth': int, 'width': int, 'num_classes': int | None}.

  Raises:
    ValueError: no `conv1.weight`, or a block structure that is not a known ResNet.
  """
  sd = _strip(state_dict, prefix)
  if 'conv1.weight' not in sd:
    raise ValueError(f'no ResNet stem: key {prefix + "conv1.weight"!r} missing from the state dict')
  block = 'bottleneck' if 'layer1.0.conv3.weight' in sd else 'basic'
  counts = []
  for stage in STAGES:
    idx = {int(k.split('.')[1]) for k in sd if k.startswith(stage + '.')}
    counts.append(max(idx) + 1 if idx else 0)
  found = [d for d, spec in SPECS.items() if spec == (block, tuple(counts))]
  if not found:
    raise ValueError(
      f'state dict (prefix {prefix!r}) has {block} blocks {tuple(counts)} per stage, which is '
      f'no torchvision ResNet; known: {SPECS}'
    )
  fc = sd.get('fc.weight')
  return {
    'depth': found[0],
    'width': int(sd['conv1.weight'].shape[0]),
    'num_classes': int(fc.shape[0]) if fc is not None else None,
  }


def backbone_variables(
  state_dict: Mapping[str, Any], module: ResNet, *, prefix: str = '', input_size: int = 64
) -> dict[str, Any]:
  """Converts the ResNet part of a torch state dict for `module` (a `ResNet` or `Model`).

  Only keys under `prefix` whose module is conv1, bn1, layer1..layer4 (and fc when `module` has
  a classifier) are read; every other key is left to the caller, so a whole-model checkpoint
  (EpipolarPose, HMR) can be passed as is.

  Args:
    state_dict: torch key -> array (numpy or torch tensors converted by the caller).
    module: the flax ResNet the variables are for.
    prefix: key prefix of the ResNet in `state_dict`.
    input_size: side of the dummy input used to trace the variable shapes (no compute).

  Returns:
    {'params': ..., 'batch_stats': ...} for `module.apply`.

  Raises:
    ValueError: listing missing keys and shape mismatches.
  """
  sd = _strip(state_dict, prefix)
  sd = {k: v for k, v in sd.items() if _is_backbone_key(k, bool(module.num_classes))}
  x = jnp.zeros((1, input_size, input_size, 3), jnp.float32)
  ref = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return convert_state_dict(sd, ref)


def from_torch(
  state_dict: Mapping[str, Any],
  *,
  prefix: str = '',
  num_classes: int | None = None,
  **official_kwargs: Any,
) -> tuple[Model, dict[str, Any]]:
  """torchvision ResNet state dict -> (Model, variables).

  Args:
    state_dict: torchvision keys (conv1, bn1, layer{1-4}.{i}.conv{1,2,3} / bn{1,2,3} /
      downsample.{0,1}, fc), BatchNorm running_mean / running_var / num_batches_tracked. A
      backbone-only state dict (no fc) gives the feature backbone (`num_classes=None`).
    prefix: strip this prefix first and ignore keys outside it (e.g. 'backbone.' or 'module.').
    num_classes: torchvision's argument; checked against fc when given.
    **official_kwargs: other torchvision constructor arguments (only their defaults are
      supported; anything else raises).

  Returns:
    (module, variables), `module.apply(variables, x, train=False)` = the torch model in eval mode.
  """
  if official_kwargs:
    raise ValueError(f'unsupported torchvision ResNet arguments: {sorted(official_kwargs)}')
  cfg = infer_config(state_dict, prefix)
  if num_classes is not None and cfg['num_classes'] != num_classes:
    raise ValueError(f'num_classes={num_classes} but fc.weight has {cfg["num_classes"]} rows')
  sd = _strip(state_dict, prefix)
  module = Model(**cfg)
  x = jnp.zeros((1, 64, 64, 3), jnp.float32)
  ref = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return module, convert_state_dict(sd, ref)
