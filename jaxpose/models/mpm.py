"""MPM fine-tuning lifter: the P-STMO "STMO" network (MLP encoder, vanilla + strided transformers).

Paper: Zhang, Chai, Jiang, Ye, Song, Hwang, Wang, "A Unified 2D-3D Human Pose Representation via
Masked Pose Modeling", arXiv:2306.17201. The lifter is P-STMO's (Shan et al., ECCV 2022).
Official code: github.com/vvirgooo2/MPM at commit 47ceae47d75a80ca7a20dcf90371e4638669e34c
(`model/MPM.py: Model`, `model/MPMLift.py: MPMmask2, MPMmask`,
`model/component/{Transformer, strided_transformer_encoder, refine}.py`).
The repository has no licence; written from the spec in research/mpm.md, no code copied.
The masked pre-training network `PretrainNet` (below) shares the encoder modules of `Model` under
the same names, so pre-trained weights load by name (`jaxpose.methods.mpm.load_pretrained_encoder`).

Pipeline for x: kp2d_norm (B, T, J, 2):
  1. flatten to (B, T, 2J), channel = joint * 2 + coord;
  2. `encoder2d` (Simplemlp): Linear(2J -> 2C), BatchNorm, LeakyReLU(0.2), Dropout;
  3. `shared_layers_spatial` (FCBlock): one residual block of 2 x [Linear(2C), BN, LeakyReLU,
     Dropout], then Linear(2C -> C);
  4. `shared_layers_temporal`: vanilla transformer encoder (pre-norm, 8 heads, ReLU FFN) with one
     learned positional embedding (1, T, C); its output feeds
  5. `fcn_1` (BN + Linear(C -> 3J)): the VTE prediction of every frame (B, T, J, 3), and
  6. `transformer_reduce`: strided transformer, one layer per stride s (T -> ceil(T / s)), whose FFN
     is Conv1d(k=1) -> ReLU -> Conv1d(k=3, stride s, pad 1) and whose residual keeps every s-th
     frame; layers 0-2 add their own positional embedding sliced to the current length;
  7. `fcn` (BN + Linear(C -> 3J)): the centre-frame pose (B, 1, J, 3);
  8. optional `refine` (P-STMO post-refinement): per-joint sigmoid weights mixing the predicted
     x, y with the back-projection of the input 2D at the predicted depth (needs the camera and
     the GT root; see `uvd_to_xyz`).

Pre-training network (`PretrainNet`, official `MPMmask2`; `decoder_layers=2` gives `MPMmask`):
  * a 2D branch `encoder2d` (Simplemlp 2J -> 2C) and a 3D branch `encoder3d` (3J -> 2C), then the
    layers shared by both: `shared_layers_spatial` (FCBlock 2C -> C) and `shared_layers_temporal`
    (vanilla transformer), named exactly like the fine-tuning lifter (`jaxpose.models.mpm.Model`)
    so that `load_pretrained_encoder` copies them by name;
  * spatial masking: masked joints are replaced by a learnable token (`spatial_mask_token2d` (2,),
    `spatial_mask_token3d` (3,)) before the encoder;
  * temporal masking, MAE style: the positional embedding is added to all frames, then only the
    visible frames are encoded; `encoder_LN` normalises them;
  * decoder input: visible features + `dec_pos_embedding`, masked frames `temporal_mask_token` +
    `dec_pos_embedding`, in the original frame order; `decoder2d` / `decoder3d` (transformers
    without positional embedding) and BN + Linear heads `fcn_dec2d` (2J) / `fcn_dec3d` (3J).
  Outputs: the 2D reconstruction and the 2D->3D lift from the masked 2D input, and the 3D
  reconstruction from the masked 3D input.
  Masks are drawn from the RNG stream 'mask' (`sample_masks`, the official `MaskGen`) unless
  given explicitly (`MASK_KEYS`).

Every LayerNorm is `PstmoLayerNorm` (unbiased std, eps 1e-6 added to the std). BatchNorm is
`TorchBatchNorm` (torch running statistics). Attention is the shared `layers.Attention`: the four
official Linear(C, C) (q, k, v, out) are stored as the fused `qkv` (q | k | v, head-major) and
`proj`; the official FFN Linear pair is the shared `Mlp` (`fc1`, `fc2`, ReLU).

Deviations from the official code:
  * Parameter names are Flax-style (`layers_0`, `qkv`, `fc1`, `scale`/`bias` of BatchNorm);
    `from_torch` documents the mapping. Each transformer's `norm` is created (so parameter counts
    and checkpoints match) but, as in the official code, never applied.
  * Dropout after the FFN's second Linear is the transformer's residual dropout, applied once
    inside `Mlp` (the official code applies it in `SublayerConnection`); same distribution.
  * `refine` takes the back-projected pose `refine_xyz` as an argument (computed by the caller
    with `uvd_to_xyz`) instead of reading cameras inside the model; without it the refine module
    mixes the prediction with itself, i.e. it is the identity (this is also what `init` uses).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert import torch_utils as tu
from jaxpose.models.layers.attention import Attention
from jaxpose.models.layers.linear import Linear, torch_bias_init, torch_kernel_init
from jaxpose.models.layers.mlp import Mlp
from jaxpose.models.layers.norms import TorchBatchNorm
from jaxpose.models.layers.pstmo_norm import PstmoLayerNorm

# Official stride tables (common/opt.py), keyed by the receptive field T.
STRIDES = {
  1: (1,),
  9: (1, 3, 3),
  27: (3, 3, 3),
  81: (3, 3, 3, 3),
  243: (3, 3, 3, 3, 3),
  351: (3, 9, 13),
}

VARIANTS = {
  # README evaluation command (H36M, 17 joints): T=243, 4 VTE layers.
  'h36m_f243': {'num_frames': 243, 'num_joints': 17, 'layers': 4},
  # P-STMO-243 size (opt.py default layers=3).
  'h36m_f243_l3': {'num_frames': 243, 'num_joints': 17, 'layers': 3},
  # README trainer_3dhp.py: 16 joints (H36M-16 order), 3 layers.
  '3dhp_f243': {'num_frames': 243, 'num_joints': 16, 'layers': 3},
  'h36m_f81': {'num_frames': 81, 'num_joints': 17, 'layers': 3},
  'h36m_f27': {'num_frames': 27, 'num_joints': 17, 'layers': 3},
}

TEST_OVERRIDES = {'num_frames': 27, 'layers': 1, 'channel': 16, 'd_hid': 32}


def default_strides(num_frames: int) -> tuple[int, ...]:
  """The official stride list for T, or all-3 strides when T is a power of 3."""
  if num_frames in STRIDES:
    return STRIDES[num_frames]
  n = round(math.log(num_frames, 3))
  if 3**n == num_frames:
    return (3,) * n
  raise ValueError(
    f'no default stride_num for num_frames={num_frames}; pass stride_num explicitly '
    f'(known: {sorted(STRIDES)})'
  )


def macs(
  num_frames: int = 243,
  num_joints: int = 17,
  layers: int = 4,
  channel: int = 256,
  d_hid: int = 512,
  stride_num: Sequence[int] | None = None,
  in_channels: int = 2,
  refine: bool = False,
) -> dict[str, int]:
  """Multiply-accumulates of one window (one output frame): 'linear' (Linear/Conv only, thop) and
  'all' (+ attention QK^T and AV, torch FlopCounterMode). BatchNorm/LayerNorm are not counted."""
  t, j, c, f = num_frames, num_joints, channel, d_hid
  strides = tuple(stride_num) if stride_num else default_strides(t)
  lin = t * in_channels * j * 2 * c  # encoder2d
  lin += t * (2 * (2 * c) ** 2 + 2 * c * c)  # FCBlock
  lin += layers * t * (4 * c * c + 2 * c * f)  # VTE
  att = layers * 2 * t * t * c
  lin += t * c * 3 * j  # VTE head
  for s in strides:
    t_out = (t - 1) // s + 1
    lin += t * (4 * c * c + c * f) + t_out * f * c * 3
    att += 2 * t * t * c
    t = t_out
  lin += t * c * 3 * j  # centre head
  if refine:
    lin += 6 * j * 1024 + 1024 * 2 * j
  return {'linear': lin, 'all': lin + att}


def _paper(variant: str, params: int, refine_params: int, macs_fcm: int, note: str) -> dict:
  kw = VARIANTS[variant]
  m = macs(**kw)
  return {
    'params': params,
    'params_refine': refine_params,
    'macs_linear': m['linear'],
    'macs_all': m['all'],
    'frames': kw['num_frames'],
    'macs_measured_fcm': macs_fcm,  # official Model, torch FlopCounterMode FLOPs / 2, B=1
    'source': 'research/mpm.md §2.4 (measured on the official Model at commit 47ceae4)',
    'note': note,
  }


class Simplemlp(nn.Module):
  """Per-frame MLP encoder: Linear -> BatchNorm -> LeakyReLU(0.2) -> Dropout.

  Attributes:
    features: output width (2C).
    dropout: dropout rate (0.2 in the lifter, 0.1 in the pre-training network).
    bn_momentum: BatchNorm momentum, torch convention.
  """

  features: int
  dropout: float = 0.2
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, D_in) -> (B, T, features)."""
    x = Linear(self.features, name='fc_1')(x)
    x = TorchBatchNorm(momentum=self.bn_momentum, name='bn_1')(x, train=train)
    x = nn.leaky_relu(x, 0.2)
    return nn.Dropout(self.dropout)(x, deterministic=not train)


