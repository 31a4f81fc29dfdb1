"""Every builder, built from tiny files in its official format, read back and checked."""

import pickle

import numpy as np
import pytest

from jaxpose.data import synthetic
from jaxpose.geometry import camera, skeleton
from tfds_builders.h36m import h36m_dataset_builder as h36m_b
from tfds_builders.mpi_inf_3dhp import mpi_inf_3dhp_dataset_builder as mpi_b

FLOAT_FEATURES = ('kp2d_px', 'kp2d_conf', 'pose3d_cam', 'cam_intrinsics', 'scale_2_5d')


def _reproject_px(rec):
  """Projects pose3d_cam with the record's pixel intrinsics (VideoPose3D distortion model)."""
  k = rec['cam_intrinsics']
  vec = camera.normalize_intrinsics(k[:2], k[2:4], k[4:7], k[7:9], rec['res_w'], rec['res_h'])
  uv = camera.project_to_2d(rec['pose3d_cam'].astype(np.float64), vec.astype(np.float64))
  return camera.image_coordinates(uv, rec['res_w'], rec['res_h'])


def _check_record(rec, j2d, j3d):
  t = rec['num_frames']
  assert rec['kp2d_px'].shape == (t, j2d, 2) and rec['kp2d_conf'].shape == (t, j2d)
  assert rec['pose3d_cam'].shape == (t, j3d, 3)
  assert rec['valid'].shape == (t,) and rec['valid'].dtype == bool
  assert rec['scale_2_5d'].shape == (t,)
  for k in FLOAT_FEATURES:
    assert rec[k].dtype == np.float32 and np.isfinite(rec[k]).all(), k
  assert isinstance(rec['subject'], str) and isinstance(rec['camera'], str)


def test_h36m_gt_cameras_and_splits(built, manual_dir):
  data = built('h36m', 'gt')
  train_subjects = {r['subject'] for r in data['train']}
  test_keys = {(r['subject'], r['action']) for r in data['test']}
  assert train_subjects == {'S1', 'S5', 'S6', 'S7', 'S8'}
  assert ('S11', 'Directions') not in test_keys and ('S11', 'Directions 1') in test_keys
  assert len(data['train']) == 4 * 6 and len(data['test']) == 4 * 3
  world = np.load(manual_dir / 'data_3d_h36m.npz', allow_pickle=True)['positions_3d'].item()
  cams = {c['id']: c for c in camera.h36m_cameras()['S9']}
  for rec in data['test'] + data['train']:
    _check_record(rec, 17, 17)
    assert (rec['res_w'], rec['res_h']) in {(1000, 1002), (1000, 1000)}
    np.testing.assert_allclose(_reproject_px(rec), rec['kp2d_px'], atol=1e-3)
    assert rec['valid'].all() and (rec['scale_2_5d'] == 1).all() and (rec['kp2d_conf'] == 1).all()
  rec = next(r for r in data['test'] if r['subject'] == 'S9' and r['action'] == 'Walking')
  cam = cams[rec['camera']]
  w = world['S9']['Walking'][:, list(h36m_b.KEEP_17)].astype(np.float64)
  expect = camera.world_to_camera(
    w, cam['orientation'].astype(np.float64), cam['translation'].astype(np.float64)
  )
  np.testing.assert_allclose(rec['pose3d_cam'], expect, atol=1e-5)
  np.testing.assert_allclose(rec['cam_extrinsics'][:4], cam['orientation'])


def test_h36m_detections_are_trimmed_to_mocap(built, manual_dir):
  data = built('h36m', 'cpn_ft_h36m_dbb')
  pos2d = np.load(manual_dir / 'data_2d_h36m_cpn_ft_h36m_dbb.npz', allow_pickle=True)[
    'positions_2d'
  ].item()
  rec = next(r for r in data['train'] if r['subject'] == 'S5')
  ci = camera.H36M_CAMERA_IDS.index(rec['camera'])
  raw = pos2d['S5'][rec['action']][ci]
  assert len(raw) == rec['num_frames'] + 2
  np.testing.assert_array_equal(rec['kp2d_px'], raw[: rec['num_frames']])
  assert 'S2' not in {r['subject'] for r in data['train'] + data['test']}


