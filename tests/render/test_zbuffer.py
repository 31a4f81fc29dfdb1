"""Numpy z-buffer: coverage, perspective-correct depth, occlusion, clipping at the image border."""

import numpy as np
import pytest

from jaxpose.render import zbuffer


def _cross(a, b):
  return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def test_depth_is_the_ray_plane_intersection():
  # A tilted plane n . X = d seen through K; the depth at a pixel centre is where the ray hits it.
  K = np.array([[20.0, 0, 8], [0, 22.0, 8], [0, 0, 1]])
  uv = np.array([[-4.0, -3.0], [30.0, 2.0], [5.0, 29.0]])
  z = np.array([3.0, 6.0, 9.0])
  X = np.concatenate([(uv - 8) / [20.0, 22.0] * z[:, None], z[:, None]], 1)
  uv_proj, z_proj = zbuffer.project_points(X, K)
  np.testing.assert_allclose(uv_proj, uv, rtol=1e-12)
  np.testing.assert_allclose(z_proj, z, rtol=1e-12)
  frags = zbuffer.rasterize(uv, z, np.array([[0, 1, 2]]), 16, 16)
  n = np.cross(X[1] - X[0], X[2] - X[0])
  d = n @ X[0]
  i, j = np.mgrid[:16, :16]
  rays = np.stack([(j + 0.5 - 8) / 20.0, (i + 0.5 - 8) / 22.0, np.ones((16, 16))], -1)
  expected = d / (rays @ n)
  covered = frags.face_index == 0
  assert covered.sum() > 100
  np.testing.assert_allclose(frags.depth[covered], expected[covered], rtol=1e-10)
  np.testing.assert_allclose(frags.bary.sum(-1)[covered], 1.0, rtol=1e-12)


def test_occlusion_near_far_and_coverage():
  uv = np.array([[1.0, 1.0], [15.0, 1.0], [1.0, 15.0]] * 3)
  depth = np.array([5.0] * 3 + [3.0] * 3 + [0.5] * 3)
  faces = np.arange(9).reshape(3, 3)
  frags = zbuffer.rasterize(uv, depth, faces, 16, 16, near=1.0, far=100.0)
  inside = frags.coverage
  assert inside.sum() == sum(range(1, 15))  # centres (j + .5, i + .5) with j + i <= 13, j, i >= 1
  assert set(np.unique(frags.face_index[inside])) == {1}  # depth 3 beats 5; 0.5 is before near
  frags = zbuffer.rasterize(uv, depth, faces, 16, 16)
  assert set(np.unique(frags.face_index[inside])) == {2}


def test_chunking_and_border_clipping_do_not_change_the_result():
  rng = np.random.default_rng(0)
  uv = rng.uniform(-8, 40, (60, 2))
  depth = rng.uniform(2, 9, 60)
  faces = rng.integers(0, 60, (40, 3))
  a = zbuffer.rasterize(uv, depth, faces, 32, 24)
  b = zbuffer.rasterize(uv, depth, faces, 32, 24, max_pairs=37)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert a.face_index.shape == (32, 24) and (a.face_index >= 0).sum() > 100
  # Brute force over every face and pixel for the nearest face.
  i, j = np.mgrid[:32, :24]
  best = np.full((32, 24), np.inf)
  for tri in faces:
    p = uv[tri]
    e1, e2 = p[1] - p[0], p[2] - p[0]
    det = _cross(e1, e2)
    if abs(det) < 1e-12:
      continue
    q = np.stack([j + 0.5, i + 0.5], -1) - p[0]  # q = w1 e1 + w2 e2
    w1, w2 = _cross(q, e2) / det, _cross(e1, q) / det
    w = np.stack([1 - w1 - w2, w1, w2], -1)
    ok = np.all(w >= 0, -1)
    z = 1 / (w / depth[tri]).sum(-1)
    best = np.where(ok & (z < best), z, best)
  np.testing.assert_allclose(a.depth, best, rtol=1e-12)


def test_faces_behind_the_camera_are_skipped_and_errors_name_the_input():
  uv = np.array([[1.0, 1.0], [15.0, 1.0], [1.0, 15.0]])
  frags = zbuffer.rasterize(uv, np.array([5.0, -1.0, 5.0]), np.array([[0, 1, 2]]), 16, 16)
  assert not frags.coverage.any()
  with pytest.raises(ValueError, match='faces: indices must be in'):
    zbuffer.rasterize(uv, np.ones(3), np.array([[0, 1, 3]]), 4, 4)
  with pytest.raises(ValueError, match='depth: expected'):
    zbuffer.rasterize(uv, np.ones(4), np.array([[0, 1, 2]]), 4, 4)


def test_render_shades_face_and_vertex_colours():
  K = np.array([[10.0, 0, 4], [0, 10.0, 4], [0, 0, 1]])
  X = np.array([[-1.0, -1.0, 2.0], [2.0, -1.0, 2.0], [-1.0, 2.0, 2.0]])
  faces = np.array([[0, 1, 2]])
  img = zbuffer.render(X, faces, K, 8, 8, face_colors=[[0.2, 0.7]], background=(1.0, 0.0))
  assert img.color.shape == (8, 8, 2)
  np.testing.assert_array_equal(img.color[img.mask], [[0.2, 0.7]] * img.mask.sum())
  np.testing.assert_array_equal(img.color[~img.mask], [[1.0, 0.0]] * (~img.mask).sum())
  vc = np.array([[1.0], [0.0], [0.0]])
  img = zbuffer.render(X, faces, K, 8, 8, vertex_colors=vc)
  np.testing.assert_allclose(img.color[..., 0], np.where(img.mask, img.fragments.bary[..., 0], 0))
