"""Soft rasteriser: hard limit vs the z-buffer, SoftRas's formulas on analytic scenes, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.render import camera, soft, zbuffer

S = 24  # image size of the analytic scenes (pixels)
F_PX = 40.0  # focal length (pixels) of the analytic camera, principal point (S/2, S/2)


@functools.cache
def _render_fn(kind: str, **static):
  """Jitted soft_render with face ('face') or vertex ('vertex') colours; shared across tests."""

  def fn(vertices, faces, P, colors):
    colors_kw = {f'{kind}_colors': colors}
    return soft.soft_render(vertices, faces, P, **colors_kw, **static)

  return jax.jit(fn)


@functools.cache
def _rasterize_fn(**static):
  return jax.jit(
    lambda screen, faces, colors: soft.soft_rasterize(screen, faces, face_colors=colors, **static)
  )


def _camera_points(uv_px, depth):
  """Camera-frame points that project to pixel (u, v) (v down) at the given depth."""
  uv = np.asarray(uv_px, np.float64)
  z = np.broadcast_to(np.asarray(depth, np.float64), uv.shape[:1])
  xy = (uv - S / 2) / F_PX * z[:, None]
  return np.concatenate([xy, z[:, None]], axis=1)


def _K():
  return np.array([[F_PX, 0, S / 2], [0, F_PX, S / 2], [0, 0, 1.0]])


def _screen(uv_px, depth, size=S):
  """Screen coordinates (SoftRas NDC, y up) of pixel positions, without any camera."""
  uv = np.asarray(uv_px, np.float64)
  z = np.broadcast_to(np.asarray(depth, np.float64), uv.shape[:1])
  return np.stack([2 * uv[:, 0] / size - 1, 1 - 2 * uv[:, 1] / size, z], axis=1)


def _min_center_edge_distance(uv_px, faces, size=S):
  """Smallest distance (pixels) from any pixel centre to any triangle edge (scene genericity)."""
  c = np.arange(size) + 0.5
  p = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
  best = np.inf
  for f in faces:
    for a, b in ((0, 1), (1, 2), (2, 0)):
      va, vb = uv_px[f[a]], uv_px[f[b]]
      e = vb - va
      t = np.clip((p - va) @ e / (e @ e), 0, 1)
      best = min(best, np.min(np.linalg.norm(p - va - t[:, None] * e, axis=1)))
  return best


# Four triangles: a large far one hanging over the image border, a mid one, a tilted near one,
# and one mostly outside the image on the right. Depth gaps keep the gamma -> 0 limit clean.
_SCENE_UV = np.array(
  [
    [-2.79, -1.81], [29.93, 1.28], [4.89, 28.31],
    [3.5, 4.25], [18.71, 6.45], [7.59, 19.51],
    [2.35, 14.05], [21.66, 11.04], [15.02, 23.16],
    [20.16, -5.5], [34.89, 3.59], [21.96, 9.8],
  ]
)  # fmt: skip
_SCENE_Z = np.array([20.0, 21.0, 19.0, 10.0, 10.5, 9.5, 5.0, 7.0, 6.0, 3.0, 3.0, 3.5])
_SCENE_FACES = np.arange(12).reshape(4, 3)
_FACE_RGB = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.3, 0.0, 1.0], [0.7, 0.7, 0.0]])
_HARD = dict(image_size=S, sigma=1e-10, gamma=1e-6, near=1.0, far=100.0, tile_size=8)


def _grid_scene(n=6, seed=5):
  """A jittered n x n grid of quads (2 n^2 triangles, tilted in depth) over a far background one.

  Returns camera-frame vertices (V, 3), faces (F, 3) and face colours (F, 3).
  """
  rng = np.random.default_rng(seed)
  g = np.linspace(3.0, 21.0, n + 1)
  uv = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) + rng.uniform(-0.6, 0.6, ((n + 1) ** 2, 2))
  z = 6.0 + 0.15 * uv[:, 0] + 0.05 * uv[:, 1]
  ids = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
  a, b, c, d = (
    ids[:-1, :-1].ravel(),
    ids[:-1, 1:].ravel(),
    ids[1:, :-1].ravel(),
    ids[1:, 1:].ravel(),
  )
  faces = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
  uv = np.concatenate([uv, [[-5.0, -4.0], [30.0, 2.0], [6.0, 31.0]]])
  z = np.concatenate([z, [20.0, 20.0, 20.0]])
  faces = np.concatenate([faces, [[len(uv) - 3, len(uv) - 2, len(uv) - 1]]])
  return _camera_points(uv, z), faces, rng.uniform(0, 1, (len(faces), 3))


def test_scene_is_generic():
  # The comparisons below assume no pixel centre sits on an edge (SoftRas: outside, D = 1/2):
  # with sigma = 1e-10 (1e-4 px) a centre 0.01 px from an edge already has D within 1e-30 of 0/1.
  assert _min_center_edge_distance(_SCENE_UV, _SCENE_FACES) > 0.01


@pytest.mark.parametrize('kind', ['face', 'vertex'])
def test_hard_limit_equals_zbuffer(kind):
  verts = _camera_points(_SCENE_UV, _SCENE_Z)
  rng = np.random.default_rng(0)
  colors = _FACE_RGB if kind == 'face' else rng.uniform(0, 1, (12, 3))
  ref = zbuffer.render(
    verts, _SCENE_FACES, _K(), S, S, near=1.0, far=100.0, **{f'{kind}_colors': colors}
  )
  P = camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S)
  out = _render_fn(kind, **_HARD)(
    jnp.asarray(verts[None], jnp.float32), _SCENE_FACES, jnp.asarray(P, jnp.float32), colors
  )
  assert ref.mask.sum() > 200 and (~ref.mask).sum() > 50  # covered and empty pixels both occur
  assert len(np.unique(ref.fragments.face_index)) == 5  # every face wins somewhere, plus empty
  np.testing.assert_allclose(np.asarray(out.alpha[0]), ref.mask.astype(float), atol=1e-5)
  np.testing.assert_allclose(np.asarray(out.color[0]), ref.color, atol=2e-4)


def test_known_triangle_pixel_count():
  # Right isosceles triangle, legs 10 px from (2.25, 2.25) along +u and +v. Pixel centres
  # (j + 0.5, i + 0.5) inside: j, i >= 2 and (j - 2) + (i - 2) <= 9, i.e. 10 + 9 + ... + 1 = 55.
  uv = np.array([[2.25, 2.25], [12.25, 2.25], [2.25, 12.25]])
  faces = np.array([[0, 1, 2]])
  i, j = np.mgrid[:S, :S]
  expected = (j >= 2) & (i >= 2) & ((j - 2) + (i - 2) <= 9)
  assert expected.sum() == 55
  verts = _camera_points(uv, 10.0)
  ref = zbuffer.render(verts, faces, _K(), S, S)
  np.testing.assert_array_equal(ref.mask, expected)
  P = camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S)
  out = _render_fn('face', **_HARD)(
    jnp.asarray(verts[None], jnp.float32), faces, jnp.asarray(P, jnp.float32), np.ones((1, 3))
  )
  alpha = np.asarray(out.alpha[0])
  np.testing.assert_array_equal(alpha > 0.5, expected)
  assert abs(alpha.sum() - 55) < 1e-3


def test_probability_is_sigmoid_of_signed_squared_screen_distance():
  # A large triangle whose only nearby edge is the vertical line u = 10.3 px; pixel (row 12,
  # column j) has its centre at u = j + 0.5, so its distance to the edge is |j + 0.5 - 10.3| px,
  # i.e. that times 2 / S in screen units.
  size, sigma, dist_eps = 24, 4e-3, 1e-4
  uv = np.array([[10.3, -200.0], [10.3, 200.0], [-300.0, 12.0]])
  screen = _screen(uv, 10.0, size)[None]
  out = _rasterize_fn(image_size=size, sigma=sigma, dist_eps=dist_eps, tile_size=8)(
    jnp.asarray(screen, jnp.float32), np.array([[0, 1, 2]]), np.ones((1, 1))
  )
  alpha = np.asarray(out.alpha[0, 12], np.float64)
  cutoff = sigma * np.log(1 / dist_eps - 1)
  for j in range(size):
    d2 = ((j + 0.5 - 10.3) * 2 / size) ** 2
    if j + 0.5 < 10.3:
      expected = 1 / (1 + np.exp(-d2 / sigma))
    elif d2 < cutoff:
      expected = 1 / (1 + np.exp(d2 / sigma))
    else:
      expected = 0.0  # SoftRas skips faces beyond the cut-off: exactly zero, not sigmoid(-d2/s)
    np.testing.assert_allclose(alpha[j], expected, rtol=2e-5, atol=1e-7, err_msg=f'column {j}')
  assert alpha[15] == 0.0 and 0 < alpha[12] < 1e-2  # the cut-off lies between columns 12 and 15


def test_silhouette_and_colour_aggregation_formulas():
  # Two screen-filling triangles at depths 5 and 7 (plus one beyond `far`), colours c1, c2, c3.
  size, gamma, near, far, eps = 8, 0.05, 1.0, 100.0, 1e-3
  big = np.array([[-50.0, -50.0], [80.0, -50.0], [-50.0, 80.0]])
  uv = np.concatenate([big, big + 0.37, big - 0.21])
  z = np.array([5.0] * 3 + [7.0] * 3 + [150.0] * 3)
  screen = _screen(uv, z, size)[None]
  colors = np.array([[0.9, 0.1], [0.2, 0.6], [0.5, 0.5]])
  bg = (0.3, 0.8)
  out = _rasterize_fn(
    image_size=size, sigma=1e-6, gamma=gamma, near=near, far=far, eps=eps, background=bg
  )(jnp.asarray(screen, jnp.float32), np.arange(9).reshape(3, 3), colors)
  w = np.exp((far - np.array([5.0, 7.0])) / (far - near) / gamma)
  wb = np.exp(eps / gamma)
  expected = (w[0] * colors[0] + w[1] * colors[1] + wb * np.array(bg)) / (w.sum() + wb)
  np.testing.assert_allclose(np.asarray(out.color[0, 4, 4]), expected, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(out.alpha[0, 4, 4]), 1.0, atol=1e-6)

  # Silhouette outside two triangles: 1 - (1 - D1)(1 - D2), D = sigmoid(-d^2 / sigma).
  sigma = 2e-2
  left = np.array([[0.8, -50.0], [0.8, 80.0], [-60.0, 10.0]])  # edge u = 0.8
  right = np.array([[2.9, -50.0], [-60.0, 10.0], [2.9, 80.0]])  # edge u = 2.9
  screen = _screen(np.concatenate([left, right]), 5.0, size)[None]
  out = _rasterize_fn(image_size=size, sigma=sigma, dist_eps=1e-12)(
    jnp.asarray(screen, jnp.float32), np.arange(6).reshape(2, 3), np.ones((2, 1))
  )
  d1, d2 = (3.5 - 0.8) * 2 / size, (3.5 - 2.9) * 2 / size  # column 3, centre u = 3.5
  s1, s2 = 1 / (1 + np.exp(d1**2 / sigma)), 1 / (1 + np.exp(d2**2 / sigma))
  np.testing.assert_allclose(out.alpha[0, 4, 3], 1 - (1 - s1) * (1 - s2), rtol=1e-5)


def test_back_faces_colour_only_when_double_sided():
  size = 8
  big = np.array([[-50.0, -50.0], [80.0, -50.0], [-50.0, 80.0]])
  faces = np.array([[0, 1, 2]])
  results = {}
  for order in ('as_is', 'reversed'):
    uv = big if order == 'as_is' else big[::-1]
    screen = jnp.asarray(_screen(uv, 5.0, size)[None], jnp.float32)
    for double in (True, False):
      out = _rasterize_fn(image_size=size, gamma=0.05, double_sided=double, background=0.25)(
        screen, faces, np.ones((1, 1))
      )
      results[order, double] = float(out.color[0, 4, 4, 0]), float(out.alpha[0, 4, 4])
  # SoftRas's front test on screen coordinates (y up): (y2 - y0)(x1 - x0) < (y1 - y0)(x2 - x0).
  (x0, y0, _), (x1, y1, _), (x2, y2, _) = _screen(big, 5.0, size)
  front_order = 'as_is' if (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0) else 'reversed'
  back_order = 'as_is' if front_order == 'reversed' else 'reversed'
  assert results[front_order, False][0] > 0.99
  assert results[back_order, False] == (0.25, results[back_order, True][1])  # background only
  assert results[back_order, False][1] > 0.999  # but still in the silhouette
  assert results[back_order, True][0] > 0.99


def test_depth_range_excludes_colour_but_not_alpha():
  size = 8
  big = np.array([[-50.0, -50.0], [80.0, -50.0], [-50.0, 80.0]])
  screen = jnp.asarray(_screen(big, 0.5, size)[None], jnp.float32)  # nearer than near = 1
  out = _rasterize_fn(image_size=size, gamma=0.05, background=0.4)(
    screen, np.array([[0, 1, 2]]), np.ones((1, 1))
  )
  assert float(out.color[0, 4, 4, 0]) == pytest.approx(0.4)
  assert float(out.alpha[0, 4, 4]) == pytest.approx(1.0)


def test_tiled_culled_equals_untiled_and_reports_overflow():
  verts, faces, colors = _grid_scene()
  verts = jnp.asarray(verts[None], jnp.float32)
  P = jnp.asarray(camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S), jnp.float32)
  common = dict(image_size=S, sigma=3e-3, gamma=0.05)
  ref = _render_fn('face', tile_size=S, tiles_per_step=1, **common)(verts, faces, P, colors)
  assert int(ref.tile_faces[0]) == len(faces)  # one tile: every face is a candidate
  # (tile size, K, tiles per step): K = 40 compiles buckets 0, 20, 40; the others only 0 and K.
  for tile, cap, per_step in ((4, 24, 1), (8, 40, 3), (5, 40, 2)):
    out = _render_fn(
      'face', tile_size=tile, max_faces_per_tile=cap, tiles_per_step=per_step, **common
    )(verts, faces, P, colors)
    assert int(out.tile_faces[0]) <= cap
    np.testing.assert_allclose(out.alpha, ref.alpha, atol=1e-6)
    np.testing.assert_allclose(out.color, ref.color, atol=1e-6)
  over = _render_fn('face', tile_size=8, max_faces_per_tile=8, tiles_per_step=2, **common)(
    verts, faces, P, colors
  )
  assert int(over.tile_faces[0]) > 8  # reported ...
  assert np.abs(np.asarray(over.alpha - ref.alpha)).max() > 0.1  # ... because faces were dropped


def test_batch_consistency():
  rng = np.random.default_rng(1)
  base = _camera_points(_SCENE_UV, _SCENE_Z)
  verts = np.stack([base + rng.normal(0, 0.02, base.shape) for _ in range(3)])
  cam_t = np.array([[0.0, 0.0, 0.0], [0.05, -0.03, 0.5], [-0.02, 0.04, -0.3]])
  P = camera.dsr_projection_matrix(cam_t, F_PX, S)
  colors = rng.uniform(0, 1, (3, 4, 2))
  kw = dict(image_size=S, sigma=3e-3, gamma=0.05, tile_size=8, max_faces_per_tile=4)
  batched = _render_fn('face', **kw)(
    jnp.asarray(verts, jnp.float32), _SCENE_FACES, jnp.asarray(P, jnp.float32), colors
  )
  for b in range(3):
    single = _render_fn('face', **kw)(
      jnp.asarray(verts[b : b + 1], jnp.float32),
      _SCENE_FACES,
      jnp.asarray(P[b : b + 1], jnp.float32),
      colors[b],
    )
    np.testing.assert_allclose(batched.color[b], single.color[0], atol=1e-6)
    np.testing.assert_allclose(batched.alpha[b], single.alpha[0], atol=1e-6)
  assert np.abs(np.asarray(batched.alpha[0] - batched.alpha[1])).max() > 0.05


def test_vertex_colours_constant_per_face_equal_face_colours():
  verts = jnp.asarray(_camera_points(_SCENE_UV, _SCENE_Z)[None], jnp.float32)
  P = jnp.asarray(camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S), jnp.float32)
  kw = dict(image_size=S, sigma=3e-3, gamma=0.05)
  by_face = _render_fn('face', **kw)(verts, _SCENE_FACES, P, _FACE_RGB)
  by_vertex = _render_fn('vertex', **kw)(verts, _SCENE_FACES, P, np.repeat(_FACE_RGB, 3, axis=0))
  np.testing.assert_allclose(by_vertex.color, by_face.color, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Gradients: central finite differences in float64.

_GRAD_UV = np.array([[1.7, 2.2], [8.4, 3.1], [3.3, 8.6], [5.2, 0.9], [9.1, 7.7]])
_GRAD_Z = np.array([5.0, 5.5, 6.0, 4.0, 4.5])
_GRAD_FACES = np.array([[0, 1, 2], [3, 4, 2]])
_GRAD_KW = dict(image_size=10, sigma=1e-2, gamma=0.05, dist_eps=1e-14, tile_size=4, background=0.2)


def _grad_loss(kind, tiling):
  size = _GRAD_KW['image_size']
  rng = np.random.default_rng(2)
  w_col, w_alpha = rng.normal(size=(size, size, 2)), rng.normal(size=(size, size))

  def loss(verts, colors):
    K = jnp.asarray([[12.0, 0, size / 2], [0, 12.0, size / 2], [0, 0, 1]], verts.dtype)
    P = camera.projection_matrix(K, size)
    out = soft.soft_render(
      verts, _GRAD_FACES, P, **{f'{kind}_colors': colors}, **_GRAD_KW, **tiling
    )
    return jnp.sum(out.color[0] * w_col) + jnp.sum(out.alpha[0] * w_alpha)

  return loss


@pytest.mark.parametrize(
  'kind,tiling',
  [('face', dict(tiles_per_step=1)), ('vertex', dict(max_faces_per_tile=2, tiles_per_step=3))],
)
def test_gradients_match_finite_differences(kind, tiling):
  with jax.enable_x64(True):
    uv = _GRAD_UV
    xy = (uv - 5.0) / 12.0 * _GRAD_Z[:, None]
    verts = np.concatenate([xy, _GRAD_Z[:, None]], 1)[None]
    n_col = 2 if kind == 'face' else 5
    colors = np.random.default_rng(3).uniform(0, 1, (n_col, 2))
    loss = _grad_loss(kind, tiling)
    g_verts, g_colors = jax.jit(jax.grad(loss, argnums=(0, 1)))(verts, colors)
    f = jax.jit(loss)
    h = 1e-6

    def fd(arr, which):
      out = np.zeros_like(arr)
      for idx in np.ndindex(arr.shape):
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += h
        minus[idx] -= h
        args_p = (plus, colors) if which == 0 else (verts, plus)
        args_m = (minus, colors) if which == 0 else (verts, minus)
        out[idx] = (float(f(*args_p)) - float(f(*args_m))) / (2 * h)
      return out

    fd_verts, fd_colors = fd(verts, 0), fd(colors, 1)
    assert np.abs(fd_verts).max() > 1e-2 and np.abs(fd_colors).max() > 1e-2
    scale = np.abs(fd_verts).max()
    np.testing.assert_allclose(g_verts, fd_verts, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(g_colors, fd_colors, rtol=1e-5, atol=1e-8)


def test_gradient_of_background_and_float32_tiling_agree():
  verts, faces, colors = _grid_scene(n=3)
  verts = jnp.asarray(verts[None], jnp.float32)
  P = jnp.asarray(camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S), jnp.float32)
  w = jnp.asarray(np.random.default_rng(4).normal(size=(S, S, 3)), jnp.float32)

  def loss(v, c, bg, **tiling):
    out = soft.soft_render(v, faces, P, image_size=S, face_colors=c, sigma=3e-3,
                           gamma=0.05, background=bg, **tiling)  # fmt: skip
    return jnp.sum(out.color[0] * w) + jnp.sum(out.alpha)

  bg = jnp.asarray([0.1, 0.2, 0.3], jnp.float32)
  args = (verts, jnp.asarray(colors, jnp.float32), bg)
  ref = jax.jit(
    jax.grad(functools.partial(loss, tile_size=S, tiles_per_step=1), argnums=(0, 1, 2))
  )(*args)
  tiled = jax.jit(
    jax.grad(
      functools.partial(loss, tile_size=4, max_faces_per_tile=24, tiles_per_step=5),
      argnums=(0, 1, 2),
    )
  )(*args)
  for a, b in zip(ref, tiled):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))

  # The colour is affine in the background: d loss / d bg = sum_pixels w * (c(bg=1) - c(bg=0)).
  @jax.jit
  def color(b):
    out = soft.soft_render(verts, faces, P, image_size=S, face_colors=args[1], sigma=3e-3,
                           gamma=0.05, background=b, tile_size=S, tiles_per_step=1)  # fmt: skip
    return out.color[0]

  share = np.asarray(color(jnp.ones(3)) - color(jnp.zeros(3)), np.float64)
  assert share.min() < 0.5 < share.max()
  np.testing.assert_allclose(ref[2], (np.asarray(w) * share).sum((0, 1)), rtol=1e-4)


def test_bad_inputs_raise_with_names():
  screen = jnp.zeros((1, 3, 3))
  with pytest.raises(ValueError, match='face_colors: expected \\(1, C\\)'):
    soft.soft_rasterize(screen, np.array([[0, 1, 2]]), image_size=4, face_colors=np.ones((2, 3)))
  with pytest.raises(ValueError, match='not both'):
    soft.soft_rasterize(
      screen, np.array([[0, 1, 2]]), image_size=4, face_colors=np.ones((1, 3)),
      vertex_colors=np.ones((3, 3)),
    )  # fmt: skip
  with pytest.raises(ValueError, match='P: expected'):
    soft.soft_render(jnp.zeros((1, 3, 3)), np.array([[0, 1, 2]]), np.eye(3), image_size=4)


def test_tile_face_counts_size_the_cap():
  verts, faces, colors = _grid_scene()
  verts = jnp.asarray(verts[None], jnp.float32)
  P = jnp.asarray(camera.dsr_projection_matrix(np.zeros((1, 3)), F_PX, S), jnp.float32)
  counts = soft.tile_face_counts(
    camera.project(verts, P, S), faces, image_size=S, tile_size=8, sigma=3e-3
  )
  assert counts.shape == (1, 9)
  common = dict(image_size=S, sigma=3e-3, gamma=0.05, tile_size=8, tiles_per_step=2)
  need = int(counts.max())
  exact = _render_fn('face', max_faces_per_tile=None, **common)(verts, faces, P, colors)
  fits = _render_fn('face', max_faces_per_tile=need, **common)(verts, faces, P, colors)
  short = _render_fn('face', max_faces_per_tile=need - 1, **common)(verts, faces, P, colors)
  assert int(exact.tile_faces[0]) == int(fits.tile_faces[0]) == need
  np.testing.assert_allclose(fits.alpha, exact.alpha, atol=1e-6)
  assert np.abs(np.asarray(short.alpha - exact.alpha)).max() > 1e-3
