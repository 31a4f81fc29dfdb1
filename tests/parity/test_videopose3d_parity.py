"""VideoPose3D parity with the official TemporalModel / TemporalModelOptimized1f outputs."""

import numpy as np
import pytest

from jaxpose.models import videopose3d
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _model_fixtures():
  """The family's fixtures that hold a TemporalModel state dict (not the conventions file)."""
  params = fixture_files('videopose3d')
  if params[0].values[0] is None:
    return params
  keep = []
  for p in params:
    with np.load(p.values[0]) as z:
      if 'param/expand_conv.weight' in z.files:
        keep.append(p)
  return keep


@pytest.mark.parametrize('path', _model_fixtures())
def test_videopose3d_matches_official(path):
  fx = Fixture(path)
  model, variables = videopose3d.from_torch(fx.params, **fx.meta['ctor'])
  x = fx['input']
  assert_parity(model.apply(variables, x, train=False), fx['output'], name='output')
  if 'output/opt1f' in fx:
    strided = model.clone(single_frame=True)
    out = strided.apply(variables, x[:, : model.receptive_field], train=False)
    assert_parity(out, fx['output/opt1f'], name='output/opt1f')
  if 'output/causal' in fx:
    out = model.clone(causal=True).apply(variables, x, train=False)
    assert_parity(out, fx['output/causal'], name='output/causal')
