"""GLA-GCN: published sizes, the 3-subset graph, the adaptive GCN's unusual normalisation, strided
TCN alignment, seq2frame output, gradients and the BN initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.geometry import skeleton
from jaxpose.models import glagcn


@pytest.mark.parametrize(
  'variant, params',
  [('243', 1_348_856), ('81', 1_096_466), ('27', 844_076), ('humaneva15_27', 842_724)],
)
def test_published_param_counts(variant, params):
  assert models.param_count('glagcn', variant) == params == glagcn.PAPER[variant]['params']


def test_paper_cost_table_is_per_output_frame():
  """The cost table counts one window per output frame: the model must predict exactly
  `frames_out` frames from a `frames`-frame window, so a clip costs frames x macs_all."""
  for variant, row in glagcn.PAPER.items():
    model = models.build('glagcn', variant)
    x = jax.ShapeDtypeStruct((1, *glagcn.input_shape(model)), jnp.float32)
    out = jax.eval_shape(
      lambda x, m=model: m.init_with_output(jax.random.key(0), x, train=False)[0], x
    )
    assert (x.shape[1], out.shape[1]) == (row['frames'], row['frames_out']), variant
  clip = glagcn.PAPER['243']
  assert clip['macs_per_frame_clip'] == clip['frames'] * clip['macs_all']


@pytest.mark.parametrize('dataset, joints', [('h36m', 17), ('humaneva15', 15)])
def test_graph_subsets(dataset, joints):
  a = glagcn.graph_adjacency(dataset)
  assert a.shape == (3, joints, joints)
  np.testing.assert_array_equal(a[0], np.eye(joints))
  for k in (1, 2):
    cols = a[k].sum(axis=0)
    assert np.allclose(cols[cols > 0], 1.0)  # A D^-1 with column degrees
  np.testing.assert_array_equal(a[1] > 0, (a[2] > 0).T)  # outward = transposed inward links
  edges = {frozenset(e) for e in zip(*np.nonzero(a[1]), strict=True)}
  assert len(edges) == joints - 1


def test_h36m_graph_is_the_skeleton_tree():
  a = glagcn.graph_adjacency('h36m')
  parents = skeleton.get('h36m17').parents
  inward = {(int(p), int(c)) for p, c in zip(*np.nonzero(a[1]), strict=True)}
  assert inward == {(p, c) for c, p in enumerate(parents) if p >= 0}
  assert a[2][1, 0] == pytest.approx(1 / 3)  # pelvis has three children


def _numpy_gcn(x, p, adj):
  """The spec's unit_gcn (research/glagcn.md 2.2) written directly, NCHW-free, eval mode."""
  t = x.shape[1]
  y = 0
  for k in range(3):
    conv = lambda name, z: z @ p[f'{name}_{k}']['kernel'][0, 0] + p[f'{name}_{k}']['bias']
    theta, phi = conv('conv_a', x), conv('conv_b', x)
    inter = theta.shape[-1]
    logits = np.einsum('btvc,btwc->bvw', theta, phi) / (inter * t)
    s = np.exp(logits - logits.max(axis=1, keepdims=True))
    s = s / s.sum(axis=1, keepdims=True)  # softmax over the FIRST node axis
    s = s + adj[k] + p['PA'][k]
    y = y + conv('conv_d', np.einsum('btvc,bvw->btwc', x, s))
  return y


def test_adaptive_gcn_softmax_axis_and_scale():
  gcn = glagcn.AdaptiveGCN(8)
  adj = glagcn.graph_adjacency('h36m')
  x = np.asarray(jax.random.normal(jax.random.key(0), (2, 5, 17, 8)))
  variables = gcn.init(jax.random.key(1), x, adj, train=False)
  params = jax.tree.map(
    lambda v: np.asarray(jax.random.normal(jax.random.key(2), v.shape)), variables['params']
  )
  # Identity BN: the module output is ReLU(y + x) (C_in == C_out, no `down`).
  params['bn'] = {'scale': np.ones(8), 'bias': np.zeros(8)}
  out = gcn.apply({**variables, 'params': params}, x, adj, train=False)
  expected = np.maximum(_numpy_gcn(x, params, adj) / np.sqrt(1 + 1e-5) + x, 0)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_strided_tcn_keeps_official_frame_alignment():
  """Explicit padding (4, 4): output frame k is centred on input frame k * stride."""
  tcn = glagcn.TemporalConv(1, kernel_size=9, stride=3)
  x = jnp.arange(27.0).reshape(1, 27, 1, 1)
  variables = tcn.init(jax.random.key(0), x, train=False)
  kernel = np.zeros((9, 1, 1, 1), np.float32)
  kernel[4] = 1.0  # centre tap
  variables = jax.tree.map(np.asarray, variables)
  variables['params']['conv'] = {'kernel': kernel, 'bias': np.zeros(1)}
  out = tcn.apply(variables, x, train=False)[0, :, 0, 0] * np.sqrt(1 + 1e-5)
  np.testing.assert_allclose(out, np.arange(0, 27, 3), rtol=1e-6)


