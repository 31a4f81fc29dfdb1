"""KPA / TPA (layers.kpa_tpa): the graph convolution, the prior graphs, and the plug-in into every
host lifter (`prior_attention=True`): variable placement, shapes, jit and gradient flow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models.layers import kpa_tpa


def test_prior_adjacencies():
  spatial = kpa_tpa.kinematic_adjacency()
  np.testing.assert_array_equal(np.diag(spatial), 1.0)
  off = spatial - np.eye(17)
  np.testing.assert_allclose(off.sum(axis=1), 1.0)  # D^-1 A over the neighbours
  assert (off > 0).sum() == 2 * 16 and np.array_equal(off > 0, (off > 0).T)
  temporal = kpa_tpa.trajectory_adjacency(6)
  expected = np.eye(6)
  for t in range(5):
    expected[t, t + 1] = expected[t + 1, t] = 0.5
  expected[0, 1] = expected[5, 4] = 1.0
  np.testing.assert_array_equal(temporal, expected)


def test_learnable_graph_conv_formula():
  """out = diag(A) (M * x W0) + offdiag(A) (M * x W1) + b, A = sym(adj + adj2), nodes on axis 1."""
  n, c_in, c_out = 5, 3, 4
  adj = kpa_tpa.trajectory_adjacency(n)
  lgc = kpa_tpa.LearnableGraphConv(c_out, node_axis=1)
  x = np.asarray(jax.random.normal(jax.random.key(0), (2, n, 7, c_in)))
  v = lgc.init(jax.random.key(1), x, adj)
  p = {
    k: np.asarray(jax.random.normal(jax.random.key(i + 2), a.shape))
    for i, (k, a) in enumerate(v['params'].items())
  }
  out = lgc.apply({'params': p}, x, adj)
  a = adj + p['adj2']
  a = (a + a.T) / 2
  h0 = np.einsum('bnjc,co->bnjo', x, p['W'][0]) * p['M'][None, :, None]
  h1 = np.einsum('bnjc,co->bnjo', x, p['W'][1]) * p['M'][None, :, None]
  off = a * (1 - np.eye(n))
  expected = np.diag(a)[None, :, None, None] * h0 + np.einsum('nm,bmjo->bnjo', off, h1) + p['bias']
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_lgc_init_matches_torch_fans():
  """xavier_uniform(gain 1.414) with torch's fans of a (2, in, out) tensor; M = 1, adj2 = 1e-6."""
  lgc = kpa_tpa.LearnableGraphConv(512)
  v = lgc.init(jax.random.key(0), jnp.zeros((1, 17, 2)), kpa_tpa.kinematic_adjacency())['params']
  bound = 1.414 * np.sqrt(6 / (2 * 512 + 2 * 512))
  assert bound * 0.98 < np.abs(v['W']).max() <= bound
  np.testing.assert_array_equal(v['M'], 1.0)
  np.testing.assert_array_equal(v['adj2'], np.float32(1e-6))
  assert np.abs(v['bias']).max() <= 1 / np.sqrt(512)


def test_kpa_and_tpa_act_on_their_node_axis():
  x = jax.random.normal(jax.random.key(0), (2, 6, 17, 3))
  kpa = kpa_tpa.KPA(8)
  v = kpa.init(jax.random.key(1), x, train=False)
  out = kpa.apply(v, x, train=False)
  assert out.shape == (2, 6, 17, 8) and np.all(np.asarray(out) >= 0)
  # Joints mix within a frame only: changing frame 0 leaves the other frames alone.
  moved = kpa.apply(v, x.at[:, 0].add(1.0), train=False)
  assert np.allclose(moved[:, 1:], out[:, 1:]) and not np.allclose(moved[:, 0], out[:, 0])
  tpa = kpa_tpa.StackedTPA()
  v = tpa.init(jax.random.key(2), x, train=False)
  out = tpa.apply(v, x, train=False)
  assert out.shape == x.shape and np.all(np.asarray(out - x) >= -1e-6)  # x + ReLU(...)
  moved = tpa.apply(v, x.at[:, :, 0].add(1.0), train=False)  # joint 0 only: tracks stay apart
  assert np.allclose(moved[:, :, 1:], out[:, :, 1:]) and not np.allclose(
    moved[:, 1, 0], out[:, 1, 0]
  )
  assert v['params']['gconv1']['gconv']['adj2'].shape == (6, 6)


