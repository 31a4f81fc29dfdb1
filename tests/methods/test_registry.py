"""The method contract and registry: only modules exporting a `Method` are methods, the defaults
of the optional hooks, and a trainer that reads the hooks from the fields."""

import sys
import types

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax
import pytest

from jaxpose import methods, sharding
from jaxpose.methods import base, supervised
from jaxpose.train import loop
from tests.train._tiny import TinyLifter

EXPECTED = [
  'd3dp',
  'diffpose',
  'dsr',
  'epipolarpose',
  'hot',
  'mpm',
  'perspose',
  'platypose',
  'pmce',
  'poseda',
  'posynda',
  'supervised',
  'uao',
]


def test_registry_lists_exactly_the_modules_with_a_method():
  assert methods.list_methods() == EXPECTED
  for name in EXPECTED:
    assert isinstance(methods.get(name), methods.Method)
  with pytest.raises(ValueError, match='valid names: d3dp, diffpose, dsr, epipolarpose'):
    methods.get('lora')  # parameter surgery, moved to models.layers.lora
  with pytest.raises(ValueError, match='valid names'):
    methods.get('base')  # the contract module itself


def test_a_module_without_method_is_not_listed(monkeypatch):
  fake = types.ModuleType('jaxpose.methods.fake')
  fake.loss_fn = fake.predict = lambda *a: None  # functions alone do not make a method
  monkeypatch.setitem(sys.modules, 'jaxpose.methods.fake', fake)
  monkeypatch.setattr(methods, '_candidates', lambda: ['fake', 'supervised'])
  assert methods.list_methods() == ['supervised']
  with pytest.raises(ValueError, match="Unknown method name 'fake'; valid names: supervised"):
    methods.get('fake')
  fake.METHOD = methods.Method(loss_fn=fake.loss_fn, predict=fake.predict)
  assert methods.list_methods() == ['fake', 'supervised']


def test_method_needs_loss_and_predict_and_fills_the_defaults():
  with pytest.raises(TypeError, match='loss_fn'):
    methods.Method(loss_fn=None, predict=supervised.predict)
  seen = {}

  def predict(model, variables, kp2d_norm, config):
    seen['x'] = kp2d_norm
    return kp2d_norm[..., :1] * 2

  m = methods.Method(loss_fn=supervised.loss_fn, predict=predict)
  batch = {'kp2d_norm': jnp.ones((2, 3, 17, 2)), 'cam_intrinsics': jnp.zeros((2, 9))}
  out = m.predict_batch(None, {}, batch, None)
  assert seen['x'] is batch['kp2d_norm'] and out.shape == (2, 3, 17, 1)
  assert m.eval_metrics(None, {}, batch, None) == {}
  assert m.init_variables is None and m.adapt_init is None and m.run is None
  cfg = mlc.ConfigDict({'data': {'frames': 5, 'num_joints': 17, 'use_conf': True}})
  (x,) = m.init_inputs(cfg, None)
  assert x.shape == (1, 5, 17, 3) and x.dtype == jnp.float32
  cfg.data.use_conf = False
  assert m.init_inputs(cfg, None)[0].shape == (1, 5, 17, 2)


def _cfg(**init_from):
  return mlc.ConfigDict(
    {
      'seed': 0,
      'data': {'frames': 4, 'num_joints': 17, 'use_conf': False},
      'init_from': {'path': '', 'format': '', **init_from},
    }
  )


def test_trainer_initialises_through_the_method_fields():
  """init_inputs sets the shapes model.init sees; init_variables replaces model.init."""
  calls = []

  def init_inputs(config, model):
    calls.append('init_inputs')
    return (jnp.zeros((1, 2, 17, 5)),)  # 5 channels: not what the data block says

  m = methods.Method(
    loss_fn=supervised.loss_fn, predict=supervised.predict, init_inputs=init_inputs
  )
  mesh = sharding.make_mesh(1)
  tx = optax.sgd(0.1)
  state = loop.init_state(_cfg(), TinyLifter(), tx, mesh, m)
  assert calls == ['init_inputs']
  assert state.params['Dense_0']['kernel'].shape == (5, 16)

  fixed = jax.tree.map(np.zeros_like, jax.device_get(state.params))

  def init_variables(config, model, loaded):
    calls.append(('init_variables', loaded))
    return {'params': fixed}

  m2 = methods.Method(
    loss_fn=supervised.loss_fn,
    predict=supervised.predict,
    init_inputs=init_inputs,
    init_variables=init_variables,
  )
  state2 = loop.init_state(_cfg(), TinyLifter(), tx, mesh, m2)
  assert calls[-1] == ('init_variables', None)  # no init_from: nothing loaded
  assert float(jnp.abs(state2.params['Dense_0']['kernel']).sum()) == 0.0


def test_every_method_exports_its_module_functions():
  """The registry's Method objects hold the modules' own functions (no stale copies)."""
  for name in EXPECTED:
    mod = methods.get_module(name)
    assert mod.METHOD.loss_fn is mod.loss_fn and mod.METHOD.predict is mod.predict
  assert base.Method.__dataclass_params__.frozen


def test_jaxpose_train_calls_a_methods_own_run(monkeypatch, tmp_path, capsys):
  """`config.trainer` is gone: Method.run, when a method has one, replaces the default trainer."""
  from jaxpose.cli import train as cli

  ran = []

  def run(config, workdir):
    ran.append((config.method.name, str(workdir)))
    return {'mpjpe_mm': 1.5, 'p_mpjpe_mm': 1.0, 'num_frames': 3, 'per_group': {}}

  own = methods.Method(loss_fn=supervised.loss_fn, predict=supervised.predict, run=run)
  monkeypatch.setattr(methods, 'get', lambda name: own)
  monkeypatch.setattr(loop, 'run', lambda *a: pytest.fail('the default trainer ran'))
  argv = ['train', '--config=configs/motionagformer.py:xs,smoke', f'--workdir={tmp_path}']
  assert cli.main(argv) == 0
  assert ran == [('supervised', str(tmp_path))]
  assert '"mpjpe_mm": 1.5' in capsys.readouterr().out
