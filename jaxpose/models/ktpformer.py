"""KTPFormer: MixSTE with kinematics and trajectory prior attention in its first layer.

Paper: Peng, Zhou, Mok, "KTPFormer: Kinematics and Trajectory Prior Knowledge-Enhanced
Transformer for 3D Human Pose Estimation", CVPR 2024, arXiv:2404.00658.
Official code: github.com/JihuaPeng/KTPFormer at commit b961951a2856dfa631b71bb1058ebebb7fc9acee
(`common/model_ktpformer.py`, class `KTPFormer`; graphs from `common/graph_utils.py` as
`run_ktpformer.py` builds them). Written from research/ktpformer.md; no code copied (the
repository has no licence).

x (B, T, J, 2) ->
  KPA block (`kpattention`):  h = KPA(x) + Spatial_pos_embed (J, D);  h += Attn_joints(LN_1e-5(h));
                              h += MLP(LN_1e-6(h))                         -> `Spatial_norm`
  TPA block (`tpattention`):  h = StackedTPA(h) + Temporal_pos_embed (T, D);  h += Attn_frames(
                              LN_1e-5(h));  h += MLP(LN_1e-6(h))           -> `Temporal_norm`
  depth x [spatial block -> `Spatial_norm` -> temporal block -> `Temporal_norm`]   (MixSTE)
  LayerNorm (eps 1e-5) -> Linear(D -> 3)                    -> (B, T, J, 3), every frame (seq2seq).
KPA / StackedTPA are `layers.kpa_tpa` (learnable graph convolutions over the kinematic and the
frame-chain graph, BatchNorm, ReLU). The MixSTE blocks are `layers.transformer.block_from_fields`
(pre-norm, LN eps 1e-6, qkv bias, exact GELU, MLP ratio 2), as in `jaxpose.models.mixste`, and the
same two inter-block norms (`Spatial_norm`, `Temporal_norm`) are re-applied after every block,
including after the KPA and TPA blocks. Drop path: linspace(0, rate, depth + 1); the KPA/TPA blocks
take the first (0), block i of both streams entry i + 1.

Graphs: the spatial adjacency is rebuilt from `parents` (default: H36M-17 as the official training
builds it through `Human36mDataset`, shoulders re-attached to the thorax, joint 8), the temporal
one from `num_frames`; neither is a variable (`layers.kpa_tpa.kinematic_adjacency`,
`trajectory_adjacency`). The model is tied to T = num_frames (TPA's M, adj2 and the temporal
position embedding are sized by it) and to J = len(parents).

Published setting (`-cs 512 -dep 7`, 8 heads): 35,213,430 params at T = 243, 34,859,622 at 81 and
34,765,014 at 27, the official counts.

The tensor stays (B, T, J, D): attention runs over axis -2 (joints) or -3 (frames) instead of the
official (B*T, J, D) <-> (B*J, T, D) rearranges. Variable names mirror the official ones except
inside the two prior blocks, which look like a `TransformerBlock` plus the prior
(`kpattention/{kpa, Spatial_pos_embed, norm1, attn, norm2, mlp}`); `from_torch` renames
`kpattention.attn.{kpa, norm1}` and the block's position embedding accordingly.

Deviations from the official code:
  * Training works: the official `KPAttention.forward` adds the position embedding in place to the
    ReLU output, which breaks backward (official issue #23); here every op is functional.
  * Training objective: the official `run_ktpformer.py` (from MixSTE) calls
    `loss.backward(loss.detach())`, i.e. descends L^2 / 2; train on L here.
  * DropPath drops a whole clip (batch element of (B, T, J, D)) rather than one (B*T) or (B*J)
    row of the official rearranged tensors (training only; the published eval model has rate 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.models.layers.kpa_tpa import (
  H36M_PARENTS,
  KPA,
  StackedTPA,
  kinematic_adjacency,
  parents_from_adjacency,
  trajectory_adjacency,
)
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.norms import LayerNorm
from jaxpose.models.layers.transformer import block_from_fields, pre_norm_sublayers

VARIANTS = {
  '243': {'num_frames': 243},
  '81': {'num_frames': 81},
  '27': {'num_frames': 27},
}

TEST_OVERRIDES = {'num_frames': 9, 'dim': 32, 'depth': 1, 'num_heads': 4}

# Per clip at B = 1, measured on the official class (research/ktpformer.md section 2.8, fixture
# meta): `macs_all` is torch FlopCounterMode / 2 (every matmul incl. attention and the LGCs).
# The paper's own table is not verified here.
PAPER = {
  '243': {
    'params': 35_213_430,
    'macs_all': 153_886_293_504,
    'frames': 243,
    'reported_params': '35.2M (measured, official class)',
    'reported_macs': '153.9G MACs per clip, 633M per frame (measured)',
  },
  '81': {
    'params': 34_859_622,
    'macs_all': 49_011_153_408,
    'frames': 81,
    'reported_params': '34.9M (measured, official class)',
    'reported_macs': '49.0G MACs per clip (measured)',
  },
  '27': {
    'params': 34_765_014,
    'macs_all': 16_083_242_496,
    'frames': 27,
    'reported_params': '34.8M (measured, official class)',
    'reported_macs': '16.1G MACs per clip (measured)',
  },
}


class PriorBlock(nn.Module):
  """KTPFormer's KPA or TPA block: prior tokens + position embedding, then attention and MLP.

  Attributes:
    kind: 'kpa' (spatial: KPA maps C_in -> dim over the joints) or 'tpa' (temporal: StackedTPA,
      width-preserving, over the frames).
    dim: token width D.
    num_heads: attention heads.
    mlp_ratio: MLP hidden width / D.
    qkv_bias: bias on the qkv projection.
    qk_scale: attention logit scale; None means (D / heads) ** -0.5.
    drop: dropout after the position embedding, the attention projection and in the MLP.
    attn_drop: dropout on the attention probabilities.
    drop_path: stochastic depth of both residual branches.
    parents: kinematic tree for the KPA graph.
    bn_momentum: torch-convention momentum of the prior's BatchNorms.
  """

  kind: str
  dim: int
  num_heads: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.0
  parents: tuple[int, ...] = H36M_PARENTS
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, T, J, C_in) for 'kpa', (B, T, J, D) for 'tpa' -> (B, T, J, D)."""
    zeros = nn.initializers.zeros
    if self.kind == 'kpa':
      h = KPA(self.dim, self.parents, bn_momentum=self.bn_momentum, name='kpa')(x, train=train)
      h = h + self.param('Spatial_pos_embed', zeros, (1, x.shape[-2], self.dim))
      token_axis = -2
    elif self.kind == 'tpa':
      h = StackedTPA(bn_momentum=self.bn_momentum, name='tpa')(x, train=train)
      h = h + self.param('Temporal_pos_embed', zeros, (1, x.shape[-3], self.dim))[0, :, None]
      token_axis = -3
    else:
      raise ValueError(f"PriorBlock.kind must be 'kpa' or 'tpa', got {self.kind!r}")
    h = nn.Dropout(self.drop, deterministic=not train)(h)
    # norm1 is a plain nn.LayerNorm in the official attention modules (eps 1e-5); norm2 is 1e-6.
    return pre_norm_sublayers(
      self, h, train=train, token_axis=token_axis, norm1_eps=1e-5, norm2_eps=1e-6
    )


