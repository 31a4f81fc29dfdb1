"""MotionAGFormer: published sizes, initialisation, graph, options, train/eval behaviour."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpose.models as models
from jaxpose.models import motionagformer as mag

TINY = dict(n_layers=1, dim_feat=16, dim_rep=8, num_heads=2, neighbour_num=2, n_frames=6)


def _key(seed):
  # Threefry keys make eager init compile one sampler per parameter shape (~10 s for a tiny
  # model on CPU); the rbg generator is an order of magnitude cheaper and fine for tests.
  return jax.random.key(seed, impl='unsafe_rbg')


def _init(model, x):
  return model.init(_key(0), x, train=False)


@pytest.mark.parametrize(
  'variant,params',
  [('xs', 2_241_531), ('s', 4_817_119), ('b', 11_723_811), ('l', 19_007_111)],
)
def test_param_count_equals_official(variant, params):
  assert models.param_count('motionagformer', variant) == params
  assert mag.PAPER[variant]['params'] == params


def test_variants_and_paper_table_agree():
  assert list(mag.VARIANTS) == ['xs', 's', 'b', 'l']
  assert list(models.variants('motionagformer'))[0] == 'xs'
  for name, kw in mag.VARIANTS.items():
    assert mag.PAPER[name]['frames'] == kw['n_frames']
    assert kw['num_heads'] == 8 and kw['neighbour_num'] == 2
    assert models.example_input(models.build('motionagformer', name)).shape == (
      1,
      kw['n_frames'],
      17,
      3,
    )


def test_spatial_graph_is_the_published_asymmetric_one():
  adj = np.zeros((17, 17), int)
  for i, row in enumerate(mag.CONNECTIONS):
    adj[i, list(row)] = 1
  assert adj.trace() == 0
  assert adj.sum() == 29
  # Rows 0 and 8 miss edges whose reverse exists.
  assert adj[4, 0] and not adj[0, 4]
  assert adj[11, 8] and adj[14, 8] and not adj[8, 11] and not adj[8, 14]
  assert np.argwhere(adj != adj.T).tolist() == [[0, 4], [4, 0], [8, 11], [8, 14], [11, 8], [14, 8]]


@pytest.fixture(scope='module')
def tiny():
  model = mag.Model(**TINY)
  x = jax.random.uniform(_key(1), (2, 6, 17, 3), minval=-1, maxval=1)
  variables = _init(model, x)
  return model, variables, x


def test_initialisation_follows_official(tiny):
  _, v, _ = tiny
  p = v['params']
  np.testing.assert_array_equal(p['pos_embed'], 0)
  np.testing.assert_array_equal(p['layers_0']['fusion']['kernel'], 0)
  np.testing.assert_array_equal(p['layers_0']['fusion']['bias'], 0.5)
  block = p['layers_0']['att_temporal']
  np.testing.assert_allclose(block['layer_scale_1'], 1e-5)
  np.testing.assert_allclose(block['layer_scale_2'], 1e-5)
  assert 'bias' not in block['mixer']['qkv']
  gcn = p['layers_0']['graph_temporal']['mixer']
  assert gcn['batch_norm']['scale'].shape == (6,)  # one BN channel per frame
  assert p['layers_0']['graph_spatial']['mixer']['batch_norm']['scale'].shape == (17,)
  assert float(jnp.std(gcn['U']['kernel'])) > 0.5 * np.sqrt(2 / 16)  # N(0, sqrt(2/C))
  assert set(v) == {'params', 'batch_stats'}


def test_output_shapes_and_rep(tiny):
  model, v, x = tiny
  out = model.apply(v, x, train=False)
  rep = model.apply(v, x, train=False, return_rep=True)
  assert out.shape == (2, 6, 17, 3)
  assert rep.shape == (2, 6, 17, 8)
  assert np.abs(np.asarray(rep)).max() <= 1.0  # tanh representation


def test_train_mode_updates_batch_stats_and_needs_dropout_rng():
  model = mag.Model(**TINY, drop=0.2, drop_path=0.2)
  x = jax.random.normal(_key(1), (2, 6, 17, 3))
  v = _init(model, x)
  with pytest.raises(flax.errors.InvalidRngError):
    model.apply(v, x, train=True, mutable='batch_stats')
  rngs = {'dropout': _key(2)}
  out, upd = model.apply(v, x, train=True, mutable='batch_stats', rngs=rngs)
  assert np.isfinite(np.asarray(out)).all()
  changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), upd['batch_stats'], v['batch_stats'])
  assert all(jax.tree.leaves(changed))


def test_frame_permutation_equivariance_with_neutral_batch_norm(tiny):
  """No temporal position embedding: only the per-frame BatchNorm statistics know frame order."""
  model, v, x = tiny
  # With identity BN statistics per frame the model is frame-permutation equivariant.
  v = {**v, 'batch_stats': jax.tree.map(jnp.zeros_like, v['batch_stats'])}
  v['batch_stats'] = jax.tree.map_with_path(
    lambda p, a: jnp.ones_like(a) if p[-1].key == 'var' else a, v['batch_stats']
  )
  perm = np.array([3, 1, 2, 0, 5, 4])
  out = model.apply(v, x, train=False)
  out_p = model.apply(v, x[:, perm], train=False)
  np.testing.assert_allclose(out_p, out[:, perm], atol=1e-5)


@pytest.mark.parametrize(
  'options',
  [
    dict(hierarchical=True),
    dict(graph_only=True),
    dict(use_adaptive_fusion=False),
    dict(use_temporal_similarity=False, temporal_connection_len=2),
    dict(use_layer_scale=False, act_layer='relu'),
    dict(use_tcn=True),
    dict(use_tcn=True, graph_only=True),
  ],
  ids=lambda o: ','.join(o),
)
def test_official_options_build_and_run(options):
  model = mag.Model(**{**TINY, **options})
  x = jnp.zeros((1, 6, 17, 3))
  # Shapes only (numerics of every option were checked against the official code by hand).
  v = jax.eval_shape(lambda: _init(model, x))
  assert jax.eval_shape(lambda v: model.apply(v, x, train=False), v).shape == (1, 6, 17, 3)
  if options.get('hierarchical'):
    # The unused fusion layer of the official hierarchical block is still there.
    assert v['params']['layers_0']['fusion']['kernel'].shape == (16, 2)
  if options.get('use_tcn'):
    tcn = v['params']['layers_0']['graph_temporal']
    tcn = tcn if options.get('graph_only') else tcn['mixer']
    assert tcn['branches_0_3']['conv']['kernel'].shape == (5, 1, 4, 4)  # (k, 1, C/4, C/4)


def test_input_validation():
  model = mag.Model(**TINY)
  with pytest.raises(ValueError, match='input must be'):
    model.init(_key(0), jnp.zeros((1, 5, 17, 3)), train=False)
  with pytest.raises(ValueError, match='num_joints'):
    mag.Model(**TINY, num_joints=16).init(_key(0), jnp.zeros((1, 6, 16, 3)), train=False)


def test_from_torch_rejects_unknown_kwargs_and_bad_keys():
  with pytest.raises(ValueError, match='unknown MotionAGFormer kwargs'):
    mag.from_torch({}, **TINY, n_joints=17)
  with pytest.raises(ValueError, match='missing'):
    mag.from_torch({'head.weight': np.zeros((3, 8), np.float32)}, **TINY)
