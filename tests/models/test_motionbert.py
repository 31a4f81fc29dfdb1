"""MotionBERT (DSTformer): published sizes, fusion init, representation, clip lengths, eps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import motionbert


@pytest.mark.parametrize('variant, params', [('base', 42_466_317), ('lite', 16_001_549)])
def test_published_param_counts(variant, params):
  assert models.param_count('motionbert', variant) == params == motionbert.PAPER[variant]['params']


@pytest.fixture(scope='module')
def tiny():
  model = models.build('motionbert', **motionbert.TEST_OVERRIDES, drop_rate=0.1)
  x = jax.random.normal(jax.random.key(1), (2, *motionbert.input_shape(model)))
  return model, x, model.init(jax.random.key(0), x, train=False)


def test_fusion_starts_as_an_equal_mix(tiny):
  """ts_attn starts at weight 0 / bias 0.5, so the learned fusion equals the plain average."""
  model, x, variables = tiny
  fused = model.apply(variables, x, train=False)
  params = {k: v for k, v in variables['params'].items() if not k.startswith('ts_attn')}
  averaged = model.clone(att_fuse=False).apply({'params': params}, x, train=False)
  np.testing.assert_allclose(fused, averaged, atol=1e-6)
  bumped = jax.tree.map(lambda a: a, variables)
  bumped['params']['ts_attn_0']['bias'] = jnp.array([1.0, 0.0])
  assert not np.allclose(model.apply(bumped, x, train=False), fused, atol=1e-4)


def test_representation_feeds_the_head(tiny):
  model, x, variables = tiny
  rep = model.apply(variables, x, train=False, return_rep=True)
  assert rep.shape == (2, 9, 17, 64) and float(jnp.abs(rep).max()) < 1.0
  head = variables['params']['head']
  np.testing.assert_allclose(
    rep @ head['kernel'] + head['bias'], model.apply(variables, x, train=False), atol=1e-5
  )


def test_short_clips_run_and_long_clips_are_rejected(tiny):
  model, x, variables = tiny
  assert model.apply(variables, x[:, :5], train=False).shape == (2, 5, 17, 3)
  with pytest.raises(ValueError, match='T <= 9'):
    model.apply(variables, jnp.zeros((1, 10, 17, 3)), train=False)


def test_dropout_only_in_training(tiny):
  model, x, variables = tiny
  a = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  b = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(a, b)


@pytest.mark.parametrize(
  'norm_layer, eps',
  [
    (None, 1e-6),
    ('partial(nn.LayerNorm, eps=1e-6)', 1e-6),
    (functools.partial(object, eps=1e-6), 1e-6),
    (type('LayerNorm', (), {}), 1e-5),
  ],
)
def test_norm_layer_argument_sets_eps(norm_layer, eps):
  assert motionbert._norm_eps(norm_layer) == eps


def test_torch_names_map_onto_the_sub_blocks():
  rename = motionbert._torch_rename
  assert rename('blocks_ts.3.attn_t.qkv') == 'blocks_ts_3_t.attn.qkv'
  assert rename('blocks_st.0.norm2_s') == 'blocks_st_0_s.norm2'
  assert rename('pre_logits.fc') == 'pre_logits'
  assert rename('ts_attn.1') == 'ts_attn.1'
