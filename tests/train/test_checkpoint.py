"""Checkpoints: save on 8 devices, restore on 1 (and back); best-by-metric kept; host restore."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpose import sharding
from jaxpose.train import checkpoint
from jaxpose.train import state as state_lib
from tests.train._tiny import TinyLifter


def _state(mesh):
  tx = optax.adamw(1e-3)
  make = lambda: state_lib.create(TinyLifter(), tx, jnp.zeros((1, 5, 17, 3)), seed=3)
  return jax.jit(make, out_shardings=sharding.replicated(mesh))()


def test_restore_on_different_device_count(tmp_path):
  mesh8, mesh1 = sharding.make_mesh(8), sharding.make_mesh(1)
  st = _state(mesh8)
  st = st.replace(step=st.step + 7, params=jax.tree.map(lambda p: p + 0.5, st.params))
  ck = checkpoint.Checkpointer(tmp_path, keep=2)
  ck.save(7, st, None, {'note': 'test'})
  ck.wait()
  target = checkpoint.abstract_like(_state(mesh1), sharding.replicated(mesh1))
  back = ck.restore(target)
  ck.close()
  assert int(back.step) == 7
  assert back.params['Dense_0']['kernel'].sharding.mesh.devices.size == 1
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
    jax.device_get(st.params),
    jax.device_get(back.params),
  )
  host = checkpoint.load_params(tmp_path)  # no target, to numpy (tools, eval)
  np.testing.assert_array_equal(
    host['params']['Dense_1']['bias'], np.asarray(st.params['Dense_1']['bias'])
  )


def test_keeps_last_n_and_best(tmp_path):
  mesh = sharding.make_mesh(1)
  st = _state(mesh)
  ck = checkpoint.Checkpointer(tmp_path, keep=2, best_metric='mpjpe_mm')
  for step, err in [(1, 50.0), (2, 40.0), (3, 45.0), (4, 60.0)]:
    ck.save(step, st, None, {})
    ck.save_best(step, st, {}, {'mpjpe_mm': err})
  ck.wait()
  assert ck.latest.all_steps() == [3, 4]
  assert ck.best.all_steps() == [2]
  ck.close()
