"""PoSynDA starts from a released D3DP checkpoint (`h36m_best_epoch.bin` layout: {'epoch',
'model_pos': DataParallel state dict with the schedule buffers}) through `init_from` with format
'torch': the frozen denoiser gets exactly the converted weights, the adapters start at B = 0 (the
adapted model equals the loaded one at step 0)."""

import jax
import numpy as np
import pytest

from jaxpose.methods import posynda
from jaxpose.models import d3dp as d3dp_model
from jaxpose.models.layers import lora
from jaxpose.train import loop
from tests.parity._fixtures import Fixture, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('d3dp', 'tiny'))
def test_init_from_released_d3dp_checkpoint(path, tmp_path):
  from configs import posynda as cfg

  fx = Fixture(path)
  ckpt = tmp_path / 'h36m_best_epoch.bin'
  sd = {f'module.{k}': torch.from_numpy(np.ascontiguousarray(v)) for k, v in fx.params.items()}
  torch.save({'epoch': 7, 'model_pos': sd}, ckpt)
  args = fx.meta['ctor']['args']
  c = cfg.get_config('smoke')
  with c.model.kwargs.unlocked():
    c.model.kwargs.num_frames = args['number_of_frames']
    c.model.kwargs.lifter_kwargs = (('dim', args['cs']), ('depth', args['dep']))
  c.data.frames = c.data.stride = args['number_of_frames']
  c.init_from.update(path=str(ckpt), format='torch')
  model = posynda.make_model(c)
  v = posynda.init_variables(c, model, loop.load_init(c))  # what the trainer does
  _, want = d3dp_model.from_torch(fx.params)
  jax.tree.map(
    np.testing.assert_array_equal,
    jax.device_get(v['denoiser']['params']),
    jax.device_get(want['params']),
  )
  assert len(lora.adapter_paths(v['params']['lora'])) == 2 * 2 * args['dep']
  assert all(
    not np.any(np.asarray(a['B']))
    for a in jax.tree.leaves(
      v['params']['lora'], is_leaf=lambda n: isinstance(n, dict) and 'B' in n
    )
  )
