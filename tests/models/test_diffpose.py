"""DiffPose networks: published sizes, the composite's two entry points, checkpoint layouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import diffpose

UNUSED_GCNPOSE_TEMB = 96 * 384 + 384 + 384 * 384 + 384  # the official GCNpose's idle temb MLP


def _count(module, *args):
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, train=False))
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes['params'])))


def test_gcndiff_and_gcnpose_sizes_match_the_official_classes():
  x5, x2, t = jnp.zeros((1, 17, 5)), jnp.zeros((1, 17, 2)), jnp.zeros((1,))
  assert _count(diffpose.GraphTrunk(5), x5, t) == 1_025_674
  gcnpose = _count(diffpose.GraphTrunk(3, time_embedding=False), x2)
  assert gcnpose + UNUSED_GCNPOSE_TEMB == 839_432
  assert models.param_count('diffpose', 'frame') == diffpose.PAPER['frame']['params']
  assert diffpose.PAPER['frame']['params'] + UNUSED_GCNPOSE_TEMB == 1_865_106


def test_video_variant_size():
  assert models.param_count('diffpose', 'video') == 34_809_485 == diffpose.PAPER['video']['params']


@pytest.fixture(scope='module')
def tiny():
  model = models.build('diffpose', 'frame', **diffpose.TEST_OVERRIDES)
  x = jax.random.normal(jax.random.key(1), (2, 1, 17, 2))
  variables = jax.jit(lambda: model.init(jax.random.key(0), x, train=False))()
  return model, variables, x


def test_init_creates_both_networks(tiny):
  model, variables, x = tiny
  assert set(variables['params']) == {'pose', 'diff'}
  assert variables['params']['diff']['gconv_input']['weight'].shape == (3, 1, 5, 16)
  assert variables['params']['pose']['gconv_output']['weight'].shape == (3, 1, 16, 3)


def test_denoise_timestep_shapes_agree(tiny):
  model, variables, x = tiny
  xt = jax.random.normal(jax.random.key(2), (2, 3, 17, 5))
  a = model.apply(variables, xt, jnp.array([4.0, 9.0]), train=False, method='denoise')
  b = model.apply(variables, xt, jnp.array([[4.0] * 3, [9.0] * 3]), train=False, method='denoise')
  assert a.shape == xt.shape
  np.testing.assert_allclose(a, b, atol=1e-6)
  c = model.apply(variables, xt, jnp.array([4.0, 10.0]), train=False, method='denoise')
  assert not np.allclose(a[1], c[1], atol=1e-6) and np.allclose(a[0], c[0], atol=1e-6)


def test_wrong_input_shape_raises(tiny):
  model, variables, _ = tiny
  with pytest.raises(ValueError, match='DiffPose expects'):
    model.apply(variables, jnp.zeros((1, 2, 17, 2)), train=False)


def test_unknown_initialiser_raises():
  with pytest.raises(ValueError, match='initialiser'):
    models.build('diffpose', 'frame', initialiser='nope').init(
      jax.random.key(0), jnp.zeros((1, 1, 17, 2)), train=False
    )


def _torch_like(params, prefix=''):
  """Inverse of the conversion for the tiny trunk: flax tree -> official key names."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = [p.key for p in path]
    if names[-1] == 'kernel':
      names[-1], leaf = 'weight', np.asarray(leaf).T
    key = '.'.join(names)
    for a, b in [('sublayer_0_norm', 'sublayer.0.norm'), ('sublayer_1_norm', 'sublayer.1.norm')]:
      key = key.replace(a, b)
    for stem in ('atten_layers', 'gconv_layers', 'linears', 'dense'):
      for i in range(8):
        key = key.replace(f'{stem}_{i}.', f'{stem}.{i}.')
    out[prefix + key] = np.asarray(leaf)
  return out


def test_from_torch_reads_the_released_list_layout(tiny):
  """[state_dict, optimizer, epoch, step, ema] with `module.` prefixes; GCNpose's idle temb skipped."""
  model, variables, x = tiny
  diff_sd = _torch_like(variables['params']['diff'], 'module.')
  pose_sd = _torch_like(variables['params']['pose'], 'module.')
  pose_sd['module.temb.dense.0.weight'] = np.zeros((64, 16), np.float32)
  released = [diff_sd, {'state': {}}, 3, 100, {}]
  cm = {'hid_dim': 16, 'num_layer': 1, 'n_head': 4, 'coords_dim': [5, 5], 'n_pts': 17}
  m2, v2 = diffpose.from_torch(released, pose_state_dict=[pose_sd], config_model=cm)
  out = model.apply(variables, x, train=False)
  np.testing.assert_allclose(m2.apply(v2, x, train=False), out, atol=1e-6)
  xt = jnp.concatenate([x, out], -1)
  np.testing.assert_allclose(
    m2.apply(v2, xt, jnp.ones(2), train=False, method='denoise'),
    model.apply(variables, xt, jnp.ones(2), train=False, method='denoise'),
    atol=1e-6,
  )
  bad = dict(diff_sd, **{'module.extra.weight': np.zeros(3)})
  with pytest.raises(ValueError, match='unexpected'):
    diffpose.from_torch(bad, config_model=cm)


def test_chebyshev_polynomials_of_the_skeleton():
  adj = diffpose.adjacency(17, diffpose.H36M_EDGES)
  np.testing.assert_allclose(adj.sum(1), 1.0, rtol=1e-6)
  t = diffpose.chebyshev_polynomials(adj)
  lap = np.eye(17) - adj  # D = rowsum(adj) = I
  np.testing.assert_allclose(t[1], lap, atol=1e-6)
  np.testing.assert_allclose(t[2], 2 * lap @ lap - np.eye(17), atol=1e-5)
