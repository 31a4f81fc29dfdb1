"""MixSTE: published sizes, the reused inter-block norms, train/eval behaviour, input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import mixste


@pytest.mark.parametrize(
  'variant, params', [('243', 33_783_811), ('81', 33_700_867), ('27', 33_673_219)]
)
def test_published_param_counts(variant, params):
  assert models.param_count('mixste', variant) == params == mixste.PAPER[variant]['params']


@pytest.fixture(scope='module')
def tiny():
  model = models.build('mixste', **mixste.TEST_OVERRIDES, drop_rate=0.1, drop_path_rate=0.2)
  x = jax.random.normal(jax.random.key(1), (2, *mixste.input_shape(model)))
  return model, x, model.init(jax.random.key(0), x, train=False)


def test_two_shared_inter_block_norms(tiny):
  """One spatial and one temporal inter-block norm for the whole net, not one per block."""
  model, _, variables = tiny
  blocks = [f'{s}_{i}' for s in ('STEblocks', 'TTEblocks') for i in range(model.depth)]
  expected = {
    'Spatial_patch_to_embedding',
    'Spatial_pos_embed',
    'Temporal_pos_embed',
    'Spatial_norm',
    'Temporal_norm',
    'head_0',
    'head_1',
    *blocks,
  }
  assert set(variables['params']) == expected
  assert set(variables['params']['STEblocks_0']) == {'norm1', 'attn', 'norm2', 'mlp'}


def test_seq2seq_shapes_and_eval_is_deterministic(tiny):
  model, x, variables = tiny
  out = model.apply(variables, x, train=False)
  assert out.shape == (2, 9, 17, 3)
  np.testing.assert_array_equal(out, model.apply(variables, x, train=False))


def test_dropout_and_drop_path_only_in_training(tiny):
  model, x, variables = tiny
  a = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  b = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert a.shape == b.shape and not np.allclose(a, b)


def test_temporal_attention_mixes_frames_and_spatial_mixes_joints(tiny):
  model, x, variables = tiny
  out = model.apply(variables, x, train=False)
  moved = model.apply(variables, x.at[:, 0, 0].add(1.0), train=False)
  changed = np.abs(np.asarray(moved - out)).max(axis=-1) > 1e-6  # (B, T, J)
  assert changed[:, 1:].any() and changed[:, :, 1:].any()


def test_rejects_wrong_clip_length(tiny):
  model, _, variables = tiny
  with pytest.raises(ValueError, match='MixSTE expects'):
    model.apply(variables, jnp.zeros((1, 8, 17, 2)), train=False)
