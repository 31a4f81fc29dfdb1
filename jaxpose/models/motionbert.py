"""MotionBERT (DSTformer): dual-stream spatio-temporal transformer with learned fusion.

Paper: Zhu, Ma, Liu, Liu, Wu, Wang, "MotionBERT: A Unified Perspective on Learning Human Motion
Representations", ICCV 2023, arXiv:2210.06551.
Official code: github.com/Walter0807/MotionBERT at commit
dccfe7b14a7f09aae2e27a16d951cb4c6f6e62f6 (`lib/model/DSTformer.py`, built as
`lib/utils/learning.py::load_backbone` builds it). Written from the spec in research/motionbert.md;
no code copied.

x (B, T, J, 3) (normalised x, y and the 2D confidence) -> per-joint Linear(3 -> D) + joint
embedding (J, D) + frame embedding (maxlen, D) sliced to the first T frames (so any T <= maxlen
runs) -> depth x [two streams from the same input: `blocks_st` (spatial then temporal sub-blocks)
and `blocks_ts` (temporal then spatial), each sub-block a pre-norm attention + MLP pair
(`layers.transformer.TransformerBlock`, own LayerNorms); fusion per token
alpha = softmax(Linear(2D -> 2)([x_st, x_ts])), x = alpha_0 x_st + alpha_1 x_ts] -> LayerNorm ->
Linear(D -> dim_rep) + tanh (the motion representation, `return_rep=True`) -> Linear(dim_rep -> 3).
Spatial attention runs over the joints of a frame, temporal attention over the frames of a joint;
the tensor stays (B, T, J, D) (attention over axis -2 / -3) instead of the official (B*T, J, D).

LayerNorm eps is 1e-6 (`norm_eps`), what `load_backbone` passes and the released checkpoints were
trained with; the official class default would be 1e-5. Parameter names mirror the official
ones; each official block's `*_s` / `*_t` sub-modules are the TransformerBlocks
`blocks_st_<i>_s` / `blocks_st_<i>_t` here, so `from_torch` is `convert_state_dict` with a rename.

Plug-in (`prior_attention=True`, off by default): KTPFormer's priors from `layers.kpa_tpa`. KPA
(a learnable graph convolution over the H36M-17 skeleton, BN, ReLU) replaces `joints_embed`, and
in the first dual-stream block a StackedTPA (the same over the frame chain, with a residual) runs
in front of each stream's temporal sub-block (`blocks_st_0_tpa`, `blocks_ts_0_tpa`), so the
tokens of the first spatial and temporal attention come from the priors. It adds `batch_stats`
(pass mutable=['batch_stats'] in training), needs J = 17 and clips of exactly `maxlen` frames
(TPA's weights are sized by T).

Deviations from the official code:
  * Initialisation: the embeddings, `joints_embed`, `pre_logits` and `head` use N(0, 0.02) with
    zero biases and the fusion layers weight 0 / bias 0.5, as official (the official trunc-normal
    bounds are +-2 absolute, i.e. no truncation at std 0.02), but the attention and MLP Linears
    inside the blocks start from PyTorch's default (`layers.Linear`) instead of N(0, 0.02).
  * Evaluation post-processing (root set to 0, flip averaging, 2.5D-factor rescaling) is not part of
    the module; see `jaxpose.geometry.skeleton.flip_pose` for the flip test.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.models.layers.kpa_tpa import KPA, StackedTPA
from jaxpose.models.layers.linear import Linear, constant_init
from jaxpose.models.layers.norms import LayerNorm
from jaxpose.models.layers.transformer import block_from_fields

VARIANTS = {
  'base': {'dim_feat': 512, 'mlp_ratio': 2.0},  # configs/pose3d/MB_ft_h36m.yaml
  'lite': {'dim_feat': 256, 'mlp_ratio': 4.0},  # configs/pretrain/MB_lite.yaml
}

TEST_OVERRIDES = {'dim_feat': 32, 'dim_rep': 64, 'depth': 2, 'maxlen': 9}

# Per 243-frame clip at B = 1. `macs_linear`: thop on the official class (nn.Linear hooks plus
# 4 MACs per LayerNorm element; the Dense layers alone are 174.40 G / 65.55 G). `macs_all`: every
# matmul, attention QK^T and AV included, no norms, as `jaxpose.bench.flops` counts it (equal to
# the official FlopCounterMode 370.81 / 142.09 GFLOPs / 2, to its rounding).
PAPER = {
  'base': {
    'params': 42_466_317,
    'macs_linear': 174.75e9,
    'macs_all': 185_402_981_376,
    'frames': 243,
    'reported_params': '42.3M',
    'reported_macs': '174.7G',
  },
  'lite': {
    'params': 16_001_549,
    'macs_linear': 65.72e9,
    'macs_all': 71_046_326_016,
    'frames': 243,
    'reported_params': '16.0M (measured)',
    'reported_macs': '65.72G (measured, thop)',
  },
}

_normal_02 = nn.initializers.normal(0.02)


class Model(nn.Module):
  """DSTformer.

  Attributes:
    dim_in: input channels per joint C_in (x, y, confidence).
    dim_out: output channels per joint.
    dim_feat: transformer width D.
    dim_rep: width of the motion representation (tanh features before the head).
    depth: number of dual-stream blocks.
    num_heads: attention heads.
    mlp_ratio: MLP hidden width / D.
    num_joints: J.
    maxlen: longest clip; the frame embedding has this many rows.
    qkv_bias: bias on the qkv projections.
    qk_scale: attention logit scale; None means (D / heads) ** -0.5.
    drop_rate: dropout after the embeddings, attention projections and MLP layers.
    attn_drop_rate: dropout on the attention probabilities.
    drop_path_rate: stochastic depth of the last block (linear from 0).
    att_fuse: learned per-token fusion of the two streams; False averages them.
    norm_eps: LayerNorm epsilon (1e-6 as `load_backbone` builds the model).
    prior_attention: KTPFormer's KPA instead of `joints_embed` and a StackedTPA before the
      temporal sub-block of both streams of the first block (`layers.kpa_tpa`).
  """

  dim_in: int = 3
  dim_out: int = 3
  dim_feat: int = 512
  dim_rep: int = 512
  depth: int = 5
  num_heads: int = 8
  mlp_ratio: float = 2.0
  num_joints: int = 17
  maxlen: int = 243
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.0
  att_fuse: bool = True
  norm_eps: float = 1e-6
  prior_attention: bool = False

  def _stream(self, x, name: str, order: str, drop_path: float, train: bool, tpa: bool = False):
    """One official `Block` in stage_st ('st') or stage_ts ('ts') mode."""
    for kind in order:
      if tpa and kind == 't':
        x = StackedTPA(name=f'{name}_tpa')(x, train=train)
      axis = -2 if kind == 's' else -3
      block = block_from_fields(
        self, token_axis=axis, drop_path=drop_path, norm_eps=self.norm_eps, name=f'{name}_{kind}'
      )
      x = block(x, train=train)
    return x

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool,
    return_rep: bool = False,
    token_hook: Callable[[int, jax.Array], jax.Array] | None = None,
  ) -> jax.Array:
    """Lifts a clip of 2D poses (with confidence) to 3D, frame by frame.

    Args:
      x: kp2d_norm (B, T, J, C_in), T <= maxlen; channel 2 is the 2D confidence (1 for GT 2D).
      train: dropout and drop path (rng stream `dropout`).
      return_rep: return the motion representation instead of the 3D pose.
      token_hook: optional `h = token_hook(i, h)` on the (B, T', J, D) tokens before block i
        (i < depth) and `token_hook(depth, h)` before the head (after `norm`); wrappers such as
        `jaxpose.models.hot` prune or recover tokens there (T' may change).

    Returns:
      pose3d (B, T, J, dim_out), root-relative in normalised pixel units; or, with `return_rep`,
      the representation (B, T, J, dim_rep) in (-1, 1).
    """
    b, t, j, c = x.shape
    if (j, c) != (self.num_joints, self.dim_in) or t > self.maxlen:
      raise ValueError(
        f'DSTformer expects (B, T <= {self.maxlen}, {self.num_joints}, {self.dim_in}), got {x.shape}'
      )
    if self.prior_attention and t != self.maxlen:
      raise ValueError(f'DSTformer with prior_attention needs T = maxlen = {self.maxlen}, got {t}')
    dim = self.dim_feat
    dense = functools.partial(Linear, kernel_init=_normal_02, bias_init=nn.initializers.zeros)
    if self.prior_attention:
      h = KPA(dim, name='kpa')(x, train=train)
    else:
      h = dense(dim, name='joints_embed')(x)
    h = h + self.param('pos_embed', _normal_02, (1, j, dim))
    h = h + self.param('temp_embed', _normal_02, (1, self.maxlen, 1, dim))[:, :t]
    h = nn.Dropout(self.drop_rate, deterministic=not train)(h)
    for i, rate in enumerate(np.linspace(0.0, self.drop_path_rate, self.depth)):
      if token_hook is not None:
        h = token_hook(i, h)
      tpa = self.prior_attention and i == 0
      x_st = self._stream(h, f'blocks_st_{i}', 'st', float(rate), train, tpa)
      x_ts = self._stream(h, f'blocks_ts_{i}', 'ts', float(rate), train, tpa)
      if self.att_fuse:
        fuse = Linear(
          2, kernel_init=nn.initializers.zeros, bias_init=constant_init(0.5), name=f'ts_attn_{i}'
        )
        alpha = jax.nn.softmax(fuse(jnp.concatenate([x_st, x_ts], axis=-1)), axis=-1)
        h = x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]
      else:
        h = 0.5 * (x_st + x_ts)
    h = LayerNorm(epsilon=self.norm_eps, name='norm')(h)
    if token_hook is not None:
      h = token_hook(self.depth, h)
    rep = jnp.tanh(dense(self.dim_rep, name='pre_logits')(h))
    if return_rep:
      return rep
    return dense(self.dim_out, name='head')(rep)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of a full-length clip."""
  return (model.maxlen, model.num_joints, model.dim_in)


_SUB_BLOCK = re.compile(r'^(blocks_(?:st|ts)\.\d+)\.(norm1|norm2|attn|mlp)_([st])(\..*)?$')


def _torch_rename(module_path: str) -> str:
  """'blocks_st.0.attn_s.qkv' -> 'blocks_st_0_s.attn.qkv' (flax: blocks_st_0_s/attn/qkv)."""
  if module_path == 'pre_logits.fc':
    return 'pre_logits'
  m = _SUB_BLOCK.match(module_path)
  if m is None:
    return module_path
  block, sub, kind, rest = m.groups()
  return f'{block.replace(".", "_")}_{kind}.{sub}{rest or ""}'


def _norm_eps(norm_layer: Any) -> float:
  """LayerNorm eps of an official `norm_layer` argument (None: as `load_backbone`, 1e-6)."""
  if norm_layer is None:
    return 1e-6
  if isinstance(norm_layer, functools.partial):
    return float(norm_layer.keywords.get('eps', 1e-5))
  if isinstance(norm_layer, str):  # e.g. 'partial(nn.LayerNorm, eps=1e-6)'
    m = re.search(r'eps\s*=\s*([0-9.eE+-]+)', norm_layer)
    return float(m.group(1)) if m else 1e-5
  return float(getattr(norm_layer, 'eps', 1e-5))  # the nn.LayerNorm class: torch's default


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  dim_in: int = 3,
  dim_out: int = 3,
  dim_feat: int | None = None,
  dim_rep: int | None = None,
  depth: int | None = None,
  num_heads: int = 8,
  mlp_ratio: float | None = None,
  num_joints: int | None = None,
  maxlen: int | None = None,
  qkv_bias: bool = True,
  qk_scale: float | None = None,
  drop_rate: float = 0.0,
  attn_drop_rate: float = 0.0,
  drop_path_rate: float = 0.0,
  norm_layer: Any = None,
  att_fuse: bool | None = None,
):
  """Converts an official `DSTformer` state dict (`model_pos` of the released checkpoints).

  Args:
    state_dict: official keys (`blocks_st.0.attn_s.qkv.weight`, ...) -> arrays, no `module.`.
    dim_in, dim_out, dim_feat, dim_rep, depth, num_heads, mlp_ratio, num_joints, maxlen, qkv_bias,
      qk_scale, drop_rate, attn_drop_rate, drop_path_rate, att_fuse: the official constructor
      arguments; sizes left None are read off the weight shapes (`num_heads` cannot be and
      defaults to the released 8).
    norm_layer: the official `norm_layer`: None (as `load_backbone`: eps 1e-6), a
      `functools.partial(nn.LayerNorm, eps=...)`, its string form, or `nn.LayerNorm` (1e-5).

  Returns:
    (Model, variables).
  """
  sd = state_dict
  shape = lambda k: np.asarray(sd[k]).shape
  feat = dim_feat or shape('joints_embed.weight')[0]
  model = Model(
    dim_in=dim_in,
    dim_out=dim_out,
    dim_feat=feat,
    dim_rep=dim_rep or shape('pre_logits.fc.weight')[0],
    depth=depth or sum(1 for k in sd if re.fullmatch(r'blocks_st\.\d+\.norm1_s\.weight', k)),
    num_heads=num_heads,
    mlp_ratio=mlp_ratio or shape('blocks_st.0.mlp_s.fc1.weight')[0] / feat,
    num_joints=num_joints or shape('pos_embed')[1],
    maxlen=maxlen or shape('temp_embed')[1],
    qkv_bias=qkv_bias,
    qk_scale=qk_scale,
    drop_rate=drop_rate,
    attn_drop_rate=attn_drop_rate,
    drop_path_rate=drop_path_rate,
    att_fuse=any(k.startswith('ts_attn.') for k in sd) if att_fuse is None else att_fuse,
    norm_eps=_norm_eps(norm_layer),
  )
  return model, convert_for_model(sd, model, (1, *input_shape(model)), rename=_torch_rename)
