"""Platypose's MDM prior: published size, the shared sinusoid table, checkpoint conversion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import platypose
from jaxpose.models.layers import diffusion


def test_published_size():
  assert models.param_count('platypose', 'h36m') == 17_400_371 == platypose.PAPER['h36m']['params']


def test_sinusoid_table():
  pe = diffusion.sinusoid_table(10, 8)
  np.testing.assert_allclose(pe[3, 0], np.sin(3.0), rtol=1e-6)
  np.testing.assert_allclose(pe[3, 1], np.cos(3.0), rtol=1e-6)
  np.testing.assert_allclose(pe[5, 2], np.sin(5 * np.exp(-2 * np.log(1e4) / 8)), rtol=1e-6)


@pytest.fixture(scope='module')
def tiny():
  model = models.build('platypose', 'h36m', **platypose.TEST_OVERRIDES)
  x = jax.random.normal(jax.random.key(1), (2, 8, 17, 3))
  variables = jax.jit(lambda: model.init(jax.random.key(0), x, train=False))()
  return model, variables, x


def test_variables_and_timestep(tiny):
  model, variables, x = tiny
  assert set(variables) == {'params', 'buffers'}
  np.testing.assert_allclose(variables['buffers']['pe'], diffusion.sinusoid_table(64, 32))
  run = jax.jit(lambda v, x, t: model.apply(v, x, train=False, t=t))
  a = run(variables, x, jnp.zeros(2, jnp.int32))
  np.testing.assert_allclose(model.apply(variables, x, train=False), a, atol=1e-6)
  b = run(variables, x, jnp.array([0, 7]))
  np.testing.assert_allclose(a[0], b[0], atol=1e-6)
  assert not np.allclose(a[1], b[1], atol=1e-4)
  with pytest.raises(ValueError, match='MDM expects'):
    model.apply(variables, jnp.zeros((1, 64, 17, 3)), train=False)  # T + 1 > max_len


def _official_keys(variables):
  """Flax tree -> official MDM keys (the inverse of from_torch), plus the unused encoder."""
  p = variables['params']
  sd = {}
  lin = lambda name, leaf: {
    f'{name}.weight': np.asarray(leaf['kernel']).T,
    f'{name}.bias': np.asarray(leaf['bias']),
  }
  sd.update(lin('input_process.poseEmbedding', p['poseEmbedding']))
  sd.update(lin('output_process.poseFinal', p['poseFinal']))
  for i in (0, 2):
    sd.update(lin(f'embed_timestep.time_embed.{i}', p[f'time_embed_{i}']))
  for i in range(2):
    layer, pre = p[f'layers_{i}'], f'seqTransEncoder.layers.{i}.'
    sd[pre + 'self_attn.in_proj_weight'] = np.asarray(layer['self_attn']['qkv']['kernel']).T
    sd[pre + 'self_attn.in_proj_bias'] = np.asarray(layer['self_attn']['qkv']['bias'])
    sd.update(lin(pre + 'self_attn.out_proj', layer['self_attn']['proj']))
    sd.update(lin(pre + 'linear1', layer['linear1']))
    sd.update(lin(pre + 'linear2', layer['linear2']))
    for n in ('norm1', 'norm2'):
      sd[pre + n + '.weight'] = np.asarray(layer[n]['scale'])
      sd[pre + n + '.bias'] = np.asarray(layer[n]['bias'])
  pe = np.asarray(variables['buffers']['pe'])[:, None]
  sd['sequence_pos_encoder.pe'] = sd['embed_timestep.sequence_pos_encoder.pe'] = pe
  sd['skeleton_encoder.muQuery'] = np.zeros((1, 32), np.float32)
  sd['skeleton_encoder.sequence_pos_encoder.pe'] = pe + 1
  return sd


def test_from_torch_round_trip_skips_the_skeleton_encoder(tiny):
  model, variables, x = tiny
  sd = _official_keys(variables)
  m2, v2 = platypose.from_torch(sd, num_frames=8, njoints=17, cond_mode='no_cond')
  assert (m2.latent_dim, m2.ff_size, m2.num_layers, m2.max_len) == (32, 64, 2, 64)
  t = jnp.array([3, 11])
  np.testing.assert_allclose(
    m2.apply(v2, x, train=False, t=t), model.apply(variables, x, train=False, t=t), atol=1e-6
  )
  bad = dict(sd, **{'embed_timestep.sequence_pos_encoder.pe': sd['sequence_pos_encoder.pe'] + 1})
  with pytest.raises(ValueError, match='aliased'):
    platypose.from_torch(bad)
  with pytest.raises(ValueError, match='unexpected'):
    platypose.from_torch(dict(sd, **{'extra.weight': np.zeros((2, 2))}))
