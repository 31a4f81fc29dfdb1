"""MotionBERT (DSTformer) parity: full and short clips, the representation, the flip test, losses."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import losses
from jaxpose.geometry import skeleton
from jaxpose.models import motionbert
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


@pytest.mark.parametrize('path', fixture_files('motionbert'))
def test_motionbert_matches_official(path):
  fx = Fixture(path)
  model, variables = motionbert.from_torch(fx.params, **fx.meta['ctor'])
  apply = lambda x, **kw: model.apply(variables, x, train=False, **kw)
  x = fx['input/x']
  out = apply(x)
  assert_parity(out, fx['output'], name='output')
  if 'output/short' in fx:  # T < maxlen: the frame embedding is sliced
    assert_parity(apply(fx['input/x_short']), fx['output/short'], name='output/short')
  if 'output/rep' in fx:
    assert_parity(apply(x, return_rep=True), fx['output/rep'], name='output/rep')
  if 'output/flip_avg' in fx:  # (f(x) + flip(f(flip(x)))) / 2, official flip_data
    flipped = skeleton.flip_pose(apply(skeleton.flip_pose(x, 'h36m17')), 'h36m17')
    assert_parity(0.5 * (out + flipped), fx['output/flip_avg'], name='output/flip_avg')


@pytest.mark.parametrize('path', fixture_files('motionbert'))
def test_motionbert_losses_match_official(path):
  """MPJPE + 0.5 N-MPJPE + 20 MPJVE on the official output (the 3D branch of train.py)."""
  fx = Fixture(path)
  pred, batch = jnp.asarray(fx['output']), {'pose3d_cam': jnp.asarray(fx['input/target'])}
  weights = {'mpjpe': 1.0, 'n_mpjpe': 0.5, 'velocity': 20.0}
  total, parts = losses.combine(weights, pred, batch)
  for name in weights:
    np.testing.assert_allclose(
      parts[name].mean(), fx[f'output/loss_{name}'], rtol=1e-5, err_msg=name
    )
  np.testing.assert_allclose(total.mean(), fx['output/loss_total'], rtol=1e-5)
