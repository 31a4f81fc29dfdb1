"""HybrIK IK (jaxpose.body.hybrik): forward-kinematics round trips on the small synthetic body.

Rotations -> FK joints and twists -> IK -> rotations and joints back; expected values come from
`smpl.forward` (FK + skinning written independently of the IK).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.body import hybrik, smpl, synthetic
from jaxpose.geometry import rotation


@pytest.fixture(scope='module')
def model():
  return synthetic.synthetic_model('small')


def _pose(seed: int, batch: int = 3, scale: float = 0.4):
  rng = np.random.default_rng(seed)
  aa = rng.normal(0.0, scale, (batch, 24, 3))
  aa[:, 0] = rng.normal(0.0, 1.0, (batch, 3))  # any global orientation
  betas = rng.normal(0.0, 0.8, (batch, 10))
  betas[:, 0] = np.round(rng.uniform(-1.5, 1.5, batch), 1)  # on the beta-0 grid
  transl = rng.normal(0.0, 0.3, (batch, 3)) + (0.0, 0.0, 4.0)
  return jnp.asarray(rotation.axis_angle_to_matrix(aa), jnp.float32), betas, transl


def _angle_err(a, b):
  """Rotation angle of a^T b, radians. (..., 3, 3) -> (...)."""
  m = np.swapaxes(np.asarray(a, np.float64), -1, -2) @ np.asarray(b, np.float64)
  c = (np.trace(m, axis1=-2, axis2=-1) - 1) / 2
  return np.arccos(np.clip(c, -1, 1))


@jax.jit
def _ik(model, joints, twist, betas, leaf):
  return hybrik.ik_with_ortho_twist(model, joints, twist, betas, leaf)


def test_rest_twist_is_orthogonal_unit(model):
  rest = smpl.rest_joints(model, jnp.zeros((1, 10)))
  ot = np.asarray(hybrik.rest_ortho_twist(rest))[0, 1:]
  bones = np.asarray(rest - rest[:, jnp.asarray((0, *smpl.SMPL_PARENTS[1:]))])[0, 1:]
  np.testing.assert_allclose(np.linalg.norm(ot, axis=-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.sum(ot * bones, -1), 0.0, atol=1e-6)


def test_round_trip_rotations_joints_and_beta0(model):
  rot, betas, transl = _pose(0)
  out = smpl.forward(model, rot, jnp.asarray(betas, jnp.float32), jnp.asarray(transl, jnp.float32))
  twist = hybrik.ortho_twist(out.rest_joints, rot)
  leaf = rot[:, jnp.asarray(hybrik.LEAF_JOINTS)]
  start = betas.copy()
  start[:, 0] = 0.0  # the search must find the true beta-0
  b, r, t = _ik(model, out.joints, twist, jnp.asarray(start, jnp.float32), leaf)
  np.testing.assert_allclose(np.asarray(b)[:, 0], betas[:, 0], atol=1e-5)
  err = _angle_err(rot, r)
  assert err.max() < 5e-3, err.max()
  back = smpl.forward(model, r, b, t)
  np.testing.assert_allclose(np.asarray(back.joints), np.asarray(out.joints), atol=2e-3)
  np.testing.assert_allclose(np.asarray(back.vertices), np.asarray(out.vertices), atol=5e-3)


def test_twist_changes_rotation(model):
  """Rotating every twist about its bone changes the recovered rotations, not the joints."""
  rot, betas, transl = _pose(1, batch=2)
  bj = jnp.asarray(betas, jnp.float32)
  out = smpl.forward(model, rot, bj, jnp.asarray(transl, jnp.float32))
  twist = hybrik.ortho_twist(out.rest_joints, rot)
  bones = out.joints - out.joints[:, jnp.asarray((0, *smpl.SMPL_PARENTS[1:]))]
  turned = jnp.cross(jnp.asarray(bones), twist)  # twist rotated by 90 degrees about the bone
  leaf = rot[:, jnp.asarray(hybrik.LEAF_JOINTS)]
  b, r, t = _ik(model, out.joints, turned, bj, leaf)
  single = [j for j, c in enumerate(hybrik.CHILDREN) if c >= 0 and j not in (0, 9)]
  g_true, g_got = hybrik.global_rotations(rot), hybrik.global_rotations(r)
  np.testing.assert_allclose(_angle_err(g_true, g_got)[:, single], np.pi / 2, atol=5e-3)
  back = smpl.forward(model, r, b, t)
  np.testing.assert_allclose(np.asarray(back.joints), np.asarray(out.joints), atol=2e-3)


def test_noisy_joints_keep_bone_lengths(model):
  rot, betas, transl = _pose(2, batch=2)
  bj = jnp.asarray(betas, jnp.float32)
  out = smpl.forward(model, rot, bj, jnp.asarray(transl, jnp.float32))
  noisy = out.joints + 0.01 * jax.random.normal(jax.random.key(0), out.joints.shape)
  sw = hybrik.hybrik_swing(noisy, out.rest_joints)
  rest_len = np.linalg.norm(np.asarray(hybrik._bones(out.rest_joints))[:, 1:], axis=-1)
  got_len = np.linalg.norm(np.asarray(sw.bones)[:, 1:], axis=-1)
  np.testing.assert_allclose(got_len, rest_len, atol=1e-5)
  assert np.abs(np.asarray(sw.joints - noisy)).mean() < 0.03


def test_pelvis_alignment_and_orient_svd_recover_rigid_motion():
  rng = np.random.default_rng(3)
  p = jnp.asarray(rng.normal(size=(4, 3, 3)), jnp.float32)
  r_true = rotation.axis_angle_to_matrix(jnp.asarray(rng.normal(size=(4, 3)), jnp.float32))
  t_true = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
  q = jnp.einsum('bij,bkj->bki', r_true, p) + t_true[:, None]
  r, t = hybrik.pelvis_alignment(p[:, 0], p[:, 1], p[:, 2], q[:, 0], q[:, 1], q[:, 2])
  assert _angle_err(r_true, r).max() < 2e-3
  np.testing.assert_allclose(np.asarray(t), np.asarray(t_true), atol=5e-3)
  q0 = jnp.einsum('bij,bkj->bki', r_true, p)
  r2 = hybrik.orient_svd(p[:, 0], p[:, 1], p[:, 2], q0[:, 0], q0[:, 1], q0[:, 2])
  assert _angle_err(r_true, r2).max() < 1e-3
  np.testing.assert_allclose(np.asarray(hybrik.orient_svd(*(jnp.zeros((1, 3)),) * 6))[0], np.eye(3))
