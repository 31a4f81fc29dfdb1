"""LoRA parameter transform: adapter discovery on two lifters, zero-B identity, merge algebra,
frozen base weights bit-identical after optimiser steps, adapters actually change the output."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpose import models
from jaxpose.models import mixste, motionbert
from jaxpose.models.layers import lora

LIFTERS = {'mixste': mixste.TEST_OVERRIDES, 'motionbert': motionbert.TEST_OVERRIDES}


def _setup(name):
  model = models.build(name, **LIFTERS[name])
  x = jax.random.normal(jax.random.key(1), models.example_input(model, 2).shape)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  return model, variables, x


@pytest.fixture(scope='module', params=list(LIFTERS))
def lifter(request):
  return _setup(request.param)


def test_finds_every_attention_projection(lifter):
  _, variables, _ = lifter
  paths = lora.target_paths(variables['params'])
  assert len(paths) >= 4
  names = {p[-1] for p in paths}
  assert names == {'qkv', 'proj'}
  ad = lora.init_adapters(variables['params'], jax.random.key(2), rank=4)
  assert lora.adapter_paths(ad) == paths
  for p in paths:
    node = ad
    for k in p:
      node = node[k]
    assert node['A'].shape[1] == 4 and node['B'].shape[0] == 4
    assert not np.any(node['B'])
    assert abs(float(jnp.std(node['A'])) - 0.25) < 0.1  # std 1/r


def test_zero_b_leaves_output_unchanged(lifter):
  model, variables, x = lifter
  ad = lora.init_adapters(variables['params'], jax.random.key(2))
  merged = lora.merge(variables['params'], ad, scale=1.0)
  ref = model.apply(variables, x, train=False)
  out = model.apply({**variables, 'params': merged}, x, train=False)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


def test_merge_adds_low_rank_product(lifter):
  _, variables, _ = lifter
  ad = lora.init_adapters(variables['params'], jax.random.key(2))
  ad = jax.tree.map(lambda a: a + 0.1, ad)
  merged = lora.merge(variables['params'], ad, scale=0.5)
  p = lora.adapter_paths(ad)[0]
  base, new, a = variables['params'], merged, ad
  for k in p:
    base, new, a = base[k], new[k], a[k]
  np.testing.assert_allclose(new['kernel'], base['kernel'] + 0.5 * a['A'] @ a['B'], atol=1e-6)
  assert new['kernel'].shape == base['kernel'].shape


def test_training_updates_only_adapters(lifter):
  model, variables, x = lifter
  params = {
    'base': variables['params'],
    'lora': lora.init_adapters(variables['params'], jax.random.key(2)),
  }
  target = jax.random.normal(jax.random.key(3), model.apply(variables, x, train=False).shape)
  tx = lora.masked_optimizer(optax.adam(1e-2), params)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt):
    def loss(p):
      merged = lora.merge(p['base'], p['lora'])
      return jnp.mean((model.apply({**variables, 'params': merged}, x, train=False) - target) ** 2)

    l, g = jax.value_and_grad(loss)(params)
    up, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, up), opt, l

  before = jax.tree.map(np.asarray, params)
  losses = []
  for _ in range(3):
    params, opt, l = step(params, opt)
    losses.append(float(l))
  jax.tree.map(
    np.testing.assert_array_equal, jax.tree.map(np.asarray, params['base']), before['base']
  )
  changed = jax.tree.map(
    lambda a, b: bool(np.any(np.asarray(a) != b)), params['lora'], before['lora']
  )
  assert all(jax.tree.leaves(changed))
  assert losses[-1] < losses[0]


def test_no_targets_raises():
  with pytest.raises(ValueError, match='no Dense'):
    lora.init_adapters({'fc': {'kernel': jnp.zeros((2, 2))}}, jax.random.key(0))
