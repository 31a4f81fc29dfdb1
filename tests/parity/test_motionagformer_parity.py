"""MotionAGFormer parity with the official PyTorch code (every motionagformer__*.npz fixture)."""

import jax
import numpy as np
import pytest

from jaxpose.models import motionagformer
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


@pytest.fixture(scope='module', params=fixture_files('motionagformer'))
def converted(request):
  fx = Fixture(request.param)
  model, variables = motionagformer.from_torch(fx.params, **fx.meta['constructor_kwargs'])
  apply = jax.jit(model.apply, static_argnames=('train', 'return_rep'))
  return fx, model, variables, apply


def test_output_matches_official(converted):
  fx, _, variables, apply = converted
  out = apply(variables, fx['input'], train=False)
  max_abs, rel = assert_parity(out, fx['output'], name=f'{fx.path.name} output')
  print(f'{fx.path.name}: output max abs {max_abs:.2e}, rel L2 {rel:.2e}')


def test_rep_matches_official(converted):
  fx, _, variables, apply = converted
  if 'rep' not in fx:
    pytest.skip(f'{fx.path.name} has no rep')
  rep = apply(variables, fx['input'], train=False, return_rep=True)
  assert_parity(rep, fx['rep'], name=f'{fx.path.name} rep')


def test_batch_stats_are_used(converted):
  """The fixture's BN running stats are perturbed: zeroing them must change the output."""
  fx, _, variables, apply = converted
  reset = dict(variables)
  reset['batch_stats'] = jax.tree.map(np.zeros_like, variables['batch_stats'])
  out = apply(reset, fx['input'], train=False)
  assert np.max(np.abs(np.asarray(out) - fx['output'])) > 1e-3
