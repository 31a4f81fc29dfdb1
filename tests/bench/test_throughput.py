"""Throughput harness (jaxpose.bench.throughput) on tiny models. No speed is asserted."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

from jaxpose.bench import throughput as tp


class _Lifter(nn.Module):
  """(B, T, J, 2) -> (B, T, J, 3) with dropout and, optionally, BatchNorm."""

  use_bn: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = nn.Dense(8)(x)
    if self.use_bn:
      h = nn.BatchNorm(use_running_average=not train, momentum=0.5)(h)
    h = nn.Dropout(0.1, deterministic=not train)(jax.nn.relu(h))
    return nn.Dense(3)(h)


def _setup(use_bn, batch=2):
  model = _Lifter(use_bn)
  x = jax.random.normal(jax.random.key(0), (batch, 4, 3, 2))
  return model, tp.init_variables(model, x), x


def test_train_step_learns_and_updates_batch_stats():
  use_bn = True
  model, variables, x = _setup(use_bn)
  y = jnp.ones((2, 4, 3, 3))
  tx = optax.adamw(1e-2)
  extra = {k: v for k, v in variables.items() if k != 'params'}
  step_fn = jax.jit(tp.make_train_step(model, tx, use_bn))
  state = (variables['params'], extra, tx.init(variables['params']))
  step = jnp.zeros((), jnp.int32)
  losses = []
  for _ in range(20):
    params, extra, opt, loss, step = step_fn(*state, x, y, step)
    state = (params, extra, opt)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0]
  assert int(step) == 20
  old = variables['batch_stats']['BatchNorm_0']['mean']
  assert not jnp.allclose(extra['batch_stats']['BatchNorm_0']['mean'], old)


@pytest.mark.parametrize('dtype,use_bn', [(jnp.float32, False), (jnp.bfloat16, True)])
def test_inference_and_train_reports(dtype, use_bn):
  model, variables, x = _setup(use_bn)
  kw = dict(warmup=1, repeats=2, iters=1, peak_flops=1e9, dtype=dtype)
  inf = tp.inference_throughput(model, variables, x, **kw)
  assert inf['infer_fps'] * inf['infer_step_s'] == pytest.approx(2 * 4)
  assert inf['infer_macs'] == 2 * 4 * 3 * (2 * 8 + 8 * 3)
  assert inf['infer_mfu'] == pytest.approx(2 * inf['infer_macs'] / inf['infer_step_s'] / 1e9)
  tr = tp.train_throughput(model, variables, x, **kw)
  assert tr['train_fps'] * tr['train_step_s'] == pytest.approx(2 * 4)
  # Forward + backward: at least 2x the forward (the first layer's input grad is not needed).
  assert tr['train_macs'] >= 2 * inf['infer_macs']
  assert tr['train_compile_s'] > 0 and tr['train_compile_cpu_s'] > 0
  assert inf['infer_compile_cpu_s'] > 0
  # The caller's arrays survive the donated training step.
  assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(variables))


def test_time_fn_and_peak():
  t = tp.time_fn(lambda a: a * 2, jnp.ones(4), warmup=1, repeats=3, iters=2)
  assert len(t.windows_s) == 3 and t.step_s > 0 and t.compile_s > 0
  assert tp.measure_peak_flops(jnp.float32, n=64, repeats=2) > 0
