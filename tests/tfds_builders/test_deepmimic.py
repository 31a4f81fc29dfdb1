"""The embedded deepmimic dataset: FK from the installed pybullet clips vs the reference conversion."""

import json

import numpy as np
import pytest

from jaxpose.data import deepmimic, io
from jaxpose.geometry import camera

REF_DIR = 'data/deepmimic_h36m'


@pytest.fixture(scope='module')
def world():
  return deepmimic.clips_h36m17()


@pytest.fixture(scope='module')
def reference(shared_dir):
  ref = shared_dir / REF_DIR
  if not (ref / 'data_3d_deepmimic.npz').exists():
    pytest.skip(f'reference conversion not in {ref}')
  pos3d = np.load(ref / 'data_3d_deepmimic.npz', allow_pickle=True)['positions_3d'].item()
  pos2d = np.load(ref / 'data_2d_deepmimic_gt.npz', allow_pickle=True)['positions_2d'].item()
  return pos3d['DM'], pos2d['DM']


def test_clips_come_from_installed_pybullet():
  path = deepmimic.clip_path('walk')
  assert path.parent.parent.parent == deepmimic.pybullet_data_dir()
  assert deepmimic.read_clip(path).shape == (39, deepmimic.FRAME_SIZE)


def test_matches_reference_conversion(world, reference):
  """3D within 1 mm and 2D within 0.5 px of shared/data/deepmimic_h36m, every clip and camera."""
  ref3d, ref2d = reference
  assert sorted(ref3d) == sorted(deepmimic.CLIPS)
  err3d = max(np.abs(deepmimic.to_h36m32(world[c]) - ref3d[c]).max() for c in deepmimic.CLIPS)
  err2d = max(
    np.abs(deepmimic.project(world[c], cam)[1] - ref2d[c][i]).max()
    for c in deepmimic.CLIPS
    for i, cam in enumerate(deepmimic.cameras())
  )
  print(f'deepmimic vs reference: max 3D {err3d * 1000:.4f} mm, max 2D {err2d:.4f} px')
  assert err3d < 1e-3 and err2d < 0.5


def test_built_records_match_reference(built, reference):
  ref3d, ref2d = reference
  data = built('deepmimic')
  cams = {c['id']: (i, c) for i, c in enumerate(deepmimic.cameras())}
  for rec in data['train'] + data['test']:
    i, cam = cams[rec['camera']]
    np.testing.assert_allclose(rec['kp2d_px'], ref2d[rec['action']][i], atol=0.5)
    w = ref3d[rec['action']][:, list(deepmimic.KEEP_17)].astype(np.float64)
    expect = camera.world_to_camera(
      w, cam['orientation'].astype(np.float64), cam['translation'].astype(np.float64)
    )
    np.testing.assert_allclose(rec['pose3d_cam'], expect, atol=1e-3)


def test_split_by_clip(built):
  data = built('deepmimic')
  train = {r['action'] for r in data['train']}
  test = {r['action'] for r in data['test']}
  assert test == set(deepmimic.TEST_CLIPS) and not train & test
  assert train | test == set(deepmimic.CLIPS)
  assert len(data['train']) == 4 * 12 and len(data['test']) == 4 * 3
  assert sum(r['num_frames'] for r in data['test']) == 4 * 307
  assert {r['subject'] for r in data['train']} == {'DM'}


def test_skeleton_is_rigid(world):
  """Bone lengths are constant over all clips (research/real_data.md checks)."""
  pose = np.concatenate(list(world.values()))
  bone = lambda a, b: np.linalg.norm(pose[:, a] - pose[:, b], axis=-1)
  for (a, b), length in {(1, 2): 0.422, (2, 3): 0.410, (4, 5): 0.422, (14, 15): 0.275}.items():
    np.testing.assert_allclose(bone(a, b), length, atol=2e-3)
  walk = world['walk']
  assert 0.8 < walk[:, 0, 2].mean() < 0.9  # pelvis height when walking, metres
  np.testing.assert_allclose(walk[:, 0, :2].mean(axis=0), 0, atol=1e-9)


def test_50hz_resampling_lengths(world):
  # keyframes * duration gives the clip length; frames at k / 50 s up to it.
  assert {c: len(w) for c, w in world.items()}['backflip'] == 88  # 29 keyframes at 16 Hz
  assert len(world['run']) == 40 and len(world['spin']) == 221


def test_malformed_clip(tmp_path):
  bad = tmp_path / 'humanoid3d_bad.txt'
  bad.write_text(json.dumps({'Loop': 'wrap', 'Frames': [[0.1] * 43]}))
  with pytest.raises(
    io.DataFormatError,
    match=r"humanoid3d_bad.txt: json\['Frames'\]: expected "
    r'shape \(\*, 44\), got shape \(1, 43\)',
  ):
    deepmimic.read_clip(bad)
  bad.write_text('{"Frames": ')
  with pytest.raises(io.DataFormatError, match='JSON'):
    deepmimic.read_clip(bad)
