"""Skeleton layouts: tree structure, mirror pairs, graphs, joint maps, flips and lookup errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import skeleton

ALL = skeleton.names()


def test_registry_names():
  assert set(ALL) == {'h36m17', 'mpi3dhp17', 'humaneva15', 'smpl24', 'coco17', 'mediapipe33'}
  assert [skeleton.get(n).num_joints for n in ALL] == [17, 17, 15, 24, 17, 33]


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match='h36m17.*mediapipe33'):
    skeleton.get('h36m32')


def test_h36m_matches_data_md():
  sk = skeleton.get('h36m17')
  assert sk.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
  assert sk.left == (4, 5, 6, 11, 12, 13) and sk.right == (1, 2, 3, 14, 15, 16)
  assert sk.joint_names[1] == 'right_hip'  # data.md warns that some repos mislabel it


def test_mpi3dhp_parents_from_matlab():
  one_based = [2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2]
  expected = tuple(-1 if p - 1 == j else p - 1 for j, p in enumerate(one_based))
  assert skeleton.get('mpi3dhp17').parents == expected
  assert skeleton.get('mpi3dhp17').root == 14


@pytest.mark.parametrize('name', ALL)
def test_tree_and_mirror_consistency(name):
  sk = skeleton.get(name)
  for j in range(sk.num_joints):  # every joint reaches the root without cycles
    seen, k = set(), j
    while k != -1:
      assert k not in seen
      seen.add(k)
      k = sk.parents[k]
    assert sk.root in seen
  assert len(sk.bones) == sk.num_joints - 1
  perm = np.asarray(sk.flip_perm)
  np.testing.assert_array_equal(perm[perm], np.arange(sk.num_joints))
  for a, b in zip(sk.left, sk.right):
    la, rb = sk.joint_names[a], sk.joint_names[b]
    assert la.startswith('left') or la.endswith('_left'), la
    assert rb == la.replace('left', 'right'), (la, rb)
  mids = set(range(sk.num_joints)) - set(sk.left) - set(sk.right)
  assert not any('left' in sk.joint_names[j] or 'right' in sk.joint_names[j] for j in mids)
  # Mirror pairs have mirrored parents (the flip maps the tree onto itself).
  for p, c in sk.bones:
    assert sk.parents[perm[c]] == perm[p]


@pytest.mark.parametrize('name', ALL)
def test_adjacency(name):
  sk = skeleton.get(name)
  a = sk.adjacency()
  assert a.shape == (sk.num_joints,) * 2 and a.dtype == np.float32
  np.testing.assert_array_equal(a, a.T)
  assert a.sum() == 2 * len(set(map(frozenset, sk.edges)))
  assert np.all(np.diag(a) == 0)
  np.testing.assert_array_equal(sk.adjacency(self_loops=True), a + np.eye(sk.num_joints))


def test_h36m_adjacency_entries():
  a = skeleton.get('h36m17').adjacency()
  assert a[8, 11] == a[11, 8] == 1 and a[8, 14] == 1  # shoulders hang off the thorax
  assert a[7, 11] == 0
  assert a.sum(axis=1).tolist() == [3, 2, 2, 1, 2, 2, 1, 2, 4, 2, 1, 2, 2, 1, 2, 2, 1]


def test_graph_edges_of_detector_layouts():
  assert len(skeleton.get('coco17').edges) == 19
  assert len(skeleton.get('mediapipe33').edges) == 35
  # Edges may form cycles, bones never do.
  assert (11, 12) in skeleton.get('coco17').edges


def test_normalize_adjacency():
  a = skeleton.get('h36m17').adjacency(self_loops=True)
  np.testing.assert_allclose(skeleton.normalize_adjacency(a, 'row').sum(1), 1, rtol=1e-6)
  np.testing.assert_allclose(skeleton.normalize_adjacency(a, 'col').sum(0), 1, rtol=1e-6)
  sym = skeleton.normalize_adjacency(a, 'sym')
  d = a.sum(1)
  assert sym[8, 11] == pytest.approx(1 / np.sqrt(d[8] * d[11]))
  with pytest.raises(ValueError, match='mode'):
    skeleton.normalize_adjacency(a, 'bad')


def test_h36m_mpi_maps_join_same_named_joints():
  h, m = skeleton.get('h36m17'), skeleton.get('mpi3dhp17')
  w = skeleton.conversion_matrix('h36m17', 'mpi3dhp17')
  for j, name in enumerate(h.joint_names):
    if name in m.joint_names and name not in ('neck', 'head'):  # H36M neck/head differ from 3DHP's
      assert w[m.index(name), j] == 1, name
  back = skeleton.conversion_matrix('mpi3dhp17', 'h36m17')
  np.testing.assert_array_equal(back @ w, np.eye(17))


@pytest.mark.parametrize('src', ['coco17', 'mediapipe33'])
def test_detector_to_h36m(src):
  s = skeleton.get(src)
  rng = np.random.default_rng(0)
  pose = rng.normal(size=(2, s.num_joints, 2)).astype(np.float32)
  out = skeleton.convert(pose, src, 'h36m17')
  assert isinstance(out, np.ndarray) and out.shape == (2, 17, 2)
  np.testing.assert_allclose(skeleton.conversion_matrix(src, 'h36m17').sum(1), 1)

  def j(name):
    return pose[:, s.index(name)]

  pelvis = (j('left_hip') + j('right_hip')) / 2
  thorax = (j('left_shoulder') + j('right_shoulder')) / 2
  np.testing.assert_allclose(out[:, 0], pelvis, atol=1e-6)
  np.testing.assert_allclose(out[:, 8], thorax, atol=1e-6)
  np.testing.assert_allclose(out[:, 7], (pelvis + thorax) / 2, atol=1e-6)
  np.testing.assert_allclose(out[:, 9], j('nose'), atol=1e-6)
  h = skeleton.get('h36m17')
  for limb in ('left_knee', 'right_ankle', 'left_wrist', 'right_elbow', 'right_shoulder'):
    np.testing.assert_allclose(out[:, h.index(limb)], j(limb), atol=1e-6)


def test_conversion_errors():
  with pytest.raises(ValueError, match='no joint map'):
    skeleton.conversion_matrix('smpl24', 'coco17')
  with pytest.raises(ValueError, match=r'expected shape \(\.\.\., 33, C\).*\(4, 17, 2\)'):
    skeleton.convert(np.zeros((4, 17, 2)), 'mediapipe33', 'h36m17')


def test_flip_pose_values():
  pose = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
  out = skeleton.flip_pose(pose, 'h36m17')
  assert isinstance(out, np.ndarray)
  np.testing.assert_array_equal(out[1], pose[4] * [-1, 1, 1])  # right hip <- mirrored left hip
  np.testing.assert_array_equal(out[0], pose[0] * [-1, 1, 1])
  conf = np.ones((17, 3), np.float32)
  assert np.all(skeleton.flip_pose(conf, 'h36m17')[:, 2] == 1)  # 3rd channel kept (confidence)
  with pytest.raises(ValueError, match=r'\(\.\.\., 17, C\).*\(2, 15, 3\)'):
    skeleton.flip_pose(np.zeros((2, 15, 3)), 'h36m17')


@given(st.integers(0, 2**31 - 1), st.sampled_from(ALL))
def test_flip_twice_is_identity(seed, name):
  sk = skeleton.get(name)
  pose = np.random.default_rng(seed).normal(size=(3, sk.num_joints, 3))
  once = skeleton.flip_pose(pose, name)
  np.testing.assert_array_equal(skeleton.flip_pose(once, name), pose)
  assert not np.allclose(once, pose)


_flip_jit = jax.jit(skeleton.flip_pose, static_argnums=1)
_rel_jit = jax.jit(skeleton.root_relative, static_argnums=1)


@given(st.integers(0, 2**31 - 1), st.sampled_from(ALL))
def test_root_relative_plus_root_is_input(seed, name):
  sk = skeleton.get(name)
  pose = np.random.default_rng(seed).normal(size=(2, 4, sk.num_joints, 3)).astype(np.float32)
  rel = skeleton.root_relative(pose, name)
  assert np.all(rel[..., sk.root, :] == 0)
  np.testing.assert_allclose(rel + pose[..., sk.root : sk.root + 1, :], pose, atol=1e-6)
  np.testing.assert_allclose(_rel_jit(jnp.asarray(pose), sk.root), rel, atol=1e-6)
  np.testing.assert_allclose(_flip_jit(jnp.asarray(pose), name), skeleton.flip_pose(pose, name))