class ResidualLinear(nn.Module):
  """x + Drop(LReLU(BN(W2 Drop(LReLU(BN(W1 x)))))), width-preserving (official `Linear`)."""

  dropout: float = 0.2
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, D) -> (B, T, D)."""
    y = x
    for i in (1, 2):
      y = Linear(x.shape[-1], name=f'w{i}')(y)
      y = TorchBatchNorm(momentum=self.bn_momentum, name=f'batch_norm{i}')(y, train=train)
      y = nn.Dropout(self.dropout)(nn.leaky_relu(y, 0.2), deterministic=not train)
    return x + y


class FCBlock(nn.Module):
  """`num_blocks` residual MLP blocks then Linear(D -> features) (official `FCBlock`)."""

  features: int
  num_blocks: int = 1
  dropout: float = 0.2
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, D) -> (B, T, features)."""
    for i in range(self.num_blocks):
      x = ResidualLinear(self.dropout, self.bn_momentum, name=f'layers_{i}')(x, train=train)
    return Linear(self.features, name='fc_2')(x)


class EncoderLayer(nn.Module):
  """Pre-norm transformer layer: x + Drop(MHA(LN x)); x + Drop(FFN(LN x)), ReLU FFN.

  Attributes:
    d_ff: FFN hidden width.
    num_heads: attention heads.
    dropout: attention-probability, FFN and residual dropout.
  """

  d_ff: int
  num_heads: int = 8
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, L, C) -> (B, L, C)."""
    y = PstmoLayerNorm(name='norm_attn')(x)
    x = x + Attention(
      self.num_heads,
      qkv_bias=True,
      attn_drop=self.dropout,
      proj_drop=self.dropout,
      name='self_attn',
    )(y, train=train)
    y = PstmoLayerNorm(name='norm_ffn')(x)
    return x + Mlp(self.d_ff, drop=self.dropout, activation=nn.relu, name='feed_forward')(
      y, train=train
    )


class VanillaTransformer(nn.Module):
  """Stack of `EncoderLayer`s with an optional learned positional embedding (1, T, C).

  The official `Transformer` (used with a positional embedding) and `Transformer_dec` (without).
  With `visible_idx`, only those frames are encoded (MAE-style; the embedding is added first).

  Attributes:
    num_layers: L.
    d_ff: FFN hidden width.
    length: T of the positional embedding.
    num_heads: attention heads.
    dropout: transformer dropout.
    pos_embedding: whether to add the embedding.
  """

  num_layers: int
  d_ff: int
  length: int
  num_heads: int = 8
  dropout: float = 0.1
  pos_embedding: bool = True

  @nn.compact
  def __call__(
    self, x: jax.Array, *, train: bool, visible_idx: jax.Array | None = None
  ) -> jax.Array:
    """x: (B, T, C); visible_idx: (B, T_vis) int frame indices or None -> (B, T_vis or T, C)."""
    c = x.shape[-1]
    if self.pos_embedding:
      pos = self.param('pos_embedding', nn.initializers.normal(1.0), (1, self.length, c))
      if x.shape[1] != self.length:
        raise ValueError(f'expected {self.length} frames, got input of shape {x.shape}')
      x = x + pos
    if visible_idx is not None:
      x = jnp.take_along_axis(x, visible_idx[..., None], axis=1)
    for i in range(self.num_layers):
      x = EncoderLayer(self.d_ff, self.num_heads, self.dropout, name=f'layers_{i}')(x, train=train)
    PstmoLayerNorm(name='norm')(x)  # constructed but unused in the official Encoder
    return x


class StridedFeedForward(nn.Module):
  """Conv1d(C -> d_ff, k=1) -> ReLU -> Dropout -> Conv1d(d_ff -> C, k=3, stride s, pad 1)."""

  d_ff: int
  stride: int
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, C) -> (B, ceil(T / stride), C)."""
    c = x.shape[-1]
    y = Linear(self.d_ff, name='w_1')(x)
    y = nn.Dropout(self.dropout)(nn.relu(y), deterministic=not train)
    return nn.Conv(
      c,
      (3,),
      strides=(self.stride,),
      padding=((1, 1),),
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(3 * self.d_ff),
      name='w_2',
    )(y)


