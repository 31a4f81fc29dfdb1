"""The matmul that `layers.Linear` and `layers.attention.attend` run, and its precision policy.

By default these matmuls are plain float32 `dot_general`s at the backend's default precision
(float32 on CPU). Under `jax.default_matmul_precision('bfloat16')` (or 'BF16_BF16_F32') they cast
their float32 operands to bfloat16 and accumulate and return float32, on every backend: torch's
`autocast(dtype=bfloat16)` for matmuls, with the parameters, the activations between matmuls,
LayerNorms, softmaxes and the optimiser kept in float32. For XLA's own dots 'bfloat16' only means
the DEFAULT precision, which XLA:CPU runs in float32, so on a CPU this module is what applies it;
on CPUs with AMX or AVX512-BF16 such a matmul runs about four to five times faster than in
float32 (experiments/torch_vs_jax).

The setting is read when a function is traced, and it is part of `jax.jit`'s cache key, so a step
traced under one precision is never reused under another. The training loop sets it from
`config.train.matmul_precision`.

A call that passes an explicit `precision` (e.g. `lax.Precision.HIGHEST`, as MotionAGFormer's
temporal similarity does) keeps float32 operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

# jax_default_matmul_precision values that mean bfloat16 operands, float32 accumulation.
BF16_POLICIES = ('bfloat16', 'BF16_BF16_F32')


def bf16_operands(precision: Any = None) -> bool:
  """True when a float32 matmul traced now should take bfloat16 operands."""
  return precision is None and jax.config.jax_default_matmul_precision in BF16_POLICIES


def dot(
  a: jax.Array,
  b: jax.Array,
  contracting: tuple[Sequence[int], Sequence[int]],
  batch: tuple[Sequence[int], Sequence[int]] = ((), ()),
  precision: Any = None,
) -> jax.Array:
  """`lax.dot_general(a, b, (contracting, batch))` under the policy above.

  float32 operands (or one already rounded to bfloat16 by `transposed`) give a float32 result.
  """
  dims = (tuple(map(tuple, contracting)), tuple(map(tuple, batch)))
  floats = {jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)}
  if (
    {a.dtype, b.dtype} <= floats and jnp.float32 in (a.dtype, b.dtype) and bf16_operands(precision)
  ):
    return jax.lax.dot_general(
      a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), dims, preferred_element_type=jnp.float32
    )
  return jax.lax.dot_general(a, b, dims, precision=precision)


def transposed(a: jax.Array) -> jax.Array:
  """a with its last two axes swapped, as the lhs of a matmul under the policy above.

  Under the bfloat16 policy XLA:CPU folds a plain transpose into the dot that consumes it, and a
  dot that contracts its lhs's second-to-last axis is not a library (YNNPACK) dot: XLA then upcasts
  its operands back to float32 and runs it at a quarter of the bfloat16 speed. Written as a 3-D
  transpose between reshapes, the swap stays a separate copy (cheap next to the matmul) and the dot
  a row-major bfloat16 library dot. Without the policy, or when the last axis has no factor to
  split by, this is `jnp.swapaxes(a, -1, -2)`.
  """
  m = a.shape[-1]
  split = next((f for f in range(2, int(m**0.5) + 1) if m % f == 0), None)
  if split is None or a.dtype != jnp.float32 or not bf16_operands():
    return jnp.swapaxes(a, -1, -2)
  *lead, k = a.shape[:-1]
  n = len(lead)
  a = a.astype(jnp.bfloat16).reshape(*lead, k, split, m // split)
  return a.transpose(*range(n), n + 1, n + 2, n).reshape(*lead, m, k)


def dot_tn(a: jax.Array, b: jax.Array, precision: Any = None) -> jax.Array:
  """a^T @ b for 2-D a (K, M) and b (K, N) -> (M, N): a Linear's weight gradient x^T g."""
  if bf16_operands(precision):
    return matmul(transposed(a), b)
  return dot(a, b, ((0,), (0,)), precision=precision)


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
  """a @ b over the last two axes with equal leading (batch) axes, under the policy above."""
  lead = tuple(range(a.ndim - 2))
  return dot(a, b, ((a.ndim - 1,), (b.ndim - 2,)), (lead, lead))
