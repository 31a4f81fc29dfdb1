"""SPIN/HMR conventions: Rodrigues, the crop camera, projection, translation fitting and flips."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import spin


def _rodrigues(aa):
  """Reference Rodrigues formula, float64, one vector."""
  theta = np.linalg.norm(aa)
  if theta < 1e-12:
    return np.eye(3)
  k = aa / theta
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


@given(st.integers(0, 2**31 - 1))
def test_batch_rodrigues_matches_the_rodrigues_formula(seed):
  aa = np.random.default_rng(seed).normal(size=(6, 3)) * 1.5
  got = spin.batch_rodrigues(aa)
  assert isinstance(got, np.ndarray) and got.shape == (6, 3, 3)
  want = np.stack([_rodrigues(a) for a in aa])
  np.testing.assert_allclose(got, want, atol=1e-7)
  np.testing.assert_allclose(np.asarray(spin.batch_rodrigues(jnp.asarray(aa))), want, atol=2e-6)


def test_batch_rodrigues_zero_vector_is_identity_with_finite_gradient():
  np.testing.assert_allclose(spin.batch_rodrigues(np.zeros((2, 3))), np.stack([np.eye(3)] * 2))
  g = jax.grad(lambda a: jnp.sum(spin.batch_rodrigues(a) * jnp.arange(9.0).reshape(3, 3)))(
    jnp.zeros(3)
  )
  assert np.all(np.isfinite(g))


def test_weak_perspective_round_trip_and_formula():
  cam = np.array([[0.9, 0.1, -0.2], [0.5, 0.0, 0.3]])
  t = spin.weak_to_perspective(cam)
  np.testing.assert_allclose(t[:, :2], cam[:, 1:])
  np.testing.assert_allclose(t[:, 2], 2 * 5000 / (224 * cam[:, 0] + 1e-9))
  np.testing.assert_allclose(spin.perspective_to_weak(t), cam, rtol=1e-9)
  t2 = spin.weak_to_perspective(cam, focal_length=1000.0, img_res=100)
  np.testing.assert_allclose(t2[:, 2], 20.0 / cam[:, 0], rtol=1e-8)


def test_project_points_is_a_pinhole_with_principal_point_zero():
  pts = np.array([[[0.1, -0.2, 0.5], [0.0, 0.0, 0.0]]])
  t = np.array([[0.05, 0.1, 20.0]])
  px = spin.project_points(pts, t, normalize=False)
  k = np.array([[5000.0, 0, 0], [0, 5000.0, 0], [0, 0, 1]])
  homog = (pts[0] + t[0]) @ k.T
  np.testing.assert_allclose(px[0], homog[:, :2] / homog[:, 2:], rtol=1e-12)
  np.testing.assert_allclose(spin.project_points(pts, t), px / 112.0)


def test_weak_perspective_camera_approximates_projection_of_a_distant_body():
  # With cam_t from (s, tx, ty), a point at depth 0 projects to s * (x + tx) in kp2d_norm.
  s, tx, ty = 0.8, 0.1, -0.05
  pts = np.array([[[0.3, -0.4, 0.0]]])
  t = spin.weak_to_perspective(np.array([[s, tx, ty]]))
  np.testing.assert_allclose(spin.project_points(pts, t)[0, 0], s * (pts[0, 0, :2] + [tx, ty]))


def test_estimate_translation_recovers_a_known_translation():
  rng = np.random.default_rng(0)
  joints = rng.normal(scale=0.4, size=(2, 24, 3))
  t = np.array([[0.1, -0.2, 25.0], [0.0, 0.3, 40.0]])
  kp = spin.project_points(joints, t, normalize=False) + 112.0
  conf = np.ones((2, 24))
  conf[0, :5] = 0.0  # dropped joints do not matter when the rest are exact
  kp[0, :5] += 50.0
  np.testing.assert_allclose(spin.estimate_translation(joints, kp, conf), t, rtol=1e-5, atol=1e-5)
  singular = spin.estimate_translation(joints[:1], kp[:1], np.zeros((1, 24)))
  np.testing.assert_array_equal(singular, [[1.0, 1.0, 1.0]])


def test_flip_permutations_are_involutions_that_swap_sides():
  for perm in (spin.J24_FLIP_PERM, spin.J49_FLIP_PERM, spin.SMPL_JOINTS_FLIP_PERM):
    p = np.asarray(perm)
    assert sorted(p) == list(range(len(p)))
    np.testing.assert_array_equal(p[p], np.arange(len(p)))
  assert len(spin.J49_FLIP_PERM) == 49 and len(spin.SMPL_POSE_FLIP_PERM) == 72
  # GT joints: right hip (2) <-> left hip (3); OpenPose: RShoulder (2) <-> LShoulder (5).
  assert spin.J24_FLIP_PERM[spin.GT_RIGHT_HIP] == spin.GT_LEFT_HIP
  assert spin.J49_FLIP_PERM[2] == 5 and spin.J49_FLIP_PERM[25 + 2] == 25 + 3


def test_flip_smpl_pose_mirrors_every_rotation():
  pose = np.random.default_rng(1).normal(scale=0.5, size=(72,))
  flipped = spin.flip_smpl_pose(pose)
  m = np.diag([-1.0, 1.0, 1.0])
  r, rf = spin.batch_rodrigues(pose.reshape(24, 3)), spin.batch_rodrigues(flipped.reshape(24, 3))
  perm = np.asarray(spin.SMPL_JOINTS_FLIP_PERM)
  np.testing.assert_allclose(rf, m @ r[perm] @ m, atol=1e-7)
  np.testing.assert_allclose(spin.flip_smpl_pose(flipped), pose)
