"""Body parameters on the host: rotations, FK, camera frames, mirroring, vertices."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.body import smpl
from jaxpose.body import synthetic as body_synthetic
from jaxpose.data import bodies
from jaxpose.geometry import rotation, skeleton


@pytest.fixture(scope='module')
def pose():
  """(6, 24, 3, 3) random local rotations (up to ~2.5 rad), float64."""
  rng = np.random.default_rng(3)
  aa = rng.normal(0, 0.8, (6, 24, 3))
  return bodies.axis_angle_to_rotmat(aa)


@pytest.fixture(scope='module')
def rest():
  """The synthetic model's designed rest skeleton (exactly mirror-symmetric), (24, 3) metres."""
  return body_synthetic.rest_joints()


def test_rotations_match_geometry_rotation():
  rng = np.random.default_rng(0)
  aa = rng.normal(0, 1.0, (50, 3))
  aa[0] = 0.0
  aa[1] = [np.pi - 1e-7, 0, 0]  # near pi: the axis is recovered from R + I
  aa[2] = [0, -(np.pi - 1e-9), 0]
  r = bodies.axis_angle_to_rotmat(aa)
  ref = np.asarray(rotation.axis_angle_to_matrix(jnp.asarray(aa, jnp.float32)))
  np.testing.assert_allclose(r, ref, atol=2e-6)
  back = bodies.rotmat_to_axis_angle(r)
  np.testing.assert_allclose(bodies.axis_angle_to_rotmat(back), r, atol=1e-6)
  inside = np.linalg.norm(aa, axis=-1) < np.pi - 1e-3  # the log map's range: angles in [0, pi]
  np.testing.assert_allclose(back[inside], aa[inside], atol=1e-7)
  q = rng.normal(size=(10, 4))
  np.testing.assert_allclose(
    bodies.quat_to_rotmat(q), np.asarray(rotation.quat_to_matrix(jnp.asarray(q))), atol=2e-6
  )


