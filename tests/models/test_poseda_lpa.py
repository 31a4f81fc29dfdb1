"""PoseDA's reconstructed LPA networks: the pose transformations against independent numpy
geometry, the generator's bounds and mirror groups, the discriminators' invariances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.geometry import skeleton as skel
from jaxpose.models import _poseda as lpa

RNG = np.random.default_rng(0)


def _pose(n=3, sk='h36m17'):
  j = skel.get(sk).num_joints
  return RNG.normal(size=(n, j, 3)).astype(np.float32) * 0.3


def _bones_np(pose, sk):
  return np.stack([pose[:, c] - pose[:, p] for p, c in skel.get(sk).bones], 1)


def _rodrigues(aa):
  th = np.linalg.norm(aa)
  k = aa / th
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * kx @ kx


@pytest.mark.parametrize('sk', ['h36m17', 'mpi3dhp17'])
def test_forward_kinematics_inverts_bone_vectors(sk):
  x = _pose(sk=sk)
  r = skel.get(sk).root
  b = np.asarray(lpa.bone_vectors(jnp.asarray(x), sk))
  np.testing.assert_allclose(b, _bones_np(x, sk), atol=1e-6)
  back = np.asarray(lpa.from_bones(jnp.asarray(x[:, r]), jnp.asarray(b), sk))
  np.testing.assert_allclose(back, x, atol=1e-5)


def test_bone_angle_keeps_lengths_and_reports_the_angle_change():
  sk = 'h36m17'
  x = _pose()
  ba = RNG.normal(size=(3, 16, 3)).astype(np.float32) * 0.3
  y, diff = lpa.augment(jnp.asarray(x), ba, jnp.ones((3, 16)), jnp.zeros((3, 3)), sk)
  b0, b1 = _bones_np(x, sk), _bones_np(np.asarray(y), sk)
  np.testing.assert_allclose(np.linalg.norm(b1, axis=-1), np.linalg.norm(b0, axis=-1), rtol=1e-4)
  d0 = b0 / np.linalg.norm(b0, axis=-1, keepdims=True)
  expect = d0 + ba
  expect /= np.linalg.norm(expect, axis=-1, keepdims=True)
  np.testing.assert_allclose(b1 / np.linalg.norm(b1, axis=-1, keepdims=True), expect, atol=1e-4)
  np.testing.assert_allclose(np.asarray(diff), 1 - np.sum(d0 * expect, -1), atol=1e-4)
  np.testing.assert_allclose(np.asarray(y)[:, 0], x[:, 0], atol=1e-6)  # root kept


def test_bone_length_and_rotation():
  sk = 'mpi3dhp17'  # root 14, parents not in topological index order
  x = _pose(sk=sk)
  r = skel.get(sk).root
  bl = RNG.uniform(0.8, 1.2, (3, 16)).astype(np.float32)
  aa = np.array([[0.3, -1.0, 0.5], [2.0, 0.1, 0.0], [0.0, 0.0, -2.5]], np.float32)
  y, _ = lpa.augment(jnp.asarray(x), jnp.zeros((3, 16, 3)), bl, aa, sk)
  y = np.asarray(y)
  b0 = _bones_np(x, sk) * bl[..., None]
  for n in range(3):
    rot = _rodrigues(aa[n].astype(np.float64))
    np.testing.assert_allclose(_bones_np(y, sk)[n], b0[n] @ rot.T, atol=1e-4)
  np.testing.assert_allclose(y[:, r], x[:, r], atol=1e-6)


def test_windows_share_one_set_of_parameters():
  x = RNG.normal(size=(2, 4, 17, 3)).astype(np.float32)
  ba = RNG.normal(size=(2, 16, 3)).astype(np.float32)
  bl = RNG.uniform(0.9, 1.1, (2, 16)).astype(np.float32)
  rt = RNG.normal(size=(2, 3)).astype(np.float32)
  y, _ = lpa.augment(jnp.asarray(x), ba, bl, rt, 'h36m17')
  for t in range(4):
    yt, _ = lpa.augment(jnp.asarray(x[:, t]), ba, bl, rt, 'h36m17')
    np.testing.assert_allclose(np.asarray(y)[:, t], np.asarray(yt), atol=1e-5)


def test_mirror_groups_and_kcs():
  group, n = lpa.bone_groups('h36m17')
  bones = skel.get('h36m17').bones
  # right hip (0 -> 1) and left hip (0 -> 4) share a group; the spine (0 -> 7) does not
  assert group[bones.index((0, 1))] == group[bones.index((0, 4))]
  assert group[bones.index((0, 7))] != group[bones.index((0, 1))]
  assert n == 10  # 6 mirrored pairs + 4 midline bones
  x = _pose()
  k = np.asarray(lpa.kcs(jnp.asarray(x), 'h36m17')).reshape(3, 16, 16)
  np.testing.assert_allclose(
    np.diagonal(k, axis1=1, axis2=2), (_bones_np(x, 'h36m17') ** 2).sum(-1), rtol=1e-5
  )


def test_generator_bounds_and_symmetric_lengths():
  g = lpa.Generator(hidden=16, depth=1, noise_dim=4, bl_max=0.2, rt_max=0.5)
  x = jnp.asarray(_pose(5))
  noise = jnp.asarray(RNG.normal(size=(5, 4)).astype(np.float32))
  v = g.init(jax.random.PRNGKey(0), x, noise)
  v = jax.tree.map(lambda p: p * 30.0, v)  # saturate the heads
  out = g.apply(v, x, noise)
  assert out['ba'].shape == (5, 16, 3) and out['bl'].shape == (5, 16) and out['rt'].shape == (5, 3)
  assert float(jnp.abs(out['bl'] - 1).max()) <= 0.2 + 1e-6
  assert float(jnp.linalg.norm(out['rt'], axis=-1).max()) <= 0.5 + 1e-5
  group, _ = lpa.bone_groups('h36m17')
  bones = skel.get('h36m17').bones
  i, j = bones.index((0, 1)), bones.index((0, 4))
  assert group[i] == group[j]
  np.testing.assert_array_equal(np.asarray(out['bl'][:, i]), np.asarray(out['bl'][:, j]))
  # translation and noise: the generator sees root-relative poses
  out2 = g.apply(v, x + 5.0, noise)
  np.testing.assert_allclose(np.asarray(out2['rt']), np.asarray(out['rt']), atol=1e-5)


def test_discriminators_see_structure_not_placement():
  d3, d2 = lpa.Discriminator3D(hidden=16), lpa.Discriminator2D(hidden=16, depth=2)
  x = jnp.asarray(_pose(4))
  v3 = d3.init(jax.random.PRNGKey(1), x)
  s = d3.apply(v3, x)
  assert s.shape == (4, 1)
  np.testing.assert_allclose(np.asarray(d3.apply(v3, x + 3.0)), np.asarray(s), atol=1e-5)
  kp = x[..., :2]
  v2 = d2.init(jax.random.PRNGKey(2), kp)
  s2 = d2.apply(v2, kp)
  np.testing.assert_allclose(np.asarray(d2.apply(v2, kp * 3.0 + 1.0)), np.asarray(s2), atol=1e-4)
  other = d2.apply(v2, kp[:, ::-1])
  assert float(jnp.abs(other - s2).max()) > 1e-4
