"""Data parallelism: the same SGD steps on 1 and on 8 devices give the same parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from jaxpose import sharding
from jaxpose.methods import supervised
from jaxpose.train import state as state_lib
from jaxpose.train import steps
from tests.train._tiny import TinyLifter


def _config():
  c = common.get_base_config()
  c.method.loss.update(mpjpe=1.0, velocity=2.0)
  return c


def _batches(n, b=16, t=5, j=17, seed=0):
  rng = np.random.default_rng(seed)
  return [
    {
      'kp2d_norm': rng.normal(size=(b, t, j, 3)).astype(np.float32),
      'pose3d_cam': rng.normal(size=(b, t, j, 3)).astype(np.float32) * 0.3,
      'valid': np.ones((b, t), bool),
    }
    for _ in range(n)
  ]


def _train(num_devices: int, batches, lr=0.5):
  mesh = sharding.make_mesh(num_devices)
  model, tx, cfg = TinyLifter(), optax.sgd(lr), _config()
  x = jnp.zeros((1, 5, 17, 3))
  st = jax.jit(
    lambda: state_lib.create(model, tx, x, seed=0), out_shardings=sharding.replicated(mesh)
  )()
  step = steps.make_train_step(model, supervised.METHOD, tx, cfg)
  loss = float('nan')
  for b in batches:
    st, scalars = step(st, sharding.shard_batch(b, mesh))
    loss = float(scalars['loss'])
  return jax.device_get(st.params), loss


def test_one_vs_eight_devices_sgd_identical():
  assert jax.device_count() == 8, 'conftest should provide 8 fake CPU devices'
  batches = _batches(4)
  p1, l1 = _train(1, batches)
  p8, l8 = _train(8, batches)
  np.testing.assert_allclose(l1, l8, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), p1, p8)
  # and the steps actually moved the parameters (a wrong gradient scale would show as a mismatch)
  p0, _ = _train(1, [])
  delta = max(
    float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(p1))
  )
  assert delta > 1e-3


def test_batch_must_divide_devices():
  with pytest.raises(ValueError, match='divisible by the number of devices'):
    sharding.check_batch_size(12, sharding.make_mesh(8))


def test_batch_is_sharded_over_data_axis():
  mesh = sharding.make_mesh(8)
  out = sharding.shard_batch(_batches(1)[0], mesh)
  arr = out['kp2d_norm']
  assert arr.shape == (16, 5, 17, 3)
  assert len(arr.addressable_shards) == 8
  assert arr.addressable_shards[0].data.shape == (2, 5, 17, 3)


def test_dropout_keys_fold_in_step():
  """Two steps from the same state and batch but different step counters draw different masks."""
  mesh = sharding.make_mesh(1)
  model, tx, cfg = TinyLifter(), optax.sgd(0.0), _config()
  host = jax.device_get(state_lib.create(model, tx, jnp.zeros((1, 5, 17, 3)), seed=0))
  fresh = lambda: jax.tree.map(jnp.asarray, host)  # the step donates its state argument
  step = steps.make_train_step(model, supervised.METHOD, tx, cfg)
  b = sharding.shard_batch(_batches(1)[0], mesh)
  _, s_a = step(fresh(), b)
  st = fresh()
  _, s_b = step(st.replace(step=st.step + 1), b)
  assert float(s_a['loss']) != float(s_b['loss'])
  _, s_c = step(fresh(), b)
  assert float(s_a['loss']) == float(s_c['loss'])
