"""Reading a MotionBERT checkpoint written by torch in the released layout (`model_pos`, `module.`)."""

import numpy as np
import pytest

from jaxpose.convert import load_official
from jaxpose.models import motionbert
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('motionbert'))
def test_load_official_reads_the_released_checkpoint(path, tmp_path):
  fx = Fixture(path)
  ckpt = tmp_path / 'best_epoch.bin'
  # train.py's save_checkpoint: DataParallel weights and a numpy min_loss beside them.
  state = {f'module.{k}': torch.from_numpy(v) for k, v in fx.params.items()}
  torch.save({'epoch': 59, 'lr': 2e-4, 'model_pos': state, 'min_loss': np.float64(37.2)}, ckpt)

  model, variables = load_official('motionbert', ckpt, **fx.meta['ctor'])
  assert model.norm_eps == 1e-6
  assert_parity(model.apply(variables, fx['input/x'], train=False), fx['output'], name='output')

  # load_backbone's kwargs, sizes read off the weight shapes (num_heads cannot be).
  inferred, inferred_vars = load_official(
    'motionbert', ckpt, num_heads=fx.meta['ctor']['num_heads']
  )
  assert isinstance(inferred, motionbert.Model)
  ctor = fx.meta['ctor']
  assert (inferred.dim_feat, inferred.dim_rep, inferred.depth, inferred.maxlen) == (
    ctor['dim_feat'],
    ctor['dim_rep'],
    ctor['depth'],
    ctor['maxlen'],
  )
  out = inferred.apply(inferred_vars, fx['input/x'], train=False)
  assert_parity(out, fx['output'], name='inferred kwargs')
