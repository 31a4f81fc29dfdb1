"""VideoPose3D: dilated temporal convolutions over 2D keypoint sequences.

Paper: Pavllo, Feichtenhofer, Grangier, Auli, "3D human pose estimation in video with temporal
convolutions and semi-supervised training", CVPR 2019, arXiv:1811.11742.
Official code: github.com/facebookresearch/VideoPose3D at commit
1afb1ca0f1237776518469876342fc8669d3f6a9 (`common/model.py`: `TemporalModel`,
`TemporalModelOptimized1f`). Written from the spec in research/videopose3d.md; no code copied.

The network maps a window of 2D poses to 3D poses with valid (unpadded) 1D convolutions over time:
an expand convolution (width w0) and L residual blocks, each a dilated convolution (width w_i,
dilation prod(w_<i)) followed by a 1x1 convolution, with BatchNorm, ReLU and dropout after every
convolution and the residual added after the second dropout. A 1x1 shrink convolution (with bias)
gives the 3D joints. The receptive field is prod(w_i); T_out = T_in - (RF - 1).

Two forms share one set of variables (the official state dicts are interchangeable):
  * the dilated form (`single_frame=False`), used at inference over whole sequences;
  * the strided form (`single_frame=True`, official `TemporalModelOptimized1f`): each
    convolution has stride w_i and no dilation, so an RF-frame window gives one output frame at a
    fraction of the cost. Used for training with single-frame targets.
`causal=True` shifts every residual crop to the right so that an output frame depends only on
the current and past frames (the input is then padded on the left by RF - 1 frames).

BatchNorm is `layers.norms.TorchBatchNorm` (PyTorch running-statistics semantics, unbiased
running variance), so training statistics match the official code too; convolutions start from
PyTorch's default initialisation. Module names mirror the official ones (`expand_conv`,
`layers_conv_0`, `layers_bn_0`, `shrink`, ...), so `from_torch` is a plain
`convert.torch_utils.convert_state_dict`.

Deviations from the official code:
  * The BN momentum schedule (0.1 -> 0.001 over training) is a field (`bn_momentum`, PyTorch
    convention) fixed per module instance, not mutable state; a trainer rebuilds the module to
    change it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np

from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.models.layers.linear import torch_bias_init, torch_kernel_init
from jaxpose.models.layers.norms import TorchBatchNorm

VARIANTS = {
  'xs': {'filter_widths': (3, 3, 3)},  # RF 27
  's': {'filter_widths': (3, 3, 3, 3)},  # RF 81
  'b': {'filter_widths': (3, 3, 3, 3, 3)},  # RF 243
}

TEST_OVERRIDES = {'channels': 16}


def macs(
  filter_widths: Sequence[int],
  *,
  channels: int = 1024,
  in_dim: int = 34,
  out_dim: int = 51,
  num_frames: int | None = None,
  single_frame: bool = False,
) -> int:
  """Multiply-accumulates of the convolutions for one clip (BatchNorm and ReLU not counted).

  Args:
    filter_widths: the convolution widths (w0, w1, ...).
    channels: hidden channels C.
    in_dim: J_in * C_in input channels.
    out_dim: J_out * 3 output channels.
    num_frames: input frames T (default: the receptive field, i.e. one output frame).
    single_frame: count the strided form instead of the dilated one.

  Returns:
    MACs to map a (T, J_in, C_in) clip to its output.
  """
  rf = math.prod(filter_widths)
  t = rf if num_frames is None else num_frames
  total, dilation = 0, 1
  for i, w in enumerate(filter_widths):
    t = (t - w) // w + 1 if single_frame else t - (w - 1) * dilation
    dilation *= w
    total += t * (
      w * (in_dim if i == 0 else channels) * channels + (channels * channels if i else 0)
    )
  return total + t * channels * out_dim


def _paper_entry(
  filter_widths: Sequence[int], params: int, reported_params: str, reported_flops: str
) -> dict:
  per_clip, rf = macs(filter_widths), math.prod(filter_widths)
  return {
    'params': params,
    # Per clip = one receptive-field window -> its single output frame, run by the dilated form
    # (what `example_input` feeds). No attention, so both counts agree.
    'macs_linear': per_clip,
    'macs_all': per_clip,
    'frames': rf,
    # The paper's regime: per output frame when the dilated model runs over a long sequence
    # (one more input frame adds one frame to every layer).
    'macs_per_frame': macs(filter_widths, num_frames=rf + 1) - per_clip,
    # The strided training form on one window.
    'macs_single_frame': macs(filter_widths, single_frame=True),
    'reported_params': reported_params,
    'reported_macs': reported_flops,
  }


PAPER = {
  'xs': _paper_entry((3, 3, 3), 8_555_571, '8.56M', '17M FLOPs per frame (~8.5M MACs)'),
  's': _paper_entry((3, 3, 3, 3), 12_753_971, '12.75M', '25M FLOPs per frame (~12.7M MACs)'),
  'b': _paper_entry((3, 3, 3, 3, 3), 16_952_371, '16.95M', '33M FLOPs per frame (16.9M MACs)'),
}


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of one receptive-field window."""
  return (model.receptive_field, model.num_joints, model.in_channels)


