"""2-D convolution layers with PyTorch semantics, channels-last (NHWC).

The image backbones (ResNet, HRNet) and heads (EpipolarPose's deconvolutions) are ported from
PyTorch code; these layers reproduce `torch.nn.Conv2d`, `torch.nn.ConvTranspose2d`,
`torch.nn.MaxPool2d`, `torch.nn.Upsample(mode='nearest')` and `torch.nn.BatchNorm2d` on NHWC
arrays, with variable names and layouts that the torch converters map mechanically:

  Conv2d           params/kernel (kH, kW, C_in, C_out) = torch weight (C_out, C_in, kH, kW)
                   transposed (2, 3, 1, 0); params/bias (C_out,)
  ConvTranspose2d  params/kernel (kH, kW, C_in, C_out) = torch weight (C_in, C_out, kH, kW)
                   flipped spatially and transposed (2, 3, 0, 1) (`conv_transpose_kernel`;
                   `conv_transpose_as_conv_weight` gives the equivalent Conv2d weight for
                   generic converters); params/bias (C_out,)
  BatchNorm2d      `layers.norms.TorchBatchNorm` on the last axis: params/{scale, bias},
                   batch_stats/{mean, var}; torch momentum 0.1 (= flax momentum 0.9), eps 1e-5,
                   running statistics at eval, unbiased running variance like torch.

Padding is torch's symmetric integer padding, never flax's 'SAME' (which pads asymmetrically
for even strides). A transposed convolution with stride s, padding p and output padding q is the
convolution of the input dilated by s (s - 1 zeros between samples) with the flipped kernel,
padded by (k - 1 - p, k - 1 - p + q) per spatial axis, so its output size is
(H - 1) s - 2p + k + q, torch's formula (`conv_transpose_dilated`). `ConvTranspose2d` computes
the same numbers as one stride-1 convolution to s^2 C_out channels followed by depth-to-space
(`conv_transpose_subpixel`), because XLA:CPU's weight gradient of the dilated form is 15 to 60
times slower than its forward (EpipolarPose's ResNet-50 head, batch 4: 80.7 s vs 5.8 s per
training gradient).

Default initialisers are torch's (`kaiming_uniform_(a=sqrt(5))` for weights, U(+-1/sqrt(fan_in))
for biases, where torch's fan_in of a transposed-convolution weight is C_out kH kW); ports pass
the official initialisers explicitly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.models.layers.linear import torch_bias_init
from jaxpose.models.layers.norms import TorchBatchNorm

Initializer = Callable[..., jax.Array]
_DIMS = ('NHWC', 'HWIO', 'NHWC')

# torch's default conv weight init, kaiming_uniform(a=sqrt(5)) = U(+-sqrt(1 / fan_in)).
torch_conv_init: Initializer = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')
# The same for a transposed convolution: torch computes fan_in from weight dim 1 = C_out.
torch_conv_transpose_init: Initializer = nn.initializers.variance_scaling(
  1.0 / 3.0, 'fan_out', 'uniform'
)
# torchvision's ResNet conv init: kaiming_normal_(mode='fan_out', nonlinearity='relu').
kaiming_normal_fan_out: Initializer = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def normal_init(std: float) -> Initializer:
  """N(0, std^2), untruncated (torch `nn.init.normal_(w, std=std)`)."""
  return nn.initializers.normal(stddev=std)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Conv2d(nn.Module):
  """torch.nn.Conv2d on NHWC inputs.

  Attributes:
    features: output channels C_out.
    kernel_size: kH (= kW) or (kH, kW).
    strides: stride or (sH, sW).
    padding: symmetric zero padding per side, torch's integer `padding`.
    use_bias: add a bias (torch `bias=True`).
    kernel_init: None = torch's default.
    bias_init: None = torch's default U(+-1/sqrt(C_in kH kW)).
  """

  features: int
  kernel_size: int | tuple[int, int] = 3
  strides: int | tuple[int, int] = 1
  padding: int | tuple[int, int] = 0
  use_bias: bool = True
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, H, W, C_in) -> (B, H', W', C_out), H' = (H + 2p - kH) // sH + 1."""
    kh, kw = _pair(self.kernel_size)
    ph, pw = _pair(self.padding)
    c_in = x.shape[-1]
    kernel = self.param(
      'kernel', self.kernel_init or torch_conv_init, (kh, kw, c_in, self.features), jnp.float32
    )
    y = jax.lax.conv_general_dilated(
      x,
      kernel.astype(x.dtype),
      window_strides=_pair(self.strides),
      padding=((ph, ph), (pw, pw)),
      dimension_numbers=_DIMS,
    )
    if self.use_bias:
      init = self.bias_init or torch_bias_init(c_in * kh * kw)
      y = y + self.param('bias', init, (self.features,), jnp.float32).astype(y.dtype)
    return y


