"""MPM parity with the official outputs: the fine-tuning lifter (`model.MPM.Model`) and the
pre-training network (`model.MPMLift.MPMmask2`) fed the fixture's stored masks."""

import numpy as np
import pytest

from jaxpose.models import mpm
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _fixtures(pretrain: bool):
  """The family's fixtures of one kind: pre-training files hold `dec_pos_embedding`."""
  params = fixture_files('mpm')
  if params[0].values[0] is None:
    return params
  keep = []
  for p in params:
    with np.load(p.values[0]) as z:
      if ('param/dec_pos_embedding' in z.files) == pretrain:
        keep.append(p)
  return keep or [pytest.param(None, marks=pytest.mark.skip(reason='no fixture of this kind'))]


@pytest.mark.parametrize('path', _fixtures(pretrain=False))
def test_mpm_lifter_matches_official(path):
  fx = Fixture(path)
  model, variables = mpm.from_torch(fx.params, **fx.meta['constructor_args'])
  centre, vte = model.apply(variables, fx['input'], train=False, return_all=True)
  assert_parity(centre, fx['output'], name='output (centre frame)')
  assert_parity(vte, fx['output_vte'], name='output_vte')


@pytest.mark.parametrize('path', _fixtures(pretrain=True))
def test_mpm_pretrain_network_matches_official(path):
  fx = Fixture(path)
  net, variables = mpm.pretrain_from_torch(fx.params, **fx.meta['constructor_args'])
  tmask = fx['temporal_mask']
  masks = {
    'spatial_mask_2d': fx['spatial_mask_2d'],
    'spatial_mask_3d': fx['spatial_mask_3d'],
    'temporal_mask_2d': tmask,
    'temporal_mask_3d': tmask,
  }
  out = net.apply(
    variables,
    fx['input2d'],
    fx['input3d'],
    train=False,
    masks=masks,
    lift=True,
    num_masked=int(tmask.sum()),
  )
  for key in ('out2d', 'out3d_lift', 'out3d'):
    assert_parity(out[key], fx[key], name=key)
