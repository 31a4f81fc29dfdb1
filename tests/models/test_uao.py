"""GUMLP (UAO) lifter: parameter counts, the partition graph, shapes and the checkpoint import."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.convert import load_official
from jaxpose.geometry import skeleton as skel
from jaxpose.models import uao
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

SMALL = uao.TEST_OVERRIDES


@pytest.mark.parametrize('variant', list(uao.VARIANTS))
def test_param_count_matches_the_official_model(variant):
  # Official count includes the frozen adjacency (4 x 17 x 17 = 1156) once.
  assert models.param_count('uao', variant) == uao.PAPER[variant]['params']


def test_centre_distances_are_the_official_table():
  bones = skel.get('h36m17').bones
  dist = uao._hops_from(uao.H36M_CENTER, bones, 17)
  np.testing.assert_array_equal(dist, [1, 2, 3, 4, 2, 3, 4, 0, 1, 2, 3, 2, 3, 4, 2, 3, 4])


def test_adjacency_partitions():
  a = uao.spatial_adjacency('h36m17')
  sk = skel.get('h36m17')
  assert a.shape == (4, 17, 17) and a.dtype == np.float32
  support = a != 0
  assert not (support.sum(0) > 1).any(), 'partitions overlap'
  binary = sk.adjacency(self_loops=True)
  sym = {frozenset(p) for p in zip(sk.left, sk.right, strict=True)}
  for left, right in zip(sk.left, sk.right, strict=True):
    binary[left, right] = binary[right, left] = 1.0
  # Every edge (self, bone, symmetric pair) lands in exactly one partition, column-normalised.
  np.testing.assert_array_equal(support.any(0), binary > 0)
  np.testing.assert_allclose(a.sum(0), binary / binary.sum(0, keepdims=True), rtol=1e-6)
  np.testing.assert_array_equal(np.nonzero(support[0]), np.nonzero(np.eye(17)))
  dist = uao._hops_from(uao.H36M_CENTER, sk.bones, 17)
  for v, w in zip(*np.nonzero(support[1])):
    assert dist[v] > dist[w]
  for v, w in zip(*np.nonzero(support[2])):
    assert dist[v] < dist[w]
  pairs = {frozenset((int(v), int(w))) for v, w in zip(*np.nonzero(support[3]))}
  assert pairs == sym


@pytest.fixture(scope='module')
def small():
  model = models.build('uao', 'published', **SMALL)
  x = jax.random.normal(jax.random.key(1), (3, 2, 17, 2))
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  return model, variables, x


def test_shapes_and_per_frame_lifting(small):
  model, variables, x = small
  mu, log_s = model.apply(variables, x, train=False, return_uncertainty=True)
  assert mu.shape == (3, 2, 17, 3) and log_s.shape == (3, 2, 17, 1)
  np.testing.assert_array_equal(model.apply(variables, x, train=False), mu)
  # Frames are lifted independently (the official model is single-frame).
  one = model.apply(variables, x[:, 1:], train=False)
  np.testing.assert_allclose(one, mu[:, 1:], atol=1e-6)
  np.testing.assert_array_equal(variables['params']['adj'], uao.spatial_adjacency())


def test_adjacency_is_frozen_and_dropout_needs_train(small):
  model, variables, x = small

  def loss(params):
    mu, log_s = model.apply({'params': params}, x, train=False, return_uncertainty=True)
    return jnp.sum(mu**2) + jnp.sum(log_s**2)

  grads = jax.jit(jax.grad(loss))(variables['params'])
  assert not np.any(grads['adj'])
  assert np.any(grads['blocks_0']['gcn1']['kernel'])
  assert np.any(grads['pred_s_fc5']['kernel'])
  rngs = {'dropout': jax.random.key(3)}
  a = jax.jit(lambda v: model.apply(v, x, train=True, rngs=rngs))(variables)
  b = model.apply(variables, x, train=False)
  assert not np.allclose(a, b)


def test_rejects_wrong_input_shape(small):
  model, variables, _ = small
  with pytest.raises(ValueError, match='expected'):
    model.apply(variables, jnp.zeros((1, 1, 16, 2)), train=False)


@pytest.mark.parametrize('path', fixture_files('uao', 'tiny'))
def test_released_checkpoint_layout_rebuilds_the_graph(path):
  """The released checkpoint (saved on CUDA) holds no adjacency; from_torch rebuilds it."""
  fx = Fixture(path)
  sd = {k: v for k, v in fx.params.items() if not (k == 'A' or k.endswith('gcn1.adj'))}
  model, variables = load_official('uao', sd, **fx.meta['args'])
  np.testing.assert_array_equal(variables['params']['adj'], uao.spatial_adjacency())
  assert model.channel == fx.meta['args']['channel'] and model.layers == fx.meta['args']['layers']
  with pytest.raises(ValueError, match='blocks'):
    uao.from_torch(sd, channel=fx.meta['args']['channel'], layers=fx.meta['args']['layers'] + 1)


@pytest.mark.torch
@pytest.mark.parametrize('path', fixture_files('uao', 'tiny'))
def test_load_official_reads_a_torch_file(path, tmp_path):
  torch = pytest.importorskip('torch')
  fx = Fixture(path)
  ckpt = tmp_path / 'Model_Gaussian_p1_4941.pth'
  torch.save({k: torch.from_numpy(v) for k, v in fx.params.items()}, ckpt)  # a plain state dict
  model, variables = load_official('uao', ckpt, **fx.meta['args'])
  mu, log_s = model.apply(variables, fx['input/x'], train=False, return_uncertainty=True)
  assert_parity(mu, fx['output'], name='mu')
  assert_parity(log_s, fx['output/s'], name='s')
