"""Camera model: H36M constants, projection round trips, flips, screen normalisation, 2.5D frame."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import camera

CAMS = camera.h36m_cameras()
S9 = CAMS['S9']
_project = jax.jit(camera.project_to_2d)
_unproject = jax.jit(camera.unproject)


def test_h36m_camera_table():
  assert set(CAMS) == {'S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11'}
  extra = camera.h36m_cameras(include_extra=True)
  assert set(extra) - set(CAMS) == {'S2', 'S3', 'S4', 'S10'}
  for cams in extra.values():
    assert [c['id'] for c in cams] == list(camera.H36M_CAMERA_IDS)
    for c in cams:
      assert c['intrinsic'].shape == (9,) and c['intrinsic'].dtype == np.float32
      assert abs(np.linalg.norm(c['orientation']) - 1) < 1e-5
      assert 1.0 < np.linalg.norm(c['translation']) < 10.0  # metres, not mm
  assert [(c['res_w'], c['res_h']) for c in S9] == [(1000, 1002), (1000, 1000)] * 1 + [
    (1000, 1000),
    (1000, 1002),
  ]
  # Normalised focal = f_px / w * 2 (data.md §1.4: f ~ 1145-1150 px).
  assert 2.28 < S9[0]['intrinsic'][0] < 2.31
  camera.h36m_cameras()['S9'][0]['intrinsic'][0] = 0  # callers get copies
  assert camera.h36m_cameras()['S9'][0]['intrinsic'][0] != 0


def test_world_points_seen_upright_by_s9_cameras():
  # data.md §1.4 check: world z-up points near the origin are 4-5.7 m deep, near the image centre,
  # and higher points appear higher in the image (smaller y, since image y points down).
  pts = np.array([[0, 0, 0], [0, 0, 0.9], [0, 0, 1.8]], np.float32)
  for c in S9:
    cam_pts = camera.world_to_camera(pts, c['orientation'], c['translation'])
    assert np.all((cam_pts[:, 2] > 3.5) & (cam_pts[:, 2] < 6)), cam_pts
    uv = camera.project_to_2d(cam_pts, c['intrinsic'])
    assert np.all(np.abs(uv) < 0.8)  # inside the image
    assert uv[0, 1] > uv[1, 1] > uv[2, 1]


def test_screen_coordinates_known_values():
  px = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
  norm = camera.normalize_screen_coordinates(px, 1000, 1002)
  np.testing.assert_allclose(norm, [[-1, -1.002], [1, 1.002], [0, 0]], atol=1e-12)
  np.testing.assert_allclose(camera.image_coordinates(norm, 1000, 1002), px, atol=1e-9)
  # Per-frame resolutions broadcast over joints.
  w, h = np.array([[1000.0], [2048.0]]), np.array([[1002.0], [2048.0]])
  pts = np.full((2, 3, 2), 1000.0)
  out = camera.normalize_screen_coordinates(pts, w, h)
  np.testing.assert_allclose(out[1], 1000 / 2048 * 2 - 1)
  np.testing.assert_allclose(camera.image_coordinates(out, w, h), pts)


def test_normalize_intrinsics_matches_manual():
  c = S9[1]
  f = np.asarray(c['focal_length'], np.float64)
  cc = np.asarray(c['center'], np.float64)
  want = [f[0] / 500, f[1] / 500, cc[0] / 500 - 1, cc[1] / 500 - 1.0]
  np.testing.assert_allclose(c['intrinsic'][:4], want, rtol=1e-6)


def _points(seed, n=32, spread=0.35):
  rng = np.random.default_rng(seed)
  z = rng.uniform(2.0, 8.0, size=(n, 1))
  xy = rng.uniform(-spread, spread, size=(n, 2)) * z  # inside the H36M field of view
  return np.concatenate([xy, z], -1).astype(np.float32)


@given(st.integers(0, 2**31 - 1), st.integers(0, 3))
def test_project_then_unproject_is_identity(seed, cam):
  x = _points(seed)
  k = S9[cam]['intrinsic']
  uv = _project(jnp.asarray(x), jnp.asarray(k))
  back = _unproject(uv, jnp.asarray(x[:, 2]), jnp.asarray(k))
  np.testing.assert_allclose(back, x, atol=2e-5 * np.abs(x).max())
  lin = camera.project_to_2d_linear(x, k)
  np.testing.assert_allclose(
    camera.unproject(lin, x[:, 2:], k, distorted=False), x, atol=1e-5 * np.abs(x).max()
  )


@given(st.integers(0, 2**31 - 1))
def test_world_camera_round_trip(seed):
  x = np.random.default_rng(seed).normal(size=(5, 17, 3))
  c = CAMS['S11'][2]
  there = camera.world_to_camera(x, c['orientation'], c['translation'])
  back = camera.camera_to_world(there, c['orientation'], c['translation'])
  # The float32 quaternion is unit only to ~1e-7 (VideoPose3D does not renormalise either).
  np.testing.assert_allclose(back, x, atol=1e-5)
  # Rigid: pairwise distances are kept.
  np.testing.assert_allclose(
    np.linalg.norm(there[:, 1] - there[:, 0], axis=-1), np.linalg.norm(x[:, 1] - x[:, 0], axis=-1)
  )


def test_flip_intrinsics_mirrors_projection():
  x = _points(1)
  for c in S9:
    uv = camera.project_to_2d(x, c['intrinsic'])
    mirrored = camera.project_to_2d(x * [-1, 1, 1], camera.flip_intrinsics(c['intrinsic']))
    np.testing.assert_allclose(mirrored, uv * [-1, 1], atol=1e-6)


def test_batched_intrinsics_broadcast_left_aligned():
  x = np.stack([_points(2, n=17), _points(3, n=17)])[:, None]  # (B=2, T=1, J, 3)
  k = np.stack([S9[0]['intrinsic'], S9[3]['intrinsic']])  # (B, 9)
  out = camera.project_to_2d(jnp.asarray(x), jnp.asarray(k))
  assert out.shape == (2, 1, 17, 2)
  np.testing.assert_allclose(out[1, 0], camera.project_to_2d(x[1, 0], k[1]), atol=1e-6)


def test_projection_clamps_before_distortion():
  k = S9[0]['intrinsic']
  far = np.array([[5.0, 0.0, 1.0]], np.float32)  # X/Z = 5 is clamped to 1
  edge = np.array([[1.0, 0.0, 1.0]], np.float32)
  np.testing.assert_allclose(camera.project_to_2d(far, k), camera.project_to_2d(edge, k))


def test_image_frame_2p5d():
  rng = np.random.default_rng(0)
  pose = rng.normal(scale=300.0, size=(4, 17, 3)) + [0, 0, 5000.0]  # mm
  f, c = np.array([1145.0, 1143.0]), np.array([512.0, 515.0])
  img, factor = camera.image_frame_2p5d(pose, f, c)
  assert img.shape == (4, 17, 3) and factor.shape == (4,)
  np.testing.assert_allclose(img[..., :2], pose[..., :2] / pose[..., 2:] * f + c)
  # Depth: root-relative mm recovered exactly by the factor.
  np.testing.assert_allclose(img[..., 2] * factor[:, None], pose[..., 2] - pose[:, :1, 2])
  # The factor is about Z_root / fx mm per pixel (within the +1 px of the box).
  np.testing.assert_allclose(factor, pose[:, 0, 2] / f[0], rtol=5e-3)