def test_h36m_coco_detections_layout(built, data_dir):
  from jaxpose.data import build

  built('h36m', 'detectron_pt_coco')
  meta = build.get_builder('h36m', 'detectron_pt_coco', data_dir).info.metadata
  assert meta['layout_2d'] == 'coco17' and meta['layout_3d'] == 'h36m17'


def test_h36m_sh_pickle(built, manual_dir):
  data = built('h36m', 'sh')
  with open(manual_dir / h36m_b.SH_FILE, 'rb') as f:
    raw = pickle.load(f)
  assert len(data['train']) == 4 and len(data['test']) == 3
  test = raw['test']
  for rec in data['test']:
    _check_record(rec, 17, 17)
    src = rec['source'].split('(')[-1].rstrip(')')
    rows = np.array(test['source']) == src
    gt_mm = test['joints_2.5d_image'][rows]
    gt_rel = gt_mm - gt_mm[:, :1]
    got = skeleton.root_relative(rec['pose3d_cam'], 0) * rec['scale_2_5d'][:, None, None] * 1000
    np.testing.assert_allclose(got, gt_rel, atol=1e-2)
    np.testing.assert_allclose(rec['kp2d_conf'], test['confidence'][rows])
    assert rec['valid'].all() == (src[:-6] not in h36m_b.MB_EVAL_BLOCK)
  blocked = [r for r in data['test'] if r['action'] == 'Greeting (subact 2)']
  assert len(blocked) == 1 and not blocked[0]['valid'].any()
  nominal = np.median(test['2.5d_factor'])
  for rec in data['train']:
    np.testing.assert_allclose(rec['scale_2_5d'], nominal * rec['res_w'] / 2000, rtol=1e-6)


def test_mpi_inf_3dhp(built, manual_dir):
  data = built('mpi_inf_3dhp')
  raw = np.load(manual_dir / 'data_test_3dhp.npz', allow_pickle=True)['data'].item()
  assert len(data['train']) == 2 * len(synthetic.MPI3DHP_TRAIN)
  assert {r['subject'] for r in data['train']} == {'S1', 'S2'}
  for rec in data['train']:
    _check_record(rec, 17, 17)
    assert rec['fps'] == synthetic.MPI3DHP_TRAIN[f'{rec["subject"]} {rec["action"]}']
    np.testing.assert_allclose(rec['cam_intrinsics'][:4], [1500, 1500, 1024, 1024], rtol=1e-4)
  for rec in data['test']:
    ts = rec['subject']
    assert (rec['res_w'], rec['res_h']) == mpi_b.TEST_RES[ts]
    np.testing.assert_array_equal(rec['valid'], raw[ts]['valid'] > 0.5)
    np.testing.assert_allclose(rec['pose3d_cam'], raw[ts]['data_3d'] / 1000, rtol=1e-6)
  # 3D is in the 3DHP order: the pelvis (14) is below the neck (1) in the y-down camera frame.
  assert (rec['pose3d_cam'][:, 14, 1] > rec['pose3d_cam'][:, 1, 1]).all()


# The official 3DHP test cameras in pixels, worked out here from the published constants
# (w / sensor_w = 2048 / 10 = 204.8 px/mm for TS1-TS4; 1920 / 10 = 1080 / 5.625 = 192 for TS5-TS6).
OFFICIAL_PX = {
  'TS1': [7.32506 * 204.8, 7.32506 * 204.8, -0.0322884 * 204.8 + 1024, 0.0929296 * 204.8 + 1024],
  'TS5': [8.770747185 * 192, 8.770747185 * 192, -0.104908645 * 192 + 960, 0.104899704 * 192 + 540],
}


def test_mpi_inf_3dhp_official_test_cameras():
  for ts, (w, h) in mpi_b.TEST_RES.items():
    assert mpi_b.TEST_CAMERAS_MM[ts][0][:2] == (w, h)
    k = mpi_b.official_test_intrinsics(ts)
    assert k.shape == (9,) and k.dtype == np.float32 and (k[4:] == 0).all()
    np.testing.assert_allclose(k[:4], OFFICIAL_PX['TS1' if w == 2048 else 'TS5'], rtol=1e-6)
  assert mpi_b.official_test_intrinsics('TS1')[0] == pytest.approx(1500.1723, abs=1e-3)


