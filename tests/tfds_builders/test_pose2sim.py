"""The optional pose2sim builder on a tiny synthetic demo folder (4 cameras, 5 frames, 48x64 px)."""

import pathlib

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

import tensorflow_datasets as tfds  # noqa: E402

from jaxpose.data import build, pose2sim, qca  # noqa: E402
from jaxpose.data.io import DataFormatError, ManualDirError  # noqa: E402
from jaxpose.geometry import triangulation as tri  # noqa: E402
from tests.geometry._multiview import look_at  # noqa: E402

W, H, T = 48, 64, 5


def _cameras():
  cams = []
  for i in range(4):
    a = np.pi / 2 * i + 0.3
    r, t = look_at([3 * np.cos(a), 3 * np.sin(a), 1.2], target=(0.0, 0.0, 1.0))
    k = np.array([[200.0 + i, 0, W / 2 - 0.5], [0, 200.0, H / 2 - 0.5], [0, 0, 1]])
    cams.append(qca.QcaCamera(f'cam0{i + 1}', k, np.zeros(5), r, t, (W, H), 0.1))
  return cams


def write_demo(root: pathlib.Path, frames=(T, T, T, T), drop_camera=False):
  """A Demo_SinglePerson folder: Calib.qca.txt, 4 mp4 videos, and the 2D npz in the manual dir."""
  rng = np.random.default_rng(0)
  demo = root / pose2sim.DEMO
  (demo / 'calibration').mkdir(parents=True)
  (demo / 'videos').mkdir()
  cams = _cameras()
  (demo / pose2sim.CALIB).write_text(qca.qca_text(cams))
  for c, n in zip(cams, frames):
    vw = cv2.VideoWriter(
      str(demo / 'videos' / f'{c.name}.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 60, (W, H)
    )
    for f in range(n):
      vw.write(np.full((H, W, 3), 40 * f, np.uint8))
    vw.release()
  world = rng.normal(scale=0.2, size=(T, 17, 3)) + [0.0, 0.0, 1.0]
  proj = np.stack([c.P for c in cams])
  kp = np.stack([tri.project(world[f], proj) for f in range(T)], axis=1)  # (V, T, J, 2)
  conf = np.ones(kp.shape[:3])
  conf[1, 2, 5] = 0.3  # one low-confidence detection
  names = [c.name for c in cams]
  if drop_camera:
    kp, conf, names = kp[:3], conf[:3], names[:3]
  np.savez(root / pose2sim.KP2D_FILE, cameras=np.array(names), kp2d_px=kp, kp2d_conf=conf)
  return cams, world, kp


@pytest.fixture(scope='module')
def built_demo(tmp_path_factory):
  tfds.disable_progress_bar()
  root = tmp_path_factory.mktemp('p2s')
  cams, world, kp = write_demo(root)
  data_dir = tmp_path_factory.mktemp('p2s_tfds')
  build.build('pose2sim', None, root, data_dir)
  recs = {
    s: list(tfds.data_source('pose2sim/default', split=s, data_dir=str(data_dir)))
    for s in ('train', 'test')
  }
  info = build.get_builder('pose2sim', None, data_dir).info
  return cams, world, kp, recs, info


def test_records(built_demo):
  cams, world, kp, recs, info = built_demo
  assert [len(recs['train']), len(recs['test'])] == [4, 1]
  assert info.metadata['kind'] == 'image' and info.metadata['pseudo_gt'] is True
  assert info.metadata['pose3d_source'] == 'triangulated_2d' and info.metadata['num_views'] == 4
  for rec in recs['train'] + recs['test']:
    f = int(rec['frame_idx'])
    np.testing.assert_allclose(rec['pose3d_world'], world[f], atol=1e-5)
    # Half resolution about pixel centres: u' = (u + 0.5) / 2 - 0.5.
    np.testing.assert_allclose(rec['kp2d_px'], 0.5 * (kp[:, f] + 0.5) - 0.5, atol=1e-4)
    p = np.einsum('vij,vjk->vik', rec['K'], np.concatenate([rec['R'], rec['t'][..., None]], -1))
    np.testing.assert_allclose(tri.project(rec['pose3d_world'], p), rec['kp2d_px'], atol=1e-3)
    cam3d = np.einsum('vij,nj->vni', rec['R'], rec['pose3d_world']) + rec['t'][:, None]
    np.testing.assert_allclose(rec['pose3d_cam'], cam3d, atol=1e-5)
    assert rec['res_w'].tolist() == [W // 2] * 4 and rec['res_h'].tolist() == [H // 2] * 4
    img = cv2.imdecode(np.frombuffer(rec['images'][3], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (H // 2, W // 2, 3)
    assert abs(float(img.mean()) - 40 * f) < 8  # the frame's own image
    vis = np.ones((4, 17))
    if f == 2:
      vis[1, 5] = 0.0
    np.testing.assert_array_equal(rec['kp2d_vis'], vis)
  assert [c.decode() for c in recs['test'][0]['cameras']] == [c.name for c in cams]


def test_views_that_disagree_fail_without_a_partial_dataset(tmp_path):
  write_demo(tmp_path / 'm', frames=(T, T, T - 1, T))
  with pytest.raises(
    DataFormatError, match=r"views that agree, got \{'cam01': 5, 'cam02': 5, 'cam03': 4"
  ):
    build.build('pose2sim', None, tmp_path / 'm', tmp_path / 'd')
  assert not build.is_built('pose2sim', None, tmp_path / 'd')


def test_keypoint_file_missing_a_camera(tmp_path):
  write_demo(tmp_path / 'm', drop_camera=True)
  with pytest.raises(
    DataFormatError, match=r'pose2sim_kp2d.npz: cameras: expected every calibrated camera'
  ):
    build.build('pose2sim', None, tmp_path / 'm', tmp_path / 'd')


def test_missing_demo_says_how_to_get_it(tmp_path, monkeypatch):
  monkeypatch.setattr(pose2sim.importlib.util, 'find_spec', lambda name: None)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(
    ManualDirError, match=r'(?s)Pose2Sim demo not found.*pip install pose2sim==0.10.49'
  ):
    pose2sim.find_demo_dir(tmp_path / 'empty')
