"""Pre-norm transformer block (timm ViT `Block`) over any token axis.

`x = x + DropPath(Attn(LN1(x)))`, then `x = x + DropPath(MLP(LN2(x)))`. The token axis is a field
(as in `layers.attention.Attention`), so a (B, T, J, D) tensor is attended over joints
(`token_axis=-2`) or frames (`token_axis=-3`) without reshapes. Sub-module names (`norm1`, `attn`,
`norm2`, `mlp`) follow timm, so torch checkpoints map one to one through
`jaxpose.convert.torch_utils.convert_state_dict` (`blocks.0.attn.qkv` -> `blocks_0/attn/qkv`).
Initialisation is PyTorch's default (`layers.Linear`).
"""

from __future__ import annotations

import jax
from flax import linen as nn

from jaxpose.models.layers.attention import Attention
from jaxpose.models.layers.drop_path import DropPath
from jaxpose.models.layers.mlp import Mlp
from jaxpose.models.layers.norms import LayerNorm


class TransformerBlock(nn.Module):
  """Multi-head self-attention and MLP sub-layers, each pre-norm with a residual.

  Attributes:
    num_heads: attention heads H.
    token_axis: the axis of x holding the tokens (any but the last).
    mlp_ratio: MLP hidden width = int(D * mlp_ratio).
    qkv_bias: bias on the fused qkv projection.
    qk_scale: logit scale; None means (D / H) ** -0.5.
    drop: dropout after the attention projection and inside the MLP.
    attn_drop: dropout on the attention probabilities.
    drop_path: stochastic depth rate of both residual branches.
    norm_eps: LayerNorm epsilon (timm ViTs and most pose lifters pass 1e-6; torch's default 1e-5).
  """

  num_heads: int = 8
  token_axis: int = -2
  mlp_ratio: float = 4.0
  qkv_bias: bool = False
  qk_scale: float | None = None
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.0
  norm_eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (..., D) with tokens at `token_axis` -> same shape."""
    return pre_norm_sublayers(
      self,
      x,
      train=train,
      token_axis=self.token_axis,
      norm1_eps=self.norm_eps,
      norm2_eps=self.norm_eps,
    )


def pre_norm_sublayers(
  block: nn.Module,
  x: jax.Array,
  *,
  train: bool,
  token_axis: int,
  norm1_eps: float,
  norm2_eps: float,
) -> jax.Array:
  """The block's two residual sub-layers, created in the calling compact module's scope.

  Sub-modules `norm1`, `attn`, `norm2`, `mlp` land directly in `block` (no extra nesting), so a
  block that adds its own input stage (KTPFormer's KPA/TPA prior blocks) keeps the official
  parameter layout.

  Args:
    block: the calling module; reads its `num_heads`, `mlp_ratio`, `qkv_bias`, `qk_scale`, `drop`,
      `attn_drop` and `drop_path` fields.
    x: (..., D) tokens at `token_axis`.
    train: dropout and stochastic depth on.
    token_axis: the attention axis.
    norm1_eps, norm2_eps: the two LayerNorm epsilons (equal in timm blocks).
  """
  attn = Attention(
    num_heads=block.num_heads,
    token_axis=token_axis,
    qkv_bias=block.qkv_bias,
    qk_scale=block.qk_scale,
    attn_drop=block.attn_drop,
    proj_drop=block.drop,
    name='attn',
  )
  drop_path = DropPath(block.drop_path)
  x = x + drop_path(attn(LayerNorm(epsilon=norm1_eps, name='norm1')(x), train=train), train=train)
  mlp = Mlp(int(x.shape[-1] * block.mlp_ratio), drop=block.drop, name='mlp')
  return x + drop_path(mlp(LayerNorm(epsilon=norm2_eps, name='norm2')(x), train=train), train=train)


def block_from_fields(
  owner: nn.Module, *, token_axis: int, drop_path: float, norm_eps: float, name: str
) -> TransformerBlock:
  """A TransformerBlock configured from a lifter's timm-style fields.

  Args:
    owner: a module with `num_heads`, `mlp_ratio`, `qkv_bias`, `qk_scale`, `drop_rate` and
      `attn_drop_rate` fields (MixSTE, MotionBERT); the block is created inside it.
    token_axis: attention axis (-2 joints, -3 frames for (B, T, J, D)).
    drop_path: stochastic depth rate of this block.
    norm_eps: LayerNorm epsilon.
    name: the block's name in `owner`.
  """
  return TransformerBlock(
    num_heads=owner.num_heads,
    token_axis=token_axis,
    mlp_ratio=owner.mlp_ratio,
    qkv_bias=owner.qkv_bias,
    qk_scale=owner.qk_scale,
    drop=owner.drop_rate,
    attn_drop=owner.attn_drop_rate,
    drop_path=drop_path,
    norm_eps=norm_eps,
    name=name,
  )
