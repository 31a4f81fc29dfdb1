"""Render cameras: DSR's projection matrix, the NMR y-flip and the pixel-centre convention."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.render import camera, soft, zbuffer

_render = jax.jit(
  lambda v, f, P: soft.soft_render(v, f, P, image_size=24, sigma=1e-10, gamma=1e-6, tile_size=8)
)


def test_dsr_matrix_is_K_times_flipped_extrinsics():
  cam_t = np.array([[0.1, -0.2, 48.0], [0.0, 0.3, 52.5]])
  P = camera.dsr_projection_matrix(cam_t, 5000.0, 224)
  K = np.array([[5000.0, 0, 112], [0, 5000.0, 112], [0, 0, 1]])
  for b in range(2):
    rt = np.array(
      [[1.0, 0, 0, cam_t[b, 0]], [0, -1.0, 0, -cam_t[b, 1]], [0, 0, 1.0, cam_t[b, 2]]]
    )  # DSR: row 1 of R and t_y negated
    np.testing.assert_allclose(P[b], K @ rt, rtol=1e-12)
  assert isinstance(P, np.ndarray) and P.dtype == np.float64  # numpy in, numpy out
  assert isinstance(camera.dsr_projection_matrix(jnp.asarray(cam_t)), jax.Array)


def test_general_matrix_is_a_row_flip_and_matches_dsr_for_a_centred_camera():
  t = np.array([0.05, 0.1, 10.0])
  K = np.array([[900.0, 0, 112], [0, 910.0, 112], [0, 0, 1]])
  dsr_like = K @ np.diag([1.0, -1.0, 1.0]) @ np.concatenate([np.eye(3), t[:, None]], 1)
  np.testing.assert_allclose(camera.projection_matrix(K, 224, t=t), dsr_like, rtol=1e-12)
  # Off-centre principal point: P = [[1, 0, 0], [0, -1, S], [0, 0, 1]] K [R | t].
  K2 = np.array([[700.0, 0, 90.0], [0, 700.0, 140.0], [0, 0, 1]])
  R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
  flip = np.array([[1.0, 0, 0], [0, -1, 224], [0, 0, 1]])
  expected = flip @ K2 @ np.concatenate([R, t[:, None]], 1)
  np.testing.assert_allclose(camera.projection_matrix(K2, 224, R, t), expected, rtol=1e-12)


def test_project_matches_an_explicit_pinhole_projection():
  S, f = 224, 5000.0
  cam_t = np.array([0.02, -0.04, 40.0])
  X = np.array([[0.31, -0.52, 0.2], [-0.1, 0.7, -0.15]])
  screen = camera.project(X[None], camera.dsr_projection_matrix(cam_t[None], f, S), S)[0]
  Xc = X + cam_t
  u = f * Xc[:, 0] / Xc[:, 2] + S / 2  # OpenCV pixel coordinates, v pointing down
  v = f * Xc[:, 1] / Xc[:, 2] + S / 2
  # Screen x grows with u; screen y grows upwards (row 0 at y = +1): y = -(2 v / S - 1).
  np.testing.assert_allclose(screen[:, 0], 2 * u / S - 1, atol=1e-6)
  np.testing.assert_allclose(screen[:, 1], 1 - 2 * v / S, atol=1e-6)
  np.testing.assert_allclose(screen[:, 2], Xc[:, 2], rtol=1e-12)


def test_pixel_centres():
  x, y = camera.pixel_centers(4)
  np.testing.assert_allclose(x, [-0.75, -0.25, 0.25, 0.75])
  np.testing.assert_allclose(y, [0.75, 0.25, -0.25, -0.75])


def _inside(uv_tri, centres):
  """Whether points are strictly inside a triangle (signs of the three edge cross products)."""
  s = []
  for a, b in ((0, 1), (1, 2), (2, 0)):
    e, p = uv_tri[b] - uv_tri[a], centres - uv_tri[a]
    s.append(e[0] * p[:, 1] - e[1] * p[:, 0])
  s = np.stack(s, 1)
  return np.all(s > 0, 1) | np.all(s < 0, 1)


def test_rendered_rows_run_top_to_bottom_in_image_pixel_order():
  # A small triangle in the upper-left part of the image (v small = top, u small = left),
  # projected with DSR's matrix: the covered array entries are exactly the pixels (row i,
  # column j) whose centres (j + 0.5, i + 0.5) fall inside the triangle in image coordinates.
  S, f = 24, 30.0
  cam_t = np.array([0.03, -0.02, 6.0])
  uv = np.array([[3.3, 2.6], [9.8, 4.1], [4.6, 8.7]])
  Xc_z = np.array([6.0, 6.5, 7.0])
  Xc = np.concatenate([(uv - S / 2) / f * Xc_z[:, None], Xc_z[:, None]], 1)
  X = Xc - cam_t
  P = camera.dsr_projection_matrix(cam_t[None], f, S)
  out = _render(
    jnp.asarray(X[None], jnp.float32), np.array([[0, 1, 2]]), jnp.asarray(P, jnp.float32)
  )
  i, j = np.mgrid[:S, :S]
  centres = np.stack([j.ravel() + 0.5, i.ravel() + 0.5], 1)
  expected = _inside(uv, centres).reshape(S, S)
  assert expected.sum() > 10 and not expected[S // 2 :].any()  # all in the top half
  np.testing.assert_array_equal(np.asarray(out.alpha[0]) > 0.5, expected)


def test_pixel_center_zero_shifts_by_half_a_pixel():
  # K written for integer pixel centres: pixel (i, j) is centred at (j, i). The same triangle then
  # covers the pixels whose centres (j, i) are inside, in both renderers.
  S, f = 24, 30.0
  uv = np.array([[3.3, 2.6], [19.8, 6.1], [6.6, 18.7]])
  z = 8.0
  K = np.array([[f, 0, 11.0], [0, f, 13.0], [0, 0, 1]])
  Xc = np.concatenate([(uv - K[:2, 2]) / f * z, np.full((3, 1), z)], 1)
  i, j = np.mgrid[:S, :S]
  expected = _inside(uv, np.stack([j.ravel(), i.ravel()], 1).astype(float)).reshape(S, S)
  assert (
    expected != _inside(uv, np.stack([j.ravel() + 0.5, i.ravel() + 0.5], 1)).reshape(S, S)
  ).any()
  ref = zbuffer.render(Xc, np.array([[0, 1, 2]]), K, S, S, pixel_center=0.0)
  np.testing.assert_array_equal(ref.mask, expected)
  P = camera.projection_matrix(K, S, pixel_center=0.0)
  out = _render(
    jnp.asarray(Xc[None], jnp.float32), np.array([[0, 1, 2]]), jnp.asarray(P[None], jnp.float32)
  )
  np.testing.assert_array_equal(np.asarray(out.alpha[0]) > 0.5, expected)