class StridedTransformer(nn.Module):
  """Strided transformer encoder (official `strided_transformer_encoder.Transformer`).

  Attributes:
    strides: one stride per layer; T shrinks to ceil(T / s) at each.
    d_ff: FFN hidden width.
    length: T of the (three) positional embeddings.
    num_heads: attention heads.
    dropout: transformer dropout.
  """

  strides: Sequence[int]
  d_ff: int
  length: int
  num_heads: int = 8
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, C) -> (B, T', C), T' = T reduced by every stride."""
    c = x.shape[-1]
    pos = [
      self.param(f'pos_embedding_{k}', nn.initializers.normal(1.0), (1, self.length, c))
      for k in (1, 2, 3)
    ]
    drop = lambda y: nn.Dropout(self.dropout)(y, deterministic=not train)
    for i, s in enumerate(self.strides):
      if i < 3:
        x = x + pos[i][:, : x.shape[1]]
      y = PstmoLayerNorm(name=f'layers_{i}_norm_attn')(x)
      x = x + drop(
        Attention(
          self.num_heads, qkv_bias=True, attn_drop=self.dropout, name=f'layers_{i}_self_attn'
        )(y, train=train)
      )
      y = PstmoLayerNorm(name=f'layers_{i}_norm_ffn')(x)
      res = x[:, ::s] if s != 1 else x
      x = res + drop(
        StridedFeedForward(self.d_ff, s, self.dropout, name=f'layers_{i}_feed_forward')(
          y, train=train
        )
      )
    PstmoLayerNorm(name='norm')(x)  # constructed but unused in the official Encoder
    return x


class Head(nn.Module):
  """BatchNorm1d(C) then Conv1d(C -> features, k=1), i.e. a Linear over channels."""

  features: int
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, C) -> (B, T, features)."""
    x = TorchBatchNorm(momentum=self.bn_momentum, name='bn')(x, train=train)
    return Linear(self.features, name='conv')(x)


class PostRefine(nn.Module):
  """P-STMO post-refinement: x, y <- s * pred_xy + (1 - s) * xyz_xy with s = MLP(pred, xyz).

  Attributes:
    hidden: MLP width (1024).
    dropout: dropout after the ReLU (0.5).
  """

  hidden: int = 1024
  dropout: float = 0.5

  @nn.compact
  def __call__(self, pred: jax.Array, xyz: jax.Array, *, train: bool) -> jax.Array:
    """pred, xyz: (B, T, J, 3) root-relative -> refined (B, T, J, 3); z is kept from pred."""
    b, t, j, _ = pred.shape
    h = jnp.concatenate([pred, xyz], axis=-1).reshape(b, -1)  # per joint [pred, xyz]
    h = nn.relu(Linear(self.hidden, name='fc1')(h))
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    s = jax.nn.sigmoid(Linear(t * j * 2, name='fc2')(h)).reshape(b, t, j, 2)
    xy = s * pred[..., :2] + (1.0 - s) * xyz[..., :2]
    return jnp.concatenate([xy, pred[..., 2:]], axis=-1)


def uvd_to_xyz(uv: jax.Array, depth: jax.Array, root: jax.Array, cam: jax.Array) -> jax.Array:
  """Back-projects 2D joints at the predicted depth (official `get_uvd2xyz`), root-relative.

  Args:
    uv: (B, T, J, 2) 2D joints in the units of the intrinsics (normalised screen for H36M).
    depth: (B, T, J) predicted root-relative depth (the root's own entry is ignored).
    root: (B, T, 3) ground-truth root position in the camera frame.
    cam: (B, >=4) intrinsics [fx, fy, cx, cy, ...] in the units of `uv`.

  Returns:
    (B, T, J, 3) root-relative camera-frame points; the root row is zero.
  """
  z = depth + root[..., None, 2]
  z = z.at[..., 0].set(root[..., 2])
  f = cam[:, None, None, 0:2]
  c = cam[:, None, None, 2:4]
  xyz = jnp.concatenate([(uv - c) * z[..., None] / f, z[..., None]], axis=-1)
  return xyz - xyz[..., :1, :]


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of one window."""
  return (model.num_frames, model.num_joints, model.in_channels)


class Model(nn.Module):
  """MPM / P-STMO seq2frame lifter.

  Attributes:
    num_frames: window length T (the positional embeddings are (1, T, C)).
    num_joints: J (17 for H36M, 16 for 3DHP and the multi-dataset pre-training).
    in_channels: 2 (x, y); the model takes no confidence channel.
    layers: VTE layers L.
    channel: model width C.
    d_hid: FFN hidden width d_ff.
    stride_num: strided-transformer strides; None = the official table for T.
    num_heads: attention heads (8 in the official code).
    dropout: transformer dropout (0.1).
    mlp_dropout: dropout of the MLP encoder (0.2).
    refine: add the post-refinement module (`refine_xyz` then mixes in the back-projection).
    bn_momentum: BatchNorm momentum, torch convention.
  """

  num_frames: int = 243
  num_joints: int = 17
  in_channels: int = 2
  layers: int = 4
  channel: int = 256
  d_hid: int = 512
  stride_num: Sequence[int] | None = None
  num_heads: int = 8
  dropout: float = 0.1
  mlp_dropout: float = 0.2
  refine: bool = False
  bn_momentum: float = 0.1

  @property
  def strides(self) -> tuple[int, ...]:
    return tuple(self.stride_num) if self.stride_num else default_strides(self.num_frames)

  def encode(self, x: jax.Array, *, train: bool) -> jax.Array:
    """kp2d (B, T, J, 2) -> VTE features (B, T, C)."""
    b, t, j, c = x.shape
    if (t, j, c) != (self.num_frames, self.num_joints, self.in_channels):
      raise ValueError(
        f'mpm.Model expects (B, {self.num_frames}, {self.num_joints}, {self.in_channels}), '
        f'got {x.shape}'
      )
    h = x.reshape(b, t, j * c)
    h = self.encoder2d(h, train=train)
    h = self.shared_layers_spatial(h, train=train)
    return self.shared_layers_temporal(h, train=train)

  def setup(self):
    c = self.channel
    self.encoder2d = Simplemlp(2 * c, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_spatial = FCBlock(c, 1, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_temporal = VanillaTransformer(
      self.layers, self.d_hid, self.num_frames, self.num_heads, self.dropout
    )
    self.transformer_reduce = StridedTransformer(
      self.strides, self.d_hid, self.num_frames, self.num_heads, self.dropout
    )
    self.fcn = Head(3 * self.num_joints, self.bn_momentum)
    self.fcn_1 = Head(3 * self.num_joints, self.bn_momentum)
    if self.refine:
      self.post_refine = PostRefine()

  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool,
    return_all: bool = False,
    refine_xyz: jax.Array | None = None,
  ):
    """Lifts a 2D window to its centre-frame 3D pose.

    Args:
      x: kp2d_norm (B, T, J, 2), normalised screen coordinates.
      train: BatchNorm batch statistics (mutable `batch_stats`) and dropout (rng 'dropout').
      return_all: also return the VTE prediction of every frame.
      refine_xyz: (B, 1, J, 3) back-projected centre pose (`uvd_to_xyz`); used when `refine`.

    Returns:
      pose3d (B, 1, J, 3) root-relative centre frame (refined when `refine`); with `return_all`,
      the pair (centre, vte (B, T, J, 3)).
    """
    b = x.shape[0]
    j = self.num_joints
    feats = self.encode(x, train=train)
    vte = self.fcn_1(feats, train=train).reshape(b, -1, j, 3)
    out = self.transformer_reduce(feats, train=train)
    out = self.fcn(out, train=train).reshape(b, -1, j, 3)
    if self.refine:
      out = self.post_refine(out, out if refine_xyz is None else refine_xyz, train=train)
    return (out, vte) if return_all else out


# ---------------------------------------------------------------------------------------------
# Masked pose modelling pre-training network (official `MPMmask2` / `MPMmask`).

# Optional explicit masks in a batch; when absent the step draws them from the 'mask' stream.
MASK_KEYS = ('spatial_mask_2d', 'spatial_mask_3d', 'temporal_mask_2d', 'temporal_mask_3d')


def _ranks(u: jax.Array) -> jax.Array:
  return jnp.argsort(jnp.argsort(u, axis=-1), axis=-1)


def sample_masks(
  rng: jax.Array,
  *,
  num_frames: int,
  num_joints: int,
  spatial_mask_num: int,
  num_masked: int,
  batch_size: int | None = None,
) -> dict[str, jax.Array]:
  """Random spatial and temporal masks for the 2D and 3D branches (official `MaskGen`).

  Args:
    rng: PRNG key.
    num_frames, num_joints: T, J.
    spatial_mask_num: joints masked in every frame.
    num_masked: frames masked (dropped before the encoder).
    batch_size: None shares one mask over the batch (official); else one mask per sample.

  Returns:
    {'spatial_mask_2d', 'spatial_mask_3d': (T, J) or (B, T, J) bool,
     'temporal_mask_2d', 'temporal_mask_3d': (T,) or (B, T) bool}, True = masked.
  """
  lead = () if batch_size is None else (batch_size,)
  k = jax.random.split(rng, 4)
  out = {}
  for i, d in enumerate(('2d', '3d')):
    u = jax.random.uniform(k[2 * i], (*lead, num_frames, num_joints))
    out[f'spatial_mask_{d}'] = _ranks(u) < spatial_mask_num
    u = jax.random.uniform(k[2 * i + 1], (*lead, num_frames))
    out[f'temporal_mask_{d}'] = _ranks(u) < num_masked
  return out


class PretrainNet(nn.Module):
  """Masked pose modelling network (official `MPMmask2`; `MPMmask` with decoder_layers=2).

  Attributes:
    num_frames: T.
    num_joints: J.
    layers: shared temporal transformer layers L.
    channel: width C.
    d_hid: FFN hidden width.
    num_heads: attention heads (8).
    dropout: transformer dropout (0.1).
    mlp_dropout: MLP encoder dropout (0.1 in the pre-training `Encoder.py`).
    decoder_layers: layers of each decoder (1 for MPMmask2, 2 for MPMmask).
    spatial_mask_num: joints masked per frame when masks are drawn.
    temporal_mask_rate: fraction of frames masked; int(T * rate) frames.
    bn_momentum: BatchNorm momentum, torch convention.
  """

  num_frames: int = 243
  num_joints: int = 17
  layers: int = 4
  channel: int = 256
  d_hid: int = 512
  num_heads: int = 8
  dropout: float = 0.1
  mlp_dropout: float = 0.1
  decoder_layers: int = 1
  spatial_mask_num: int = 5
  temporal_mask_rate: float = 0.6
  bn_momentum: float = 0.1

  @property
  def in_channels(self) -> int:
    """C_in of the 2D branch's input (the engine's init and example inputs)."""
    return 2

  @property
  def num_masked_frames(self) -> int:
    # The small epsilon keeps e.g. T * (16 / T) from rounding down to 15.
    return int(self.num_frames * self.temporal_mask_rate + 1e-9)

  def setup(self):
    c, t = self.channel, self.num_frames
    self.encoder2d = Simplemlp(2 * c, self.mlp_dropout, self.bn_momentum)
    self.encoder3d = Simplemlp(2 * c, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_spatial = FCBlock(c, 1, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_temporal = VanillaTransformer(
      self.layers, self.d_hid, t, self.num_heads, self.dropout
    )
    self.encoder_LN = PstmoLayerNorm()
    randn = nn.initializers.normal(1.0)
    self.dec_pos_embedding = self.param('dec_pos_embedding', randn, (1, t, c))
    self.temporal_mask_token = self.param('temporal_mask_token', randn, (1, 1, c))
    self.spatial_mask_token3d = self.param('spatial_mask_token3d', randn, (1, 1, 3))
    self.spatial_mask_token2d = self.param('spatial_mask_token2d', randn, (1, 1, 2))
    dec = dict(
      num_layers=self.decoder_layers,
      d_ff=self.d_hid,
      length=t,
      num_heads=self.num_heads,
      dropout=self.dropout,
      pos_embedding=False,
    )
    self.decoder2d = VanillaTransformer(**dec)
    self.decoder3d = VanillaTransformer(**dec)
    self.fcn_dec2d = Head(2 * self.num_joints, self.bn_momentum)
    self.fcn_dec3d = Head(3 * self.num_joints, self.bn_momentum)

  def encode(
    self, x: jax.Array, smask: jax.Array, tmask: jax.Array, num_masked: int, *, train: bool
  ) -> jax.Array:
    """Masked encoding and decoder input.

    Args:
      x: (B, T, J, 2|3) poses.
      smask: (T, J) or (B, T, J) bool, True = joint replaced by the mask token.
      tmask: (T,) or (B, T) bool, True = frame dropped; exactly `num_masked` per row.
      num_masked: static count of masked frames.
      train: dropout and BatchNorm batch statistics.

    Returns:
      decoder input (B, T, C).
    """
    b, t, j, d = x.shape
    if (t, j) != (self.num_frames, self.num_joints) or d not in (2, 3):
      raise ValueError(
        f'PretrainNet expects (B, {self.num_frames}, {self.num_joints}, 2|3), got {x.shape}'
      )
    token = self.spatial_mask_token2d if d == 2 else self.spatial_mask_token3d
    x = jnp.where(jnp.broadcast_to(smask, (b, t, j))[..., None], token[0, 0], x)
    h = x.reshape(b, t, j * d)
    h = (self.encoder2d if d == 2 else self.encoder3d)(h, train=train)
    h = self.shared_layers_spatial(h, train=train)
    tmask = jnp.broadcast_to(tmask, (b, t))
    # Visible frames first, each group in frame order (the official nonzero() order).
    order = jnp.argsort(tmask.astype(jnp.int32), axis=-1, stable=True)
    vis_idx, mask_idx = order[:, : t - num_masked], order[:, t - num_masked :]
    feats = self.shared_layers_temporal(h, train=train, visible_idx=vis_idx)
    feats = self.encoder_LN(feats)
    pos = jnp.broadcast_to(self.dec_pos_embedding, (b, t, self.channel))
    take = lambda a, idx: jnp.take_along_axis(a, idx[..., None], axis=1)
    full = jnp.concatenate(
      [feats + take(pos, vis_idx), self.temporal_mask_token + take(pos, mask_idx)], axis=1
    )
    return take(full, jnp.argsort(order, axis=-1))  # back to frame order

  def decode(self, h: jax.Array, dim: int, *, train: bool) -> jax.Array:
    """Decoder input (B, T, C) -> (B, T, J, dim) with the 2D (dim 2) or 3D (dim 3) decoder."""
    b, t, _ = h.shape
    dec, head = (self.decoder2d, self.fcn_dec2d) if dim == 2 else (self.decoder3d, self.fcn_dec3d)
    return head(dec(h, train=train), train=train).reshape(b, t, self.num_joints, dim)

  def __call__(
    self,
    x2d: jax.Array,
    x3d: jax.Array | None = None,
    *,
    train: bool,
    masks: Mapping[str, jax.Array] | None = None,
    lift: bool = True,
    num_masked: int | None = None,
  ) -> dict[str, jax.Array]:
    """Runs the 2D branch (and the 3D branch when `x3d` is given).

    Args:
      x2d: kp2d_norm (B, T, J, 2) (a confidence channel, if any, is dropped).
      x3d: pose3d_cam (B, T, J, 3) root-relative, or None (then zeros, so `init` creates every
        parameter; the 3D output is still returned).
      train: dropout (rng 'dropout') and BatchNorm batch statistics (mutable `batch_stats`).
      masks: `MASK_KEYS` arrays (see `sample_masks`); None draws them from the rng stream 'mask'
        (or from a fixed key when no 'mask' stream is given, e.g. at `init`).
      lift: also lift the masked 2D input to 3D.
      num_masked: static count of masked frames; default `num_masked_frames`.

    Returns:
      {'out2d': (B, T, J, 2), 'out3d': (B, T, J, 3), and with `lift` 'out3d_lift' (B, T, J, 3)}.
    """
    n = self.num_masked_frames if num_masked is None else num_masked
    if masks is None:
      rng = self.make_rng('mask') if self.has_rng('mask') else jax.random.key(0)
      masks = sample_masks(
        rng,
        num_frames=self.num_frames,
        num_joints=self.num_joints,
        spatial_mask_num=self.spatial_mask_num,
        num_masked=n,
      )
    x2d = x2d[..., :2]
    if x3d is None:
      x3d = jnp.zeros((*x2d.shape[:-1], 3), x2d.dtype)
    h2 = self.encode(x2d, masks['spatial_mask_2d'], masks['temporal_mask_2d'], n, train=train)
    out = {'out2d': self.decode(h2, 2, train=train)}
    if lift:
      out['out3d_lift'] = self.decode(h2, 3, train=train)
    h3 = self.encode(x3d, masks['spatial_mask_3d'], masks['temporal_mask_3d'], n, train=train)
    out['out3d'] = self.decode(h3, 3, train=train)
    return out


def from_lifter(model: Model, **overrides: Any) -> PretrainNet:
  """The pre-training network whose encoder matches `model` (same T, J, L, C, d_ff, heads)."""
  shared = (
    'num_frames',
    'num_joints',
    'layers',
    'channel',
    'd_hid',
    'num_heads',
    'dropout',
    'bn_momentum',
  )
  kw = {name: getattr(model, name) for name in shared}
  kw.update(overrides)
  return PretrainNet(**kw)


PAPER = {
  'h36m_f243': _paper('h36m_f243', 7_009_382, 140_322, 1_021_536_768, 'README evaluation command'),
  'h36m_f243_l3': _paper(
    'h36m_f243_l3',
    6_482_278,
    140_322,
    863_901_696,
    'P-STMO-243 size; P-STMO reports ~6.7M params / 1737M FLOPs (recalled)',
  ),
  '3dhp_f243': _paper('3dhp_f243', 6_479_712, 132_128, 863_465_472, 'README trainer_3dhp.py'),
  'h36m_f81': _paper('h36m_f81', 5_527_142, 140_322, 259_737_600, ''),
  'h36m_f27': _paper('h36m_f27', 4_682_598, 140_322, 82_983_936, ''),
}


# ---------------------------------------------------------------------------------------------
# Official checkpoint import.


def _np(a) -> jnp.ndarray:
  return jnp.asarray(np.asarray(a, np.float32))


def _dense(sd: Mapping[str, np.ndarray], key: str) -> dict:
  """torch Linear (out, in) or Conv1d k=1 (out, in, 1) -> {'kernel': (in, out), 'bias'}."""
  return jax.tree.map(_np, tu.linear(sd[f'{key}.weight'], sd[f'{key}.bias']))


def _bn(sd: Mapping[str, np.ndarray], key: str) -> tuple[dict, dict]:
  """torch BatchNorm1d -> (params {'scale', 'bias'}, batch_stats {'mean', 'var'})."""
  names = ('weight', 'bias', 'running_mean', 'running_var')
  return jax.tree.map(_np, tu.batch_norm(*(sd[f'{key}.{n}'] for n in names)))


def _ln(sd: Mapping[str, np.ndarray], key: str) -> dict:
  """PstmoLayerNorm's own parameter names (a_2 scale, b_2 shift), unchanged."""
  return {'a_2': _np(sd[f'{key}.a_2']), 'b_2': _np(sd[f'{key}.b_2'])}


