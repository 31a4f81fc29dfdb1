"""Triangulation on synthetic cameras: exact projections come back, weights, status codes, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import triangulation as tri
from tests.geometry._multiview import rig, skeleton

_dlt = jax.jit(tri.triangulate_dlt)
_lls = jax.jit(tri.triangulate_linear_ls)
_ils = jax.jit(tri.triangulate_iterative_ls)


@given(st.integers(0, 2**31 - 1), st.integers(2, 4))
def test_exact_projections_return_the_points_numpy(seed, views):
  rng = np.random.default_rng(seed)
  _, _, _, p = rig(rng, views)
  x = skeleton(rng)
  kp = tri.project(x, p)
  assert kp.shape == (views, 17, 2)
  np.testing.assert_allclose(tri.triangulate_dlt(kp, p), x, atol=1e-8)
  np.testing.assert_allclose(tri.triangulate_linear_ls(kp, p), x, atol=1e-8)
  xi, status = tri.triangulate_iterative_ls(kp, p)
  np.testing.assert_allclose(xi, x, atol=1e-8)
  np.testing.assert_array_equal(status, 1)
  if views == 2:
    np.testing.assert_allclose(tri.triangulate_polynomial(kp[0], p[0], kp[1], p[1]), x, atol=1e-7)


@given(st.integers(0, 2**31 - 1))
def test_jit_vmap_float32_over_frames(seed):
  rng = np.random.default_rng(seed)
  _, _, _, p = rig(rng, 3)
  x = np.stack([skeleton(rng, 5) for _ in range(4)])  # (T, J, 3) metres
  kp = np.stack([tri.project(xt, p) for xt in x])  # (T, V, J, 2)
  kp32, p32 = jnp.asarray(kp, jnp.float32), jnp.asarray(p, jnp.float32)
  for fn in (_dlt, _lls, lambda a, b: _ils(a, b)[0]):
    out = fn(kp32, p32)  # P broadcasts over frames
    assert out.dtype == jnp.float32 and out.shape == (4, 5, 3)
    np.testing.assert_allclose(out, x, atol=2e-3)
    np.testing.assert_allclose(jax.vmap(fn, (0, None))(kp32, p32), out, atol=1e-5)


def test_weights_drop_a_corrupted_view():
  rng = np.random.default_rng(3)
  _, _, _, p = rig(rng, 4)
  x = skeleton(rng, 6)
  kp = tri.project(x, p)
  kp[2] += 40.0  # view 2 is wrong
  w = np.ones((4, 6))
  assert np.abs(tri.triangulate_dlt(kp, p) - x).max() > 1e-3
  w[2] = 0.0
  np.testing.assert_allclose(tri.triangulate_dlt(kp, p, w), x, atol=1e-8)
  np.testing.assert_allclose(tri.triangulate_linear_ls(kp, p, w), x, atol=1e-8)
  np.testing.assert_allclose(tri.triangulate_iterative_ls(kp, p, w)[0], x, atol=1e-8)


def test_best_subset_avoids_the_bad_view():
  rng = np.random.default_rng(4)
  _, _, _, p = rig(rng, 4)
  x = skeleton(rng, 5)
  kp = tri.project(x, p)
  kp[1, :3] += 30.0  # joints 0-2 are wrong in view 1
  pts, used, err = tri.triangulate_best_subset(kp, p, num_views=3)
  np.testing.assert_allclose(pts, x, atol=1e-8)
  assert not used[1, :3].any() and used.sum(0).tolist() == [3] * 5
  assert err.max() < 1e-6
  pj, uj, _ = jax.jit(tri.triangulate_best_subset, static_argnames='num_views')(
    jnp.asarray(kp, jnp.float32), jnp.asarray(p, jnp.float32), num_views=3
  )
  np.testing.assert_array_equal(uj[:, :3], used[:, :3])  # joints 3-4 tie across subsets
  np.testing.assert_allclose(pj, x, atol=2e-3)


def test_iterative_ls_status_codes_behind_cameras():
  rng = np.random.default_rng(5)
  _, _, _, p = rig(rng, 2)
  # A point behind both cameras projects like its mirror through each camera centre; depths < 0.
  centres = np.stack([np.linalg.svd(pi)[2][-1] for pi in p])
  centres = centres[:, :3] / centres[:, 3:]
  x_front = np.array([[0.1, -0.2, 1.1]])
  x_behind_1 = 2 * centres[0] - x_front + [0.05, 0.0, 0.0]  # behind camera 1
  pts = np.concatenate([x_front, x_behind_1])
  kp = tri.project(pts, p)
  x, status = tri.triangulate_iterative_ls(kp, p)
  depth = tri.view_depths(x, p)  # (V, J)
  expected = [
    1 if (d > 0).all() else -int(sum(2**v for v in range(2) if d[v] <= 0)) for d in depth.T
  ]
  np.testing.assert_array_equal(status, expected)
  assert status[0] == 1 and status[1] in (-1, -2, -3)


def test_iterative_ls_flags_nonconvergence_only_when_asked():
  rng = np.random.default_rng(6)
  _, _, _, p = rig(rng, 2)
  kp = tri.project(skeleton(rng, 4), p) + rng.normal(scale=2.0, size=(2, 4, 2))
  _, s_official = tri.triangulate_iterative_ls(kp, p, max_iter=1)
  _, s_flag = tri.triangulate_iterative_ls(kp, p, max_iter=1, flag_nonconverged=True)
  np.testing.assert_array_equal(s_official, 1)  # the official code cannot report 0
  np.testing.assert_array_equal(s_flag, 0)  # one solve never passes the depth test (d starts at 1)


def test_iterative_ls_textbook_weights_differ_but_stay_close():
  rng = np.random.default_rng(7)
  _, _, _, p = rig(rng, 2)
  x = skeleton(rng, 6)
  kp = tri.project(x, p) + rng.normal(scale=1.0, size=(2, 6, 2))
  a, _ = tri.triangulate_iterative_ls(kp, p)
  b, _ = tri.triangulate_iterative_ls(kp, p, cumulative=False)
  assert 0 < np.abs(a - b).max() < 0.01


def test_correct_matches_satisfies_the_epipolar_constraint():
  rng = np.random.default_rng(8)
  _, _, _, p = rig(rng, 2)
  kp = tri.project(skeleton(rng, 9), p) + rng.normal(scale=2.0, size=(2, 9, 2))
  f = tri.fundamental_from_projections(p[0], p[1])
  c1, c2 = tri.correct_matches(f, kp[0], kp[1])
  h = lambda u: np.concatenate([u, np.ones((len(u), 1))], 1)  # noqa: E731
  before = np.abs(np.einsum('ni,ij,nj->n', h(kp[1]), f, h(kp[0])))
  after = np.abs(np.einsum('ni,ij,nj->n', h(c2), f, h(c1)))
  assert after.max() < 1e-9 * before.max()
  # Corrections are small (the noise level), never the trivial projection onto the epipole.
  assert np.linalg.norm(c1 - kp[0], axis=1).max() < 10


def test_errors_name_views():
  rng = np.random.default_rng(9)
  _, _, _, p = rig(rng, 3)
  kp = tri.project(skeleton(rng, 4), p)
  with pytest.raises(ValueError, match='at least 2 views, got 1'):
    tri.triangulate_dlt(kp[:1], p[:1], where='S1/walk frame 7')
  with pytest.raises(ValueError, match=r'S1/walk frame 7: views disagree: kp2d_px has 3 views'):
    tri.triangulate_dlt(kp, p[:2], where='S1/walk frame 7')
  with pytest.raises(ValueError, match='weights must be'):
    tri.triangulate_linear_ls(kp, p, np.ones((2, 4)))
  bad = p.copy()
  bad[1, 0, 0] = np.nan
  with pytest.raises(ValueError, match='P of view 1 is not finite'):
    tri.triangulate_dlt(kp, bad)
  k = np.tile(np.eye(3), (2, 1, 1))
  k[1, 0, 0] = 0.0
  with pytest.raises(ValueError, match='K of view 1 is not invertible'):
    tri.projection_matrix(k, np.tile(np.eye(3), (2, 1, 1)), np.zeros((2, 3)))
  with pytest.raises(ValueError, match=r"view 'cam03' has 99 frames, view 'cam01' has 100"):
    tri.stack_views(
      [np.zeros((100, 17, 2)), np.zeros((100, 17, 2)), np.zeros((99, 17, 2))],
      names=['cam01', 'cam02', 'cam03'],
    )
  with pytest.raises(ValueError, match='at least 2 views'):
    tri.stack_views([np.zeros((5, 2))])
  assert tri.stack_views([np.zeros((5, 3, 2)), np.ones((5, 3, 2))]).shape == (5, 2, 3, 2)
