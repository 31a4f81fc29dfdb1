"""Platypose's motion prior: the unconditional MDM transformer denoiser (predicts x0).

Paper: Pierzchlewicz, da Silva, Cotton, Sinz, "Platypose: Calibrated Zero-Shot Multi-Hypothesis 3D
Human Motion Estimation", 2024, arXiv:2403.06164. Official code: github.com/sinzlab/platypose at
commit 6a4ae0ce5b46f7d9cad6ee21ff903830edf92928 (`platypose/model/overcomplete.py`, class `MDM`,
built by `utils/model_util.create_model_and_diffusion`); no licence file, studied, not copied.
Written from research/platypose.md. The diffusion and the energy-guided sampler are
`jaxpose.methods.platypose`.

x (B, T, J, 3) noisy poses (J x 3 = 51 features per frame) and the ORIGINAL diffusion step
t (B,) in [0, 50) -> x0-hat (B, T, J, 3):
  tokens     poseEmbedding Linear(51 -> d) per frame;
  time token time_embed = Linear(d, d) -> SiLU -> Linear(d, d) applied to pe[t];
  sequence   [time token; frames] + pe[0 : T + 1], dropout 0.1 (`pe` is ONE sinusoidal table,
             pe[p, 2i] = sin(p w_i), pe[p, 2i+1] = cos(p w_i), w_i = exp(-2i ln(1e4) / d), shared
             by the timestep and the positions);
  encoder    num_layers post-norm torch TransformerEncoderLayers (x = LN(x + SA(x));
             x = LN(x + FF(x)), FF = Linear(d, ff) -> exact GELU -> dropout -> Linear(ff, d),
             dropout 0.1 after attention and FF, LayerNorm eps 1e-5);
  output     drop the time token, poseFinal Linear(d -> 51).
The attention is `layers.Attention` (fused qkv = torch `in_proj` [q; k; v], heads contiguous).

Variables: `params` (17,400,371 at the published d 512, ff 1024, 8 layers, 4 heads) and the
`buffers` collection holding `pe` (max_len, d), initialised to the sinusoid and loaded from
checkpoints (official checkpoints alias `sequence_pos_encoder.pe` and
`embed_timestep.sequence_pos_encoder.pe` to one tensor; `from_torch` checks they agree).

Deviations from the official code:
  * The `SkeletonEncoder` submodule is constructed officially but never called (`cond_mode` is
    hard-coded "no_cond"); it is omitted, and `from_torch` skips its keys (`skeleton_encoder.*`)
    explicitly. The official state dict has 19,530,803 parameters, 2,130,432 of them unused.
  * Layout: (B, T, J, 3) in and out instead of the official (N, F, 51) / sequence-first tensors.
  * `t` defaults to 0 when omitted (the registry contract calls models with x alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import abstract_variables, convert_state_dict
from jaxpose.models.layers.attention import Attention
from jaxpose.models.layers.diffusion import sinusoid_table
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.mlp import gelu
from jaxpose.models.layers.norms import LayerNorm

VARIANTS = {
  # The evaluation configs sample single poses (F = 1); the released checkpoint
  # MDM_H36m_256_frames_50_steps_dynamic was trained on chunks of up to 256 frames.
  'h36m': {'num_frames': 1},
  'h36m_256': {'num_frames': 256},
}

TEST_OVERRIDES = {'num_frames': 8, 'latent_dim': 32, 'ff_size': 64, 'num_layers': 2, 'max_len': 64}

PAPER = {
  'h36m': {
    'params': 17_400_371,
    'params_official_state_dict': 19_530_803,  # + the unused SkeletonEncoder
    'frames': 1,
    'flops_official': 0.068e9,  # FlopCounterMode, research/platypose.md §2
    'reported_params': 'not reported; measured on the official class',
  },
  'h36m_256': {
    'params': 17_400_371,
    'frames': 256,
    'flops_official': 8.65e9,
    'reported_params': 'not reported; measured on the official class',
  },
}


class EncoderLayer(nn.Module):
  """torch.nn.TransformerEncoderLayer, post-norm, exact GELU (names norm1/2, linear1/2)."""

  num_heads: int
  ff_size: int
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: (B, L, d) -> (B, L, d)."""
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = Attention(self.num_heads, qkv_bias=True, attn_drop=self.dropout, name='self_attn')(
      x, train=train
    )
    x = LayerNorm(name='norm1')(x + drop(h))
    h = drop(gelu(Linear(self.ff_size, name='linear1')(x)))
    h = Linear(x.shape[-1], name='linear2')(h)
    return LayerNorm(name='norm2')(x + drop(h))