def _attention(sd: Mapping[str, np.ndarray], key: str) -> dict:
  """Four official Linear(C, C) (q, k, v, out) -> fused `qkv` (q | k | v) and `proj`."""
  ws = [np.asarray(sd[f'{key}.linears.{i}.weight'], np.float32) for i in range(3)]
  bs = [np.asarray(sd[f'{key}.linears.{i}.bias'], np.float32) for i in range(3)]
  return {
    'qkv': {'kernel': _np(np.concatenate(ws, 0).T), 'bias': _np(np.concatenate(bs, 0))},
    'proj': _dense(sd, f'{key}.linears.3'),
  }


def convert_simplemlp(sd, key: str) -> tuple[dict, dict]:
  """`Simplemlp` entries under `key` -> (params, batch_stats)."""
  bn_p, bn_s = _bn(sd, f'{key}.bn_1')
  return {'fc_1': _dense(sd, f'{key}.fc_1'), 'bn_1': bn_p}, {'bn_1': bn_s}


def convert_fcblock(sd, key: str) -> tuple[dict, dict]:
  """`FCBlock` entries under `key` -> (params, batch_stats)."""
  params, stats = {'fc_2': _dense(sd, f'{key}.fc_2')}, {}
  n = len({k.split('.')[2] for k in sd if k.startswith(f'{key}.layers.')})
  for i in range(n):
    base = f'{key}.layers.{i}'
    p, s = {}, {}
    for k in (1, 2):
      p[f'w{k}'] = _dense(sd, f'{base}.w{k}')
      p[f'batch_norm{k}'], s[f'batch_norm{k}'] = _bn(sd, f'{base}.batch_norm{k}')
    params[f'layers_{i}'], stats[f'layers_{i}'] = p, s
  return params, stats


