"""Flip augmentation and screen normalisation."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.data import synthetic, transforms
from jaxpose.geometry import camera, skeleton

H36M = skeleton.get('h36m17')


def _example(seed=0, t=5):
  cam = camera.h36m_cameras()['S9'][seed % 4]
  world = synthetic.motion(t, 17, seed).astype(np.float64)
  pose = camera.world_to_camera(
    world, cam['orientation'].astype(np.float64), cam['translation'].astype(np.float64)
  )
  kp = camera.image_coordinates(
    camera.project_to_2d(pose, cam['intrinsic'].astype(np.float64)), cam['res_w'], cam['res_h']
  )
  k = np.concatenate(
    [cam['focal_length'], cam['center'], cam['radial_distortion'], cam['tangential_distortion']]
  )
  rng = np.random.default_rng(seed)
  ex = {
    'kp2d_px': kp.astype(np.float32),
    'kp2d_conf': rng.uniform(0, 1, (t, 17)).astype(np.float32),
    'pose3d_cam': pose.astype(np.float32),
    'cam_intrinsics': k.astype(np.float32),
    'res_w': np.int32(cam['res_w']),
    'res_h': np.int32(cam['res_h']),
  }
  return transforms.add_confidence(transforms.normalize_2d(ex), True)


def _project_px(pose, k, w, h):
  vec = camera.normalize_intrinsics(k[:2], k[2:4], k[4:7], k[7:9], w, h).astype(np.float64)
  return camera.image_coordinates(camera.project_to_2d(pose.astype(np.float64), vec), w, h)


@given(st.integers(0, 100))
def test_flip_is_a_consistent_mirror(seed):
  ex = _example(seed)
  f = transforms.flip(ex, 'h36m17', 'h36m17')
  perm = list(H36M.flip_perm)
  # Left and right swap, x negates, y and confidence stay.
  np.testing.assert_allclose(f['kp2d_norm'][..., 0], -ex['kp2d_norm'][:, perm, 0])
  np.testing.assert_allclose(f['kp2d_norm'][..., 1:], ex['kp2d_norm'][:, perm, 1:])
  np.testing.assert_allclose(f['pose3d_cam'][..., 0], -ex['pose3d_cam'][:, perm, 0])
  assert f['kp2d_norm'][0, 1, 2] == ex['kp2d_norm'][0, 4, 2]  # right hip gets the left's conf
  # The mirrored 3D projects onto the mirrored 2D through the mirrored camera (distortion included).
  w, h = int(ex['res_w']), int(ex['res_h'])
  px = _project_px(f['pose3d_cam'], f['cam_intrinsics'], w, h)
  expect = camera.image_coordinates(f['kp2d_norm'][..., :2].astype(np.float64), w, h)
  np.testing.assert_allclose(px, expect, atol=1e-2)
  # An involution.
  ff = transforms.flip(f, 'h36m17', 'h36m17')
  for k in ('kp2d_norm', 'pose3d_cam', 'cam_intrinsics'):
    np.testing.assert_allclose(ff[k], ex[k], atol=1e-4)


def test_normalize_by_width():
  ex = {
    'kp2d_px': np.array([[[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]]], np.float32),
    'res_w': np.int32(1000),
    'res_h': np.int32(1002),
  }
  out = transforms.normalize_2d(ex)['kp2d_norm']
  np.testing.assert_allclose(out, [[[-1, -1.002], [1, 1.002], [0, 0]]], atol=1e-6)


def test_flip_batch_and_random_flip():
  ex = _example(3)
  batch = {k: np.stack([v, v]) for k, v in ex.items()}
  fb = transforms.flip_batch(batch, 'h36m17')
  single = transforms.flip(ex, 'h36m17', 'h36m17')
  for k in ('kp2d_norm', 'pose3d_cam', 'cam_intrinsics'):
    np.testing.assert_allclose(fb[k][1], single[k])
  flips = [
    transforms.random_flip(ex, np.random.default_rng(i), 'h36m17', 'h36m17') is not ex
    for i in range(200)
  ]
  assert 60 < sum(flips) < 140


def test_root_relative_uses_the_layout_root():
  pose = np.arange(17 * 3, dtype=np.float32).reshape(1, 17, 3)
  out = transforms.root_relative({'pose3d_cam': pose}, skeleton.get('mpi3dhp17').root)
  np.testing.assert_array_equal(out['pose3d_cam'][0, 14], 0)
  np.testing.assert_array_equal(out['pose3d_cam'][0, 0], pose[0, 0] - pose[0, 14])
