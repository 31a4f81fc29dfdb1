"""GLA-GCN parity with the official PyTorch `S_AGCN` (every glagcn__*.npz fixture), graph included."""

import jax
import numpy as np
import pytest

from jaxpose.models import glagcn
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


@pytest.fixture(scope='module', params=fixture_files('glagcn'))
def converted(request):
  fx = Fixture(request.param)
  model, variables = glagcn.from_torch(fx.params, **fx.meta['constructor_kwargs'])
  return fx, model, variables, jax.jit(model.apply, static_argnames='train')


def test_output_matches_official(converted):
  fx, _, variables, apply = converted
  out = apply(variables, fx['input'], train=False)
  max_abs, rel = assert_parity(out, fx['output'], name=f'{fx.path.name} output')
  print(f'{fx.path.name}: output max abs {max_abs:.2e}, rel L2 {rel:.2e}')


def test_graph_matches_official(converted):
  fx, model, _, _ = converted
  np.testing.assert_allclose(glagcn.graph_adjacency(model.dataset), fx['A'], rtol=0, atol=1e-7)


def test_receptive_field_and_single_output_frame(converted):
  fx, model, _, _ = converted
  assert model.receptive_field == fx['input'].shape[1] == fx.meta.get('receptive_field', 27)
  assert fx['output'].shape[1] == 1


def test_batch_stats_are_used(converted):
  fx, _, variables, apply = converted
  reset = dict(variables)
  fresh = lambda path, v: np.ones_like(v) if path[-1].key == 'var' else np.zeros_like(v)
  reset['batch_stats'] = jax.tree_util.tree_map_with_path(fresh, variables['batch_stats'])
  out = apply(reset, fx['input'], train=False)
  assert np.max(np.abs(np.asarray(out) - fx['output'])) > 1e-3
