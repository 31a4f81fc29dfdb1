"""MotionAGFormer: a Transformer-GCNFormer network for 3D human pose lifting.

Paper: Mehraban, Adeli, Taati, "MotionAGFormer: Enhancing 3D Human Pose Estimation with a
Transformer-GCNFormer Network", WACV 2024, arXiv:2310.16288.
Official code: github.com/TaatiTeam/MotionAGFormer at commit
4756fd1eb7cc73f0e991f091ff2280e030ab85f3 (Apache-2.0); model in `model/MotionAGFormer.py` and
`model/modules/{attention,graph,mlp}.py`.

Architecture (seq2seq, every tensor (B, T, J, D)): joint embedding Linear(C_in -> D) + a spatial
positional embedding (1, J, D); `n_layers` MotionAGFormer blocks; LayerNorm; `rep_logit`
Linear(D -> dim_rep) + tanh (the motion representation); `head` Linear(dim_rep -> 3).
A block runs two streams on the same input and fuses them adaptively:
  x_attn  = AGFormer(temporal attention)(AGFormer(spatial attention)(x))
  x_graph = AGFormer(temporal GCN)(AGFormer(spatial GCN)(x))
  alpha   = softmax(Linear(2D -> 2)(concat(x_attn, x_graph)))     (B, T, J, 2)
  out     = alpha_0 * x_attn + alpha_1 * x_graph                   (no block residual)
An AGFormer block is a MetaFormer block with layer scale:
  x += ls_1 * Mixer(LN(x));  x += ls_2 * MLP(LN(x)).
The spatial GCN uses a fixed, deliberately asymmetric 17-joint graph (`CONNECTIONS`); the temporal
GCN builds, in every layer and call, a hard top-k (k = neighbour_num) dot-product similarity graph
over the frames of each joint. Both GCNs batch-normalise over the *nodes* (joints or frames), so a
model is tied to J = 17 and T = n_frames.

Cost (official measurements, one clip, B = 1), MACs:
  variant  T    params       Linear-only MACs   all matmuls (incl. QK^T, AV, Â·V, z·z^T, D·A·D)
  XS       27   2,241,531    1.01G              1.08G
  S        81   4,817,119    6.51G              7.86G
  B        243  11,723,811   47.96G             64.5G
  L        243  19,007,111   77.76G             104.6G
The README/paper numbers (1.0G/6.6G/48.3G/78.3G) are torchprofile's, close to Linear-only. This
port computes D^-1/2 A D^-1/2 elementwise, so it spends fewer MACs than the official all-matmul
count (488M per temporal GCN at T = 243 are saved).

Plug-in (`prior_attention=True`, off by default): KTPFormer's priors from `layers.kpa_tpa` in the
attention stream of the first block: x_attn = att_temporal(StackedTPA(att_spatial(KPA(x)))), with
KPA a D -> D learnable graph convolution over the H36M-17 skeleton + BN + ReLU and StackedTPA the
same over the frame chain with a residual (`layers_0/kpa`, `layers_0/tpa`); the graph stream is
unchanged. It adds BatchNorm variables (already part of this model's `batch_stats`).

Deviations from the official code:
  - Degree normalisation is elementwise (A_ij d_i d_j) instead of two bmm's with a diagonal
    matrix: same values, O(T^2) instead of O(T^3).
  - The temporal similarity z z^T is computed at HIGHEST matmul precision in float32 (torch uses
    the device default); on TPU/GPU a bf16/TF32 product would flip top-k neighbours.

Float32 ties in the temporal top-k graph (why T = 243 outputs can differ from torch by ~1e-3): the
hard k-NN threshold is discontinuous, and at T = 243 some rows of z z^T have their k-th and
(k+1)-th largest similarities closer than float32 resolution (relative gaps down to 1.5e-8 per
layer at MotionAGFormer-B; eps is 1.2e-7). Activations that differ by float rounding (3e-6 here,
from different summation orders) then select a different neighbour frame for that joint, and the
change reaches the output through the layer scales. With torch's init (layer scale 1e-5) the
effect is invisible (jaxpose vs torch 9e-7 max abs at B = 1); with layer scales of 0.3, as in
trained models, jaxpose vs torch float32 reaches 3e-3 to 7e-4 on some inputs, and so does
torch float32 vs the *same torch model in float64* (7e-3 / 7e-4; on one input jaxpose equals
torch float64 to 5e-7 while torch float32 is 7e-4 away). The official model is as sensitive to
its own float32 rounding as to this port, so this is not a porting error; outputs compare to
1e-4 only away from such ties (`experiments/torch_vs_jax/topk_ties.py` reproduces the numbers).
  - BatchNorm is `TorchBatchNorm` (torch semantics incl. the unbiased running_var update); its
    variables are `params/{scale,bias}` and `batch_stats/{mean,var}`.
  - `rep_logit.fc` is the Linear `rep_logit` (the torch Sequential's Tanh holds no weights).
  - `act_layer` is a name ('gelu' exact erf, or 'relu'), as in the official yaml configs.
  - `num_joints` must be 17: the official spatial GCN hard-codes 17 nodes and the H36M graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.models.layers import (
  ACTIVATIONS,
  GCN,
  Attention,
  DropPath,
  LayerNorm,
  Linear,
  Mlp,
  constant_init,
)
from jaxpose.models.layers.kpa_tpa import KPA, StackedTPA
from jaxpose.models.layers.tcn import MultiScaleTCN

# Row i lists the joints joint i aggregates from (H36M-17 order). Copied as published: rows 0 and
# 8 lack 4, 11 and 14 although the reverse edges exist, and there are no self loops.
CONNECTIONS: tuple[tuple[int, ...], ...] = (
  (1, 7),
  (2, 0),
  (3, 1),
  (2,),
  (5, 0),
  (6, 4),
  (5,),
  (0, 8),
  (7, 9),
  (8, 10),
  (9,),
  (12, 8),
  (13, 11),
  (12,),
  (15, 8),
  (16, 14),
  (15,),
)

_SHARED = dict(
  dim_in=3,
  dim_rep=512,
  dim_out=3,
  mlp_ratio=4,
  act_layer='gelu',
  attn_drop=0.0,
  drop=0.0,
  drop_path=0.0,
  use_layer_scale=True,
  layer_scale_init_value=1e-5,
  use_adaptive_fusion=True,
  num_heads=8,
  qkv_bias=False,
  qkv_scale=None,
  hierarchical=False,
  num_joints=17,
  use_temporal_similarity=True,
  temporal_connection_len=1,
  use_tcn=False,
  graph_only=False,
  neighbour_num=2,
)

# configs/h36m/MotionAGFormer-{xsmall,small,base,large}.yaml (3DHP uses T = 81 for B and L).
VARIANTS: dict[str, dict[str, Any]] = {
  'xs': dict(_SHARED, n_layers=12, dim_feat=64, n_frames=27),
  's': dict(_SHARED, n_layers=26, dim_feat=64, n_frames=81),
  'b': dict(_SHARED, n_layers=16, dim_feat=128, n_frames=243),
  'l': dict(_SHARED, n_layers=26, dim_feat=128, n_frames=243),
}

# Published numbers for the benchmark harness; MACs per clip (B = 1) as measured on the official
# code: `macs_linear` counts Linear layers only, `macs_all` every matmul.
PAPER: dict[str, dict[str, Any]] = {
  'xs': dict(
    params=2_241_531,
    macs_linear=1.01e9,
    macs_all=1.08e9,
    frames=27,
    reported_params='2.2M',
    reported_macs='1.0G',
  ),
  's': dict(
    params=4_817_119,
    macs_linear=6.51e9,
    macs_all=7.86e9,
    frames=81,
    reported_params='4.8M',
    reported_macs='6.6G',
  ),
  'b': dict(
    params=11_723_811,
    macs_linear=47.96e9,
    macs_all=64.5e9,
    frames=243,
    reported_params='11.7M',
    reported_macs='48.3G',
  ),
  'l': dict(
    params=19_007_111,
    macs_linear=77.76e9,
    macs_all=104.6e9,
    frames=243,
    reported_params='19.0M',
    reported_macs='78.3G',
  ),
}

# Shrunk settings for the generic model-contract test (cheap, and every dropout path active).
TEST_OVERRIDES: dict[str, Any] = dict(
  n_layers=1,
  dim_feat=16,
  dim_rep=8,
  num_heads=2,
  n_frames=5,
  drop=0.1,
  attn_drop=0.1,
  drop_path=0.1,
)


@dataclasses.dataclass(frozen=True)
class BlockConfig:
  """Hyper-parameters shared by every AGFormer block (official argument names)."""

  mlp_ratio: float = 4.0
  act_layer: str = 'gelu'
  attn_drop: float = 0.0
  drop: float = 0.0
  drop_path: float = 0.0
  num_heads: int = 4
  qkv_bias: bool = False
  qkv_scale: float | None = None
  use_layer_scale: bool = True
  layer_scale_init_value: float = 1e-5
  use_temporal_similarity: bool = True
  temporal_connection_len: int = 1
  neighbour_num: int = 4


def _graph_mixer(cfg: BlockConfig, mode: str, x: jax.Array, name: str) -> GCN:
  return GCN(
    mode=mode,
    num_nodes=x.shape[2] if mode == 'spatial' else x.shape[1],
    neighbours=CONNECTIONS,
    use_temporal_similarity=cfg.use_temporal_similarity,
    neighbour_num=cfg.neighbour_num,
    temporal_connection_len=cfg.temporal_connection_len,
    name=name,
  )


class AGFormerBlock(nn.Module):
  """MetaFormer block: x += ls1 * Mixer(LN(x)); x += ls2 * MLP(LN(x)).

  Attributes:
    cfg: shared hyper-parameters.
    mode: 'spatial' (mix over J) or 'temporal' (mix over T).
    mixer_type: 'attention', 'graph' or 'ms-tcn' (temporal multi-scale conv, `use_tcn`).
  """

  cfg: BlockConfig
  mode: str = 'spatial'
  mixer_type: str = 'attention'

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, D) -> (B, T, J, D)."""
    cfg, dim = self.cfg, x.shape[-1]
    if self.mixer_type == 'attention':
      mixer = Attention(
        num_heads=cfg.num_heads,
        token_axis=2 if self.mode == 'spatial' else 1,
        qkv_bias=cfg.qkv_bias,
        qk_scale=cfg.qkv_scale,
        attn_drop=cfg.attn_drop,
        proj_drop=cfg.drop,
        name='mixer',
      )
    elif self.mixer_type == 'graph':
      mixer = _graph_mixer(cfg, self.mode, x, 'mixer')
    elif self.mixer_type == 'ms-tcn':
      mixer = MultiScaleTCN(name='mixer')
    else:
      raise ValueError(
        f"mixer_type must be 'attention', 'graph' or 'ms-tcn', got {self.mixer_type!r}"
      )
    mlp = Mlp(
      hidden_dim=int(dim * cfg.mlp_ratio),
      drop=cfg.drop,
      activation=ACTIVATIONS[cfg.act_layer],
      name='mlp',
    )
    drop_path = DropPath(cfg.drop_path)
    for i, branch in ((1, mixer), (2, mlp)):
      y = branch(LayerNorm(name=f'norm{i}')(x), train=train)
      if cfg.use_layer_scale:
        y = y * self.param(f'layer_scale_{i}', constant_init(cfg.layer_scale_init_value), (dim,))
      x = x + drop_path(y, train=train)
    return x