def _num_layers(sd, key: str) -> int:
  return len({k[len(key) + 1 :].split('.')[0] for k in sd if k.startswith(f'{key}.')})


def convert_transformer(sd, key: str) -> dict:
  """Official `Transformer` / `Transformer_dec` under `key` (with `.model.`) -> params."""
  params = {}
  if f'{key}.pos_embedding' in sd:
    params['pos_embedding'] = _np(sd[f'{key}.pos_embedding'])
  for i in range(_num_layers(sd, f'{key}.model.layers')):
    base = f'{key}.model.layers.{i}'
    params[f'layers_{i}'] = {
      'norm_attn': _ln(sd, f'{base}.sublayer.0.norm'),
      'self_attn': _attention(sd, f'{base}.self_attn'),
      'norm_ffn': _ln(sd, f'{base}.sublayer.1.norm'),
      'feed_forward': {
        'fc1': _dense(sd, f'{base}.feed_forward.w_1'),
        'fc2': _dense(sd, f'{base}.feed_forward.w_2'),
      },
    }
  params['norm'] = _ln(sd, f'{key}.model.norm')
  return params


def convert_head(sd, key: str) -> tuple[dict, dict]:
  """`nn.Sequential(BatchNorm1d, Conv1d k=1)` under `key` -> (params, batch_stats)."""
  bn_p, bn_s = _bn(sd, f'{key}.0')
  return {'bn': bn_p, 'conv': _dense(sd, f'{key}.1')}, {'bn': bn_s}


