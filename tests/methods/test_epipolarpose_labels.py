"""EpipolarPose's offline pseudo-labels: exact 2D gives the ground-truth 3D (ss_rt) or the
ground truth up to scale with the right relative rotation (ss, no extrinsics); the label file
and the per-example attachment."""

import types

import numpy as np
import pytest

from jaxpose.methods import epipolarpose_labels as lab

SETTINGS = {
  'pseudo_estimator': 'ransac',
  'pseudo_pool': 'split',
  'pseudo_threshold_px': 2.0,
  'pseudo_triangulation': '',
}


def _teacher(seed=0, n=8, j=17, v=3, noise_px=0.0):
  """Random poses (metres) near the origin seen by v static cameras 4-5 m away; teacher 2D =
  ground truth + noise."""
  rng = np.random.default_rng(seed)
  world = rng.normal(0, 0.35, (n, j, 3)) + rng.normal(0, 0.3, (n, 1, 3)) * [1, 1, 0]
  rs, ts = [], []
  for yaw in np.deg2rad([10.0, 95.0, 190.0, 280.0][:v]) + rng.normal(0, 0.05, v):
    c, s = np.cos(yaw), np.sin(yaw)
    r = np.array([[c, s, 0.0], [0.0, 0.0, -1.0], [-s, c, 0.0]])
    rs.append(r)
    ts.append(np.array([0.0, 0.0, rng.uniform(4, 5)]))  # camera centre -R^T t
  k = np.array([[1145.0, 0, 512.0], [0, 1144.0, 515.0], [0, 0, 1]])
  r_all = np.broadcast_to(np.stack(rs), (n, v, 3, 3)).copy()
  t_all = np.broadcast_to(np.stack(ts), (n, v, 3)).copy()
  cam = np.einsum('nvij,nkj->nvki', r_all, world) + t_all[:, :, None]
  q = np.einsum('ij,nvkj->nvki', k, cam)
  uv = q[..., :2] / q[..., 2:]
  return lab.TeacherOutput(
    kp2d_px=uv + rng.normal(0, noise_px, uv.shape) if noise_px else uv.copy(),
    gt_kp2d_px=uv,
    K=np.broadcast_to(k, (n, v, 3, 3)).copy(),
    R=r_all,
    t=t_all,
    gt_pose3d=cam,
    groups={'subject': np.zeros(n, np.int64), 'take': np.arange(n) // 4},
    cameras=tuple(f'cam{i}' for i in range(v)),
  )


def test_ss_rt_with_exact_2d_is_the_ground_truth():
  teacher = _teacher()
  out = lab.make_pseudo_labels(teacher, 'ss_rt', SETTINGS)
  assert out['pose3d'].shape == (8, 3, 2, 17, 3) and out['valid'].all()
  np.testing.assert_array_equal(out['pairs'], [[0, 1], [0, 2], [1, 2]])
  for p, (a, b) in enumerate(out['pairs']):
    np.testing.assert_allclose(out['pose3d'][:, p, 0], teacher.gt_pose3d[:, a], atol=1e-4)
    np.testing.assert_allclose(out['pose3d'][:, p, 1], teacher.gt_pose3d[:, b], atol=1e-4)
  assert out['quality']['mpjpe_mm'] < 0.1


def test_ss_without_extrinsics_recovers_the_pose_up_to_scale():
  teacher = _teacher(seed=1)
  out = lab.make_pseudo_labels(teacher, 'ss', SETTINGS)
  assert out['valid'].all()
  q = out['quality']
  assert q['n_mpjpe_mm'] < 0.5 and 'mpjpe_mm' not in q
  for row in q['per_pair']:
    assert row['rot_err_deg'] < 0.01 and row['t_dir_err_deg'] < 0.01, row
  for p, (a, b) in enumerate(out['pairs']):
    for view, cam in ((0, a), (1, b)):
      x, gt = out['pose3d'][:, p, view].astype(np.float64), teacher.gt_pose3d[:, cam]
      scale = np.sum(x * gt) / np.sum(x * x)  # one scale per pair, shared by both views
      np.testing.assert_allclose(x * scale, gt, atol=2e-3)


def test_ss_per_take_pools_and_noisy_teacher():
  teacher = _teacher(seed=2, noise_px=1.0)
  out = lab.make_pseudo_labels(teacher, 'ss', {**SETTINGS, 'pseudo_pool': 'take'})
  rows = out['quality']['per_pair']
  assert [r['pools'] for r in rows] == [2, 2, 2]
  assert 0.5 < out['quality']['teacher_2d_err_px'] < 2.0
  assert all(r['rot_err_deg'] < 2.0 for r in rows)
  with pytest.raises(ValueError, match="'ss' and 'ss_rt'"):
    lab.make_pseudo_labels(teacher, 'sup', SETTINGS)


def test_labels_file_round_trip_and_meta_check(tmp_path):
  out = lab.make_pseudo_labels(_teacher(), 'ss_rt', SETTINGS)
  meta = {'dataset': 'x', 'split': 'train', 'num_records': 8, 'num_joints': 17, 'mode': 'ss_rt'}
  path = lab.save_labels(tmp_path / 'l.npz', out, meta)
  got = lab.load_labels(path, meta)
  np.testing.assert_array_equal(got['pose3d'], out['pose3d'])
  assert got['meta']['quality']['valid_fraction'] == 1.0
  with pytest.raises(
    lab.LabelsError, match=r"l.npz: meta 'num_records' is 8, the config expects 9"
  ):
    lab.load_labels(path, {**meta, 'num_records': 9})
  with pytest.raises(lab.LabelsError, match='jaxpose pseudolabel'):
    lab.load_labels(tmp_path / 'missing.npz', meta)


def test_attach_orders_each_pair_like_the_views():
  pose = np.arange(2 * 3 * 2 * 1 * 3, dtype=np.float32).reshape(2, 3, 2, 1, 3)
  valid = np.array([[True, True, False], [True, True, True]])
  labels = {'pose3d': pose, 'valid': valid, 'pairs': np.array([[0, 1], [0, 2], [1, 2]])}
  store = types.SimpleNamespace(takes=[{'records': np.array([1, 0])}], num_views=3)
  batch = {
    'seq_id': np.array([0, 1, 2]),  # take 0 (seq_id // num_views)
    'frame_idx': np.array([[0], [1], [0]]),  # records 1, 0, 1
    'view_id': np.array([[2, 0], [0, 1], [1, 2]]),
  }
  got = lab.Attach(labels, store)(batch)
  np.testing.assert_array_equal(got['pseudo_valid'], [True, True, True])
  np.testing.assert_array_equal(got['pseudo3d'][0], pose[1, 1, ::-1])  # views (2, 0): reversed
  np.testing.assert_array_equal(got['pseudo3d'][1], pose[0, 0])
  np.testing.assert_array_equal(got['pseudo3d'][2], pose[1, 2])
  batch['frame_idx'] = np.array([[0], [1], [1]])  # record 0, pair (1, 2): invalid
  got = lab.Attach(labels, store)(batch)
  assert not got['pseudo_valid'][2] and np.all(got['pseudo3d'][2, ..., 2] == 1)
