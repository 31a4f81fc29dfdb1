"""KTPFormer: published sizes, graphs, the prior blocks, trainability (official issue #23), checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxpose import models
from jaxpose.models import ktpformer
from jaxpose.models.layers import kpa_tpa


@pytest.mark.parametrize(
  'variant, params', [('243', 35_213_430), ('81', 34_859_622), ('27', 34_765_014)]
)
def test_published_param_counts(variant, params):
  """`-cs 512 -dep 7`, 8 heads: the official class's counts exactly."""
  assert models.param_count('ktpformer', variant) == params == ktpformer.PAPER[variant]['params']


def test_param_count_depth_8():
  assert models.param_count('ktpformer', '243', depth=8) == 39_418_998


def test_default_graph_attaches_shoulders_to_thorax():
  """The training script's skeleton (Human36mDataset rewires joints 11 and 14 to the thorax, 8)."""
  model = models.build('ktpformer')
  spatial, temporal = model.adjacencies()
  assert spatial[8, [7, 9, 11, 14]].tolist() == [0.25] * 4
  assert spatial[11, 8] == spatial[14, 8] == 0.5 and spatial[7, 11] == 0
  assert temporal.shape == (243, 243)


@pytest.fixture(scope='module')
def tiny():
  model = models.build('ktpformer', **ktpformer.TEST_OVERRIDES)
  x = jax.random.normal(jax.random.key(1), (2, *ktpformer.input_shape(model)))
  variables = jax.jit(model.init, static_argnames='train')(jax.random.key(0), x, train=False)
  return model, x, variables


def test_variable_tree_mirrors_the_official_modules(tiny):
  model, _, variables = tiny
  params = variables['params']
  blocks = {f'{s}_{i}' for s in ('STEblocks', 'TTEblocks') for i in range(model.depth)}
  assert set(params) == {
    'kpattention',
    'tpattention',
    'Spatial_norm',
    'Temporal_norm',
    'head_0',
    'head_1',
    *blocks,
  }
  assert set(params['kpattention']) == {'kpa', 'Spatial_pos_embed', 'norm1', 'attn', 'norm2', 'mlp'}
  assert set(params['tpattention']['tpa']) == {'gconv1', 'gconv2'}
  gconv = params['kpattention']['kpa']['gconv']
  assert gconv['W'].shape == (2, 2, 32) and gconv['M'].shape == (17, 32)
  assert gconv['adj2'].shape == (17, 17) and np.allclose(gconv['adj2'], 1e-6)
  assert params['tpattention']['tpa']['gconv1']['gconv']['adj2'].shape == (9, 9)
  assert set(variables['batch_stats']) == {'kpattention', 'tpattention'}


def test_seq2seq_shape_jit_and_deterministic_eval(tiny):
  model, x, variables = tiny
  apply = jax.jit(model.apply, static_argnames='train')
  out = apply(variables, x, train=False)
  assert out.shape == (2, 9, 17, 3)
  np.testing.assert_array_equal(out, apply(variables, x, train=False))


def test_every_parameter_gets_a_gradient(tiny):
  """The official code cannot train (in-place add in KPAttention, issue #23); this port can.

  In eval mode every parameter gets a finite, non-zero gradient. In training mode (batch
  statistics) the graph convolutions' biases are cancelled exactly by the BatchNorm that follows
  (as in torch), so only they may get ~0; everything is finite and the batch_stats update.
  """
  model, x, variables = tiny
  target = jax.random.normal(jax.random.key(2), (2, 9, 17, 3))

  def loss(params, train):
    v = {**variables, 'params': params}
    if not train:
      return jnp.mean((model.apply(v, x, train=False) - target) ** 2), None
    out, new = model.apply(
      v, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(3)}
    )
    return jnp.mean((out - target) ** 2), new

  for train in (False, True):
    grad_fn = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
    grads, new = grad_fn(variables['params'], train)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
      name = jax.tree_util.keystr(path)
      assert np.all(np.isfinite(g)), name
      lgc_bias = 'gconv' in name and name.endswith("['bias']")
      if not (train and lgc_bias):
        assert np.any(np.abs(g) > 0), f'zero gradient for {name} (train={train})'
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), new['batch_stats'], variables['batch_stats']
  )
  assert all(jax.tree.leaves(changed))


def test_dropout_and_drop_path_only_in_training():
  model = models.build('ktpformer', **ktpformer.TEST_OVERRIDES, drop_rate=0.1, drop_path_rate=0.2)
  x = jax.random.normal(jax.random.key(1), (2, *ktpformer.input_shape(model)))
  variables = model.init(jax.random.key(0), x, train=False)
  run = lambda k: model.apply(
    variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(k)}
  )[0]
  assert not np.allclose(run(1), run(2))


def test_layer_norm_eps_mix(tiny):
  """1e-5 in the prior blocks' norm1 and the head; 1e-6 everywhere else (research note 9.1)."""
  model, x, variables = tiny
  eps = {}

  def record(next_fun, args, kwargs, context):
    mod = context.module
    if type(mod).__name__ == 'LayerNorm' and context.method_name == '__call__':
      eps['/'.join(mod.path)] = mod.epsilon
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    model.apply(variables, x, train=False)
  assert eps['kpattention/norm1'] == eps['tpattention/norm1'] == eps['head_0'] == 1e-5
  first = ('kpattention/norm1', 'tpattention/norm1', 'head_0')
  rest = {k: v for k, v in eps.items() if k not in first}
  assert rest and set(rest.values()) == {1e-6}, rest


def test_rejects_wrong_clip_and_skeleton(tiny):
  model, _, variables = tiny
  with pytest.raises(ValueError, match='KTPFormer expects'):
    model.apply(variables, jnp.zeros((1, 8, 17, 2)), train=False)
  bad = models.build('ktpformer', **ktpformer.TEST_OVERRIDES, parents=(-1, 0, 1))
  with pytest.raises(ValueError, match='parents'):
    bad.init(jax.random.key(0), jnp.zeros((1, 9, 17, 2)), train=False)


def test_from_torch_rename():
  r = ktpformer._torch_rename
  assert r('kpattention.attn.kpa.gconv') == 'kpattention.kpa.gconv'
  assert r('kpattention.attn') == 'kpattention'
  assert r('tpattention.attn.norm1') == 'tpattention.norm1'
  assert r('tpattention.attn.qkv') == 'tpattention.attn.qkv'
  assert r('tpattention.attn.tpa.gconv1.bn') == 'tpattention.tpa.gconv1.bn'
  assert r('STEblocks.0.attn.qkv') == 'STEblocks.0.attn.qkv'


def test_parents_from_adjacency_round_trip():
  adj = kpa_tpa.kinematic_adjacency()
  parents = kpa_tpa.parents_from_adjacency(adj)
  np.testing.assert_array_equal(kpa_tpa.kinematic_adjacency(parents), adj)
  with pytest.raises(ValueError, match='tree'):
    kpa_tpa.parents_from_adjacency(np.ones((4, 4)))
