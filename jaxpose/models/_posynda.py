"""PoSynDA's networks: the pose refiner, the D3DP + LoRA denoiser, and their torch converters.

Paper: Liu et al., "PoSynDA: Multi-Hypothesis Pose Synthesis Domain Adaptation for Robust 3D Human
Pose Estimation", ACM MM 2023 (arXiv 2308.09678). Code: github.com/hbing-l/PoSynDA @
d592dbac8a9a8f767de8f737449ed465ae99ace4 (`common/weight.py` refiner, `common/lora.py`, D3DP's
model code). Written from the notes in shared/research/posynda.md; no official code is copied.
The adaptation procedure (sampling, JPMA, source re-distribution, losses, engine hooks) is
`jaxpose.methods.posynda`.

Not a registry model (the refiner maps single poses (N, J, 3) -> (N, J, 3), not a lifter
window), so the module name starts with an underscore:
- `Refiner`: a small post-norm transformer over the J joints of each hypothesis (causal joint
  mask, ReLU FFN, uniform(-0.1, 0.1) encoder/decoder init), inputs and outputs in millimetres;
- `refiner_from_torch`, `denoiser_from_torch` (D3DP state dict with LoRA-injected layers ->
  base variables + adapters), `from_official_checkpoint` (an adapted checkpoint);
- `build`: a fresh PoSynDA (denoiser, refiner, {'denoiser', 'lora', 'refiner'} variables) and
  `param_counts`.

Deviation: the refiner's positional encoding is indexed by joint by default; the official code
indexes it by the pose's position in the flattened (b, k, h, t) batch (a bug), reproduced with
`official_batch_position_encoding=True`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxpose.convert import torch_utils as tu
from jaxpose.convert.torch_utils import flax_module_path
from jaxpose.models import d3dp as d3dp_model
from jaxpose.models.layers import lora
from jaxpose.models.layers.diffusion import sinusoid_table

# Published refiner: TransformerModel(ntoken 3, ninp 512, nhead 8, nhid 512, nlayers 8), dropout 0.5.
REFINER = {'dim': 512, 'num_heads': 8, 'hidden': 512, 'depth': 8, 'dropout': 0.5}


def _uniform(scale):
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -scale, scale)


class _EncoderLayer(nn.Module):
  """Post-norm transformer encoder layer (ReLU FFN), additive attention mask."""

  num_heads: int
  hidden: int
  dropout: float

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    d = x.shape[-1]
    hd = d // self.num_heads
    drop = lambda y: nn.Dropout(self.dropout)(y, deterministic=not train)
    qkv = nn.Dense(3 * d, name='in_proj')(x)  # (N, L, 3d), channels [q|k|v][H][hd]
    q, k, v = jnp.split(qkv.reshape(*x.shape[:-1], 3, self.num_heads, hd), 3, axis=-3)
    q, k, v = (jnp.swapaxes(a[..., 0, :, :], -2, -3) for a in (q, k, v))  # (N, H, L, hd)
    logits = (q * hd**-0.5) @ jnp.swapaxes(k, -1, -2) + mask
    attn = drop(jax.nn.softmax(logits, axis=-1))
    out = jnp.swapaxes(attn @ v, -2, -3).reshape(x.shape)
    out = nn.Dense(d, name='out_proj')(out)
    x = nn.LayerNorm(epsilon=1e-5, name='norm1')(x + drop(out))
    ff = nn.Dense(d, name='linear2')(drop(jax.nn.relu(nn.Dense(self.hidden, name='linear1')(x))))
    return nn.LayerNorm(epsilon=1e-5, name='norm2')(x + drop(ff))


class Refiner(nn.Module):
  """PoSynDA refiner (`TransformerModel`): per-pose transformer over joints with a causal mask.

  Attributes:
    dim: width d (official ninp 512).
    num_heads: heads (8).
    hidden: FFN width (nhid 512).
    depth: layers (nlayers 8).
    dropout: dropout on the encoded input and inside the layers (0.5).
    max_len: rows of the sinusoidal table (official 50000).
    official_batch_position_encoding: add pe[n] for pose n of the flattened batch to all its
      joints (official behaviour); False (default) adds pe[j] to joint j.
  """

  dim: int = 512
  num_heads: int = 8
  hidden: int = 512
  depth: int = 8
  dropout: float = 0.5
  max_len: int = 50000
  official_batch_position_encoding: bool = False

  @nn.compact
  def __call__(self, poses: jax.Array, *, train: bool) -> jax.Array:
    """poses: (N, J, 3) -> (N, J, 3); N is the flattened batch, in (b, k, h, t) order."""
    n, j, _ = poses.shape
    pe = self.variable(
      'buffers',
      'pe',
      lambda: jnp.asarray(sinusoid_table(self.max_len, self.dim, compute_dtype=np.float64)),
    ).value
    h = nn.Dense(self.dim, kernel_init=_uniform(0.1), name='encoder')(poses) * math.sqrt(self.dim)
    if self.official_batch_position_encoding:
      if n > self.max_len:
        raise ValueError(f'batch of {n} poses exceeds the positional table ({self.max_len})')
      h = h + pe[:n, None, :]
    else:
      h = h + pe[None, :j, :]
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    mask = jnp.where(jnp.triu(jnp.ones((j, j), bool), 1), -jnp.inf, 0.0)
    for i in range(self.depth):
      h = _EncoderLayer(self.num_heads, self.hidden, self.dropout, name=f'layers_{i}')(
        h, mask, train=train
      )
    return nn.Dense(3, kernel_init=_uniform(0.1), bias_init=nn.initializers.zeros, name='decoder')(
      h
    )


def refiner_from_torch(
  state_dict: Mapping[str, np.ndarray], *, nhead: int, dropout: float = 0.5, **kw
) -> tuple[Refiner, dict[str, Any]]:
  """Converts an official `TransformerModel` state dict; returns (Refiner, variables).

  `kw` may set `official_batch_position_encoding`. The `pe` buffer (max_len, 1, d) is kept.
  """
  sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}
  pe = sd['pos_encoder.pe'][:, 0, :]
  depth = sum(1 for k in sd if k.endswith('self_attn.in_proj_weight'))
  lin = lambda p: tu.linear(sd[f'{p}.weight'].copy(), sd[f'{p}.bias'])
  ln = lambda p: tu.layer_norm(sd[f'{p}.weight'], sd[f'{p}.bias'])
  params = {'encoder': lin('encoder'), 'decoder': lin('decoder')}
  for i in range(depth):
    p = f'transformer_encoder.layers.{i}'
    params[f'layers_{i}'] = {
      'in_proj': {
        'kernel': sd[f'{p}.self_attn.in_proj_weight'].T.copy(),
        'bias': sd[f'{p}.self_attn.in_proj_bias'],
      },
      'out_proj': lin(f'{p}.self_attn.out_proj'),
      'linear1': lin(f'{p}.linear1'),
      'linear2': lin(f'{p}.linear2'),
      'norm1': ln(f'{p}.norm1'),
      'norm2': ln(f'{p}.norm2'),
    }
  model = Refiner(
    dim=pe.shape[1],
    num_heads=nhead,
    hidden=sd['transformer_encoder.layers.0.linear1.weight'].shape[0],
    depth=depth,
    dropout=dropout,
    max_len=pe.shape[0],
    **kw,
  )
  return model, {'params': params, 'buffers': {'pe': pe}}


def denoiser_from_torch(state_dict: Mapping[str, np.ndarray], **ctor_args):
  """Official D3DP + LoRA state dict -> (d3dp Model, variables with base params, adapters)."""
  sd = tu.strip_prefixes(state_dict)
  path_fn = lambda m: flax_module_path(d3dp_model._torch_rename(m))
  plain, adapters = lora.from_torch(sd, path_fn)
  model, variables = d3dp_model.from_torch(plain, **ctor_args)
  return model, variables, adapters


def from_official_checkpoint(
  ckpt: Mapping[str, Any],
  *,
  refiner_heads: int = 8,
  official_batch_position_encoding: bool = True,
  **ctor_args: Any,
):
  """An official adapted checkpoint {'model_pos': D3DP + LoRA, 'model_weight': refiner} ->
  (denoiser, base variables, adapters, refiner, refiner variables). `ctor_args` are D3DP's
  (`cs`, `dep`, `number_of_frames`, `timestep`); `module.` prefixes are stripped."""
  den, dv, ad = denoiser_from_torch(ckpt['model_pos'], **ctor_args)
  rsd = tu.strip_prefixes(ckpt['model_weight'])
  ref, rv = refiner_from_torch(
    rsd, nhead=refiner_heads, official_batch_position_encoding=official_batch_position_encoding
  )
  return den, dv, ad, ref, rv


def build(
  *,
  num_frames: int = 243,
  dim: int = 512,
  depth: int = 8,
  lora_rank: int = 4,
  refiner: Mapping[str, Any] | None = None,
  key: jax.Array | None = None,
  abstract: bool = False,
):
  """The PoSynDA model: (denoiser, refiner, variables) with variables = {'denoiser', 'lora',
  'refiner'}; `abstract` returns shapes only (jax.eval_shape)."""
  den = d3dp_model.Model(
    num_frames=num_frames,
    num_joints=17,
    in_channels=5,
    lifter='mixste',
    lifter_kwargs=(('dim', dim), ('depth', depth), ('num_heads', 8), ('mlp_ratio', 2.0)),
  )
  rk = dict(REFINER, **(refiner or {}))
  ref = Refiner(
    dim=rk['dim'],
    num_heads=rk['num_heads'],
    hidden=rk['hidden'],
    depth=rk['depth'],
    dropout=rk['dropout'],
  )

  def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    x = jnp.zeros((1, num_frames, 17, 5))
    dv = den.init(k1, x, train=False, t=jnp.zeros((1,), jnp.int32))
    ad = lora.init_adapters(dv['params'], k2, lora_rank)
    rv = ref.init(k3, jnp.zeros((1, 17, 3)), train=False)
    return {'denoiser': dv, 'lora': ad, 'refiner': rv}

  key = jax.random.key(0) if key is None else key
  return den, ref, (jax.eval_shape(init, key) if abstract else jax.jit(init)(key))


def param_counts(variables) -> dict[str, int]:
  """Trainable-parameter counts (buffers such as the refiner's `pe` excluded)."""
  n = lambda t: int(sum(np.prod(x.shape) for x in jax.tree.leaves(t)))
  out = {
    'denoiser': n(variables['denoiser']['params']),
    'lora': n(variables['lora']),
    'refiner': n(variables['refiner']['params']),
  }
  out['trainable'] = out['lora'] + out['refiner']
  out['total'] = out['denoiser'] + out['trainable']
  return out
