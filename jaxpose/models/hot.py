"""HoT (Hourglass Tokenizer): token pruning and recovery wrapped around a video pose transformer.

Paper: Li, Liu, Liu, Wang, Cai, Sebe, "Hourglass Tokenizer for Efficient Transformer-Based 3D Human
Pose Estimation", CVPR 2024, arXiv:2311.12028.
Official code: github.com/NationalGAILab/HoT at commit 873b5bda0d38cc30ca808c519c87d2e1f22a3292
(`model/mixste/{hot_mixste,tpc_mixste}.py`, `model/motionbert/hot_motionbert.py`,
`model/motionagformer/hot_motionagformer.py`; MIT). Written from research/hot.md; no code copied.

The backbone is not copied: this Model builds the registered lifter (`backbone` = 'mixste',
'motionbert' or 'motionagformer', with `backbone_variant` and `backbone_kwargs`) as its submodule
`backbone` and plugs into it through the backbone's `token_hook`, which the backbone calls on its
(B, T, J, D) tokens before every block and once more before its regression head:

  embed -> blocks[:layer_index] -> TPC (DPC-kNN keeps `token_num` frames; + pos_embed_token)
        -> blocks[layer_index:] -> TRA (full-length queries attend to the kept tokens) -> head

`mode='hot'` (prune and recover) is seq2seq: (B, T, J, C_in) -> (B, T, J, 3).
`mode='tpc'` (prune only; the centre frame is always kept; no token embedding, no TRA) is
seq2frame: it predicts the K kept frames, (B, K, J, 3); `return_index=True` also returns their
indices (B, K), which the loss needs (`jaxpose.methods.hot`, `config.method.name = 'hot'`).
The pieces (DPC-kNN, TPC, TRA) are in `jaxpose.models.layers.token_pruning`.

Published models (VARIANTS): HoT w. MixSTE (81 tokens at block 3 of 8, T = 243), TPC w. MixSTE (61
at block 7), HoT w. MotionBERT-Lite (81 at block 1 of 5). `hot_motionagformer` follows the
H2OT file's hard-coded sizes (MotionAGFormer-B: 16 layers, D = 128, 81 tokens at layer 7) with
the published MotionAGFormer-B hyper-parameters (8 heads, 2 temporal neighbours); no trained
HoT-MotionAGFormer is released.

Parameters: `backbone/...` (exactly the backbone's tree, so trained backbone weights drop in),
`tpc/pos_embed_token` (1, K, D), `tra/x_token` (1, T, D) and
`tra/cross_attention/{linear_q,linear_k,linear_v,proj}`. TRA uses the backbone's heads and qkv
bias (MotionAGFormer: no bias) and the backbone's init convention (MotionBERT: N(0, 0.02)).

Deviations from the official code (see also `jaxpose.models.layers.token_pruning`):
  * Density jitter from the RNG stream 'hot' (or a fixed key), not torch's global RNG.
  * TRA projects its shared queries once, not once per (sample, joint): the same values, fewer
    MACs ((J - 1) T D^2: 1.02 G of HoT-MixSTE's 84.0 G, 0.25 G of HoT-MotionBERT's 31.7 G).
  * The backbones' own deviations apply (e.g. MixSTE/MotionBERT drop path per sample, not per
    (sample, frame) row; MotionBERT's block Linears start from torch's default init).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax.core import FrozenDict

from jaxpose import models
from jaxpose.convert.torch_utils import abstract_variables, convert_state_dict
from jaxpose.models.layers.token_pruning import TokenPruningCluster, TokenRecoveringAttention


@dataclasses.dataclass(frozen=True)
class _Backbone:
  """Where a backbone keeps the sizes HoT needs (its field names)."""

  depth: str
  heads: str
  qkv_bias: str
  qk_scale: str
  attn_drop: str
  drop: str
  first_layer: int  # the smallest block index pruning may precede
  normal_init: bool  # TRA Linears N(0, 0.02) with zero bias (MotionBERT's _init_weights)


_BACKBONES = {
  # MixSTE adds its temporal position embedding inside block 0, so pruning starts at block 1.
  'mixste': _Backbone(
    'depth',
    'num_heads',
    'qkv_bias',
    'qk_scale',
    'attn_drop_rate',
    'drop_rate',
    first_layer=1,
    normal_init=False,
  ),
  'motionbert': _Backbone(
    'depth',
    'num_heads',
    'qkv_bias',
    'qk_scale',
    'attn_drop_rate',
    'drop_rate',
    first_layer=0,
    normal_init=True,
  ),
  'motionagformer': _Backbone(
    'n_layers',
    'num_heads',
    'qkv_bias',
    'qkv_scale',
    'attn_drop',
    'drop',
    first_layer=0,
    normal_init=False,
  ),
}

MODES = ('hot', 'tpc')

VARIANTS = {
  'hot_mixste': dict(backbone='mixste', backbone_variant='243', token_num=81, layer_index=3),
  'tpc_mixste': dict(
    backbone='mixste', backbone_variant='243', token_num=61, layer_index=7, mode='tpc'
  ),
  'hot_motionbert': dict(
    backbone='motionbert', backbone_variant='lite', token_num=81, layer_index=1
  ),
  'hot_motionagformer': dict(
    backbone='motionagformer', backbone_variant='b', token_num=81, layer_index=7
  ),
}

# The backbone's own test size (MixSTE by default: T = 9, D = 32, 2 block pairs).
TEST_OVERRIDES = {'backbone_variant': 'test', 'token_num': 4, 'layer_index': 1}

# Per 243-frame clip at B = 1, measured on the official classes (research/hot.md section 2.5).
# `macs_linear`: thop (nn.Linear hooks plus LayerNorm elements; the authors' "FLOPs" are twice
# this); `macs_all`: torch FlopCounterMode FLOPs / 2 (every matmul incl. attention). The clustering
# is in neither. `backbone_*`: the wrapped backbone alone, same conventions.
PAPER = {
  'hot_mixste': {
    'params': 35_000_323,
    'macs_linear': 84.00e9,
    'macs_all': 88.09e9,
    'frames': 243,
    'backbone_params': 33_783_811,
    'backbone_macs_linear': 139.04e9,
    'backbone_macs_all': 147.42e9,
    'reported_params': '35.0M (measured)',
    'reported_macs': '84.0G MACs (168.0G FLOPs), -39.6% vs MixSTE',
  },
  'tpc_mixste': {
    'params': 33_783_811,
    'macs_linear': 126.01e9,
    'macs_all': 133.43e9,
    'frames': 243,
    'backbone_params': 33_783_811,
    'backbone_macs_linear': 139.04e9,
    'backbone_macs_all': 147.42e9,
    'reported_params': '33.8M (measured)',
    'reported_macs': '126.0G MACs (252.0G FLOPs), -9.4% vs MixSTE',
  },
  'hot_motionbert': {
    'params': 16_347_661,
    'macs_linear': 31.69e9,
    'macs_all': 33.43e9,
    'frames': 243,
    'backbone_params': 16_001_549,
    'backbone_macs_linear': 65.72e9,
    'backbone_macs_all': 71.05e9,
    'reported_params': '16.35M',
    'reported_macs': '31.69G MACs (63.4G FLOPs), -51.8% vs MotionBERT-Lite',
  },
}

# Published (backbone, variant) of each wrapped lifter, for the paper comparisons.
BACKBONE_OF = {
  'hot_mixste': ('mixste', '243'),
  'tpc_mixste': ('mixste', '243'),
  'hot_motionbert': ('motionbert', 'lite'),
  'hot_motionagformer': ('motionagformer', 'b'),
}


def backbone_config(backbone: str, variant: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """The backbone's constructor kwargs: its VARIANTS[variant] updated by kwargs.

  `variant` '' means the backbone Model's defaults; 'test' its default variant shrunk by its
  TEST_OVERRIDES (what tests and smoke runs use, whatever the backbone).

  Raises:
    ValueError: unknown backbone, variant or field (the message lists the valid ones).
  """
  if backbone not in _BACKBONES:
    raise ValueError(f'HoT: unknown backbone {backbone!r}; valid: {", ".join(_BACKBONES)}')
  table = models.variants(backbone)
  if variant == 'test':
    base = {**next(iter(table.values()), {}), **models.get_module(backbone).TEST_OVERRIDES}
  elif variant and variant not in table:
    raise ValueError(
      f'HoT: unknown {backbone} variant {variant!r}; valid: {", ".join(table)}, test or empty'
    )
  else:
    base = table[variant] if variant else {}
  out = {**base, **dict(kwargs)}
  fields = models.model_fields(backbone)
  bad = sorted(set(out) - set(fields))
  if bad:
    raise ValueError(f'HoT: unknown {backbone} field(s) {bad}; valid: {", ".join(fields)}')
  return out


class Model(nn.Module):
  """A video pose transformer with HoT's token pruning (TPC) and, in 'hot' mode, recovery (TRA).

  Attributes:
    backbone: the wrapped lifter, a `jaxpose.models` name: 'mixste', 'motionbert' or
      'motionagformer'.
    backbone_variant: its VARIANTS entry ('' for the backbone Model's defaults, 'test' for its
      default variant shrunk by its TEST_OVERRIDES).
    backbone_kwargs: backbone fields set on top of the variant (e.g. {'dim': 32, 'depth': 2}).
    token_num: frames kept after pruning, K.
    layer_index: the backbone block before which the tokens are pruned.
    mode: 'hot' (prune + recover, seq2seq) or 'tpc' (prune only, centre frame kept, seq2frame).
    distance: cdist formula of the clustering, 'torch' (as torch.cdist), 'exact' or 'matmul'.
    jitter_scale: amplitude of the density tie-breaking jitter (official 1e-6).
    jitter_seed: the key of the jitter when the 'hot' RNG stream is not given.
  """

  backbone: str = 'mixste'
  backbone_variant: str = '243'
  backbone_kwargs: Mapping[str, Any] = FrozenDict()
  token_num: int = 81
  layer_index: int = 3
  mode: str = 'hot'
  distance: str = 'torch'
  jitter_scale: float = 1e-6
  jitter_seed: int = 0

  def __post_init__(self) -> None:
    # Config systems pass plain dicts; a FrozenDict keeps the Module hashable.
    object.__setattr__(self, 'backbone_kwargs', FrozenDict(dict(self.backbone_kwargs)))
    super().__post_init__()

  def backbone_model(self, **module_kwargs: Any) -> nn.Module:
    """The backbone Module (unbound); `module_kwargs` such as `name` go to its constructor."""
    config = backbone_config(self.backbone, self.backbone_variant, self.backbone_kwargs)
    return models.get_module(self.backbone).Model(**config, **module_kwargs)

  def _check(self, depth: int, frames: int) -> None:
    spec = _BACKBONES[self.backbone]
    if self.mode not in MODES:
      raise ValueError(f'HoT: mode must be one of {MODES}, got {self.mode!r}')
    if not spec.first_layer <= self.layer_index < depth:
      raise ValueError(
        f'HoT: layer_index={self.layer_index} must be in [{spec.first_layer}, {depth - 1}] for '
        f'a {depth}-block {self.backbone}'
      )
    low = 2 if self.mode == 'tpc' else 1
    if not low <= self.token_num <= frames:
      raise ValueError(f'HoT: token_num={self.token_num} must be in [{low}, {frames}]')

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool,
    index: jax.Array | None = None,
    jitter: jax.Array | None = None,
    return_index: bool = False,
  ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Lifts a clip of 2D poses to 3D with pruned tokens in the later blocks.

    Args:
      x: kp2d_norm (B, T, J, C_in), T the backbone's clip length.
      train: dropout and drop path (stream 'dropout'); the density jitter comes from the stream
        'hot' when given (else from `jitter_seed`), in training and inference alike.
      index: (B, K) kept frames to use instead of clustering (e.g. the official selection, or the
        plain pass's in a flip pass).
      jitter: (B, T) density jitter to use instead of drawing one.
      return_index: also return the kept frame indices.

    Returns:
      pose3d (B, T, J, 3) ('hot') or (B, K, J, 3) at the kept frames ('tpc'), in the backbone's
      output units; with `return_index`, the tuple (pose3d, index (B, K) int32 ascending).
    """
    net = self.backbone_model(name='backbone')
    spec = _BACKBONES[self.backbone]
    depth = getattr(net, spec.depth)
    frames = models.get_module(self.backbone).input_shape(net)[0]
    self._check(depth, frames)
    if x.shape[1] != frames:
      raise ValueError(f'HoT: expects clips of T = {frames} frames, got {x.shape}')
    tpc = TokenPruningCluster(
      self.token_num,
      keep_center=self.mode == 'tpc',
      pos_embed=self.mode == 'hot',
      distance=self.distance,
      jitter_scale=self.jitter_scale,
      jitter_seed=self.jitter_seed,
      name='tpc',
    )
    tra = None
    if self.mode == 'hot':
      init = dict(kernel_init=nn.initializers.normal(0.02), bias_init=nn.initializers.zeros)
      tra = TokenRecoveringAttention(
        num_frames=frames,
        num_heads=getattr(net, spec.heads),
        qkv_bias=getattr(net, spec.qkv_bias),
        qk_scale=getattr(net, spec.qk_scale),
        attn_drop=getattr(net, spec.attn_drop),
        proj_drop=getattr(net, spec.drop),
        **(init if spec.normal_init else {}),
        name='tra',
      )
    kept: list[jax.Array] = []

    def token_hook(i: int, h: jax.Array) -> jax.Array:
      if i == self.layer_index:
        h, kept_index = tpc(h, index=index, jitter=jitter)
        kept.append(kept_index)
      elif i == depth and tra is not None:
        h = tra(h, train=train)
      return h

    out = net(x, train=train, token_hook=token_hook)
    if len(kept) != 1:
      raise RuntimeError(
        f'HoT: {self.backbone} called the pruning hook {len(kept)} times, not once'
      )
    return (out, kept[0]) if return_index else out


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of the wrapped backbone."""
  net = model.backbone_model(parent=None)
  return tuple(models.get_module(model.backbone).input_shape(net))


# --- Official checkpoints --------------------------------------------------------------------

# `--model` of the official scripts -> (backbone, mode).
OFFICIAL_MODELS = {
  'mixste.hot_mixste': ('mixste', 'hot'),
  'mixste.tpc_mixste': ('mixste', 'tpc'),
  'motionbert.hot_motionbert': ('motionbert', 'hot'),
  'motionagformer.hot_motionagformer': ('motionagformer', 'hot'),
}
# (token_num, layer_index) of the released / hard-coded models.
_PUBLISHED = {
  ('mixste', 'hot'): (81, 3),
  ('mixste', 'tpc'): (61, 7),
  ('motionbert', 'hot'): (81, 1),
  ('motionagformer', 'hot'): (81, 7),
}
# The H2OT file's MotionAGFormer: its constructor defaults with n_layers and dim_feat hard-coded.
_HOT_MAG_DEFAULTS = dict(n_layers=16, dim_feat=128, num_heads=4, neighbour_num=4, n_frames=243)
# Arguments of the official `common/arguments.py` that do not change the network (the MixSTE
# MLP width is hard-coded to 2 * channel, so `d_hid` is ignored too).
_UNUSED_ARGS = frozenset(
  'd_hid pad dataset keypoints data_augmentation reverse_augmentation test_augmentation crop_uv '
  'root_path actions downsample subset stride gpu train test nepoch batch_size lr lr_decay_large '
  'lr_decay_epoch workers lr_decay checkpoint previous_dir out_joints out_all out_channels '
  'previous_best previous_name root_joint subjects_train subjects_test layers'.split()
)
_OWN_KEYS = {'pos_embed_token': 'tpc.pos_embed_token', 'x_token': 'tra.x_token'}


def _infer_backbone(sd: Mapping[str, Any]) -> str:
  if any(k.startswith('STEblocks.') for k in sd):
    return 'mixste'
  if any(k.startswith('blocks_st.') for k in sd):
    return 'motionbert'
  if any(k.startswith('layers.') for k in sd):
    return 'motionagformer'
  raise ValueError('from_torch: cannot tell the backbone from the keys; pass model=')


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  model: str | None = None,
  token_num: int | None = None,
  layer_index: int | None = None,
  channel: int | None = None,
  frames: int | None = None,
  n_joints: int | None = None,
  maxlen: int | None = None,
  backbone_kwargs: Mapping[str, Any] | None = None,
  **args: Any,
):
  """Converts an official HoT / TPC state dict (a plain `model.state_dict()`, no `module.`).

  Args:
    state_dict: official keys (`STEblocks.0.attn.qkv.weight`, `pos_embed_token`, `x_token`,
      `cross_attention.linear_q.weight`, ...) -> arrays.
    model: the official `--model` ('mixste.hot_mixste', 'mixste.tpc_mixste',
      'motionbert.hot_motionbert', 'motionagformer.hot_motionagformer'); default: the backbone
      from the keys, 'hot' if there is an `x_token`, else 'tpc'.
    token_num, layer_index: `--token_num`, `--layer_index`. A HoT token_num is read off
      `pos_embed_token`; otherwise both default to the published model's (81 @ 3 HoT-MixSTE,
      61 @ 7 TPC-MixSTE, 81 @ 1 HoT-MotionBERT, 81 @ 7 HoT-MotionAGFormer).
    channel, frames, n_joints: MixSTE's `--channel`, `--frames`, `--n_joints` (read off the
      weights when None; depth 8, 8 heads, MLP 2 * channel and 2D inputs are hard-coded).
    maxlen: `--maxlen`; the MotionBERT sizes are hard-coded in the official file, so they are
      read off the weights; for MotionAGFormer it is T.
    backbone_kwargs: MotionAGFormer constructor arguments on top of the H2OT file's
      (16 layers, D = 128, 4 heads, 4 neighbours).
    **args: other official arguments; those that do not affect the network (`d_hid`, `stride`,
      `lr`, ...) are ignored, anything else raises.

  Returns:
    (Model, variables).
  """
  unknown = sorted(set(args) - _UNUSED_ARGS)
  if unknown:
    raise ValueError(f'from_torch: unknown HoT arguments {unknown}')
  sd = dict(state_dict)
  if model is not None and model not in OFFICIAL_MODELS:
    raise ValueError(f'from_torch: model must be one of {sorted(OFFICIAL_MODELS)}, got {model!r}')
  backbone, mode = OFFICIAL_MODELS[model] if model else (_infer_backbone(sd), None)
  mode = mode or ('hot' if 'x_token' in sd else 'tpc')
  own = {k: sd.pop(k) for k in list(sd) if k in _OWN_KEYS or k.startswith('cross_attention.')}
  if ('x_token' in own) != (mode == 'hot'):
    raise ValueError(
      f'from_torch: a {mode!r} model {"needs" if mode == "hot" else "has no"} x_token'
    )
  default_tokens, default_layer = _PUBLISHED[(backbone, mode)]
  if token_num is None:
    token_num = own['pos_embed_token'].shape[1] if mode == 'hot' else default_tokens

  bb_module = models.get_module(backbone)
  if backbone == 'mixste':
    bb_kwargs = dict(
      num_frame=frames,
      num_joints=n_joints,
      embed_dim_ratio=channel,
      in_chans=2,
      depth=8,
      num_heads=8,
      mlp_ratio=2.0,
    )
  elif backbone == 'motionbert':
    bb_kwargs = dict(num_heads=8)
  else:
    bb_kwargs = dict(_HOT_MAG_DEFAULTS, **({'n_frames': maxlen} if maxlen else {}))
  bb_kwargs.update(backbone_kwargs or {})
  bb, bb_vars = bb_module.from_torch(sd, **bb_kwargs)
  fields = {f: getattr(bb, f) for f in models.model_fields(backbone)}
  hot = Model(
    backbone=backbone,
    backbone_variant='',
    backbone_kwargs=FrozenDict(fields),
    token_num=int(token_num),
    layer_index=default_layer if layer_index is None else int(layer_index),
    mode=mode,
  )
  reference = abstract_variables(hot, (1, *input_shape(hot)))
  own_ref = {'params': {k: v for k, v in reference['params'].items() if k != 'backbone'}}
  renamed = {_OWN_KEYS.get(k, f'tra.{k}'): v for k, v in own.items()}
  variables = convert_state_dict(renamed, own_ref) if own else {'params': {}}
  for collection, tree in bb_vars.items():
    variables.setdefault(collection, {})['backbone'] = tree
  return hot, variables
