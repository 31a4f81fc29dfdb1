"""Reading a KTPFormer checkpoint written by torch in the released `.bin` layout.

The released `model_243_{CPN,GT}_best_epoch.bin` files are dicts with the weights under
`model_pos`, saved from nn.DataParallel (`module.` prefixes); the graphs are not in them.
"""

import pytest

from jaxpose.convert import load_official
from jaxpose.models import ktpformer
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('ktpformer'))
def test_load_official_reads_the_released_checkpoint(path, tmp_path):
  fx = Fixture(path)
  ckpt = tmp_path / 'model_27_GT_best_epoch.bin'
  state = {f'module.{k}': torch.from_numpy(v) for k, v in fx.params.items()}
  torch.save({'epoch': 80, 'lr': 8e-5, 'model_pos': state, 'model_pos_train': state}, ckpt)

  kw = dict(fx.meta['constructor_kwargs'])
  kw['adj'], kw['adj_temporal'] = fx['adj_spatial'], fx['adj_temporal']
  model, variables = load_official('ktpformer', ckpt, **kw)
  assert_parity(model.apply(variables, fx['input'], train=False), fx['output'], name='output')

  # Everything but num_heads and the skeleton can be read off the weight shapes.
  inferred, inferred_vars = load_official(
    'ktpformer', ckpt, num_heads=kw['num_heads'], parents=fx.meta['h36m_parents_17']
  )
  assert isinstance(inferred, ktpformer.Model)
  assert (inferred.num_frames, inferred.dim, inferred.depth) == (
    kw['num_frame'],
    kw['embed_dim_ratio'],
    kw['depth'],
  )
  out = inferred.apply(inferred_vars, fx['input'], train=False)
  assert_parity(out, fx['output'], name='inferred kwargs')


@pytest.mark.parametrize('path', fixture_files('ktpformer'))
def test_missing_weights_are_reported(path):
  fx = Fixture(path)
  params = {k: v for k, v in fx.params.items() if 'gconv.adj2' not in k}
  with pytest.raises(ValueError, match='adj2'):
    ktpformer.from_torch(params, num_heads=fx.meta['constructor_kwargs']['num_heads'])