class Model(nn.Module):
  """KTPFormer lifter (seq2seq).

  Attributes:
    num_frames: T, fixed by TPA and the temporal position embedding.
    num_joints: J; must equal len(parents).
    in_channels: C_in (2).
    dim: embedding width D (official `embed_dim_ratio`, `-cs`).
    depth: MixSTE block pairs after the KPA/TPA pair (official `depth`, `-dep`; 7 published).
    num_heads: attention heads (8 in `run_ktpformer.py`).
    mlp_ratio: MLP hidden width / D.
    qkv_bias: bias on the qkv projections.
    qk_scale: attention logit scale; None means (D / heads) ** -0.5.
    drop_rate: dropout after the position embeddings, attention projections and MLP layers.
    attn_drop_rate: dropout on the attention probabilities.
    drop_path_rate: stochastic depth of the last block pair (linear from 0 over depth + 1).
    parents: kinematic tree of the KPA graph (H36M-17 by default).
    bn_momentum: torch-convention momentum of the KPA/TPA BatchNorms.
  """

  num_frames: int = 243
  num_joints: int = 17
  in_channels: int = 2
  dim: int = 512
  depth: int = 7
  num_heads: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.1
  parents: tuple[int, ...] = H36M_PARENTS
  bn_momentum: float = 0.1

  def _prior(self, kind: str, name: str) -> PriorBlock:
    return PriorBlock(
      kind,
      self.dim,
      num_heads=self.num_heads,
      mlp_ratio=self.mlp_ratio,
      qkv_bias=self.qkv_bias,
      qk_scale=self.qk_scale,
      drop=self.drop_rate,
      attn_drop=self.attn_drop_rate,
      drop_path=0.0,  # dpr[0] of linspace(0, rate, depth + 1)
      parents=tuple(self.parents),
      bn_momentum=self.bn_momentum,
      name=name,
    )

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Lifts a clip of 2D poses to 3D, frame by frame.

    Args:
      x: kp2d_norm (B, T, J, C_in) with T = num_frames, J = num_joints.
      train: dropout and drop path (rng stream `dropout`), and the KPA/TPA BatchNorms use and
        update batch statistics (pass mutable=['batch_stats']).

    Returns:
      pose3d (B, T, J, 3), root-relative, in the unit of the training targets (metres).
    """
    expected = (self.num_frames, self.num_joints, self.in_channels)
    if x.ndim != 4 or x.shape[1:] != expected:
      raise ValueError(f'KTPFormer expects (B, {", ".join(map(str, expected))}), got {x.shape}')
    if len(self.parents) != self.num_joints:
      raise ValueError(f'KTPFormer: {len(self.parents)} parents for {self.num_joints} joints')
    # One module each, re-applied after every spatial / temporal block (as MixSTE).
    spatial_norm = LayerNorm(epsilon=1e-6, name='Spatial_norm')
    temporal_norm = LayerNorm(epsilon=1e-6, name='Temporal_norm')
    h = spatial_norm(self._prior('kpa', 'kpattention')(x, train=train))
    h = temporal_norm(self._prior('tpa', 'tpattention')(h, train=train))
    block = lambda name, axis, rate: block_from_fields(
      self, token_axis=axis, drop_path=rate, norm_eps=1e-6, name=name
    )
    rates = np.linspace(0.0, self.drop_path_rate, self.depth + 1)[1:]
    for i, rate in enumerate(rates):
      h = spatial_norm(block(f'STEblocks_{i}', -2, float(rate))(h, train=train))
      h = temporal_norm(block(f'TTEblocks_{i}', -3, float(rate))(h, train=train))
    h = LayerNorm(epsilon=1e-5, name='head_0')(h)
    return Linear(3, name='head_1')(h)

  def adjacencies(self) -> tuple[np.ndarray, np.ndarray]:
    """The fixed graphs the model uses: spatial (J, J) and temporal (T, T), float32."""
    return kinematic_adjacency(self.parents), trajectory_adjacency(self.num_frames)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) the model reads."""
  return (model.num_frames, model.num_joints, model.in_channels)