def test_mpi_inf_3dhp_annot3(built, manual_dir):
  data, gt = built('mpi_inf_3dhp', 'annot3'), built('mpi_inf_3dhp', 'gt')
  raw = np.load(manual_dir / 'data_test_3dhp_ori.npz', allow_pickle=True)['data'].item()
  raw_gt = np.load(manual_dir / 'data_test_3dhp.npz', allow_pickle=True)['data'].item()
  assert len(data['train']) == len(gt['train']) == 2 * len(synthetic.MPI3DHP_TRAIN)
  for rec in data['train']:  # train keeps the least-squares fit, as gt
    _check_record(rec, 17, 17)
    np.testing.assert_allclose(rec['cam_intrinsics'][:4], [1500, 1500, 1024, 1024], rtol=1e-4)
  test = {r['subject']: r for r in data['test']}
  test_gt = {r['subject']: r for r in gt['test']}
  assert sorted(test) == sorted(test_gt) == ['TS1', 'TS5']
  for ts, rec in test.items():
    _check_record(rec, 17, 17)
    assert (rec['res_w'], rec['res_h']) == mpi_b.TEST_RES[ts]
    assert rec['source'].startswith('data_test_3dhp_ori.npz:')
    np.testing.assert_allclose(rec['cam_intrinsics'], [*OFFICIAL_PX[ts], 0, 0, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(rec['pose3d_cam'], raw[ts]['data_3d'] / 1000, rtol=1e-6)
    np.testing.assert_array_equal(rec['valid'], raw[ts]['valid'] > 0.5)
    # annot3 is the real skeleton: its 3D (metres) projects onto its 2D through the official camera.
    np.testing.assert_allclose(_reproject_px(rec), rec['kp2d_px'], atol=1e-2)
    # gt is unaffected: the universal skeleton from the P-STMO file, with the fitted camera.
    g = test_gt[ts]
    assert g['source'].startswith('data_test_3dhp.npz:')
    np.testing.assert_allclose(g['pose3d_cam'], raw_gt[ts]['data_3d'] / 1000, rtol=1e-6)
    fit = mpi_b.fit_pinhole(raw_gt[ts]['data_2d'], raw_gt[ts]['data_3d'])
    np.testing.assert_array_equal(g['cam_intrinsics'], fit)
    assert not np.allclose(g['pose3d_cam'], rec['pose3d_cam'], rtol=1e-3)


@pytest.mark.parametrize('config,j2d', [('gt', 15), ('detectron_pt_coco', 17)])
def test_humaneva(built, manual_dir, config, j2d):
  data = built('humaneva', config)
  assert {r['subject'] for r in data['train']} == {'Train/S1', 'Train/S2'}
  assert {r['subject'] for r in data['test']} == {'Validate/S1', 'Validate/S3'}
  assert len(data['test']) == 3 * 3
  for rec in data['train'] + data['test']:
    _check_record(rec, j2d, 15)
    assert (rec['res_w'], rec['res_h']) == (640, 480) and (rec['cam_intrinsics'] == 0).all()
    assert (rec['pose3d_cam'][..., 2] > 1).all()  # in front of the camera, metres


def test_pw3d(built, manual_dir):
  data = built('pw3d')
  assert [len(data[s]) for s in ('train', 'validation', 'test')] == [1, 1, 3]
  with open(manual_dir / 'sequenceFiles/test/outdoors_fencing_01.pkl', 'rb') as f:
    raw = pickle.load(f, encoding='latin1')
  for rec in data['test']:
    _check_record(rec, 24, 24)
    assert rec['kp2d_openpose'].shape == (rec['num_frames'], 18, 2)
    k = rec['cam_intrinsics']
    proj = k[:2] * rec['pose3d_cam'][..., :2] / rec['pose3d_cam'][..., 2:] + k[2:4]
    np.testing.assert_allclose(proj, rec['kp2d_px'], atol=1e-2)
    assert (rec['res_w'], rec['res_h']) == (1080, 1920)
  actors = [r for r in data['test'] if r['action'] == 'outdoors_fencing_01']
  assert sorted(r['subject'] for r in actors) == ['actor0', 'actor1']
  a1 = next(r for r in actors if r['subject'] == 'actor1')
  np.testing.assert_array_equal(a1['valid'], raw['campose_valid'][1])
  assert not a1['valid'][-1]
