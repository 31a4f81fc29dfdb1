"""`Linear`: a dense layer with torch.nn.Linear's default initialisation.

Flax's `nn.Dense` initialises the kernel lecun-normal and the bias to zero; torch draws both from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming-uniform with a = sqrt(5)). Training recipes copied from
torch code start from torch's distribution, so the ports use this layer. Variables are named like
`nn.Dense` (`kernel` (in, out), `bias` (out,)), so a torch weight converts as `weight.T`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxpose.models.layers import matmul

Initializer = Callable[..., jax.Array]

# kaiming_uniform(a=sqrt(5)) == U(+-sqrt(1 / fan_in)) == variance_scaling(1/3, fan_in, uniform).
torch_kernel_init: Initializer = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_bias_init(fan_in: int) -> Initializer:
  """torch's Linear/Conv bias initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5 if fan_in > 0 else 0.0

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def constant_init(value: float) -> Initializer:
  """Fills a parameter with `value` (torch `.fill_(value)`)."""

  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.full(shape, value, dtype)

  return init


def _dense_fwd_impl(x, kernel, bias, precision):
  y = matmul.dot(x, kernel, ((x.ndim - 1,), (0,)), precision=precision)
  return y if bias is None else y + bias


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def dense(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision: Any = None):
  """x (..., D_in) @ kernel (D_in, D_out) [+ bias (D_out,)] -> (..., D_out), with a hand-written VJP.

  The values and gradients are the plain ones (dx = g kernel^T, dkernel = x^T g, dbias = sum g).
  The explicit VJP exists for speed on XLA:CPU: differentiating `dot_general` directly lets XLA
  fuse the incoming cotangent's producer into both backward matmuls in two layouts (an explicit
  transpose plus a non-library `dot` for dkernel), which made an MLP's backward pass about twice as
  slow as with the cotangent materialised once (experiments/torch_vs_jax).
  """
  return _dense_fwd_impl(x, kernel, bias, precision)


def _dense_fwd(x, kernel, bias, precision):
  return _dense_fwd_impl(x, kernel, bias, precision), (x, kernel, bias is not None)


def _dense_bwd(precision, res, g):
  x, kernel, has_bias = res
  dx = matmul.dot(g, kernel, ((g.ndim - 1,), (1,)), precision=precision)
  x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  dk = matmul.dot_tn(x2, g2, precision)
  db = jnp.sum(g2, axis=0).astype(kernel.dtype) if has_bias else None
  return dx.astype(x.dtype), dk.astype(kernel.dtype), db


dense.defvjp(_dense_fwd, _dense_bwd)


class Linear(nn.Module):
  """y = x @ kernel + bias over the last axis, torch-default initialised.

  Attributes:
    features: output width.
    use_bias: whether to add a bias.
    kernel_init: kernel initialiser; None means torch's default.
    bias_init: bias initialiser; None means torch's default (depends on fan_in).
    precision: matmul precision passed to `lax.dot_general`.
  """

  features: int
  use_bias: bool = True
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (..., D_in) -> (..., features)."""
    fan_in = x.shape[-1]
    kernel = self.param('kernel', self.kernel_init or torch_kernel_init, (fan_in, self.features))
    bias = None
    if self.use_bias:
      bias = self.param('bias', self.bias_init or torch_bias_init(fan_in), (self.features,))
    y = dense(x, kernel, None, self.precision)
    return y if bias is None else y + bias
