"""h36m: subjects in no split and actions outside the 15 H36M categories are reported (a
DataWarning naming them), or refused with strict (issue 19, item 6)."""

import numpy as np
import pytest

from jaxpose.data import build, io, synthetic
from tfds_builders.h36m import h36m_dataset_builder as h36m_b


@pytest.fixture(scope='module')
def odd_manual(tmp_path_factory):
  """VideoPose3D-format files with an extra subject S12 and an S1 action 'Dancing 1'."""
  d = tmp_path_factory.mktemp('odd_h36m')
  paths = synthetic.write_h36m_vp3d(d, sources=('gt',), num_frames=12)
  f3d = np.load(paths['3d'], allow_pickle=True)
  pos3d = f3d['positions_3d'].item()
  pos3d['S12'] = {'Walking': pos3d['S1']['Walking']}
  pos3d['S1']['Dancing 1'] = pos3d['S1']['Walking']
  pos3d['S1']['TakingPhoto 1'] = pos3d['S1']['Walking']  # an original spelling: no warning
  np.savez(paths['3d'], positions_3d=pos3d)
  f2d = np.load(paths['gt'], allow_pickle=True)
  pos2d = f2d['positions_2d'].item()
  for a in ('Dancing 1', 'TakingPhoto 1'):
    pos2d['S1'][a] = pos2d['S1']['Walking']
  np.savez(paths['gt'], positions_2d=pos2d, metadata=f2d['metadata'])
  return d


def _cfg():
  return next(c for c in h36m_b.Builder.BUILDER_CONFIGS if c.name == 'gt')


def test_unknown_subjects_and_actions_are_warned_by_name(odd_manual):
  with pytest.warns(build.DataWarning) as caught:
    out = h36m_b.read_vp3d(odd_manual, _cfg())
  text = ' | '.join(str(w.message) for w in caught)
  assert "subjects ['S12'] are in no split" in text
  assert 'actions ["S1 \'Dancing 1\'"] are not H36M actions' in text
  assert 'TakingPhoto' not in text
  keys = [k for split in out.values() for k, _ in split]
  assert not any(k.startswith('S12/') for k in keys)
  assert any(k.startswith('S1/Dancing 1/') for k in keys)


def test_strict_refuses_them_and_writes_nothing(odd_manual, tmp_path):
  with pytest.raises(io.DataFormatError, match="(?s)--strict.*'S12'.*Dancing 1"):
    build.build('h36m', 'gt', odd_manual, tmp_path, strict=True)
  assert not build.is_built('h36m', 'gt', tmp_path)
  with pytest.raises(ValueError, match="'deepmimic' has no --strict checks"):
    build.build('deepmimic', None, None, tmp_path, strict=True)