class MotionAGFormerBlock(nn.Module):
  """Attention stream and graph stream on the same input, fused by learned per-token weights.

  Attributes:
    cfg: shared hyper-parameters.
    use_adaptive_fusion: softmax-weighted fusion; otherwise the plain mean of the streams.
    hierarchical: split D in halves; the graph stream reads its half plus the attention output,
      and the halves are concatenated.
    graph_only: bare GCNs instead of GCN-mixer MetaFormer blocks in the graph stream.
    use_tcn: a multi-scale temporal conv instead of the temporal GCN in the graph stream.
    prior_attention: KPA before the spatial and StackedTPA before the temporal attention block of
      the attention stream (`layers.kpa_tpa`).
  """

  cfg: BlockConfig
  use_adaptive_fusion: bool = True
  hierarchical: bool = False
  graph_only: bool = False
  use_tcn: bool = False
  prior_attention: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, D) -> (B, T, J, D)."""
    cfg = self.cfg
    if self.graph_only:
      graph_spatial = _graph_mixer(cfg, 'spatial', x, 'graph_spatial')
      if self.use_tcn:
        graph_temporal = MultiScaleTCN(name='graph_temporal')
      else:
        graph_temporal = _graph_mixer(cfg, 'temporal', x, 'graph_temporal')
    else:
      graph_spatial = AGFormerBlock(cfg, 'spatial', 'graph', name='graph_spatial')
      temporal_mixer = 'ms-tcn' if self.use_tcn else 'graph'
      graph_temporal = AGFormerBlock(cfg, 'temporal', temporal_mixer, name='graph_temporal')
    att_spatial = AGFormerBlock(cfg, 'spatial', 'attention', name='att_spatial')
    att_temporal = AGFormerBlock(cfg, 'temporal', 'attention', name='att_temporal')
    fusion = Linear(
      2, kernel_init=nn.initializers.zeros, bias_init=constant_init(0.5), name='fusion'
    )
    if self.prior_attention:  # the tokens of both attentions come from the priors
      width = x.shape[-1] // 2 if self.hierarchical else x.shape[-1]
      kpa, tpa = KPA(width, name='kpa'), StackedTPA(name='tpa')
      spatial, temporal = att_spatial, att_temporal
      att_spatial = lambda z, train: spatial(kpa(z, train=train), train=train)
      att_temporal = lambda z, train: temporal(tpa(z, train=train), train=train)

    if self.hierarchical:
      half = x.shape[-1] // 2
      x_attn = att_temporal(att_spatial(x[..., :half], train=train), train=train)
      x_graph = graph_temporal(graph_spatial(x[..., half:] + x_attn, train=train), train=train)
      if self.use_adaptive_fusion:
        # The official block owns an (unused) fusion layer here; create it so checkpoints map.
        fusion(jnp.zeros((1, 2 * half), x.dtype))
      return jnp.concatenate([x_attn, x_graph], axis=-1)

    x_attn = att_temporal(att_spatial(x, train=train), train=train)
    x_graph = graph_temporal(graph_spatial(x, train=train), train=train)
    if not self.use_adaptive_fusion:
      return (x_attn + x_graph) * 0.5
    alpha = jax.nn.softmax(fusion(jnp.concatenate([x_attn, x_graph], axis=-1)), axis=-1)
    return x_attn * alpha[..., 0:1] + x_graph * alpha[..., 1:2]


class Model(nn.Module):
  """MotionAGFormer lifter. Field names and defaults are the official constructor's.

  Attributes:
    n_layers: number of MotionAGFormer blocks.
    dim_in: input channels C_in (x, y, confidence).
    dim_feat: feature width D.
    dim_rep: width of the tanh motion representation.
    dim_out: output channels (3).
    mlp_ratio: MLP hidden width / D.
    act_layer: MLP activation name, 'gelu' (exact erf) or 'relu'.
    attn_drop: attention-probability dropout.
    drop: dropout after projections and in the MLP.
    drop_path: stochastic depth of every residual branch (same rate in every block).
    use_layer_scale: learn per-channel residual scales, initialised to layer_scale_init_value.
    layer_scale_init_value: initial layer scale.
    use_adaptive_fusion: fuse the streams with learned softmax weights (else the mean).
    num_heads: attention heads H (published configs: 8).
    qkv_bias: bias in the qkv projection.
    qkv_scale: attention logit scale; None means (D / H) ** -0.5.
    hierarchical: split the width between the two streams.
    num_joints: J; must be 17 (fixed H36M graph).
    use_temporal_similarity: top-k similarity temporal graph (else a fixed chain).
    temporal_connection_len: chain length for the fixed temporal graph.
    use_tcn: multi-scale temporal conv instead of the temporal GCN (width % 4 == 0).
    graph_only: bare GCNs in the graph stream.
    neighbour_num: k of the temporal top-k graph (published configs: 2).
    n_frames: T; the temporal BatchNorm has one channel per frame, so inputs must have T frames.
    prior_attention: KTPFormer's KPA/TPA in the attention stream of the first block.
  """

  n_layers: int = 12
  dim_in: int = 3
  dim_feat: int = 64
  dim_rep: int = 512
  dim_out: int = 3
  mlp_ratio: float = 4.0
  act_layer: str = 'gelu'
  attn_drop: float = 0.0
  drop: float = 0.0
  drop_path: float = 0.0
  use_layer_scale: bool = True
  layer_scale_init_value: float = 1e-5
  use_adaptive_fusion: bool = True
  num_heads: int = 4
  qkv_bias: bool = False
  qkv_scale: float | None = None
  hierarchical: bool = False
  num_joints: int = 17
  use_temporal_similarity: bool = True
  temporal_connection_len: int = 1
  use_tcn: bool = False
  graph_only: bool = False
  neighbour_num: int = 4
  n_frames: int = 243
  prior_attention: bool = False

  def _check(self, x: jax.Array) -> None:
    if self.act_layer not in ACTIVATIONS:
      raise ValueError(f'act_layer {self.act_layer!r} not in {sorted(ACTIVATIONS)}')
    if self.num_joints != len(CONNECTIONS):
      raise ValueError(f'MotionAGFormer needs num_joints={len(CONNECTIONS)}, got {self.num_joints}')
    expected = (self.n_frames, self.num_joints, self.dim_in)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
      raise ValueError(f'MotionAGFormer: input must be (B, {expected}), got {x.shape}')

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool,
    return_rep: bool = False,
    token_hook: Callable[[int, jax.Array], jax.Array] | None = None,
  ) -> jax.Array:
    """Lifts 2D keypoint sequences to 3D.

    Args:
      x: (B, T, J, C_in) float32, screen-normalised (x, y, confidence), T = n_frames, J = 17.
      train: dropout/DropPath active (RNG stream 'dropout') and BatchNorm uses and updates batch
        statistics (pass mutable=['batch_stats']).
      return_rep: return the tanh motion representation instead of the pose.
      token_hook: optional `h = token_hook(i, h)` on the (B, T', J, D) tokens before layer i
        (i < n_layers) and `token_hook(n_layers, h)` before the head (after `norm`); wrappers
        such as `jaxpose.models.hot` prune or recover tokens there (T' may change; the temporal
        GCN then has T' nodes).

    Returns:
      (B, T, J, dim_out) 2.5D pose in the training target's normalised image units, or
      (B, T, J, dim_rep) when return_rep.
    """
    self._check(x)
    cfg = BlockConfig(
      mlp_ratio=self.mlp_ratio,
      act_layer=self.act_layer,
      attn_drop=self.attn_drop,
      drop=self.drop,
      drop_path=self.drop_path,
      num_heads=self.num_heads,
      qkv_bias=self.qkv_bias,
      qkv_scale=self.qkv_scale,
      use_layer_scale=self.use_layer_scale,
      layer_scale_init_value=self.layer_scale_init_value,
      use_temporal_similarity=self.use_temporal_similarity,
      temporal_connection_len=self.temporal_connection_len,
      neighbour_num=self.neighbour_num,
    )
    x = Linear(self.dim_feat, name='joints_embed')(x)
    x = x + self.param('pos_embed', nn.initializers.zeros, (1, self.num_joints, self.dim_feat))
    for i in range(self.n_layers):
      if token_hook is not None:
        x = token_hook(i, x)
      x = MotionAGFormerBlock(
        cfg,
        use_adaptive_fusion=self.use_adaptive_fusion,
        hierarchical=self.hierarchical,
        graph_only=self.graph_only,
        use_tcn=self.use_tcn,
        prior_attention=self.prior_attention and i == 0,
        name=f'layers_{i}',
      )(x, train=train)
    x = LayerNorm(name='norm')(x)
    if token_hook is not None:
      x = token_hook(self.n_layers, x)
    x = jnp.tanh(Linear(self.dim_rep, name='rep_logit')(x))
    if return_rep:
      return x
    return Linear(self.dim_out, name='head')(x)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) the model expects (used by `jaxpose.models.example_input`)."""
  return (model.n_frames, model.num_joints, model.dim_in)


def _torch_rename(module_path: str) -> str:
  # The torch head is Sequential(fc=Linear, act=Tanh); here it is the Linear itself.
  return 'rep_logit' if module_path == 'rep_logit.fc' else module_path


def from_torch(
  state_dict: Mapping[str, np.ndarray], **official_kwargs: Any
) -> tuple[Model, dict[str, Any]]:
  """Builds `Model(**official_kwargs)` and converts an official state dict to its variables.

  Args:
    state_dict: official `MotionAGFormer.state_dict()` as numpy arrays (no 'module.' prefix).
    **official_kwargs: official constructor arguments (e.g. a yaml model section); `act_layer`
      may be 'gelu'/'relu' or the torch class (nn.GELU/nn.ReLU).

  Returns:
    (model, variables) with variables {'params': ..., 'batch_stats': ...}.
  """
  from jaxpose.convert.torch_utils import convert_for_model

  kwargs = dict(official_kwargs)
  act = kwargs.get('act_layer')
  if act is not None and not isinstance(act, str):
    kwargs['act_layer'] = getattr(act, '__name__', str(act)).lower()
  fields = {f.name for f in dataclasses.fields(Model)} - {'parent', 'name'}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(
      f'from_torch: unknown MotionAGFormer kwargs {unknown}; valid: {sorted(fields)}'
    )
  model = Model(**kwargs)
  return model, convert_for_model(state_dict, model, (1, *input_shape(model)), rename=_torch_rename)
