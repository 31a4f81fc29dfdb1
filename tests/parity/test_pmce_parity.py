"""PMCE parity with the official pose stream, co-evolution decoder and full model.

Every `pmce__*` fixture whose meta `part` is 'pose_stream', 'coevo_decoder' or 'full' runs (the
losses fixture has its own test). Each module is built by `pmce.from_torch` from the fixture's
state dict; sizes come from the weights, the decoder's `vj_relation` from the meta. What the
weights do not hold comes from the fixture: the pose stream's head count from the
`GraphormerNet(...)` call in meta['notes'] (or meta['num_heads']), a bare decoder's clip length
(the official cfg.DATASET.seqlen, whose middle frame the GRU output is read at) from its input.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxpose.models import pmce
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

# pmce__full.npz (fixture set of this session) predates `vj_relation` in its meta: its stand-in
# template differs from the decoder fixture's. Recovered from the fixture itself and verified:
# Gauss-Newton on the 30 initial coarse vertices through the official-parity decoder tail
# reproduced output/mesh to 1e-6, and every solved vertex lay within 1.0e-6 m of exactly one input
# joint (the next nearest >= 5.8e-5 m), the same joint for both samples of the batch. Used only
# when the meta lacks the field; remove once the fixture stores it.
_MISSING_VJ = {
  'pmce__full': '12 16 14 9 15 16 16 1 7 10 4 6 10 13 9 2 11 14 3 8 5 15 1 8 15 7 2 13 16 16',
}


def _part_files(part: str) -> list:
  found = []
  for param in fixture_files('pmce'):
    path = param.values[0]
    if path is None:
      return [param]
    with np.load(path, allow_pickle=False) as z:
      if json.loads(str(z['meta'])).get('part') == part:
        found.append(param)
  return found or [pytest.param(None, marks=pytest.mark.skip(reason=f'no pmce {part} fixture'))]


def _vj_relation(fx: Fixture) -> list[int]:
  if 'vj_relation' in fx.meta:
    return fx.meta['vj_relation']
  if fx.path.stem in _MISSING_VJ:
    return [int(i) for i in _MISSING_VJ[fx.path.stem].split()]
  raise KeyError(f'{fx.path}: meta has no vj_relation (needed to build the decoder)')


def _pose_stream_kwargs(fx: Fixture) -> dict:
  """from_torch arguments of the official `GraphormerNet(...)` call recorded in the meta.

  Sizes also in the weights (T, J, C, depth) are passed too, so a meta that disagrees with the
  weights fails in `from_torch` with the key and both shapes.
  """
  ctor = fx.call_kwargs('GraphormerNet')
  if 'num_heads' in fx.meta:
    ctor['num_heads'] = fx.meta['num_heads']
  if 'num_heads' not in ctor:
    raise KeyError(f'{fx.path}: no num_heads in meta (key or GraphormerNet(...) call in notes)')
  names = {'num_frames': 'seqlen', 'num_joints': 'num_joint', 'embed_dim': 'embed_dim'}
  kwargs = {names[k]: v for k, v in ctor.items() if k in names}
  return {**kwargs, 'depth': ctor.get('depth'), 'num_heads': ctor['num_heads']}


@pytest.mark.parametrize('path', _part_files('pose_stream'))
def test_pose_stream_matches_official(path):
  fx = Fixture(path)
  model, variables = pmce.from_torch(fx.params, **_pose_stream_kwargs(fx))
  assert isinstance(model, pmce.PoseStream)
  for name, value in fx.call_kwargs('GraphormerNet').items():  # e.g. mlp_ratio, from the weights
    assert getattr(model, name, value) == value, (name, getattr(model, name), value)
  out = model.apply(variables, fx['input/pose2d'], fx['input/img_feat'], train=False)
  assert_parity(out, fx['output/pose3d'], name=f'{path.name} pose3d')


@pytest.mark.parametrize('path', _part_files('coevo_decoder'))
def test_coevo_decoder_matches_official(path):
  fx = Fixture(path)
  # The clip length is not in the decoder's weights: the official forward reads the GRU output at
  # cfg.DATASET.seqlen // 2, so it is the fixture's input length.
  seqlen = fx['input/img_feats'].shape[1]
  model, variables = pmce.from_torch(fx.params, vj_relation=_vj_relation(fx), seqlen=seqlen)
  assert isinstance(model, pmce.CoevoDecoder)
  (joints, verts), state = model.apply(
    variables, fx['input/joints'], fx['input/img_feats'], train=False, mutable=['intermediates']
  )
  inter = state['intermediates']
  assert_parity(inter['gru_middle'][0], fx['output/gru_middle'], name=f'{path.name} gru_middle')
  assert_parity(inter['verts_init'][0], fx['output/verts_init'], name=f'{path.name} verts_init')
  assert_parity(joints, fx['output/joints3'], name=f'{path.name} joints3')
  assert_parity(verts, fx['output/verts'], name=f'{path.name} verts')


@pytest.mark.parametrize('path', _part_files('full'))
def test_full_model_matches_official(path):
  fx = Fixture(path)
  # Head counts: the official PMCE builds GraphormerNet and the CoevoBlocks with fixed heads (8; 8
  # and 2), the from_torch defaults; every size is in the weights.
  model, variables = pmce.from_torch(fx.params, vj_relation=_vj_relation(fx))
  assert isinstance(model, pmce.Model)
  inputs = (fx['input/pose2d'], fx['input/img_feat'])
  out = jax.jit(lambda v, *xs: model.apply(v, *xs, train=False))(variables, *inputs)
  for key in ('pose3d', 'evo_pose', 'mesh'):
    assert_parity(out[key], fx[f'output/{key}'], name=f'{path.name} {key}')
  # Stage 1: the pose stream alone, through the same variables.
  lifted = model.apply(variables, *inputs, train=False, method='lift')
  assert_parity(lifted, fx['output/pose3d'], name=f'{path.name} lift')