@pytest.fixture(scope='module')
def tiny():
  model = models.build('glagcn', '27', **glagcn.TEST_OVERRIDES)
  x = jax.random.normal(jax.random.key(1), (3, *glagcn.input_shape(model)))
  return model, x, model.init(jax.random.key(0), x, train=False)


def test_seq2frame_shape_and_init(tiny):
  model, x, variables = tiny
  assert model.receptive_field == x.shape[1] == 9
  out = jax.jit(model.apply, static_argnames='train')(variables, x, train=False)
  assert out.shape == (3, 1, 17, 3)
  p = variables['params']
  assert set(p) == {'data_bn', 'expand_gcn', 'fc', *(f'layers_tcngcn_{i}' for i in range(4))}
  assert p['data_bn']['scale'].shape == (34,)
  np.testing.assert_array_equal(p['layers_tcngcn_1']['gcn1']['bn']['scale'], np.float32(1e-6))
  np.testing.assert_array_equal(p['expand_gcn']['gcn1']['down_1']['scale'], 1.0)
  np.testing.assert_array_equal(p['layers_tcngcn_0']['gcn1']['PA'], np.float32(1e-6))
  assert 'residual' in p['expand_gcn'] and 'residual' not in p['layers_tcngcn_1']
  assert p['fc']['kernel'].shape == (1, 8, 3)  # one head shared by every joint


def test_every_parameter_gets_a_gradient(tiny):
  model, x, variables = tiny
  target = jax.random.normal(jax.random.key(2), (3, 1, 17, 3))
  # Give the graph branch a usable scale (it starts at 1e-6 on purpose).
  params = jax.tree_util.tree_map_with_path(
    lambda path, v: v + 0.5 if jax.tree_util.keystr(path).endswith("['bn']['scale']") else v,
    variables['params'],
  )

  def loss(params):
    out = model.apply({**variables, 'params': params}, x, train=False)
    return jnp.mean((out - target) ** 2)

  grads = jax.jit(jax.grad(loss))(params)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    name = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(g)) and np.any(np.abs(g) > 0), name


def test_training_mode_updates_batch_stats_and_uses_dropout(tiny):
  model, x, variables = tiny
  run = jax.jit(
    lambda k: model.apply(
      variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(k)}
    )
  )
  (a, stats), (b, _) = run(1), run(2)
  assert np.all(np.isfinite(a)) and not np.allclose(a, b)
  # Every running variance moves (some running means stay ~0: data_bn zero-centres the input).
  changed = jax.tree_util.tree_map_with_path(
    lambda path, u, v: path[-1].key == 'mean' or not np.allclose(u, v),
    stats['batch_stats'],
    variables['batch_stats'],
  )
  assert all(jax.tree.leaves(changed))


def test_rejects_wrong_window_and_unsupported_options(tiny):
  model, _, variables = tiny
  with pytest.raises(ValueError, match='GLA-GCN expects'):
    model.apply(variables, jnp.zeros((1, 27, 17, 2)), train=False)
  with pytest.raises(NotImplementedError, match='causal'):
    models.build('glagcn', '27', causal=True).init(
      jax.random.key(0), jnp.zeros((1, 27, 17, 2)), train=False
    )
  with pytest.raises(ValueError, match='humaneva15'):
    models.build('glagcn', '27', dataset='humaneva15').init(
      jax.random.key(0), jnp.zeros((1, 27, 17, 2)), train=False
    )
