"""Reading a VideoPose3D checkpoint written by torch in the released layout (`model_pos`)."""

import pytest

from jaxpose.convert import load_official
from jaxpose.models import videopose3d
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('videopose3d', 'tiny'))
def test_load_official_reads_the_released_checkpoint(path, tmp_path):
  fx = Fixture(path)
  ckpt = tmp_path / 'pretrained_h36m_cpn.bin'
  state = {k: torch.from_numpy(v) for k, v in fx.params.items()}
  torch.save({'epoch': 80, 'lr': 1e-3, 'model_pos': state, 'model_traj': None}, ckpt)

  model, variables = load_official('videopose3d', ckpt, **fx.meta['ctor'])
  assert_parity(model.apply(variables, fx['input'], train=False), fx['output'], name='output')

  # The official kwargs can be read off the weight shapes.
  inferred, inferred_vars = load_official('videopose3d', ckpt)
  assert inferred.filter_widths == tuple(fx.meta['ctor']['filter_widths'])
  assert inferred.channels == fx.meta['ctor']['channels']
  assert_parity(
    inferred.apply(inferred_vars, fx['input'], train=False), fx['output'], name='inferred kwargs'
  )
  assert isinstance(inferred, videopose3d.Model)