class Model(nn.Module):
  """Temporal convolutional lifter.

  Attributes:
    filter_widths: odd convolution widths (w0, w1, ...); RF = prod(w_i).
    num_joints: input joints J.
    in_channels: input coordinates per joint C_in (2, or 3 with confidence).
    num_joints_out: output joints (default J; 1 for the trajectory model).
    channels: hidden channels.
    dropout: dropout rate after every convolution but the last.
    causal: causal residual crops (output frame t sees frames <= t).
    single_frame: strided form (official `TemporalModelOptimized1f`), same variables.
    dense: official `dense=True` ablation: undilated convolutions of width 2 * pad + 1.
    bn_momentum: BatchNorm momentum in the PyTorch convention (running = (1 - m) * running +
      m * batch; Flax's `nn.BatchNorm` momentum would be 1 - m).
  """

  filter_widths: Sequence[int] = (3, 3, 3)
  num_joints: int = 17
  in_channels: int = 2
  num_joints_out: int | None = None
  channels: int = 1024
  dropout: float = 0.25
  causal: bool = False
  single_frame: bool = False
  dense: bool = False
  bn_momentum: float = 0.1

  @property
  def receptive_field(self) -> int:
    return math.prod(self.filter_widths)

  @property
  def total_causal_shift(self) -> int:
    """Padding offset: pad sequences by RF // 2 + this on the left, RF // 2 - this on the right."""
    return self.receptive_field // 2 if self.causal else 0

  def _conv_bn(self, x, conv: str, bn: str, width: int, dilation: int, train: bool):
    stride = width if self.single_frame else 1
    x = nn.Conv(
      self.channels,
      (width,),
      strides=(stride,),
      kernel_dilation=(dilation,),
      padding='VALID',
      use_bias=False,
      kernel_init=torch_kernel_init,
      name=conv,
    )(x)
    x = TorchBatchNorm(momentum=self.bn_momentum, epsilon=1e-5, name=bn)(x, train=train)
    return nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Lifts 2D keypoint windows to 3D.

    Args:
      x: kp2d_norm (B, T, J, C_in), T >= RF.
      train: BatchNorm batch statistics (mutable `batch_stats`) and dropout (rng `dropout`).

    Returns:
      pose3d (B, T - RF + 1, J_out, 3), root-relative in the unit of the targets; with
      `single_frame`, (B, T // RF, J_out, 3): one frame per RF-frame window.
    """
    if any(w % 2 == 0 for w in self.filter_widths):
      raise ValueError(f'filter_widths must be odd, got {tuple(self.filter_widths)}')
    if self.dense and self.single_frame:
      raise ValueError('dense=True has no strided single-frame form')
    b, t, j, c = x.shape
    if (j, c) != (self.num_joints, self.in_channels):
      raise ValueError(f'expected (B, T, {self.num_joints}, {self.in_channels}), got {x.shape}')
    h = x.reshape(b, t, j * c)  # joint-major channels, as the official view()
    w0 = self.filter_widths[0]
    h = self._conv_bn(h, 'expand_conv', 'expand_bn', w0, 1, train)
    dilation = w0
    for i, w in enumerate(self.filter_widths[1:]):
      k, k1 = 2 * i, 2 * i + 1  # the official layers_conv / layers_bn indices
      pad = (w - 1) * dilation // 2
      if self.single_frame:
        shift = w // 2 if self.causal else 0
        res = h[:, shift + w // 2 :: w]
        width, dil = w, 1
      else:
        shift = (w // 2) * dilation if self.causal else 0
        res = h[:, pad + shift : h.shape[1] - pad + shift]
        width, dil = (2 * pad + 1, 1) if self.dense else (w, dilation)
      y = self._conv_bn(h, f'layers_conv_{k}', f'layers_bn_{k}', width, dil, train)
      h = res + self._conv_bn(y, f'layers_conv_{k1}', f'layers_bn_{k1}', 1, 1, train)
      dilation *= w
    j_out = self.num_joints_out or self.num_joints
    h = nn.Conv(
      j_out * 3,
      (1,),
      padding='VALID',
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(self.channels),
      name='shrink',
    )(h)
    return h.reshape(b, h.shape[1], j_out, 3)


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  num_joints_in: int | None = None,
  in_features: int = 2,
  num_joints_out: int | None = None,
  filter_widths: Sequence[int] | None = None,
  causal: bool = False,
  dropout: float = 0.25,
  channels: int | None = None,
  dense: bool = False,
):
  """Converts an official `TemporalModel` / `TemporalModelOptimized1f` state dict.

  Args:
    state_dict: official keys (`expand_conv.weight`, `layers_conv.0.weight`, ...) -> arrays.
    num_joints_in, in_features, num_joints_out, filter_widths, causal, dropout, channels, dense:
      the official constructor arguments; those left None are read off the weight shapes
      (`num_joints_in` assumes `in_features`).

  Returns:
    (Model, variables) with `params` and `batch_stats`.
  """
  sd = state_dict
  expand = np.asarray(sd['expand_conv.weight'])
  n_blocks = sum(1 for k in sd if k.startswith('layers_conv.')) // 2
  if filter_widths is None:
    if dense:
      raise ValueError('filter_widths is required with dense=True')
    filter_widths = (expand.shape[2],) + tuple(
      np.asarray(sd[f'layers_conv.{2 * i}.weight']).shape[2] for i in range(n_blocks)
    )
  model = Model(
    filter_widths=tuple(filter_widths),
    num_joints=num_joints_in or expand.shape[1] // in_features,
    in_channels=in_features,
    num_joints_out=num_joints_out or np.asarray(sd['shrink.weight']).shape[0] // 3,
    channels=channels or expand.shape[0],
    dropout=dropout,
    causal=causal,
    dense=dense,
  )
  return model, convert_for_model(sd, model, (1, *input_shape(model)))
