"""The bfloat16 matmul policy of `layers.matmul` (train.matmul_precision) and its float32 default."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax
import pytest
from flax import linen as nn

from configs import common
from jaxpose.methods import supervised
from jaxpose.models.layers import attention, matmul
from jaxpose.models.layers.linear import Linear, dense
from jaxpose.train import state as state_lib
from jaxpose.train import steps

RNG = np.random.default_rng(0)


def _bf(a):
  """float64 copy of a after rounding to bfloat16: the operand the policy feeds the matmul."""
  return np.asarray(
    jnp.asarray(a, jnp.float32).astype(jnp.bfloat16).astype(jnp.float32), np.float64
  )


def _f64(a):
  return np.asarray(a, np.float64)


@pytest.fixture(scope='module')
def xw():
  x = RNG.normal(size=(3, 7, 48)).astype(np.float32)
  w = RNG.normal(size=(48, 40)).astype(np.float32)
  return x, w


def test_float32_is_the_default_and_exact(xw):
  x, w = xw
  assert jax.config.jax_default_matmul_precision is None
  np.testing.assert_allclose(dense(x, w, None), _f64(x) @ _f64(w), rtol=1e-5, atol=1e-5)


def test_bfloat16_policy_rounds_the_operands_and_accumulates_in_float32(xw):
  x, w = xw
  with jax.default_matmul_precision('bfloat16'):
    y = jax.jit(lambda x, w: dense(x, w, None))(x, w)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, _bf(x) @ _bf(w), rtol=1e-5, atol=1e-4)
  # it is not the float32 product: bf16 rounding moves a 48-term sum by ~1e-2
  assert np.max(np.abs(_f64(y) - _f64(x) @ _f64(w))) > 1e-3


def test_explicit_precision_keeps_float32_under_the_policy(xw):
  x, w = xw
  with jax.default_matmul_precision('bfloat16'):
    y = dense(x, w, None, jax.lax.Precision.HIGHEST)
  np.testing.assert_allclose(y, _f64(x) @ _f64(w), rtol=1e-5, atol=1e-5)


def test_dense_gradients_use_the_policy(xw):
  x, w = xw
  ct = RNG.normal(size=(3, 7, 40)).astype(np.float32)

  def loss(x, w):
    return jnp.sum(dense(x, w, None) * ct)

  with jax.default_matmul_precision('bfloat16'):
    dx, dw = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w)
  np.testing.assert_allclose(dx, _bf(ct) @ _bf(w).T, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(
    dw, _bf(x).reshape(-1, 48).T @ _bf(ct).reshape(-1, 40), rtol=1e-5, atol=1e-4
  )


def test_attention_core_uses_the_policy():
  q, k, v = (RNG.normal(size=(2, 4, 9, 8)).astype(np.float32) for _ in range(3))
  scale = 8**-0.5
  with jax.default_matmul_precision('bfloat16'):
    out = jax.jit(lambda q, k, v: attention.attend(q, k, v, scale))(q, k, v)
  s = (_bf(q) @ np.swapaxes(_bf(k), -1, -2)).astype(np.float32) * np.float32(scale)
  p = np.exp(s - s.max(-1, keepdims=True))
  p = p / p.sum(-1, keepdims=True)
  np.testing.assert_allclose(out, _bf(p) @ _bf(v), rtol=1e-4, atol=1e-4)
  exact = jax.nn.softmax(_f64(q) @ np.swapaxes(_f64(k), -1, -2) * scale, -1) @ _f64(v)
  assert np.max(np.abs(_f64(out) - np.asarray(exact))) > 1e-4


class _LinearLifter(nn.Module):
  @nn.compact
  def __call__(self, x, *, train: bool):
    return Linear(3)(jnp.tanh(Linear(16)(x)))


def _step_text(precision: str) -> str:
  c = common.get_base_config()
  c.train.matmul_precision = precision
  model, tx = _LinearLifter(), optax.sgd(0.1)
  st = state_lib.create(model, tx, jnp.zeros((1, 5, 17, 3)), seed=0)
  batch = {
    'kp2d_norm': np.zeros((2, 5, 17, 3), np.float32),
    'pose3d_cam': np.zeros((2, 5, 17, 3), np.float32),
  }
  step = steps.make_train_step(model, supervised.METHOD, tx, c)
  return step.lower(st, batch).as_text()


def test_train_step_traces_under_config_precision():
  assert 'bf16' not in _step_text('float32')
  assert 'bf16' in _step_text('bfloat16')


def test_unknown_matmul_precision_is_a_clear_error():
  c = mlc.ConfigDict({'train': {'matmul_precision': 'fp8'}})
  with pytest.raises(ValueError, match=r"config.train.matmul_precision: .*got 'fp8'"):
    steps.matmul_precision(c)
  assert matmul.bf16_operands() is False
