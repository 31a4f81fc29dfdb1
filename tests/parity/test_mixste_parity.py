"""MixSTE parity with the official MixSTE2 output and its training-loss values."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import losses
from jaxpose.models import mixste
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


@pytest.mark.parametrize('path', fixture_files('mixste'))
def test_mixste_matches_official(path):
  fx = Fixture(path)
  model, variables = mixste.from_torch(fx.params, **fx.meta['ctor'])
  assert_parity(model.apply(variables, fx['input/x'], train=False), fx['output'], name='output')


@pytest.mark.parametrize('path', fixture_files('mixste'))
def test_mixste_losses_match_official(path):
  """w_mpjpe + 0.5 TC + 2 MPJVE on the official output (the weights of the official run.py)."""
  fx = Fixture(path)
  pred, batch = jnp.asarray(fx['output']), {'pose3d_cam': jnp.asarray(fx['input/target'])}
  weights = {'w_mpjpe': 1.0, 'temporal_consistency': 0.5, 'velocity': 2.0}
  total, parts = losses.combine(weights, pred, batch)
  for name, key in [
    ('w_mpjpe', 'w_mpjpe'),
    ('temporal_consistency', 'temporal_consistency'),
    ('velocity', 'velocity'),
  ]:
    np.testing.assert_allclose(
      parts[name].mean(), fx[f'output/loss_{key}'], rtol=1e-5, err_msg=name
    )
  np.testing.assert_allclose(total.mean(), fx['output/loss_total'], rtol=1e-5)
