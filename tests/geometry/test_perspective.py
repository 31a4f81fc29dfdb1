"""Properties of PersPose's perspective rotation helpers (parity is in tests/parity)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from jaxpose.geometry import perspective as P

RNG = np.random.default_rng(0)
K = np.array([[1145.0, 0.0, 512.5], [0.0, 1144.0, 515.4], [0.0, 0.0, 1.0]])


def _h(m, p):
  q = np.einsum('...ij,...j->...i', m, np.concatenate([p, np.ones_like(p[..., :1])], -1))
  return q[..., :2] / q[..., 2:]


def test_rotation_brings_the_object_ray_to_the_aim_ray():
  obj = np.array([[900.0, 120.0], [40.0, 980.0], [700.0, 600.0]])
  aim = np.array([[512.5, 515.4], [600.0, 450.0], [512.5, 515.4]])
  twist = np.array([0.0, 15.0, -20.0])
  R, H = P.perspective_rotation(np.broadcast_to(K, (3, 3, 3)), obj, aim, twist)
  # the twist is about the aim ray; 1e-3 px: the official Rodrigues adds 1e-8 to the axis-angle
  np.testing.assert_allclose(_h(H, obj), aim, atol=1e-3)
  np.testing.assert_allclose(
    R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
  )
  np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_homography_is_the_image_of_the_rotated_camera():
  R, H = P.perspective_rotation(K, [900.0, 120.0], K[:2, 2], 10.0)
  X = RNG.normal(size=(20, 3)) + [0, 0, 5]
  x_full = (X @ K.T)[:, :2] / X[:, 2:]
  x_rot = X @ R.T @ K.T
  np.testing.assert_allclose(_h(H, x_full), x_rot[:, :2] / x_rot[:, 2:], atol=1e-8)
  np.testing.assert_allclose(P.homography(K, R), H, atol=1e-9)


def test_centred_person_gives_identity_and_finite_gradients():
  R, H = P.perspective_rotation(K, K[:2, 2], K[:2, 2])
  np.testing.assert_allclose(R, np.eye(3), atol=1e-12)
  np.testing.assert_allclose(H, np.eye(3), atol=1e-9)
  kj = jnp.asarray(K, jnp.float32)
  grad = jax.grad(lambda c: jnp.sum(P.perspective_rotation(kj, c, kj[:2, 2])[0]))(kj[:2, 2])
  assert np.isfinite(np.asarray(grad)).all()
  r6 = jax.grad(lambda x: jnp.sum(P.rot6d_to_rotmat(x)))(jnp.zeros(6))
  assert np.isfinite(np.asarray(r6)).all()


def test_swing_twist_decomposition_recomposes():
  # 1e-6: the official Rodrigues adds 1e-8 to every axis-angle component (kept for parity).
  axis = RNG.normal(size=(16, 3))
  rot = Rotation.random(16, random_state=1).as_matrix()
  twist, swing = P.swing_twist_decompose(axis, rot)
  n = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
  n_rot = np.einsum('bij,bj->bi', rot, n)
  np.testing.assert_allclose(np.einsum('bij,bj->bi', swing, n), n_rot, atol=1e-6)
  recomposed = Rotation.from_rotvec(twist[:, None] * n_rot).as_matrix() @ swing
  np.testing.assert_allclose(recomposed, rot, atol=1e-6)


def test_matrix_to_axis_angle_matches_scipy_including_pi():
  aa = RNG.normal(size=(64, 3)) * 1.5
  aa[0], aa[1], aa[2] = 0.0, [np.pi, 0, 0], [0.0, np.pi - 1e-6, 1e-3]
  mats = Rotation.from_rotvec(aa).as_matrix()
  back = P.matrix_to_axis_angle(mats)
  assert back.dtype == np.float64
  np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), mats, atol=1e-9)
  assert np.linalg.norm(back, axis=-1).max() <= np.pi + 1e-9


def test_rot6d_is_orthonormal_and_keeps_the_first_column_direction():
  x = RNG.normal(size=(8, 6))
  m = P.rot6d_to_rotmat(x)
  np.testing.assert_allclose(
    m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-9
  )
  a1 = x.reshape(8, 3, 2)[..., 0]
  np.testing.assert_allclose(m[..., 0], a1 / np.linalg.norm(a1, axis=-1, keepdims=True), atol=1e-12)


def test_pixel_rays_of_a_diagonal_k():
  k = np.array([[520.0, 0, 66.0], [0, 524.0, 61.5], [0, 0, 1]])
  rays = P.pixel_rays(k, (3, 5), 4)
  assert rays.shape == (3, 5, 2)
  np.testing.assert_allclose(rays[2, 4], [((4 + 0.5) * 4 - 66) / 520, ((2 + 0.5) * 4 - 61.5) / 524])
