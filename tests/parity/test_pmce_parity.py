"""PMCE parity with the official pose stream, co-evolution decoder and full model.

Every `pmce__*` fixture whose meta `part` is 'pose_stream', 'coevo_decoder' or 'full' runs (the
losses fixture has its own test). Each module is built by `pmce.from_torch` from the fixture's
state dict; sizes come from the weights, the decoder's `vj_relation` from the meta.
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


@pytest.mark.parametrize('path', _part_files('pose_stream'))
def test_pose_stream_matches_official(path):
  fx = Fixture(path)
  model, variables = pmce.from_torch(fx.params)
  assert isinstance(model, pmce.PoseStream)
  out = model.apply(variables, fx['input/pose2d'], fx['input/img_feat'], train=False)
  assert_parity(out, fx['output/pose3d'], name=f'{path.name} pose3d')


@pytest.mark.parametrize('path', _part_files('coevo_decoder'))
def test_coevo_decoder_matches_official(path):
  fx = Fixture(path)
  model, variables = pmce.from_torch(fx.params, vj_relation=_vj_relation(fx))
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
  model, variables = pmce.from_torch(fx.params, vj_relation=_vj_relation(fx))
  assert isinstance(model, pmce.Model)
  inputs = (fx['input/pose2d'], fx['input/img_feat'])
  out = jax.jit(lambda v, *xs: model.apply(v, *xs, train=False))(variables, *inputs)
  for key in ('pose3d', 'evo_pose', 'mesh'):
    assert_parity(out[key], fx[f'output/{key}'], name=f'{path.name} {key}')
  # Stage 1: the pose stream alone, through the same variables.
  lifted = model.apply(variables, *inputs, train=False, method='lift')
  assert_parity(lifted, fx['output/pose3d'], name=f'{path.name} lift')