class Model(nn.Module):
  """MDM (trans_enc, unconditional) x0-denoiser over pose sequences.

  Attributes:
    num_frames: T of the example input (the network itself takes any T <= max_len - 1).
    num_joints: J (the official feature width is J x 3 = 51).
    in_channels: 3.
    latent_dim: d.
    ff_size: feed-forward width.
    num_layers: encoder layers.
    num_heads: attention heads.
    dropout: dropout after the position encoding, in attention and feed-forward.
    max_len: rows of the sinusoid table (timesteps and positions index it).
  """

  num_frames: int = 1
  num_joints: int = 17
  in_channels: int = 3
  latent_dim: int = 512
  ff_size: int = 1024
  num_layers: int = 8
  num_heads: int = 4
  dropout: float = 0.1
  max_len: int = 5000

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, t: jax.Array | None = None) -> jax.Array:
    """Predicts the clean motion.

    Args:
      x: (B, T, J, 3) noisy poses (root slot = trajectory, other joints root-relative).
      train: dropout (rng stream 'dropout').
      t: (B,) or () int original diffusion steps in [0, 50); None means 0.

    Returns:
      x0-hat (B, T, J, 3).
    """
    b, f, j, c = x.shape
    if (j, c) != (self.num_joints, self.in_channels) or f + 1 > self.max_len:
      raise ValueError(
        f'MDM expects (B, T <= {self.max_len - 1}, {self.num_joints}, {self.in_channels}), '
        f'got {x.shape}'
      )
    d = self.latent_dim
    pe = self.variable('buffers', 'pe', lambda: jnp.asarray(sinusoid_table(self.max_len, d)))
    pe = pe.value
    t = jnp.zeros((b,), jnp.int32) if t is None else jnp.broadcast_to(jnp.asarray(t), (b,))
    temb = Linear(d, name='time_embed_0')(pe[t.astype(jnp.int32)])
    temb = Linear(d, name='time_embed_2')(nn.silu(temb))  # (B, d)
    tok = Linear(d, name='poseEmbedding')(x.reshape(b, f, j * c))
    seq = jnp.concatenate([temb[:, None], tok], axis=1) + pe[: f + 1]
    seq = nn.Dropout(self.dropout, deterministic=not train)(seq)
    for i in range(self.num_layers):
      seq = EncoderLayer(self.num_heads, self.ff_size, self.dropout, name=f'layers_{i}')(
        seq, train=train
      )
    out = Linear(j * c, name='poseFinal')(seq[:, 1:])
    return out.reshape(b, f, j, c)


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C_in) of the example input."""
  return (model.num_frames, model.num_joints, model.in_channels)


# ----------------------------------------------------------------------------- conversion

_PE_KEYS = ('sequence_pos_encoder.pe', 'embed_timestep.sequence_pos_encoder.pe')


def _rename(path: str) -> str:
  path = path.replace('seqTransEncoder.', '').replace('input_process.', '')
  path = path.replace('output_process.', '').replace('embed_timestep.', '')
  return path.replace('self_attn.out_proj', 'self_attn.proj')


def from_torch(
  state_dict: Mapping[str, Any],
  *,
  latent_dim: int | None = None,
  ff_size: int | None = None,
  num_layers: int | None = None,
  num_heads: int = 4,
  dropout: float = 0.1,
  num_frames: int = 1,
  **unused_official_kwargs: Any,
) -> tuple[Model, dict[str, Any]]:
  """Converts an official MDM state dict (`SkeletonPipeline` checkpoints, strict=False).

  Args:
    state_dict: official keys -> arrays (no `module.` prefix). `skeleton_encoder.*` (the unused
      SkeletonEncoder) is skipped by name; the two aliased `pe` keys must agree.
    latent_dim, ff_size, num_layers: read off the weights when None.
    num_heads: cannot be read off the weights (published: 4).
    dropout: training dropout.
    num_frames: T of the example input.
    **unused_official_kwargs: the rest of the official model config (njoints, nfeats, arch,
      cond_mode, ...), accepted and ignored.

  Returns:
    (Model, {'params': ..., 'buffers': {'pe': (max_len, d)}}).
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  pes = [sd[k] for k in _PE_KEYS if k in sd]
  if not pes:
    raise ValueError(f'MDM state dict has none of {_PE_KEYS}')
  if len(pes) == 2 and not np.array_equal(pes[0], pes[1]):
    raise ValueError(f'the aliased buffers {_PE_KEYS} differ; the official model shares one')
  pe = pes[0].reshape(pes[0].shape[0], -1)
  w_in = sd['input_process.poseEmbedding.weight']
  layers = sum(
    1 for k in sd if k.startswith('seqTransEncoder.layers.') and k.endswith('norm1.weight')
  )
  model = Model(
    num_frames=num_frames,
    num_joints=w_in.shape[1] // 3,
    latent_dim=latent_dim or w_in.shape[0],
    ff_size=ff_size or sd['seqTransEncoder.layers.0.linear1.weight'].shape[0],
    num_layers=num_layers or layers,
    num_heads=num_heads,
    dropout=dropout,
    max_len=pe.shape[0],
  )
  ref = abstract_variables(model, (1, *input_shape(model)))
  qkv = {}
  for k in list(sd):
    if k.endswith('self_attn.in_proj_weight') or k.endswith('self_attn.in_proj_bias'):
      leaf = 'weight' if k.endswith('weight') else 'bias'
      qkv[k.rsplit('.', 1)[0] + f'.qkv.{leaf}'] = sd.pop(k)
  sd.update(qkv)
  params = convert_state_dict(
    sd,
    {'params': ref['params']},
    rename=_rename,
    skip=lambda k: k.startswith('skeleton_encoder.') or k in _PE_KEYS,
  )
  if pe.shape != tuple(ref['buffers']['pe'].shape):
    raise ValueError(f'pe shape {pe.shape} != {ref["buffers"]["pe"].shape}')
  return model, {**params, 'buffers': {'pe': pe.astype(np.float32)}}