def _convert_strided(sd, key: str) -> dict:
  params = {f'pos_embedding_{k}': _np(sd[f'{key}.model.pos_embedding_{k}']) for k in (1, 2, 3)}
  for i in range(_num_layers(sd, f'{key}.model.layers')):
    base = f'{key}.model.layers.{i}'
    w2 = np.asarray(sd[f'{base}.feed_forward.w_2.weight'], np.float32)  # (O, I, K)
    params[f'layers_{i}_norm_attn'] = _ln(sd, f'{base}.sublayer.0.norm')
    params[f'layers_{i}_self_attn'] = _attention(sd, f'{base}.self_attn')
    params[f'layers_{i}_norm_ffn'] = _ln(sd, f'{base}.sublayer.1.norm')
    params[f'layers_{i}_feed_forward'] = {
      'w_1': _dense(sd, f'{base}.feed_forward.w_1'),
      'w_2': {
        'kernel': _np(w2.transpose(2, 1, 0)),
        'bias': _np(sd[f'{base}.feed_forward.w_2.bias']),
      },
    }
  params['norm'] = _ln(sd, f'{key}.model.norm')
  return params


def convert_encoder(sd, *, encoder: str = 'encoder2d') -> tuple[dict, dict]:
  """The shared encoder (`encoder`, `shared_layers_spatial`, `shared_layers_temporal`)."""
  params, stats = {}, {}
  params[encoder], stats[encoder] = convert_simplemlp(sd, encoder)
  params['shared_layers_spatial'], stats['shared_layers_spatial'] = convert_fcblock(
    sd, 'shared_layers_spatial'
  )
  params['shared_layers_temporal'] = convert_transformer(sd, 'shared_layers_temporal')
  return params, stats


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  layers: int | None = None,
  channel: int | None = None,
  d_hid: int | None = None,
  frames: int | None = None,
  stride_num: Sequence[int] | None = None,
  n_joints: int | None = None,
  refine_state_dict: Mapping[str, np.ndarray] | None = None,
  **unused,
):
  """Converts an official `model.MPM.Model` state dict (the fine-tuned checkpoint).

  A pre-training checkpoint (`MPMmask2` / `MPMmask`, recognised by `dec_pos_embedding`) is handed
  to `pretrain_from_torch` and gives a `PretrainNet` instead.

  Args:
    state_dict: official keys (`encoder2d.fc_1.weight`, ...; a `module.` prefix is stripped).
    layers, channel, d_hid, frames, stride_num, n_joints: official `opt` fields; those left None
      are read off the weight shapes.
    refine_state_dict: the separately saved `refine` checkpoint (`post_refine.{0,3}.*`), if any;
      the model is then built with `refine=True`.
    **unused: other `opt` fields (ignored).

  Returns:
    (Model, variables) with `params` and `batch_stats`.
  """
  sd = tu.strip_prefixes(state_dict)
  if 'dec_pos_embedding' in sd:
    kw = dict(layers=layers, channel=channel, d_hid=d_hid, frames=frames, n_joints=n_joints)
    return pretrain_from_torch(sd, **kw, **unused)
  del unused
  pos = np.asarray(sd['shared_layers_temporal.pos_embedding'])
  n_strided = _num_layers(sd, 'Transformer_reduce.model.layers')
  if stride_num is None:
    stride_num = default_strides(frames or pos.shape[1])
  if len(stride_num) != n_strided:
    raise ValueError(
      f'stride_num {tuple(stride_num)} has {len(stride_num)} entries; '
      f'the state dict has {n_strided} strided layers'
    )
  model = Model(
    num_frames=frames or pos.shape[1],
    num_joints=n_joints or np.asarray(sd['fcn.1.weight']).shape[0] // 3,
    layers=layers or _num_layers(sd, 'shared_layers_temporal.model.layers'),
    channel=channel or pos.shape[2],
    d_hid=d_hid
    or np.asarray(sd['shared_layers_temporal.model.layers.0.feed_forward.w_1.weight']).shape[0],
    stride_num=tuple(stride_num),
    refine=refine_state_dict is not None,
  )
  params, stats = convert_encoder(sd)
  params['transformer_reduce'] = _convert_strided(sd, 'Transformer_reduce')
  for name in ('fcn', 'fcn_1'):
    params[name], stats[name] = convert_head(sd, name)
  if refine_state_dict is not None:
    rsd = tu.strip_prefixes(refine_state_dict)
    params['post_refine'] = {
      'fc1': _dense(rsd, 'post_refine.0'),
      'fc2': _dense(rsd, 'post_refine.3'),
    }
  variables = {'params': params, 'batch_stats': stats}
  check_variables(model, variables)
  return model, variables


