"""Reading a MixSTE checkpoint written by torch in the released layout (`model_pos`, `module.`)."""

import pytest

from jaxpose.convert import load_official
from jaxpose.models import mixste
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('mixste'))
def test_load_official_reads_the_released_checkpoint(path, tmp_path):
  fx = Fixture(path)
  ckpt = tmp_path / 'best_epoch.bin'
  # Saved from nn.DataParallel, as the released checkpoints are.
  state = {f'module.{k}': torch.from_numpy(v) for k, v in fx.params.items()}
  torch.save({'epoch': 120, 'lr': 4e-5, 'model_pos': state}, ckpt)

  model, variables = load_official('mixste', ckpt, **fx.meta['ctor'])
  assert_parity(model.apply(variables, fx['input/x'], train=False), fx['output'], name='output')

  # Everything but num_heads can be read off the weight shapes.
  inferred, inferred_vars = load_official('mixste', ckpt, num_heads=fx.meta['ctor']['num_heads'])
  assert isinstance(inferred, mixste.Model)
  assert (inferred.num_frames, inferred.dim, inferred.depth) == (
    fx.meta['ctor']['num_frame'],
    fx.meta['ctor']['embed_dim_ratio'],
    fx.meta['ctor']['depth'],
  )
  out = inferred.apply(inferred_vars, fx['input/x'], train=False)
  assert_parity(out, fx['output'], name='inferred kwargs')
