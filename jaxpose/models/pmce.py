"""PMCE: co-evolution of pose and mesh for 3D human body estimation from video.

Paper: You, Liu, Li, Wang, Yang, "Co-Evolution of Pose and Mesh for 3D Human Body Estimation from
Video", ICCV 2023, arXiv:2308.10305.
Official code: github.com/kasvii/PMCE at commit 0f4075a7ef228e13382d65dbc67bdd3ce027cf4f
(`lib/models/PMCE.py`, `PoseEstimation.py` class `GraphormerNet`, `CoevoDecoder.py` class
`Pose2Mesh`), MIT. Written from the spec in research/pmce.md and the official source; no code copied.

Inputs (INPUT_KIND = 'video': the model reads two arrays, so it is not a plain 'pose2d' lifter):
  pose2d    (B, T, J, 2) float32: detected 2D joints, screen-normalised by the full-image width
            (x / w * 2 - 1, y / w * 2 - h / w), T = `num_frames` (16).
  img_feat  (B, T, D) float32: per-frame image features (D = `feat_dim`, 2048 for SPIN's
            ResNet-50 average pool), precomputed by a frozen backbone.
Output, a dict (batch axis first):
  'pose3d'    (B, J, 3) float32, **millimetres**, root-relative: the pose stream's output (frames
              fused by `fusion`; trained against the middle frame T // 2).
  'evo_pose'  (B, J, 3) float32, metres, root-relative: the co-evolved pose (official `cam_pose`).
  'mesh'      (B, V_out, 3) float32, metres, root-relative: the mesh (official `cam_mesh`),
              V_out = `num_out_vertices` (6890 for SMPL).

Architecture (see research/pmce.md section 2):
  * Pose stream (`PoseStream`, official `GraphormerNet`): Linear(2 -> C)(pose2d) + Linear(D -> C)
    (img_feat, broadcast over joints) + spatial position embedding, then `depth` x [spatial block
    over joints -> shared `norm_s` -> (first pass only: + temporal position embedding) -> temporal
    block over frames -> shared `norm_t`], with timm pre-norm ViT blocks (LayerNorm eps 1e-6, qkv
    bias, mlp_ratio 2, exact GELU; drop path linspace(0, 0.2, depth)). Head: LayerNorm (eps **1e-5**)
    -> Linear(C -> 3) -> `fusion`, a 1x1 Conv2d whose input channels are the T frames (a learned
    weighted sum over frames plus a bias) -> (B, J, 3).
  * Decoder (`CoevoDecoder`, official `Pose2Mesh`): a 2-layer bidirectional GRU (torch gate order
    r, z, n and torch's two biases per gate, `layers.rnn.TorchGRU`) over the T image features; its
    middle step f = y[T // 2] (B, 2H) conditions every AdaLN and feeds the vertex residual. Each
    coarse vertex starts at its nearest template joint (`vj_relation`), then 3 `CoevoBlock`s, a
    Conv1d "upsampling" with the V coarse vertices as channels and xyz as a length-3 sequence
    (kernel 3, zero padding 1) to V_out vertices, plus Linear_c(2H -> V_out)(ReLU(f)) per coordinate.
  * `CoevoBlock`: joint/vertex tokens (Linear(3 -> d) + N(0, 1) position embeddings), simultaneous
    cross-attention (joint queries over vertices and vertex queries over joints, both reading the
    pre-update features; separate wq/wk/wv/proj; joint heads 8, vertex heads 2), then AdaLN
    self-attention blocks, then Linear(d -> 3) + the input coordinates. Every norm in the decoder is
    `AdaLayerNorm`: gamma(f) * (x - mean) / (std + 1e-6) + beta(f) with torch.std (**unbiased**,
    N - 1) and eps added to the std (not flax's LayerNorm).

Official quirks reproduced (a clean rewrite would not load the checkpoints or match them):
  * Every CoevoBlock receives the ORIGINAL input joints; only the vertex stream is chained and only
    the last block's joints are returned. In blocks 1 and 2 everything that only feeds the joint
    output (joint cross- and self-attention, joint head, `proj_v2j_dim`, `v2j_K_embed`,
    `j_Q_embed`) exists, is counted and receives no gradient.
  * The decoder reads the middle frame as `seqlen // 2` of the config; here `num_frames // 2`, and
    the input must have exactly `num_frames` frames.
  * For 3DPW/3DHP the input has 19 COCO joints, but `vj_relation` comes from the 17 H36M joints of
    the template, so the vertices start at COCO joints with H36M indices. `vj_relation` is taken
    as given, whatever joint set it was computed for.

The template (`vj_relation`). The official constructor loads the SMPL mean mesh (6890 x 3), the
GraphCMR down-sampling matrices (`mesh_downsampling.npz`, 6890 -> 1723 -> 431) and
`J_regressor_h36m_correct.npy`; these are licence-gated files users bring. The forward pass uses
only `vj_relation` (V,) = the index of the nearest template joint of each coarse vertex, a static
field here. `coarse_template` / `load_template` compute it from those arrays/files (no dependency on
`jaxpose.body`), and `from_torch(..., joints_template=...)` computes it from the state dict's
`init_vertices` buffer. `vj_relation=None` (e.g. for `build('pmce')` or `param_count`) means a
placeholder mapping v -> v mod J: fine for training from scratch (the vertex position embeddings are
learned), wrong for official checkpoints. The official `init_vertices` buffer (the 431 coarse mean
vertices) is not used by the forward pass and is not kept in the variables; the up-sampling is the
learned Conv1d, so no sampling matrix is a buffer either.

Loading an official checkpoint (files from the official `data/base_data` and the repo):

  _, vj = pmce.load_template('smpl_mean_vertices.npy', 'mesh_downsampling.npz',
                             'J_regressor_h36m_correct.npy')
  model, variables = jaxpose.convert.load_official('pmce', 'mesh_3dpw.pth.tar', vj_relation=vj)
  out = model.apply(variables, pose2d, img_feat, train=False)

A stage-1 checkpoint (`pose_3dpw.pth.tar`, a bare GraphormerNet) loads as a `PoseStream`.

Parameters: `param_count('pmce')` (variant '3dpw', J = 19) = 103,066,416 and variant 'h36m'
(J = 17) = 103,064,752, equal to `sum(p.numel() for p in model.parameters())` of the official
`PMCE(num_joint, 256, 3)` with seqlen 16 and joint_dim = vertx_dim = 64 (counted by instantiating
the official classes with torch 2.13 / timm 1.0.31, the CUDA and file loads stubbed). Of these the
pose stream has 3,699,220 (J = 19), the bidirectional GRU 37,773,312 and the three 2048 -> 6890
residual heads 42,352,830. The issue's layer-by-layer estimate 103,066,045 was 371 short.

Module and parameter names mirror the official ones (`pose_lifter/SpatialBlocks_0/attn/qkv`,
`pose_mesh_coevo/coevoblock1/joint_CA_FFN/normq/mlp_gamma`, `gru_cur/weight_ih_l0` in torch
layout), so `from_torch` is `convert.torch_utils.convert_state_dict`. Initialisation follows torch:
`layers.Linear`, zero lifter position embeddings, N(0, 1) decoder embeddings.

At the official widths (J = 19, torch-initialised official model, 2 clips) `from_torch` reproduces
the official forward to max abs 1.7e-6 m (mesh), 6e-7 (evo_pose), 3.7e-7 mm (pose3d), checked
outside the repo; the parity fixtures cover reduced widths (tests/parity/test_pmce_parity.py).

Deviations: none in the forward pass. DropPath (0.2 in every CoevoBlock sub-block, linspace(0, 0.2)
in the pose stream) and dropout draw from the 'dropout' RNG stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.models.layers.attention import Attention
from jaxpose.models.layers.drop_path import DropPath
from jaxpose.models.layers.linear import Linear, torch_bias_init, torch_kernel_init
from jaxpose.models.layers.mlp import Mlp
from jaxpose.models.layers.norms import LayerNorm
from jaxpose.models.layers.rnn import TorchGRU
from jaxpose.models.layers.transformer import block_from_fields

INPUT_KIND = 'video'

# The official configs: hpe_dim 256, hpe_dep 3, joint_dim = vertx_dim = 64, seqlen 16. The 3DPW and
# 3DHP models read 19 COCO joints (17 + pelvis + neck); the H36M model 17 H36M joints.
VARIANTS = {
  '3dpw': {'num_joints': 19},
  'h36m': {'num_joints': 17},
}

TEST_OVERRIDES = {
  'num_frames': 4,
  'num_joints': 5,
  'feat_dim': 8,
  'embed_dim': 16,
  'depth': 2,
  'num_heads': 2,
  'joint_dim': 8,
  'vertx_dim': 8,
  'joint_heads': 2,
  'gru_hidden': 4,
  'num_vertices': 6,
  'num_out_vertices': 10,
  'num_blocks': 2,
}

# Official parameter counts (torch `model.parameters()`), see the module docstring.
PAPER = {
  '3dpw': {'params': 103_066_416, 'frames': 16},
  'h36m': {'params': 103_064_752, 'frames': 16},
}


class PoseStream(nn.Module):
  """The pose stream (official `GraphormerNet`): a clip of 2D poses + image features -> one 3D pose.

  Attributes:
    num_frames: T (the temporal position embedding and the frame-fusion weights are per frame).
    num_joints: J.
    feat_dim: image feature width D.
    embed_dim: token width C (official `hpe_dim`, 256).
    depth: spatial/temporal block pairs (official `hpe_dep`, 3).
    num_heads: attention heads of every block.
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias on the fused qkv projections.
    qk_scale: attention logit scale; None means (C / heads) ** -0.5.
    drop_rate: dropout after the position embeddings, attention projections and MLPs.
    attn_drop_rate: dropout on the attention probabilities.
    drop_path_rate: stochastic depth of the last block pair (linear from 0).
  """

  num_frames: int = 16
  num_joints: int = 19
  feat_dim: int = 2048
  embed_dim: int = 256
  depth: int = 3
  num_heads: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.2

  @nn.compact
  def __call__(self, pose2d: jax.Array, img_feat: jax.Array, *, train: bool) -> jax.Array:
    """Lifts a clip to one 3D pose.

    Args:
      pose2d: (B, T, J, 2) screen-normalised 2D joints.
      img_feat: (B, T, D) per-frame image features.
      train: dropout and drop path (RNG stream 'dropout').

    Returns:
      pose3d (B, J, 3), root-relative, in the unit of the training targets (mm officially).
    """
    _check_inputs(self, pose2d, img_feat)
    c = self.embed_dim
    pos_drop = nn.Dropout(self.drop_rate, deterministic=not train)
    zeros = nn.initializers.zeros
    h = Linear(c, name='joint_embed')(pose2d)  # (B, T, J, C)
    h = h + Linear(c, name='imgfeat_embed')(img_feat)[:, :, None]
    h = pos_drop(h + self.param('spatial_pos_embed', zeros, (1, self.num_joints, c)))
    # One module each, applied after every block (the official shared norms).
    norm_s = LayerNorm(epsilon=1e-6, name='norm_s')
    norm_t = LayerNorm(epsilon=1e-6, name='norm_t')
    rates = np.linspace(0.0, self.drop_path_rate, self.depth)
    for i, rate in enumerate(rates):
      block = lambda name, axis, r=float(rate): block_from_fields(
        self, token_axis=axis, drop_path=r, norm_eps=1e-6, name=name
      )
      h = norm_s(block(f'SpatialBlocks_{i}', -2)(h, train=train))
      if i == 0:
        pos = self.param('temporal_pos_embed', zeros, (1, self.num_frames, c))
        h = pos_drop(h + pos[0, :, None])
      h = norm_t(block(f'TemporalBlocks_{i}', -3)(h, train=train))
    h = LayerNorm(epsilon=1e-5, name='regression_0')(h)
    h = Linear(3, name='regression_1')(h)  # (B, T, J, 3)
    return FrameFusion(name='fusion')(h)


class FrameFusion(nn.Module):
  """The official `fusion` Conv2d(T -> 1, kernel 1x1) applied with the frames as channels.

  out[b, j, c] = sum_t w[t] x[b, t, j, c] + bias. The kernel is stored in flax's HWIO conv layout,
  (1, 1, T, 1), so the torch weight (1, T, 1, 1) converts like any conv kernel.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, T, J, 3) -> (B, J, 3)."""
    t = x.shape[1]
    kernel = self.param('kernel', torch_kernel_init, (1, 1, t, 1))
    bias = self.param('bias', torch_bias_init(t), (1,))
    return jnp.einsum('btjc,t->bjc', x, kernel[0, 0, :, 0]) + bias[0]


class AdaLayerNorm(nn.Module):
  """Adaptive LayerNorm conditioned on a feature: gamma(f) * (x - mean) / (std + eps) + beta(f).

  torch.std semantics: the **unbiased** standard deviation (divide by C - 1), and eps is added to the
  std, not to the variance (flax's LayerNorm does neither). gamma, beta = Linear(D_f -> C)(f)
  (`mlp_gamma`, `mlp_beta`), broadcast over the tokens.

  Attributes:
    eps: added to the standard deviation.
  """

  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    """x: (B, N, C), cond: (B, D_f) -> (B, N, C)."""
    c = x.shape[-1]
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    std = jnp.sqrt(jnp.sum(jnp.square(centred), axis=-1, keepdims=True) / (c - 1))
    gamma = Linear(c, name='mlp_gamma')(cond)[:, None]
    beta = Linear(c, name='mlp_beta')(cond)[:, None]
    return gamma * centred / (std + self.eps) + beta


class CrossAttention(nn.Module):
  """Multi-head cross-attention with separate query/key/value projections (`wq`, `wk`, `wv`, `proj`).

  Queries and keys have width C (split into heads of C / H), values width C_v (heads of C_v / H);
  logits are scaled by (C / H) ** -0.5 after the product, softmax over the keys, then
  `proj`: Linear(C_v -> C).

  Attributes:
    num_heads: H.
    qkv_bias: bias on wq, wk, wv.
    attn_drop: dropout on the attention probabilities.
    proj_drop: dropout after `proj`.
  """

  num_heads: int = 8
  qkv_bias: bool = True
  attn_drop: float = 0.0
  proj_drop: float = 0.0

  @nn.compact
  def __call__(self, xq: jax.Array, xk: jax.Array, xv: jax.Array, *, train: bool) -> jax.Array:
    """xq: (B, N, C), xk: (B, M, C), xv: (B, M, C_v) -> (B, N, C)."""
    dim, v_dim, heads = xq.shape[-1], xv.shape[-1], self.num_heads
    if dim % heads or v_dim % heads:
      raise ValueError(f'CrossAttention: widths {dim}, {v_dim} not divisible by num_heads={heads}')

    def split(t):  # (B, L, W) -> (B, H, L, W / H), contiguous channel blocks per head
      return jnp.swapaxes(t.reshape(*t.shape[:-1], heads, t.shape[-1] // heads), -2, -3)

    q = split(Linear(dim, use_bias=self.qkv_bias, name='wq')(xq))
    k = split(Linear(dim, use_bias=self.qkv_bias, name='wk')(xk))
    v = split(Linear(v_dim, use_bias=self.qkv_bias, name='wv')(xv))
    attn = jax.nn.softmax((q @ jnp.swapaxes(k, -1, -2)) * (dim // heads) ** -0.5, axis=-1)
    attn = nn.Dropout(self.attn_drop)(attn, deterministic=not train)
    out = jnp.swapaxes(attn @ v, -2, -3)  # (B, N, H, C_v / H)
    out = Linear(dim, name='proj')(out.reshape(*out.shape[:-2], v_dim))
    return nn.Dropout(self.proj_drop)(out, deterministic=not train)


class CrossAttentionBlock(nn.Module):
  """xq + DropPath(CA(AdaLN_q(xq), AdaLN_k(xk), AdaLN_v(xv))), then xq + DropPath(MLP(AdaLN_2(xq))).

  Attributes:
    num_heads: attention heads.
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias on wq, wk, wv.
    drop: dropout after the attention projection and inside the MLP.
    attn_drop: dropout on the attention probabilities.
    drop_path: stochastic depth of both residual branches.
  """

  num_heads: int = 8
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.0

  @nn.compact
  def __call__(
    self, xq: jax.Array, xk: jax.Array, xv: jax.Array, cond: jax.Array, *, train: bool
  ) -> jax.Array:
    """xq: (B, N, C), xk: (B, M, C), xv: (B, M, C_v), cond: (B, D_f) -> (B, N, C)."""
    drop_path = DropPath(self.drop_path)
    attn = CrossAttention(self.num_heads, self.qkv_bias, self.attn_drop, self.drop, name='attn')(
      AdaLayerNorm(name='normq')(xq, cond),
      AdaLayerNorm(name='normk')(xk, cond),
      AdaLayerNorm(name='normv')(xv, cond),
      train=train,
    )
    xq = xq + drop_path(attn, train=train)
    mlp = Mlp(int(xq.shape[-1] * self.mlp_ratio), drop=self.drop, name='mlp')
    return xq + drop_path(mlp(AdaLayerNorm(name='norm2')(xq, cond), train=train), train=train)


class AdaBlock(nn.Module):
  """Pre-AdaLN self-attention block: x + DropPath(Attn(AdaLN_1(x))), x + DropPath(MLP(AdaLN_2(x))).

  The attention is timm's (fused `qkv`, `proj`; `layers.attention.Attention`).

  Attributes:
    num_heads: attention heads.
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias on the fused qkv projection.
    drop: dropout after the attention projection and inside the MLP.
    attn_drop: dropout on the attention probabilities.
    drop_path: stochastic depth of both residual branches.
  """

  num_heads: int = 8
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, N, C), cond: (B, D_f) -> (B, N, C)."""
    drop_path = DropPath(self.drop_path)
    attn = Attention(
      num_heads=self.num_heads,
      qkv_bias=self.qkv_bias,
      attn_drop=self.attn_drop,
      proj_drop=self.drop,
      name='attn',
    )
    x = x + drop_path(attn(AdaLayerNorm(name='norm1')(x, cond), train=train), train=train)
    mlp = Mlp(int(x.shape[-1] * self.mlp_ratio), drop=self.drop, name='mlp')
    return x + drop_path(mlp(AdaLayerNorm(name='norm2')(x, cond), train=train), train=train)


class CoevoBlock(nn.Module):
  """One pose-mesh co-evolution block (official `CoevoBlock`).

  Attributes:
    joint_dim: joint token width d_j.
    vertx_dim: vertex token width d_v.
    joint_heads: heads of the joint attentions (official 8).
    vertx_heads: heads of the vertex attentions (official 2).
    mlp_ratio: MLP hidden width / token width.
    qkv_bias: attention projection biases.
    drop: dropout after attention projections and inside MLPs (official 0).
    attn_drop: dropout on attention probabilities (official 0).
    drop_path: stochastic depth of every residual branch (official 0.2).
  """

  joint_dim: int = 64
  vertx_dim: int = 64
  joint_heads: int = 8
  vertx_heads: int = 2
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  drop: float = 0.0
  attn_drop: float = 0.0
  drop_path: float = 0.2

  @nn.compact
  def __call__(
    self, joint: jax.Array, vertx: jax.Array, cond: jax.Array, *, train: bool
  ) -> tuple[jax.Array, jax.Array]:
    """joint: (B, J, 3), vertx: (B, V, 3) metres; cond: (B, D_f) -> (joint, vertx), same shapes."""
    nj, nv, dj, dv = joint.shape[1], vertx.shape[1], self.joint_dim, self.vertx_dim
    randn = nn.initializers.normal(1.0)
    emb = lambda name, n, d: self.param(name, randn, (1, n, d))
    common = dict(mlp_ratio=self.mlp_ratio, qkv_bias=self.qkv_bias, drop=self.drop)
    common.update(attn_drop=self.attn_drop, drop_path=self.drop_path)

    jf = Linear(dj, name='joint_proj')(joint) + emb('joint_pos_embed', nj, dj)
    vf = Linear(dv, name='vertx_proj')(vertx) + emb('vertx_pos_embed', nv, dv)
    # Simultaneous updates: both cross-attentions read the pre-update jf and vf.
    jk = Linear(dj, name='proj_v2j_dim')(vf) + emb('v2j_K_embed', nv, dj)
    vk = Linear(dv, name='proj_j2v_dim')(jf) + emb('j2v_K_embed', nj, dv)
    joint_ca = CrossAttentionBlock(self.joint_heads, name='joint_CA_FFN', **common)
    vertx_ca = CrossAttentionBlock(self.vertx_heads, name='vertx_CA_FFN', **common)
    jf, vf = (
      joint_ca(jf + emb('j_Q_embed', nj, dj), jk, vf, cond, train=train),
      vertx_ca(vf + emb('v_Q_embed', nv, dv), vk, jf, cond, train=train),
    )
    jf = AdaBlock(self.joint_heads, name='joint_SA_FFN', **common)(jf, cond, train=train)
    vf = AdaBlock(self.vertx_heads, name='vertx_SA_FFN', **common)(vf, cond, train=train)
    joint = Linear(3, name='proj_joint_feat2coor')(jf) + joint[..., :3]
    vertx = Linear(3, name='proj_vertx_feat2coor')(vf) + vertx[..., :3]
    return joint, vertx


class CoevoDecoder(nn.Module):
  """The co-evolution decoder (official `Pose2Mesh`): 3D joints + image features -> joints, mesh.

  Intermediates are sown into the 'intermediates' collection: `gru_middle` (B, 2H), the GRU output of
  the middle frame, and `verts_init` (B, V, 3), the initial coarse vertices.

  Attributes:
    num_frames: T; the middle frame is T // 2.
    num_joints: J.
    feat_dim: image feature width D (the GRU input).
    gru_hidden: GRU hidden width H (official 1024); AdaLN and the residual heads read 2H.
    num_vertices: coarse vertices V (official 431).
    num_out_vertices: output vertices V_out (official 6890).
    vj_relation: (V,) index of the joint each coarse vertex starts at; None: v mod J (placeholder).
    joint_dim, vertx_dim, joint_heads, vertx_heads, mlp_ratio, qkv_bias, drop, attn_drop,
      decoder_drop_path: the CoevoBlock settings (official 64, 64, 8, 2, 4, True, 0, 0, 0.2).
    num_blocks: CoevoBlocks (official 3).
  """

  num_frames: int = 16
  num_joints: int = 19
  feat_dim: int = 2048
  gru_hidden: int = 1024
  num_vertices: int = 431
  num_out_vertices: int = 6890
  vj_relation: tuple[int, ...] | None = None
  joint_dim: int = 64
  vertx_dim: int = 64
  joint_heads: int = 8
  vertx_heads: int = 2
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  drop: float = 0.0
  attn_drop: float = 0.0
  decoder_drop_path: float = 0.2
  num_blocks: int = 3

  @nn.compact
  def __call__(
    self, joints: jax.Array, img_feat: jax.Array, *, train: bool
  ) -> tuple[jax.Array, jax.Array]:
    """Evolves joints and a coarse mesh together, then upsamples the mesh.

    Args:
      joints: (B, J, 3) metres, root-relative (the pose stream's output / 1000).
      img_feat: (B, T, D) per-frame image features.
      train: dropout and drop path (RNG stream 'dropout').

    Returns:
      (joints (B, J, 3) metres, mesh (B, V_out, 3) metres).
    """
    if joints.ndim != 3 or joints.shape[1:] != (self.num_joints, 3):
      raise ValueError(
        f'PMCE decoder: joints must be (B, {self.num_joints}, 3), got {joints.shape}'
      )
    if img_feat.ndim != 3 or img_feat.shape[1:] != (self.num_frames, self.feat_dim):
      raise ValueError(
        f'PMCE decoder: img_feat must be (B, {self.num_frames}, {self.feat_dim}), '
        f'got {img_feat.shape}'
      )
    gru = TorchGRU(self.gru_hidden, num_layers=2, bidirectional=True, name='gru_cur')
    cond = gru(img_feat, train=train)[:, self.num_frames // 2]  # (B, 2H)
    self.sow('intermediates', 'gru_middle', cond)

    vertx = joints[:, np.asarray(vertex_joint_indices(self))]  # each vertex at its nearest joint
    self.sow('intermediates', 'verts_init', vertx)
    out_joints = joints
    for k in range(1, self.num_blocks + 1):
      block = CoevoBlock(
        joint_dim=self.joint_dim,
        vertx_dim=self.vertx_dim,
        joint_heads=self.joint_heads,
        vertx_heads=self.vertx_heads,
        mlp_ratio=self.mlp_ratio,
        qkv_bias=self.qkv_bias,
        drop=self.drop,
        attn_drop=self.attn_drop,
        drop_path=self.decoder_drop_path,
        name=f'coevoblock{k}',
      )
      # Official quirk: every block reads the ORIGINAL joints; only vertices are chained.
      out_joints, vertx = block(joints, vertx, cond, train=train)

    # Conv1d(V -> V_out, k=3, pad=1) with vertices as channels, xyz as the length-3 axis:
    # flax NWC input (B, 3, V), kernel (3, V, V_out).
    v = self.num_vertices
    mesh = nn.Conv(
      self.num_out_vertices,
      kernel_size=(3,),
      padding=((1, 1),),
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(3 * v),
      name='upsample_conv',
    )(jnp.swapaxes(vertx, 1, 2))
    mesh = jnp.swapaxes(mesh, 1, 2)  # (B, V_out, 3)
    relu_cond = jax.nn.relu(cond)
    residual = [Linear(self.num_out_vertices, name=f'linear_cur{c}')(relu_cond) for c in (1, 2, 3)]
    return out_joints, mesh + jnp.stack(residual, axis=-1)


def vertex_joint_indices(decoder: CoevoDecoder | Model) -> tuple[int, ...]:
  """The (V,) vertex -> joint map a decoder uses: its `vj_relation`, or the placeholder v mod J."""
  if decoder.vj_relation is None:
    return tuple(v % decoder.num_joints for v in range(decoder.num_vertices))
  vj = tuple(int(i) for i in decoder.vj_relation)
  if len(vj) != decoder.num_vertices or not all(0 <= i < decoder.num_joints for i in vj):
    raise ValueError(
      f'PMCE: vj_relation must hold num_vertices={decoder.num_vertices} joint indices in '
      f'[0, {decoder.num_joints}), got {len(vj)} values'
      + (f' in [{min(vj)}, {max(vj)}]' if vj else '')
    )
  return vj


def _check_inputs(module: Any, pose2d: jax.Array, img_feat: jax.Array) -> None:
  expected = (module.num_frames, module.num_joints, 2)
  if pose2d.ndim != 4 or pose2d.shape[1:] != expected:
    raise ValueError(
      f'PMCE: pose2d must be (B, {", ".join(map(str, expected))}), got {pose2d.shape}'
    )
  expected_f = (pose2d.shape[0], module.num_frames, module.feat_dim)
  if img_feat.shape != expected_f:
    raise ValueError(f'PMCE: img_feat must be {expected_f} (B, T, D), got {img_feat.shape}')


class Model(nn.Module):
  """PMCE: pose stream, then the co-evolution decoder on its output in metres.

  `model.apply(v, pose2d, img_feat, train=...)` runs both (stage 2 and inference);
  `model.apply(v, pose2d, img_feat, train=..., method='lift')` runs the pose stream alone (stage 1;
  `init` with the same `method` creates only its parameters).

  Attributes:
    num_frames: T (16).
    num_joints: J (19 COCO + pelvis + neck for 3DPW/3DHP, 17 for H36M).
    feat_dim: image feature width D (2048).
    embed_dim, depth, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate,
      drop_path_rate: the pose stream (`PoseStream`; official hpe_dim 256, hpe_dep 3, 8, 2.0).
    gru_hidden, num_vertices, num_out_vertices, vj_relation, joint_dim, vertx_dim, joint_heads,
      vertx_heads, decoder_mlp_ratio, decoder_drop_path, num_blocks: the decoder (`CoevoDecoder`).
  """

  num_frames: int = 16
  num_joints: int = 19
  feat_dim: int = 2048
  embed_dim: int = 256
  depth: int = 3
  num_heads: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  qk_scale: float | None = None
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  drop_path_rate: float = 0.2
  gru_hidden: int = 1024
  num_vertices: int = 431
  num_out_vertices: int = 6890
  vj_relation: tuple[int, ...] | None = None
  joint_dim: int = 64
  vertx_dim: int = 64
  joint_heads: int = 8
  vertx_heads: int = 2
  decoder_mlp_ratio: float = 4.0
  decoder_drop_path: float = 0.2
  num_blocks: int = 3

  def setup(self):
    self.pose_lifter = PoseStream(
      num_frames=self.num_frames,
      num_joints=self.num_joints,
      feat_dim=self.feat_dim,
      embed_dim=self.embed_dim,
      depth=self.depth,
      num_heads=self.num_heads,
      mlp_ratio=self.mlp_ratio,
      qkv_bias=self.qkv_bias,
      qk_scale=self.qk_scale,
      drop_rate=self.drop_rate,
      attn_drop_rate=self.attn_drop_rate,
      drop_path_rate=self.drop_path_rate,
    )
    self.pose_mesh_coevo = CoevoDecoder(
      num_frames=self.num_frames,
      num_joints=self.num_joints,
      feat_dim=self.feat_dim,
      gru_hidden=self.gru_hidden,
      num_vertices=self.num_vertices,
      num_out_vertices=self.num_out_vertices,
      vj_relation=self.vj_relation,
      joint_dim=self.joint_dim,
      vertx_dim=self.vertx_dim,
      joint_heads=self.joint_heads,
      vertx_heads=self.vertx_heads,
      mlp_ratio=self.decoder_mlp_ratio,
      decoder_drop_path=self.decoder_drop_path,
      num_blocks=self.num_blocks,
    )

  def __call__(
    self, pose2d: jax.Array, img_feat: jax.Array, *, train: bool
  ) -> dict[str, jax.Array]:
    """pose2d (B, T, J, 2), img_feat (B, T, D) -> {'pose3d' mm, 'evo_pose' m, 'mesh' m}.

    Returns:
      'pose3d' (B, J, 3) mm, 'evo_pose' (B, J, 3) metres, 'mesh' (B, V_out, 3) metres; all
      root-relative, camera frame.
    """
    pose3d = self.lift(pose2d, img_feat, train=train)
    evo_pose, mesh = self.pose_mesh_coevo(pose3d / 1000.0, img_feat, train=train)
    return {'pose3d': pose3d, 'evo_pose': evo_pose, 'mesh': mesh}

  def lift(self, pose2d: jax.Array, img_feat: jax.Array, *, train: bool) -> jax.Array:
    """The pose stream alone: (B, T, J, 2), (B, T, D) -> pose3d (B, J, 3) in mm."""
    return self.pose_lifter(pose2d, img_feat, train=train)


def example_inputs(model: Model | PoseStream, batch: int = 1) -> tuple[jax.Array, jax.Array]:
  """Zero (pose2d (B, T, J, 2), img_feat (B, T, D)) for `model.apply(v, *inputs, train=...)`."""
  return (
    jnp.zeros((batch, model.num_frames, model.num_joints, 2), jnp.float32),
    jnp.zeros((batch, model.num_frames, model.feat_dim), jnp.float32),
  )


# ----------------------------------------------------------------------------------------------
# The template: coarse mean mesh and the vertex -> nearest joint map.


def nearest_joints(joints_template: np.ndarray, vertices: np.ndarray) -> tuple[int, ...]:
  """For every vertex the index of its nearest joint (squared distance, first minimum on ties).

  The official `graph_utils.build_verts_joints_relation`.

  Args:
    joints_template: (J, 3) template joints, metres.
    vertices: (V, 3) template vertices, metres.

  Returns:
    vj_relation, V joint indices.
  """
  joints_template, vertices = np.asarray(joints_template), np.asarray(vertices)
  if joints_template.ndim != 2 or joints_template.shape[1] != 3:
    raise ValueError(f'joints_template must be (J, 3), got {joints_template.shape}')
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    raise ValueError(f'vertices must be (V, 3), got {vertices.shape}')
  d2 = np.sum(np.square(vertices[:, None, :] - joints_template[None, :, :]), axis=-1)
  return tuple(int(i) for i in np.argmin(d2, axis=1))


def coarse_template(
  mean_vertices: np.ndarray,
  downsampling: Sequence[Any],
  j_regressor: np.ndarray,
  num_downsampling: int = 2,
) -> tuple[np.ndarray, tuple[int, ...]]:
  """The official decoder template: coarse mean mesh and `vj_relation`.

  Args:
    mean_vertices: (N, 3) SMPL mean mesh, metres (`smpl_mean_vertices.npy`, N = 6890).
    downsampling: GraphCMR down-sampling matrices D_0 (N_1, N), D_1 (N_2, N_1), ... (dense or
      scipy.sparse; `mesh_downsampling.npz['D']`).
    j_regressor: (J, N) joint regressor (`J_regressor_h36m_correct.npy`, J = 17).
    num_downsampling: how many of the matrices to apply (official 2: 6890 -> 1723 -> 431).

  Returns:
    (coarse vertices (V, 3) float32 metres = the official `init_vertices` buffer, vj_relation).
  """
  verts = np.asarray(mean_vertices, np.float32)
  regressor = np.asarray(j_regressor, np.float32)
  if verts.ndim != 2 or verts.shape[1] != 3:
    raise ValueError(f'mean_vertices must be (N, 3), got {verts.shape}')
  if regressor.ndim != 2 or regressor.shape[1] != verts.shape[0]:
    raise ValueError(f'j_regressor must be (J, {verts.shape[0]}), got {regressor.shape}')
  if len(downsampling) < num_downsampling:
    raise ValueError(f'need {num_downsampling} down-sampling matrices, got {len(downsampling)}')
  joints = regressor @ verts  # the template joints come from the full mesh
  coarse = verts
  for d in downsampling[:num_downsampling]:
    d = d.toarray() if hasattr(d, 'toarray') else np.asarray(d)
    if d.shape[1] != coarse.shape[0]:
      raise ValueError(
        f'down-sampling matrix {d.shape} does not apply to {coarse.shape[0]} vertices'
      )
    coarse = d.astype(np.float32) @ coarse
  return coarse, nearest_joints(joints, coarse)


def load_template(
  mean_vertices_file: str,
  downsampling_file: str,
  j_regressor_file: str,
) -> tuple[np.ndarray, tuple[int, ...]]:
  """`coarse_template` from the official files users bring.

  Args:
    mean_vertices_file: `smpl_mean_vertices.npy` (6890, 3).
    downsampling_file: GraphCMR `mesh_downsampling.npz` (pickled scipy.sparse matrices under 'D';
      loaded with allow_pickle, so only open files you trust).
    j_regressor_file: `J_regressor_h36m_correct.npy` (17, 6890).

  Returns:
    (coarse vertices (431, 3) metres, vj_relation (431 joint indices)).
  """
  with np.load(downsampling_file, allow_pickle=True, encoding='latin1') as z:
    if 'D' not in z.files:
      raise ValueError(f'{downsampling_file}: no key "D" (found {sorted(z.files)})')
    downsampling = list(z['D'])
  return coarse_template(np.load(mean_vertices_file), downsampling, np.load(j_regressor_file))


# ----------------------------------------------------------------------------------------------
# Official checkpoints.


def _count(sd: Mapping[str, Any], prefix: str, suffix: str) -> int:
  return sum(1 for k in sd if k.startswith(prefix) and k.endswith(suffix))


def _lifter_kwargs(sd: Mapping[str, np.ndarray], p: str, **given: Any) -> dict[str, Any]:
  embed = sd[f'{p}joint_embed.weight']
  dim = given.get('embed_dim') or embed.shape[0]
  return {
    'num_frames': given.get('num_frames') or sd[f'{p}temporal_pos_embed'].shape[1],
    'num_joints': given.get('num_joints') or sd[f'{p}spatial_pos_embed'].shape[1],
    'feat_dim': sd[f'{p}imgfeat_embed.weight'].shape[1],
    'embed_dim': dim,
    'depth': given.get('depth') or _count(sd, f'{p}SpatialBlocks.', 'norm1.weight'),
    'mlp_ratio': sd[f'{p}SpatialBlocks.0.mlp.fc1.weight'].shape[0] / dim,
    'qkv_bias': f'{p}SpatialBlocks.0.attn.qkv.bias' in sd,
  }


def _decoder_kwargs(
  sd: Mapping[str, np.ndarray],
  p: str,
  vj_relation: Sequence[int] | None,
  joints_template: np.ndarray | None,
  **given: Any,
) -> dict[str, Any]:
  b = f'{p}coevoblock1.'
  joint_dim = given.get('joint_dim') or sd[f'{b}joint_proj.weight'].shape[0]
  if vj_relation is None:
    if joints_template is None or f'{p}init_vertices' not in sd:
      raise ValueError(
        'PMCE from_torch: the decoder needs vj_relation (the nearest joint of each coarse '
        'vertex): pass vj_relation=..., or joints_template=(J, 3) template joints to compute it '
        f'from the state dict buffer {p}init_vertices (see load_template / coarse_template)'
      )
    vj_relation = nearest_joints(joints_template, sd[f'{p}init_vertices'])
  return {
    'num_joints': given.get('num_joints') or sd[f'{b}joint_pos_embed'].shape[1],
    'feat_dim': sd[f'{p}gru_cur.weight_ih_l0'].shape[1],
    'gru_hidden': sd[f'{p}gru_cur.weight_hh_l0'].shape[1],
    'num_vertices': sd[f'{b}vertx_pos_embed'].shape[1],
    'num_out_vertices': sd[f'{p}upsample_conv.weight'].shape[0],
    'vj_relation': tuple(int(i) for i in vj_relation),
    'joint_dim': joint_dim,
    'vertx_dim': given.get('vertx_dim') or sd[f'{b}vertx_proj.weight'].shape[0],
    'num_blocks': _count(sd, f'{p}coevoblock', 'joint_proj.weight'),
    'mlp_ratio': sd[f'{b}joint_SA_FFN.mlp.fc1.weight'].shape[0] / joint_dim,
  }


def from_torch(
  state_dict: Mapping[str, Any],
  *,
  num_joint: int | None = None,
  embed_dim: int | None = None,
  depth: int | None = None,
  seqlen: int | None = None,
  joint_dim: int | None = None,
  vertx_dim: int | None = None,
  num_heads: int = 8,
  drop_path_rate: float = 0.2,
  vj_relation: Sequence[int] | None = None,
  joints_template: np.ndarray | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
  """Converts an official PMCE, GraphormerNet (pose stream) or Pose2Mesh (decoder) state dict.

  The part is recognised from the keys: `pose_lifter.*` + `pose_mesh_coevo.*` (a `PMCE` checkpoint,
  `mesh_*.pth.tar`) -> `Model`; bare `SpatialBlocks.*` (`pose_*.pth.tar`, stage 1) -> `PoseStream`;
  bare `coevoblock1.*` -> `CoevoDecoder`.

  Args:
    state_dict: official keys -> arrays (no `module.` prefix; `jaxpose.convert.load_official`
      strips it). The `init_vertices` buffer is read only to compute `vj_relation`.
    num_joint, embed_dim, depth: the official `PMCE.get_model` arguments (J, hpe_dim, hpe_dep).
    seqlen, joint_dim, vertx_dim: the official config's DATASET.seqlen and MODEL.joint_dim /
      vertx_dim. Those left None are read off the weight shapes, except seqlen for a bare decoder
      (default 16, the official config).
    num_heads: pose-stream heads (not in the weights; official 8).
    drop_path_rate: the pose stream's stochastic depth (official 0.2).
    vj_relation: (V,) nearest template joint of each coarse vertex (`load_template`).
    joints_template: (J, 3) template joints (J_regressor_h36m x SMPL mean mesh), used with the
      state dict's `init_vertices` when vj_relation is None.

  Returns:
    (module, variables) with variables = {'params': ...}.

  Raises:
    ValueError: an unrecognised state dict, a decoder without vj_relation/joints_template, or
      keys/shapes that do not match the architecture (listed).
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  lifter_given = {'num_joints': num_joint, 'embed_dim': embed_dim, 'depth': depth}
  decoder_given = {'num_joints': num_joint, 'joint_dim': joint_dim, 'vertx_dim': vertx_dim}
  if (
    'pose_lifter.joint_embed.weight' in sd and 'pose_mesh_coevo.coevoblock1.joint_proj.weight' in sd
  ):
    lk = _lifter_kwargs(sd, 'pose_lifter.', num_frames=seqlen, **lifter_given)
    dk = _decoder_kwargs(sd, 'pose_mesh_coevo.', vj_relation, joints_template, **decoder_given)
    if dk['feat_dim'] != lk['feat_dim'] or dk['num_joints'] != lk['num_joints']:
      raise ValueError(f'PMCE from_torch: pose stream {lk} and decoder {dk} disagree on D or J')
    dk['decoder_mlp_ratio'] = dk.pop('mlp_ratio')
    del dk['num_joints'], dk['feat_dim']  # shared with the pose stream (checked above)
    module = Model(**lk, **dk, num_heads=num_heads, drop_path_rate=drop_path_rate)
  elif 'joint_embed.weight' in sd and 'SpatialBlocks.0.norm1.weight' in sd:
    lk = _lifter_kwargs(sd, '', num_frames=seqlen, **lifter_given)
    module = PoseStream(**lk, num_heads=num_heads, drop_path_rate=drop_path_rate)
  elif 'coevoblock1.joint_proj.weight' in sd:
    dk = _decoder_kwargs(sd, '', vj_relation, joints_template, **decoder_given)
    module = CoevoDecoder(**dk, num_frames=seqlen or 16)
  else:
    raise ValueError(
      'PMCE from_torch: not a PMCE, GraphormerNet or Pose2Mesh state dict (expected keys '
      "'pose_lifter.joint_embed.weight', 'joint_embed.weight' or 'coevoblock1.joint_proj.weight'); "
      f'first keys: {sorted(sd)[:5]}'
    )
  inputs = _dummy_inputs(module)
  reference = jax.eval_shape(lambda: module.init(jax.random.key(0), *inputs, train=False))
  reference = {'params': reference['params']}
  skip = lambda key: key.endswith('init_vertices')
  return module, convert_state_dict(sd, reference, skip=skip)


def _dummy_inputs(module: nn.Module) -> tuple[jax.Array, jax.Array]:
  if isinstance(module, CoevoDecoder):
    return (
      jnp.zeros((1, module.num_joints, 3), jnp.float32),
      jnp.zeros((1, module.num_frames, module.feat_dim), jnp.float32),
    )
  return example_inputs(module)