def check_variables(model: nn.Module, variables) -> None:
  """Raises ValueError naming every path whose presence or shape differs from `model.init`'s
  (on a (1, T, J, 2) input)."""
  shape = (1, model.num_frames, model.num_joints, 2)
  tu.check_variables(variables, tu.abstract_variables(model, shape), type(model).__name__)


def pretrain_from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  layers: int | None = None,
  channel: int | None = None,
  d_hid: int | None = None,
  frames: int | None = None,
  n_joints: int | None = None,
  spatial_mask_num: int = 5,
  temporal_mask_rate: float = 0.6,
  **unused,
):
  """Converts an official `MPMmask2` / `MPMmask` state dict (the pre-training checkpoint).

  Args:
    state_dict: official keys (a DataParallel `module.` prefix is stripped).
    layers, channel, d_hid, frames, n_joints: official `opt` fields; None reads the shapes.
    spatial_mask_num, temporal_mask_rate: official `-smn` / `-tmr`.
    **unused: other `opt` fields (ignored).

  Returns:
    (PretrainNet, variables) with `params` and `batch_stats`.
  """
  del unused
  sd = tu.strip_prefixes(state_dict)
  pos = np.asarray(sd['dec_pos_embedding'])
  n_layers = _num_layers
  model = PretrainNet(
    num_frames=frames or pos.shape[1],
    num_joints=n_joints or np.asarray(sd['fcn_dec3d.1.weight']).shape[0] // 3,
    layers=layers or n_layers(sd, 'shared_layers_temporal.model.layers'),
    channel=channel or pos.shape[2],
    d_hid=d_hid or np.asarray(sd['decoder2d.model.layers.0.feed_forward.w_1.weight']).shape[0],
    decoder_layers=n_layers(sd, 'decoder2d.model.layers'),
    spatial_mask_num=spatial_mask_num,
    temporal_mask_rate=temporal_mask_rate,
  )
  params, stats = convert_encoder(sd)
  params['encoder3d'], stats['encoder3d'] = convert_simplemlp(sd, 'encoder3d')
  params['encoder_LN'] = _ln(sd, 'encoder_LN')
  for name in (
    'dec_pos_embedding',
    'temporal_mask_token',
    'spatial_mask_token3d',
    'spatial_mask_token2d',
  ):
    params[name] = _np(sd[name])
  for name in ('decoder2d', 'decoder3d'):
    params[name] = convert_transformer(sd, name)
  for name in ('fcn_dec2d', 'fcn_dec3d'):
    params[name], stats[name] = convert_head(sd, name)
  variables = {'params': params, 'batch_stats': stats}
  check_variables(model, variables)
  return model, variables
