"""MixSTE: seq2seq mixed spatio-temporal encoder for 3D human pose estimation in video.

Paper: Zhang, Tu, Wu, Jiang, Yuan, "MixSTE: Seq2seq Mixed Spatio-Temporal Encoder for 3D Human
Pose Estimation in Video", CVPR 2022, arXiv:2203.00859.
Official code: github.com/JinluZhang1126/MixSTE at commit 72a36be891a74892dd1a8611159a395ed33a7a01
(`common/model_cross.py`, class `MixSTE2`). Written from the spec in research/mixste.md; no code
copied (the repository has no licence).

x (B, T, J, C_in) -> per-joint Linear(C_in -> D) + spatial position embedding (J, D) -> depth x
[spatial block over the J joints of each frame -> `Spatial_norm` -> (first iteration only: +
temporal position embedding (T, D)) -> temporal block over the T frames of each joint ->
`Temporal_norm`] -> LayerNorm (eps 1e-5) -> Linear(D -> 3). Every frame is predicted (seq2seq).
The blocks are pre-norm timm ViT blocks (`layers.transformer.TransformerBlock`, LayerNorm eps
1e-6, qkv bias, exact GELU); block i of both streams has drop-path rate linspace(0, r, depth)[i].

Reused-norms quirk: the official model owns a single `Spatial_norm` and a single `Temporal_norm`
(LayerNorm eps 1e-6) and applies the same two modules after *every* spatial and temporal block,
so the whole network has two inter-block norm parameter sets, not one per block. This port does the
same (`Spatial_norm`, `Temporal_norm` are defined once and called in the loop); a per-block norm
would neither load official checkpoints nor match the published parameter count.

The tensor stays (B, T, J, D) throughout: attention runs over axis -2 (joints) or -3 (frames)
instead of the official (B*T, J, D) <-> (B*J, T, D) rearranges.

Module and parameter names mirror the official ones (`STEblocks_0`, `Spatial_norm`, `head_1`,
...; the position embeddings keep their official (1, J, D) / (1, T, D) shapes), so `from_torch`
is a plain `convert.torch_utils.convert_state_dict`. Initialisation follows PyTorch's defaults
(`layers.Linear`; zero position embeddings, as official).

Plug-in (`prior_attention=True`, off by default): KTPFormer's priors from `layers.kpa_tpa`. KPA
(a learnable graph convolution over the H36M-17 skeleton, BN, ReLU) replaces the joint embedding,
and StackedTPA (the same over the frame chain, with a residual) runs before the temporal position
embedding, so the tokens of the first spatial and temporal attention come from the priors. This is
KTPFormer's first layer with MixSTE's norm eps; `jaxpose.models.ktpformer` is the paper model.
It adds `batch_stats` (pass mutable=['batch_stats'] in training) and needs J = 17.

Deviations from the official code:
  * Training objective: the official `run.py` calls `loss.backward(loss.detach())`, so its gradient
    is L * dL (that of L^2 / 2). Train on L here (`jaxpose.losses`: `w_mpjpe + 0.5 *
    temporal_consistency + 2 * velocity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import numpy as np

from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.models.layers.kpa_tpa import KPA, StackedTPA
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.norms import LayerNorm
from jaxpose.models.layers.transformer import block_from_fields

VARIANTS = {
  '243': {'num_frames': 243},
  '81': {'num_frames': 81},
  '27': {'num_frames': 27},
}

TEST_OVERRIDES = {'num_frames': 9, 'dim': 32, 'depth': 2}

# Per clip at B = 1. `macs_linear`: thop on the official class (nn.Linear hooks plus 4 MACs per
# LayerNorm element; the Dense layers alone are 138.62 G at T = 243). `macs_all`: every matmul,
# attention QK^T and AV included, no norms, as counted by `jaxpose.bench.flops` (equal to the
# official torch FlopCounterMode count / 2, 294.85 / 94.63 / 31.14 GFLOPs, to its rounding).
PAPER = {
  '243': {
    'params': 33_783_811,
    'macs_linear': 139.04e9,
    'macs_all': 147_422_633_472,
    'frames': 243,
    'reported_params': '33.6M',
    'reported_macs': '139.0G MACs (278G FLOPs)',
  },
  '81': {
    'params': 33_700_867,
    'macs_linear': 46.35e9,
    'macs_all': 47_313_455_616,
    'frames': 81,
    'reported_params': '33.7M (measured)',
    'reported_macs': '46.35G MACs (measured, thop)',
  },
  '27': {
    'params': 33_673_219,
    'macs_linear': 15.45e9,
    'macs_all': 15_568_104_960,
    'frames': 27,
    'reported_params': '33.7M (measured)',
    'reported_macs': '15.45G MACs (measured, thop)',
  },
}


class Model(nn.Module):
  """MixSTE2: alternating spatial (joint) and temporal (frame) transformer blocks.

  Attributes:
    num_frames: T, fixed by the temporal position embedding.
    num_joints: J.
    in_channels: C_in (2, or 3 with confidence).
    dim: embedding width D (official `embed_dim_ratio`).
    depth: number of spatial/temporal block pairs.
    num_heads: attention heads.
    mlp_ratio: MLP hidden width / D.
    qkv_bias: bias on the qkv projections.
    qk_scale: attention logit scale; None means (D / heads) ** -0.5.
    drop_rate: dropout after the position embeddings, attention projections and MLP layers.
    attn_drop_rate: dropout on the attention probabilities.
    drop_path_rate: stochastic depth of the last block pair (linear from 0).
    prior_attention: KTPFormer's KPA instead of the joint embedding and StackedTPA before the
      first temporal block (`layers.kpa_tpa`; adds BatchNorm `batch_stats`).
  """

  num_frames: int = 243
  num_joints: int = 17
  in_channels: int = 2
  dim: int = 512
  depth: int = 8
  num_heads: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.1
  prior_attention: bool = False

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool,
    token_hook: Callable[[int, jax.Array], jax.Array] | None = None,
  ) -> jax.Array:
    """Lifts a clip of 2D poses to 3D, frame by frame.

    Args:
      x: kp2d_norm (B, T, J, C_in) with T = num_frames.
      train: dropout and drop path (rng stream `dropout`).
      token_hook: optional `h = token_hook(i, h)` on the (B, T', J, D) tokens before block i
        (i < depth) and `token_hook(depth, h)` before the head; wrappers such as
        `jaxpose.models.hot` prune or recover tokens there (T' may change).

    Returns:
      pose3d (B, T, J, 3), root-relative, in the unit of the training targets.
    """
    expected = (self.num_frames, self.num_joints, self.in_channels)
    if x.ndim != 4 or x.shape[1:] != expected:
      raise ValueError(f'MixSTE expects (B, {", ".join(map(str, expected))}), got {x.shape}')
    pos_drop = nn.Dropout(self.drop_rate, deterministic=not train)
    zeros = nn.initializers.zeros
    if self.prior_attention:
      h = KPA(self.dim, name='kpa')(x, train=train)
    else:
      h = Linear(self.dim, name='Spatial_patch_to_embedding')(x)
    h = pos_drop(h + self.param('Spatial_pos_embed', zeros, (1, self.num_joints, self.dim)))
    # One module each, applied after every block (the official reused norms).
    spatial_norm = LayerNorm(epsilon=1e-6, name='Spatial_norm')
    temporal_norm = LayerNorm(epsilon=1e-6, name='Temporal_norm')
    block = lambda name, axis, rate: block_from_fields(
      self, token_axis=axis, drop_path=rate, norm_eps=1e-6, name=name
    )
    rates = np.linspace(0.0, self.drop_path_rate, self.depth)
    for i, rate in enumerate(rates):
      if token_hook is not None:
        h = token_hook(i, h)
      h = spatial_norm(block(f'STEblocks_{i}', -2, float(rate))(h, train=train))
      if i == 0:
        if self.prior_attention:
          h = StackedTPA(name='tpa')(h, train=train)
        pos = self.param('Temporal_pos_embed', zeros, (1, self.num_frames, self.dim))
        h = pos_drop(h + pos[0, :, None])
      h = temporal_norm(block(f'TTEblocks_{i}', -3, float(rate))(h, train=train))
    if token_hook is not None:
      h = token_hook(self.depth, h)
    h = LayerNorm(epsilon=1e-5, name='head_0')(h)
    return Linear(3, name='head_1')(h)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) the model reads."""
  return (model.num_frames, model.num_joints, model.in_channels)


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  num_frame: int | None = None,
  num_joints: int | None = None,
  in_chans: int | None = None,
  embed_dim_ratio: int | None = None,
  depth: int | None = None,
  num_heads: int = 8,
  mlp_ratio: float | None = None,
  qkv_bias: bool | None = None,
  qk_scale: float | None = None,
  drop_rate: float = 0.0,
  attn_drop_rate: float = 0.0,
  drop_path_rate: float = 0.1,
  norm_layer: None = None,
):
  """Converts an official `MixSTE2` state dict.

  Args:
    state_dict: official keys (`STEblocks.0.attn.qkv.weight`, ...) -> arrays, no `module.` prefix.
    num_frame, num_joints, in_chans, embed_dim_ratio, depth, num_heads, mlp_ratio, qkv_bias,
      qk_scale, drop_rate, attn_drop_rate, drop_path_rate: the official constructor arguments.
      Those left None are read off the weight shapes; `num_heads` cannot be and defaults to the
      paper's 8.
    norm_layer: must be None (the official default, LayerNorm eps 1e-6).

  Returns:
    (Model, variables).
  """
  if norm_layer is not None:
    raise ValueError('only the default norm_layer (LayerNorm eps 1e-6) is supported')
  sd = state_dict
  embed = np.asarray(sd['Spatial_patch_to_embedding.weight'])
  dim = embed_dim_ratio or embed.shape[0]
  model = Model(
    num_frames=num_frame or np.asarray(sd['Temporal_pos_embed']).shape[1],
    num_joints=num_joints or np.asarray(sd['Spatial_pos_embed']).shape[1],
    in_channels=in_chans or embed.shape[1],
    dim=dim,
    depth=depth or sum(1 for k in sd if k.startswith('STEblocks.') and k.endswith('norm1.weight')),
    num_heads=num_heads,
    mlp_ratio=mlp_ratio or np.asarray(sd['STEblocks.0.mlp.fc1.weight']).shape[0] / dim,
    qkv_bias='STEblocks.0.attn.qkv.bias' in sd if qkv_bias is None else qkv_bias,
    qk_scale=qk_scale,
    drop_rate=drop_rate,
    attn_drop_rate=attn_drop_rate,
    drop_path_rate=drop_path_rate,
  )
  return model, convert_for_model(sd, model, (1, *input_shape(model)))