class ConvTranspose2d(nn.Module):
  """torch.nn.ConvTranspose2d (groups 1, dilation 1) on NHWC inputs.

  The kernel is stored ready for the equivalent direct convolution: torch's (C_in, C_out, kH, kW)
  weight flipped in both spatial axes and transposed to (kH, kW, C_in, C_out); see
  `conv_transpose_kernel`.

  Attributes:
    features: output channels C_out.
    kernel_size: k or (kH, kW).
    strides: s or (sH, sW).
    padding: torch `padding` p (removes p rows/cols from each side of the full output).
    output_padding: torch `output_padding` q (adds q rows/cols at the bottom/right).
    use_bias: add a bias.
    kernel_init: None = torch's default.
    bias_init: None = torch's default U(+-1/sqrt(C_out kH kW)).
  """

  features: int
  kernel_size: int | tuple[int, int] = 4
  strides: int | tuple[int, int] = 2
  padding: int | tuple[int, int] = 1
  output_padding: int | tuple[int, int] = 0
  use_bias: bool = True
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, H, W, C_in) -> (B, (H - 1) sH - 2 pH + kH + qH, (W - 1) sW - 2 pW + kW + qW, C_out)."""
    kh, kw = _pair(self.kernel_size)
    ph, pw = _pair(self.padding)
    qh, qw = _pair(self.output_padding)
    kernel = self.param(
      'kernel',
      self.kernel_init or torch_conv_transpose_init,
      (kh, kw, x.shape[-1], self.features),
      jnp.float32,
    )
    y = conv_transpose_subpixel(x, kernel.astype(x.dtype), _pair(self.strides), (ph, pw), (qh, qw))
    if self.use_bias:
      init = self.bias_init or torch_bias_init(self.features * kh * kw)
      y = y + self.param('bias', init, (self.features,), jnp.float32).astype(y.dtype)
    return y


def conv_transpose_dilated(
  x: jax.Array,
  kernel: jax.Array,
  strides: tuple[int, int],
  padding: tuple[int, int],
  output_padding: tuple[int, int] = (0, 0),
) -> jax.Array:
  """Transposed convolution as the direct convolution of the stride-dilated input (reference).

  x (B, H, W, C_in), kernel (kH, kW, C_in, C_out) in `ConvTranspose2d`'s stored (flipped) layout
  -> (B, (H - 1) sH - 2 pH + kH + qH, ..., C_out). Exactly torch's ConvTranspose2d; its weight
  gradient is pathologically slow on XLA:CPU (a convolution with a dilated right-hand side), so
  the layer uses `conv_transpose_subpixel`; this form is kept as the readable reference.
  """
  kh, kw = kernel.shape[:2]
  (ph, pw), (qh, qw) = padding, output_padding
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    window_strides=(1, 1),
    padding=((kh - 1 - ph, kh - 1 - ph + qh), (kw - 1 - pw, kw - 1 - pw + qw)),
    lhs_dilation=strides,
    dimension_numbers=_DIMS,
  )


def _phase_taps(k: int, s: int, p: int) -> tuple[int, np.ndarray]:
  """Sub-pixel taps of one axis of a transposed convolution (kernel k, stride s, padding p).

  Output o = s m + r (phase r) is sum_j x[m + (r + p) // s - j] w[(r + p) % s + s j] over the
  torch taps t = (r + p) % s + s j < k. Written as a correlation over input offsets
  d = d_lo .. d_hi around m, this returns (d_lo, index (d_hi - d_lo + 1, s)): the stored
  (flipped) kernel index of offset d_lo + e for phase r, or k (a zero tap) where that phase has
  no tap.
  """
  base = [(r + p) // s for r in range(s)]
  lo, hi = min(base) - (-(-k // s) - 1), max(base)
  e = np.arange(hi - lo + 1)[:, None]
  r = np.arange(s)[None, :]
  j = np.asarray(base)[None, :] - (lo + e)
  t = (r + p) % s + s * j
  return lo, np.where((j >= 0) & (t < k), k - 1 - t, k)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def conv_transpose_subpixel(
  x: jax.Array,
  kernel: jax.Array,
  strides: tuple[int, int],
  padding: tuple[int, int],
  output_padding: tuple[int, int] = (0, 0),
) -> jax.Array:
  """Transposed convolution as one stride-1 convolution to sH sW C_out channels + depth-to-space.

  Exactly `conv_transpose_dilated` (same arguments and output) without zero-dilation: output row
  o = sH m + r (phase r) is a correlation of the input rows around m with the kernel taps of
  phase r (`_phase_taps`); all phases are output-channel groups of one stride-1 convolution whose
  kernel is gathered from the stored one (zeros where a phase has fewer taps), and the phases are
  interleaved (pixel shuffle), then cropped to the output size. For torch's k 4, s 2, p 1 this
  is a 3 x 3 'same' convolution to 4 C_out channels: its forward and both gradients are
  ordinary same-size convolutions, which XLA:CPU runs at full speed, whereas the weight gradient
  of the dilated form (and of a 2 x 2 convolution with an output larger than its input) takes 15
  to 60 times its forward there (experiments/epipolarpose_deepmimic/README.md). Jitted under
  its own name so that `jaxpose.bench.flops` counts it as the transposed convolution it is
  (thop's convention), not as the zero-padded 3 x 3 sub-pixel kernel.

  Args:
    x: (B, H, W, C_in).
    kernel: (kH, kW, C_in, C_out), `ConvTranspose2d`'s stored layout.
    strides, padding, output_padding: torch's (sH, sW), (pH, pW), (qH, qW).

  Returns:
    (B, (H - 1) sH - 2 pH + kH + qH, (W - 1) sW - 2 pW + kW + qW, C_out).
  """
  kh, kw, c_in, c_out = kernel.shape
  (sh, sw), (ph, pw), (qh, qw) = strides, padding, output_padding
  b, h, w, _ = x.shape
  lo_h, ih = _phase_taps(kh, sh, ph)
  lo_w, iw = _phase_taps(kw, sw, pw)
  eh, ew = ih.shape[0], iw.shape[0]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index k = a zero tap
  # (eh, sh, ew, sw, C_in, C_out) -> (eh, ew, C_in, sh, sw, C_out): channels phase-major
  sub = padded[ih[:, :, None, None], iw[None, None, :, :]]
  sub = jnp.transpose(sub, (0, 2, 4, 1, 3, 5)).reshape(eh, ew, c_in, sh * sw * c_out)
  out_h, out_w = (h - 1) * sh - 2 * ph + kh + qh, (w - 1) * sw - 2 * pw + kw + qw
  mh, mw = -(-out_h // sh), -(-out_w // sw)  # rows / cols per phase
  z = jax.lax.conv_general_dilated(
    x,
    sub,
    window_strides=(1, 1),
    padding=((-lo_h, mh - h + lo_h + eh - 1), (-lo_w, mw - w + lo_w + ew - 1)),
    dimension_numbers=_DIMS,
  )
  z = z.reshape(b, mh, mw, sh, sw, c_out).transpose(0, 1, 3, 2, 4, 5)
  return z.reshape(b, mh * sh, mw * sw, c_out)[:, :out_h, :out_w]


def BatchNorm2d(momentum: float = 0.1, epsilon: float = 1e-5, **kwargs) -> TorchBatchNorm:  # noqa: N802
  """torch.nn.BatchNorm2d for NHWC: `TorchBatchNorm` over the channel (last) axis.

  `momentum` is torch's (0.1 = flax's 0.9); pass `name=` like any flax module.
  """
  return TorchBatchNorm(axis=-1, momentum=momentum, epsilon=epsilon, **kwargs)


def max_pool2d(x: jax.Array, kernel_size: int = 3, stride: int = 2, padding: int = 1) -> jax.Array:
  """torch.nn.MaxPool2d(kernel_size, stride, padding) on (B, H, W, C) (pads with -inf)."""
  return nn.max_pool(
    x, (kernel_size, kernel_size), strides=(stride, stride), padding=((padding, padding),) * 2
  )


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """torch.nn.Upsample(scale_factor=factor, mode='nearest') for an integer factor: (B, H, W, C)
  -> (B, factor H, factor W, C)."""
  if factor == 1:
    return x
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def global_avg_pool(x: jax.Array) -> jax.Array:
  """(B, H, W, C) -> (B, C): mean over all positions (torch AdaptiveAvgPool2d(1) + flatten)."""
  return jnp.mean(x, axis=(1, 2))


def conv_kernel(weight: np.ndarray) -> np.ndarray:
  """torch Conv2d weight (C_out, C_in, kH, kW) -> `Conv2d` kernel (kH, kW, C_in, C_out)."""
  return np.transpose(np.asarray(weight), (2, 3, 1, 0))


def conv_transpose_kernel(weight: np.ndarray) -> np.ndarray:
  """torch ConvTranspose2d weight (C_in, C_out, kH, kW) -> `ConvTranspose2d` kernel.

  Flips both spatial axes and transposes to (kH, kW, C_in, C_out).
  """
  w = np.asarray(weight)
  if w.ndim != 4:
    raise ValueError(f'ConvTranspose2d weight must be (C_in, C_out, kH, kW); got shape {w.shape}')
  return np.ascontiguousarray(np.transpose(w[:, :, ::-1, ::-1], (2, 3, 0, 1)))


def conv_transpose_as_conv_weight(weight: np.ndarray) -> np.ndarray:
  """torch ConvTranspose2d weight (C_in, C_out, kH, kW) -> the torch Conv2d weight (C_out, C_in,
  kH, kW) of the equivalent direct convolution over the stride-dilated input (kernel flipped).

  `conv_kernel` of the result equals `conv_transpose_kernel` of the input, so generic converters
  that treat every 4-D weight as a Conv2d's handle a transposed convolution after this step.
  """
  w = np.asarray(weight)
  if w.ndim != 4:
    raise ValueError(f'ConvTranspose2d weight must be (C_in, C_out, kH, kW); got shape {w.shape}')
  return np.ascontiguousarray(np.swapaxes(w[:, :, ::-1, ::-1], 0, 1))
