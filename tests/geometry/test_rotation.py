"""Rotation conversions checked against independent numpy formulas and round trips."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import rotation as rot


def _rodrigues(aa):
  """Reference Rodrigues formula, float64, one vector."""
  theta = np.linalg.norm(aa)
  if theta < 1e-12:
    return np.eye(3)
  k = aa / theta
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def _random_aa(seed, n=8):
  rng = np.random.default_rng(seed)
  axis = rng.normal(size=(n, 3))
  axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
  return (axis * rng.uniform(0, np.pi - 1e-3, size=(n, 1))).astype(np.float32)


@given(st.integers(0, 2**31 - 1))
def test_axis_angle_matrix_quaternion_round_trips(seed):
  aa = _random_aa(seed)
  m = rot.axis_angle_to_matrix(aa)
  np.testing.assert_allclose(m, np.stack([_rodrigues(a.astype(np.float64)) for a in aa]), atol=2e-6)
  np.testing.assert_allclose(rot.matrix_to_axis_angle(m), aa, atol=3e-4)
  q = rot.matrix_to_quat(m)
  np.testing.assert_allclose(rot.quat_to_matrix(q), m, atol=2e-6)
  np.testing.assert_allclose(rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa)), aa, atol=3e-5)
  np.testing.assert_allclose(rot.rot6d_to_matrix(rot.matrix_to_rot6d(m)), m, atol=2e-6)
  v = np.random.default_rng(seed + 1).normal(size=(8, 3)).astype(np.float32)
  np.testing.assert_allclose(rot.quat_rotate(q, v), np.einsum('nij,nj->ni', m, v), atol=1e-5)


def test_matrix_to_quat_near_pi_and_identity():
  for aa in ([np.pi, 0, 0], [0, np.pi - 1e-6, 0], [0, 0, 0], [1e-7, 0, 0]):
    m = _rodrigues(np.array(aa))
    np.testing.assert_allclose(
      rot.quat_to_matrix(rot.matrix_to_quat(m.astype(np.float32))), m, atol=1e-5
    )


def test_quaternion_product_composes_rotations():
  a, b = _random_aa(3, 2)
  qa, qb = rot.axis_angle_to_quat(a), rot.axis_angle_to_quat(b)
  np.testing.assert_allclose(
    rot.quat_to_matrix(rot.quat_multiply(qa, qb)), _rodrigues(a) @ _rodrigues(b), atol=2e-6
  )
  np.testing.assert_allclose(rot.quat_multiply(qa, rot.quat_conjugate(qa)), [1, 0, 0, 0], atol=1e-6)


def test_rot6d_gram_schmidt_on_unnormalised_input():
  x = np.array([2.0, 0.5, 0.0, 3.0, 0.0, 0.0], np.float32)  # columns a1=(2,0,0), a2=(.5,3,0)
  np.testing.assert_allclose(rot.rot6d_to_matrix(x), np.eye(3), atol=1e-6)


def test_slerp():
  q0 = rot.axis_angle_to_quat(np.zeros(3, np.float32))
  q1 = rot.axis_angle_to_quat(np.array([0, 0, 1.2], np.float32))
  np.testing.assert_allclose(rot.quat_slerp(q0, q1, 0.0), q0, atol=1e-6)
  np.testing.assert_allclose(rot.quat_slerp(q0, q1, 1.0), q1, atol=1e-6)
  ts = np.array([0.25, 0.5, 0.75], np.float32)
  mid = rot.quat_slerp(q0[None], q1[None], ts)
  np.testing.assert_allclose(rot.quat_to_axis_angle(mid), [[0, 0, 1.2 * t] for t in ts], atol=1e-5)
  # Shortest arc: -q1 is the same rotation and gives the same path.
  np.testing.assert_allclose(
    rot.quat_to_matrix(rot.quat_slerp(q0, -q1, 0.5)), rot.quat_to_matrix(mid[1]), atol=1e-6
  )
  np.testing.assert_allclose(rot.quat_slerp(q1, q1, 0.3), q1, atol=1e-6)  # parallel fallback


def test_gradients_finite_at_zero_rotation():
  g = jax.grad(lambda a: rot.axis_angle_to_matrix(a).sum())(jnp.zeros(3))
  assert np.all(np.isfinite(g))
  g = jax.grad(lambda q: rot.quat_to_axis_angle(q).sum())(jnp.array([1.0, 0, 0, 0]))
  assert np.all(np.isfinite(g))
