"""KTPFormer parity with the official PyTorch code (every ktpformer__*.npz fixture).

The model is built from the fixture's constructor kwargs and its kinematic parent list; the two
fixed graphs are rebuilt by the model (never read from the fixture) and checked against the stored
official `adj_spatial` / `adj_temporal`.
"""

import jax
import numpy as np
import pytest

from jaxpose.models import ktpformer
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _kwargs(fx: Fixture) -> dict:
  """Constructor kwargs; string values naming a fixture key (the adjacencies) become arrays."""
  kw = dict(fx.meta['constructor_kwargs'])
  for k, v in kw.items():
    if isinstance(v, str) and v in fx:
      kw[k] = fx[v]
  return kw


@pytest.fixture(scope='module', params=fixture_files('ktpformer'))
def converted(request):
  fx = Fixture(request.param)
  kw = _kwargs(fx)
  kw.pop('adj', None)
  kw.pop('adj_temporal', None)
  parents = fx.meta.get('h36m_parents_17')
  model, variables = ktpformer.from_torch(fx.params, parents=parents, **kw)
  return fx, model, variables, jax.jit(model.apply, static_argnames='train')


def test_output_matches_official(converted):
  fx, _, variables, apply = converted
  out = apply(variables, fx['input'], train=False)
  max_abs, rel = assert_parity(out, fx['output'], name=f'{fx.path.name} output')
  print(f'{fx.path.name}: output max abs {max_abs:.2e}, rel L2 {rel:.2e}')


def test_model_builds_the_official_adjacencies(converted):
  fx, model, _, _ = converted
  spatial, temporal = model.adjacencies()
  np.testing.assert_allclose(spatial, fx['adj_spatial'], rtol=0, atol=1e-7)
  np.testing.assert_allclose(temporal, fx['adj_temporal'], rtol=0, atol=1e-7)


def test_from_official_adjacency_tensors(converted):
  """Passing the official `adj`/`adj_temporal` tensors (as run_ktpformer.py does) works too."""
  fx, model, _, _ = converted
  m2, v2 = ktpformer.from_torch(fx.params, **_kwargs(fx))
  assert kinematic_edges(m2.parents) == kinematic_edges(model.parents)
  assert_parity(m2.apply(v2, fx['input'], train=False), fx['output'], name='from adj tensors')
  with pytest.raises(ValueError, match='chain'):
    ktpformer.from_torch(fx.params, **{**_kwargs(fx), 'adj_temporal': np.eye(model.num_frames)})


def kinematic_edges(parents):
  return {frozenset((c, p)) for c, p in enumerate(parents) if p >= 0}


def test_batch_stats_are_used(converted):
  """The fixture's KPA/TPA BatchNorm statistics are perturbed: resetting them to (0, 1) changes the output."""
  fx, _, variables, apply = converted
  reset = dict(variables)
  fresh = lambda path, v: np.ones_like(v) if path[-1].key == 'var' else np.zeros_like(v)
  reset['batch_stats'] = jax.tree_util.tree_map_with_path(fresh, variables['batch_stats'])
  out = apply(reset, fx['input'], train=False)
  assert np.max(np.abs(np.asarray(out) - fx['output'])) > 1e-3