def test_kpa_rejects_a_different_skeleton():
  with pytest.raises(ValueError, match='17 joints'):
    kpa_tpa.KPA(8).init(jax.random.key(0), jnp.zeros((1, 4, 15, 2)), train=False)


# host -> (overrides on top of its TEST_OVERRIDES, prior variable paths, paths it replaces)
HOSTS = {
  'mixste': ({}, [('kpa',), ('tpa',)], [('Spatial_patch_to_embedding',)]),
  'motionbert': ({}, [('kpa',), ('blocks_st_0_tpa',), ('blocks_ts_0_tpa',)], [('joints_embed',)]),
  'motionagformer': ({}, [('layers_0', 'kpa'), ('layers_0', 'tpa')], []),
  'motionagformer-hierarchical': (
    {'hierarchical': True, 'dim_feat': 16},
    [('layers_0', 'kpa'), ('layers_0', 'tpa')],
    [],
  ),
}


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


@pytest.mark.parametrize(
  'host',
  [pytest.param(h, marks=pytest.mark.slow) if h.endswith('hierarchical') else h for h in HOSTS],
)
def test_prior_attention_plugs_into_host(host):
  name = host.split('-')[0]
  extra, prior_paths, replaced = HOSTS[host]
  overrides = {**models.get_module(name).TEST_OVERRIDES, **extra}
  base = models.build(name, **overrides)
  model = models.build(name, **overrides, prior_attention=True)
  x = jax.random.normal(jax.random.key(0), (2, *models.example_input(model).shape[1:]))

  base_shapes = jax.eval_shape(lambda: base.init(jax.random.key(0), x, train=False))
  variables = model.init(jax.random.key(0), x, train=False)
  for path in prior_paths:
    assert 'gconv' in str(jax.tree.structure(_get(variables['params'], path))), path
    with pytest.raises(KeyError):
      _get(base_shapes['params'], path)
  for path in replaced:
    _get(base_shapes['params'], path)
    with pytest.raises(KeyError):
      _get(variables['params'], path)

  def loss(params):
    out, new = model.apply(
      {**variables, 'params': params},
      x,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': jax.random.key(1)},
    )
    return jnp.mean(out**2), (out, new)

  grads, (out, new) = jax.jit(jax.grad(loss, has_aux=True))(variables['params'])
  ref = jax.eval_shape(lambda v: base.apply(v, x, train=False), base_shapes)
  assert out.shape == ref.shape and np.all(np.isfinite(out))
  for path in prior_paths:
    for leaf_path, g in jax.tree_util.tree_leaves_with_path(_get(grads, path)):
      leaf = jax.tree_util.keystr(leaf_path)
      assert np.all(np.isfinite(g)), (path, leaf)
      # The graph convolution's bias is cancelled by the training-mode BatchNorm after it.
      if not leaf.endswith("['gconv']['bias']"):
        assert np.any(np.abs(g) > 0), (path, leaf)
    stats = _get(new['batch_stats'], path)
    assert not np.allclose(
      jax.tree.leaves(stats)[0], jax.tree.leaves(_get(variables['batch_stats'], path))[0]
    )


def test_motionbert_prior_needs_full_clips():
  from jaxpose.models import motionbert

  model = models.build('motionbert', **motionbert.TEST_OVERRIDES, prior_attention=True)
  with pytest.raises(ValueError, match='maxlen'):
    model.init(jax.random.key(0), jnp.zeros((1, 5, 17, 3)), train=False)
