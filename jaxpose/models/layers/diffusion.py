"""Diffusion schedules and sinusoidal tables shared by the diffusion models and their methods.

One place for the arithmetic that D3DP, DiffPose, Platypose and PoSynDA share, so the models
(which embed timesteps and check schedule buffers in `from_torch`) and the methods (which sample)
read the same numbers without a models -> methods import.

- `cosine_schedule(T_d, s)`: the cosine noise schedule (Nichol & Dhariwal, arXiv:2102.09672)
  and its derived buffers, float64 (D3DP, Platypose, PoSynDA).
- `beta_schedule(kind, start, end, num)` and `alphas_cumprod(betas)`: DDPM's linear / quadratic /
  constant betas cast to float32 and their float32 running product (DiffPose).
- `timestep_embedding(t, D)`: the DDPM sinusoidal embedding of diffusion timesteps, (N,) -> (N, D)
  (D3DP's `SinusoidalPositionEmbeddings`, DiffPose's `get_timestep_embedding`).
- `sinusoid_table(L, D)`: the transformer positional-encoding table (L, D), interleaved sin/cos
  (Platypose's `PositionalEncoding` in float32, PoSynDA's refiner in float64 cast to float32).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike


def cosine_schedule(num_timesteps: int = 1000, s: float = 0.008) -> dict[str, np.ndarray]:
  """The cosine noise schedule and its derived buffers, float64 numpy.

  Args:
    num_timesteps: T_d.
    s: offset s0.

  Returns:
    The 12 buffers of the official D3DP state dict by name (`betas`, `alphas_cumprod`,
    `alphas_cumprod_prev`, `sqrt_alphas_cumprod`, `sqrt_one_minus_alphas_cumprod`,
    `log_one_minus_alphas_cumprod`, `sqrt_recip_alphas_cumprod`, `sqrt_recipm1_alphas_cumprod`,
    `posterior_variance`, `posterior_log_variance_clipped`, `posterior_mean_coef1`,
    `posterior_mean_coef2`), each (T_d,) float64, dimensionless. Betas are clipped to [0, 0.999].
  """
  u = np.linspace(0, num_timesteps, num_timesteps + 1, dtype=np.float64)
  f = np.cos((u / num_timesteps + s) / (1 + s) * np.pi * 0.5) ** 2
  f = f / f[0]
  betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
  alphas = 1.0 - betas
  ac = np.cumprod(alphas)
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
  return {
    'betas': betas,
    'alphas_cumprod': ac,
    'alphas_cumprod_prev': ac_prev,
    'sqrt_alphas_cumprod': np.sqrt(ac),
    'sqrt_one_minus_alphas_cumprod': np.sqrt(1.0 - ac),
    'log_one_minus_alphas_cumprod': np.log(1.0 - ac),
    'sqrt_recip_alphas_cumprod': np.sqrt(1.0 / ac),
    'sqrt_recipm1_alphas_cumprod': np.sqrt(1.0 / ac - 1),
    'posterior_variance': post_var,
    'posterior_log_variance_clipped': np.log(np.clip(post_var, 1e-20, None)),
    'posterior_mean_coef1': betas * np.sqrt(ac_prev) / (1.0 - ac),
    'posterior_mean_coef2': (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
  }


def beta_schedule(
  kind: str = 'linear', start: float = 1e-4, end: float = 1e-3, num: int = 51
) -> np.ndarray:
  """DDPM's `get_beta_schedule` (computed in float64) cast to float32: (num,) dimensionless.

  Args:
    kind: 'linear' (linspace(start, end)), 'quad' (linspace(sqrt(start), sqrt(end))^2) or
      'const' (end everywhere).
    start, end: the first and last beta.
    num: T_d, the number of diffusion steps.
  """
  if kind == 'linear':
    b = np.linspace(start, end, num, dtype=np.float64)
  elif kind == 'quad':
    b = np.linspace(start**0.5, end**0.5, num, dtype=np.float64) ** 2
  elif kind == 'const':
    b = end * np.ones(num, np.float64)
  else:
    raise ValueError(f"beta_schedule must be 'linear', 'quad' or 'const', got {kind!r}")
  return b.astype(np.float32)


def alphas_cumprod(betas: np.ndarray) -> np.ndarray:
  """abar_t = prod_{s <= t} (1 - beta_s) as a float32 running product (torch cumprod): (T_d,)."""
  return np.cumprod(np.float32(1) - np.asarray(betas, np.float32), dtype=np.float32)


def timestep_embedding(t: jax.Array, dim: int) -> jax.Array:
  """Sinusoidal embedding of diffusion timesteps.

  Args:
    t: (N,) timesteps (int or float; step index, dimensionless).
    dim: D >= 4. An odd D gets one zero column at the end.

  Returns:
    (N, D) float32: [sin(t w), cos(t w)] with w_i = exp(-i ln(1e4) / (D // 2 - 1)),
    i < D // 2.
  """
  half = dim // 2
  freqs = jnp.exp(jnp.arange(half, dtype=jnp.float32) * -(math.log(10000.0) / (half - 1)))
  arg = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)
  return jnp.pad(emb, ((0, 0), (0, dim % 2)))


def sinusoid_table(length: int, dim: int, *, compute_dtype: DTypeLike = np.float32) -> np.ndarray:
  """Transformer positional encoding: pe[p, 2i] = sin(p w_i), pe[p, 2i+1] = cos(p w_i).

  Args:
    length: L, rows (positions 0 .. L - 1; timesteps index it in Platypose).
    dim: D, even.
    compute_dtype: the dtype the table is computed in before the float32 cast: float32 as
      torch's `PositionalEncoding` does (Platypose), float64 for PoSynDA's refiner. The two
      differ by up to ~4e-4 at L = 5000.

  Returns:
    (L, D) float32 numpy, w_i = 1e4^(-2i / D).
  """
  dt = np.dtype(compute_dtype)
  pos = np.arange(length, dtype=dt)[:, None]
  w = np.exp(np.arange(0, dim, 2, dtype=dt) * dt.type(-math.log(10000.0) / dim))
  table = np.zeros((length, dim), dt)
  table[:, 0::2] = np.sin(pos * w)
  table[:, 1::2] = np.cos(pos * w)
  return table.astype(np.float32)
