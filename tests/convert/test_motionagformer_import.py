"""Reading an official MotionAGFormer training checkpoint written by torch."""

import jax
import numpy as np
import pytest

from jaxpose.convert import load_official
from jaxpose.models import motionagformer
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('motionagformer'))
def test_load_official_reproduces_fixture(path, tmp_path):
  fx = Fixture(path)
  kwargs = fx.meta['constructor_kwargs']
  ckpt = tmp_path / 'best_epoch.pth.tr'
  # The layout of the official train.py: DataParallel keys under 'model', plus training state.
  state = {'module.' + k: torch.from_numpy(np.array(v)) for k, v in fx.params.items()}
  torch.save({'epoch': 60, 'lr': 2.7e-4, 'model': state, 'min_mpjpe': np.float64(38.4)}, ckpt)

  model, variables = load_official('motionagformer', ckpt, **kwargs)
  assert isinstance(model, motionagformer.Model)
  ref = jax.eval_shape(lambda: model.init(jax.random.key(0), fx['input'], train=False))
  assert jax.tree.structure(variables) == jax.tree.structure(ref)
  assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda s: s.shape, ref)
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, fx['input'])
  assert_parity(out, fx['output'], name='output via load_official')
