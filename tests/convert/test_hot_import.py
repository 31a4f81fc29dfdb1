"""Reading HoT / TPC checkpoints written by torch in the released layout: a plain
`model.state_dict()` saved to a .pth file (no `module.` prefix, no wrapping dict)."""

import pytest

from jaxpose.convert import load_official
from jaxpose.models import hot
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


@pytest.mark.parametrize('path', fixture_files('hot'))
def test_load_official_reads_the_released_checkpoint(path, tmp_path):
  fx = Fixture(path)
  if not fx.params or 'STEblocks.0.norm1.weight' not in fx.params:
    pytest.skip('not a MixSTE-family fixture (the released checkpoints are HoT/TPC-MixSTE)')
  ckpt = tmp_path / 'model.pth'
  torch.save({k: torch.from_numpy(v) for k, v in fx.params.items()}, ckpt)
  tpc = 'x_token' not in fx.params
  args = dict(fx.meta['args'])
  model, variables = load_official(
    'hot', ckpt, model='mixste.tpc_mixste' if tpc else 'mixste.hot_mixste', **args
  )
  assert model.mode == ('tpc' if tpc else 'hot') and model.backbone == 'mixste'
  out = model.apply(variables, fx['input/x'], train=False, index=fx['output/index'])
  assert_parity(out, fx['output'], name='output')

  # Without the script's arguments: sizes come from the weights, token_num and layer_index from
  # the published models unless given (a TPC token_num cannot be read off the weights).
  inferred, _ = load_official(
    'hot',
    ckpt,
    layer_index=args['layer_index'],
    **({'token_num': args['token_num']} if tpc else {}),
  )
  assert (inferred.mode, inferred.token_num) == (model.mode, model.token_num)
  assert dict(inferred.backbone_kwargs) == dict(model.backbone_kwargs)
  published = hot.from_torch(dict(fx.params), **({'token_num': args['token_num']} if tpc else {}))
  assert published[0].layer_index == (7 if tpc else 3)  # the published models' defaults


def test_from_torch_rejects_unknown_arguments():
  with pytest.raises(ValueError, match='unknown HoT arguments'):
    hot.from_torch({}, tokens=81)
  with pytest.raises(ValueError, match='model must be one of'):
    hot.from_torch({}, model='mixste.mixste')