def _torch_rename(module_path: str) -> str:
  """'kpattention.attn.kpa.gconv' -> 'kpattention.kpa.gconv'; the blocks' pos embeds move up."""
  for block in ('kpattention', 'tpattention'):
    inner = f'{block}.attn'
    if module_path == inner:  # holds only the position embedding
      return block
    for child in ('kpa', 'tpa', 'norm1'):
      if module_path == f'{inner}.{child}' or module_path.startswith(f'{inner}.{child}.'):
        return block + module_path[len(inner) :]
  return module_path


def _as_parents(adj: Any, parents: Any, num_joints: int | None) -> tuple[int, ...]:
  if parents is not None:
    return tuple(int(p) for p in parents)
  if adj is None or isinstance(adj, str):
    return H36M_PARENTS
  adj = np.asarray(adj, np.float32)
  found = parents_from_adjacency(adj)
  if not np.allclose(kinematic_adjacency(found), adj, atol=1e-6):
    raise ValueError('adj is not a KTPFormer kinematic adjacency (row-normalised, diagonal 1)')
  if num_joints is not None and len(found) != num_joints:
    raise ValueError(f'adj has {len(found)} nodes, num_joints={num_joints}')
  return found


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  adj: Any = None,
  adj_temporal: Any = None,
  parents: Any = None,
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
) -> tuple[Model, dict[str, Any]]:
  """Converts an official `KTPFormer` state dict (e.g. `model_pos` of the released `.bin` files).

  Args:
    state_dict: official keys (`kpattention.attn.kpa.gconv.W`, `STEblocks.0.attn.qkv.weight`,
      ...) -> arrays, no `module.` prefix (`jaxpose.convert.load_official` strips it).
    adj: the official spatial adjacency (J, J), or None / a placeholder string. When given, the
      kinematic tree is recovered from it and the rebuilt graph must match it.
    adj_temporal: the official temporal adjacency (T, T), or None; when given it must be the
      frame chain of T = num_frame.
    parents: the kinematic tree (overrides `adj`); default H36M-17 as the official training.
    num_frame, num_joints, in_chans, embed_dim_ratio, depth, num_heads, mlp_ratio, qkv_bias,
      qk_scale, drop_rate, attn_drop_rate, drop_path_rate: the official constructor arguments.
      Those left None are read off the weight shapes; `num_heads` cannot be and defaults to the
      published 8.
    norm_layer: must be None (the official default, LayerNorm eps 1e-6).

  Returns:
    (Model, variables) with variables {'params': ..., 'batch_stats': ...}.
  """
  if norm_layer is not None:
    raise ValueError('only the default norm_layer (LayerNorm eps 1e-6) is supported')
  sd = state_dict
  shape = lambda k: np.asarray(sd[k]).shape
  dim = embed_dim_ratio or shape('kpattention.attn.kpa.gconv.W')[2]
  model = Model(
    num_frames=num_frame or shape('tpattention.attn.Temporal_pos_embed')[1],
    num_joints=num_joints or shape('kpattention.attn.Spatial_pos_embed')[1],
    in_channels=in_chans or shape('kpattention.attn.kpa.gconv.W')[1],
    dim=dim,
    depth=depth or sum(1 for k in sd if k.startswith('STEblocks.') and k.endswith('norm1.weight')),
    num_heads=num_heads,
    mlp_ratio=mlp_ratio or shape('kpattention.mlp.fc1.weight')[0] / dim,
    qkv_bias='kpattention.attn.qkv.bias' in sd if qkv_bias is None else qkv_bias,
    qk_scale=qk_scale,
    drop_rate=drop_rate,
    attn_drop_rate=attn_drop_rate,
    drop_path_rate=drop_path_rate,
    parents=_as_parents(adj, parents, num_joints),
  )
  if adj_temporal is not None and not isinstance(adj_temporal, str):
    expected = trajectory_adjacency(model.num_frames)
    if not np.allclose(np.asarray(adj_temporal, np.float32), expected, atol=1e-6):
      raise ValueError(f'adj_temporal is not the {model.num_frames}-frame chain graph')
  return model, convert_for_model(sd, model, (1, *input_shape(model)), rename=_torch_rename)