def test_rotmat_power_and_shortest_arc(pose):
  third = bodies.rotmat_power(pose, 1 / 3)
  np.testing.assert_allclose(third @ third @ third, pose, atol=1e-9)
  a, b = np.array([0.2, -1.0, 0.1]), np.array([1.0, 0.3, -0.2])
  r = bodies.shortest_arc(a, b)
  np.testing.assert_allclose(r @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
  # The smallest rotation doing it turns about a x b by the angle between them.
  aa = bodies.rotmat_to_axis_angle(r)
  cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
  np.testing.assert_allclose(np.linalg.norm(aa), np.arccos(cos), atol=1e-12)
  np.testing.assert_allclose(np.cross(aa, np.cross(a, b)), 0, atol=1e-12)


def test_forward_kinematics_matches_body_model(pose, rest):
  joints, rots = bodies.forward_kinematics(pose, rest)
  ref_j, ref_r = smpl.forward_kinematics(
    jnp.asarray(pose, jnp.float32),
    jnp.broadcast_to(jnp.asarray(rest, jnp.float32), (6, 24, 3)),
    smpl.SMPL_PARENTS,
  )
  np.testing.assert_allclose(joints, np.asarray(ref_j), atol=1e-5)
  np.testing.assert_allclose(rots, np.asarray(ref_r), atol=1e-5)


def test_flip_pose_is_the_mirror_image(pose, rest):
  """FK of the flipped pose (+ flipped transl) = the FK joints mirrored in x, left/right swapped."""
  transl = np.random.default_rng(1).normal(0, 1, (6, 3))
  joints = bodies.forward_kinematics(pose, rest)[0] + transl[:, None]
  flipped = bodies.forward_kinematics(bodies.flip_rotmat(pose), rest)[0]
  flipped += bodies.flip_transl(transl)[:, None]
  np.testing.assert_allclose(flipped, skeleton.flip_pose(joints, 'smpl24'), atol=1e-12)
  # Global rotations mirror as S G S of the partner joint.
  s = np.diag([-1.0, 1.0, 1.0])
  g = bodies.forward_kinematics(pose, rest)[1]
  g_flip = bodies.forward_kinematics(bodies.flip_rotmat(pose), rest)[1]
  np.testing.assert_allclose(g_flip, s @ g[:, bodies.SMPL_MIRROR_PERM] @ s, atol=1e-12)
  np.testing.assert_array_equal(bodies.flip_rotmat(bodies.flip_rotmat(pose)), pose)


def test_flip_matches_spin_axis_angle_rule(pose):
  """SPIN's flip_pose: swap the left/right joints' axis-angle and negate its y and z."""
  aa = bodies.rotmat_to_axis_angle(pose)
  pairs = skeleton.get('smpl24')
  perm = list(range(24))
  for a, b in zip(pairs.left, pairs.right):
    perm[a], perm[b] = b, a
  spin = aa[:, perm] * np.array([1.0, -1.0, -1.0])
  np.testing.assert_allclose(bodies.flip_rotmat(pose), bodies.axis_angle_to_rotmat(spin), atol=1e-9)


def test_flip_transl_with_asymmetric_rest_root(pose, rest):
  rest2 = rest + np.array([0.013, 0.0, 0.0])  # a model whose root is off the mirror plane
  transl = np.array([[0.3, -0.1, 2.0]])
  root = bodies.forward_kinematics(pose[:1], rest2)[0][:, 0] + transl
  root_flip = bodies.forward_kinematics(bodies.flip_rotmat(pose[:1]), rest2)[0][:, 0]
  root_flip += bodies.flip_transl(transl, rest2[0])
  np.testing.assert_allclose(root_flip, root * np.array([-1.0, 1.0, 1.0]), atol=1e-12)


def test_to_camera_frame(pose, rest):
  rng = np.random.default_rng(2)
  transl = rng.normal(0, 1, (6, 3))
  cam_r = bodies.axis_angle_to_rotmat(rng.normal(0, 1, (6, 3)))
  cam_t = rng.normal(0, 3, (6, 3))
  world = bodies.forward_kinematics(pose, rest)[0] + transl[:, None]
  expect = np.einsum('tij,tkj->tki', cam_r, world) + cam_t[:, None]
  rot_c, transl_c = bodies.to_camera_frame(pose, transl, rest[0], cam_r, cam_t)
  got = bodies.forward_kinematics(rot_c, rest)[0] + transl_c[:, None]
  np.testing.assert_allclose(got, expect, atol=1e-12)
  np.testing.assert_array_equal(rot_c[:, 1:], pose[:, 1:])


def test_sequence_body_and_flip_body():
  rec = {
    'body_rotmat': np.tile(np.eye(3, dtype=np.float32), (4, 24, 1, 1)),
    'body_betas': np.arange(10, dtype=np.float32),
    'body_transl': np.ones((4, 3), np.float32),
    'has_smpl': np.ones(4, bool),
  }
  seq = bodies.sequence_body(rec)
  assert seq['body_betas'].shape == (4, 10) and (seq['body_betas'][3] == np.arange(10)).all()
  assert bodies.sequence_body({'pose3d_cam': 0}) == {}
  f = bodies.flip_body(seq)
  np.testing.assert_array_equal(f['body_transl'][:, 0], -1.0)
  assert f['body_betas'] is seq['body_betas']


def test_body_vertices_chunks_match_forward():
  model = body_synthetic.synthetic_model('small')
  rng = np.random.default_rng(4)
  rot = bodies.axis_angle_to_rotmat(rng.normal(0, 0.3, (5, 24, 3))).astype(np.float32)
  betas = rng.normal(0, 1, 10).astype(np.float32)
  transl = rng.normal(0, 1, (5, 3)).astype(np.float32)
  got = bodies.body_vertices(model, rot, betas, transl, chunk=2)
  ref = np.asarray(smpl.forward(model, rot, betas, transl).vertices)
  assert got.shape == (5, model.num_vertices, 3)
  np.testing.assert_allclose(got, ref, atol=1e-5)
  bad = rot.copy()
  bad[2, 3] *= 1.5
  with pytest.raises(ValueError, match=r'body_rotmat: matrix at index \(2, 3\) is not a rotation'):
    bodies.body_vertices(model, bad, betas)
