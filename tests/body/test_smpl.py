"""SMPL-format body model: rest pose, blend shapes, FK, skinning, gradients, files and bad input.

Runs on the small synthetic model (400 vertices, the SMPL kinematic tree); expected values come from
independent numpy code in this file (homogeneous 4x4 FK, direct blend-shape sums).
"""

import pickle
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.body import smpl, synthetic
from jaxpose.geometry import rotation

forward = jax.jit(smpl.forward)


@pytest.fixture(scope='module')
def arrays():
  return synthetic.synthetic_arrays('small')


@pytest.fixture(scope='module')
def model(arrays):
  return smpl.model_from_arrays(arrays, source='small.pkl')


def _random_rotmats(rng, batch, scale=0.6):
  aa = rng.normal(0.0, scale, (batch, 24, 3))
  return np.asarray(rotation.axis_angle_to_matrix(aa), np.float64), aa


def _numpy_fk(rotmats, joints, parents):
  """Reference FK with 4x4 homogeneous transforms: returns posed joints and skinning transforms."""
  b, j = joints.shape[:2]
  world = np.zeros((b, j, 4, 4))
  for i in range(j):
    local = np.tile(np.eye(4), (b, 1, 1))
    local[:, :3, :3] = rotmats[:, i]
    local[:, :3, 3] = joints[:, i] - (joints[:, parents[i]] if parents[i] >= 0 else 0.0)
    world[:, i] = local if parents[i] < 0 else world[:, parents[i]] @ local
  rest = np.tile(np.eye(4), (b, j, 1, 1))
  rest[:, :, :3, 3] = -joints
  return world[:, :, :3, 3], world @ rest


def _numpy_smpl(a, rotmats, betas):
  v_shaped = a['v_template'] + np.einsum('vcs,bs->bvc', a['shapedirs'], betas)
  j_rest = np.einsum('jv,bvc->bjc', a['J_regressor'], v_shaped)
  feat = (rotmats[:, 1:] - np.eye(3)).reshape(len(betas), -1)
  v_posed = v_shaped + np.einsum('vcp,bp->bvc', a['posedirs'], feat)
  parents = [-1] + [int(p) for p in a['kintree_table'][0, 1:]]
  joints, transforms = _numpy_fk(rotmats, j_rest, parents)
  t = np.einsum('vj,bjxy->bvxy', a['weights'], transforms)
  hom = np.concatenate([v_posed, np.ones(v_posed.shape[:2] + (1,))], -1)
  return np.einsum('bvxy,bvy->bvx', t, hom)[..., :3], joints


def test_rest_pose_gives_template_and_file_joints(model, arrays):
  out = forward(model, jnp.zeros((2, 72)), jnp.zeros((2, 10)))
  np.testing.assert_allclose(
    out.vertices, np.broadcast_to(arrays['v_template'], (2, 400, 3)), atol=1e-6
  )
  np.testing.assert_allclose(out.joints[0], arrays['J'], atol=1e-6)
  np.testing.assert_allclose(out.rest_joints[1], arrays['J'], atol=1e-6)


def test_zero_shape_is_identity_and_shape_is_linear(model, arrays):
  rng = np.random.default_rng(0)
  betas = rng.normal(size=(3, 10))
  shaped = smpl.shape_blend(model, jnp.asarray(betas, jnp.float32))
  expected = arrays['v_template'] + np.einsum('vcs,bs->bvc', arrays['shapedirs'], betas)
  np.testing.assert_allclose(shaped, expected, atol=1e-5)
  np.testing.assert_allclose(
    smpl.shape_blend(model, jnp.zeros((1, 10)))[0], arrays['v_template'], atol=1e-7
  )


def test_identity_rotations_give_the_shaped_template(model, arrays):
  rng = np.random.default_rng(1)
  betas = rng.normal(size=(2, 10)).astype(np.float32)
  eye = np.tile(np.eye(3, dtype=np.float32), (2, 24, 1, 1))
  out = forward(model, eye, betas)
  expected = arrays['v_template'] + np.einsum('vcs,bs->bvc', arrays['shapedirs'], betas)
  np.testing.assert_allclose(out.vertices, expected, atol=1e-5)


def test_forward_matches_numpy_reference(model, arrays):
  rng = np.random.default_rng(2)
  rotmats, aa = _random_rotmats(rng, 2)
  betas = rng.normal(size=(2, 10))
  transl = rng.normal(size=(2, 3))
  out = forward(model, aa.reshape(2, 72).astype(np.float32), betas.astype(np.float32), transl)
  verts, joints = _numpy_smpl(arrays, rotmats, betas)
  np.testing.assert_allclose(out.vertices, verts + transl[:, None], atol=2e-5)
  np.testing.assert_allclose(out.joints, joints + transl[:, None], atol=2e-5)


def test_pose_layouts_agree(model):
  rng = np.random.default_rng(3)
  rotmats, aa = _random_rotmats(rng, 2)
  a = forward(model, aa.reshape(2, 72).astype(np.float32)).vertices
  b = forward(model, aa.astype(np.float32)).vertices
  c = forward(model, rotmats.astype(np.float32)).vertices
  np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_allclose(a, c, atol=1e-5)


def test_fk_round_trip_recovers_local_rotations(model):
  rng = np.random.default_rng(4)
  rotmats, _ = _random_rotmats(rng, 2, scale=1.0)
  out = forward(model, rotmats.astype(np.float32))
  g = np.asarray(out.rotations, np.float64)
  for i, p in enumerate(model.parents):
    local = g[:, i] if p < 0 else np.swapaxes(g[:, p], -1, -2) @ g[:, i]
    np.testing.assert_allclose(local, rotmats[:, i], atol=1e-5)
  # Bone lengths are those of the rest skeleton.
  for i, p in enumerate(model.parents[1:], start=1):
    posed = np.linalg.norm(out.joints[:, i] - out.joints[:, p], axis=-1)
    rest = np.linalg.norm(out.rest_joints[:, i] - out.rest_joints[:, p], axis=-1)
    np.testing.assert_allclose(posed, rest, atol=1e-5)


def test_rotating_the_root_rotates_everything_about_the_root_joint(model):
  rng = np.random.default_rng(5)
  rotmats, _ = _random_rotmats(rng, 2)
  spin = np.asarray(rotation.axis_angle_to_matrix(np.array([0.3, -1.2, 0.7])), np.float64)
  turned = rotmats.copy()
  turned[:, 0] = spin @ rotmats[:, 0]
  betas = rng.normal(size=(2, 10)).astype(np.float32)
  a = forward(model, rotmats.astype(np.float32), betas)
  b = forward(model, turned.astype(np.float32), betas)
  root = np.asarray(a.rest_joints[:, :1])
  np.testing.assert_allclose(b.vertices, (np.asarray(a.vertices) - root) @ spin.T + root, atol=2e-5)
  np.testing.assert_allclose(b.joints, (np.asarray(a.joints) - root) @ spin.T + root, atol=2e-5)


def test_gradients_are_finite_and_match_the_linear_shape_model(model, arrays):
  def loss(pose, betas):
    return jnp.sum(smpl.forward(model, pose, betas).vertices ** 2)

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  rng = np.random.default_rng(6)
  betas = rng.normal(size=(2, 10))
  for pose in (np.zeros((2, 72)), rng.normal(0, 0.5, (2, 72))):
    g_pose, g_betas = grad(jnp.asarray(pose, jnp.float32), jnp.asarray(betas, jnp.float32))
    assert np.all(np.isfinite(g_pose)) and np.all(np.isfinite(g_betas))
    assert np.abs(g_pose).max() > 0 and np.abs(g_betas).max() > 0
  # At the zero pose the vertices are v_template + S b: d/db sum v^2 = 2 S^T v.
  _, g_betas = grad(jnp.zeros((2, 72)), jnp.asarray(betas, jnp.float32))
  v = arrays['v_template'] + np.einsum('vcs,bs->bvc', arrays['shapedirs'], betas)
  np.testing.assert_allclose(
    g_betas, 2 * np.einsum('vcs,bvc->bs', arrays['shapedirs'], v), rtol=1e-4
  )


def test_num_betas_is_enforced(model, arrays):
  with pytest.raises(
    ValueError, match=r'betas: expected shape \(B, 10\).*small.pkl.*got \(2, 11\)'
  ):
    smpl.forward(model, jnp.zeros((2, 72)), jnp.zeros((2, 11)))
  model5 = smpl.model_from_arrays(arrays, num_betas=5)
  assert model5.num_betas == 5
  out = smpl.forward(model5, jnp.zeros((1, 72)), jnp.ones((1, 5)))
  expected = arrays['v_template'] + arrays['shapedirs'][..., :5].sum(-1)
  np.testing.assert_allclose(out.vertices[0], expected, atol=1e-5)
  with pytest.raises(
    ValueError, match="key 'shapedirs' has 10 shape components, cannot use num_betas=11"
  ):
    smpl.model_from_arrays(arrays, num_betas=11)


def test_bad_pose_inputs(model):
  with pytest.raises(ValueError, match=r'pose: expected axis-angle \(B, 72\).*got shape \(2, 69\)'):
    smpl.forward(model, jnp.zeros((2, 69)))
  bad = np.tile(np.eye(3, dtype=np.float32), (1, 24, 1, 1))
  bad[0, 7] *= 1.2
  with pytest.raises(ValueError, match=r'pose: matrix at index \(0, 7\) is not a rotation'):
    smpl.forward(model, bad)
  mirror = np.tile(np.eye(3, dtype=np.float32), (1, 24, 1, 1))
  mirror[0, 3, 0, 0] = -1.0
  with pytest.raises(ValueError, match=r'index \(0, 3\).*det = -1'):
    smpl.forward(model, mirror)
  with pytest.raises(ValueError, match=r'transl: expected shape \(B, 3\)'):
    smpl.forward(model, jnp.zeros((2, 72)), transl=jnp.zeros((2, 2)))


@pytest.mark.parametrize(
  'key, change, message',
  [
    (
      'posedirs',
      lambda a: a[..., :200],
      r"key 'posedirs' has shape \(400, 3, 200\), expected \(400, 3, 207\)",
    ),
    (
      'J_regressor',
      lambda a: a[:23],
      r"key 'J_regressor' has shape \(23, 400\), expected \(24, 400\)",
    ),
    (
      'shapedirs',
      lambda a: a[..., 0],
      r"key 'shapedirs' has shape \(400, 3\), expected \(400, 3, \*\)",
    ),
    ('weights', lambda a: a * 2, r"key 'weights' rows must sum to 1"),
    ('f', lambda a: a + 1, r"key 'f' has vertex indices in \[1, 400\], expected \[0, 399\]"),
    ('v_template', lambda a: np.where(a > 0.5, np.nan, a), r"key 'v_template' has non-finite"),
    (
      'kintree_table',
      lambda a: a[:, ::-1],
      r"key 'kintree_table' must describe a tree rooted at joint 0",
    ),
  ],
)
def test_bad_model_arrays_name_the_source_key_and_shapes(arrays, key, change, message):
  bad = dict(arrays)
  bad[key] = change(arrays[key])
  with pytest.raises(ValueError, match='model.pkl: ' + message):
    smpl.model_from_arrays(bad, source='model.pkl')


def test_missing_key_and_missing_file(arrays, tmp_path):
  bad = {k: v for k, v in arrays.items() if k != 'weights'}
  path = tmp_path / 'broken.npz'
  smpl.save_npz(path, bad)
  with pytest.raises(ValueError, match=r"broken.npz: missing key\(s\) \['weights'\]"):
    smpl.load_model(path)
  with pytest.raises(FileNotFoundError, match='nothere.pkl'):
    smpl.load_model(tmp_path / 'nothere.pkl')


def test_pkl_and_npz_files_load_to_the_same_model(arrays, model, tmp_path):
  smpl.save_pkl(tmp_path / 'm.pkl', arrays)
  smpl.save_npz(tmp_path / 'm.npz', arrays)
  for name in ('m.pkl', 'm.npz'):
    loaded = smpl.load_model(tmp_path / name)
    assert loaded.parents == model.parents == smpl.SMPL_PARENTS
    assert loaded.source.endswith(name)
    for field in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'faces'):
      np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))
  raw = smpl.read_arrays(tmp_path / 'm.pkl')
  assert raw['bs_style'] == 'lbs' and raw['f'].dtype == np.uint32
  assert raw['kintree_table'][0, 0] == 2**32 - 1


def test_written_pkl_is_the_official_chumpy_scipy_layout(arrays, tmp_path):
  """The file loads with plain pickle given scipy and a stand-in chumpy module, as smplx loads it."""
  scipy_sparse = pytest.importorskip('scipy.sparse')
  smpl.save_pkl(tmp_path / 'm.pkl', arrays)

  class Ch:
    def __setstate__(self, state):
      self.__dict__.update(state)

  fake = types.ModuleType('chumpy.ch')
  fake.Ch = Ch
  saved = {k: sys.modules.get(k) for k in ('chumpy', 'chumpy.ch')}
  sys.modules['chumpy'] = types.ModuleType('chumpy')
  sys.modules['chumpy.ch'] = fake
  try:
    with open(tmp_path / 'm.pkl', 'rb') as fp:
      data = pickle.load(fp, encoding='latin1')
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v
  assert isinstance(data['J_regressor'], scipy_sparse.csc_matrix)
  np.testing.assert_array_equal(data['J_regressor'].toarray(), arrays['J_regressor'])
  assert isinstance(data['shapedirs'], Ch)
  np.testing.assert_array_equal(data['shapedirs'].x, arrays['shapedirs'])


def test_reads_pickles_written_by_scipy(arrays, tmp_path):
  scipy_sparse = pytest.importorskip('scipy.sparse')
  content = dict(arrays)
  content['J_regressor'] = scipy_sparse.csc_matrix(arrays['J_regressor'])
  with open(tmp_path / 'scipy.pkl', 'wb') as fp:
    pickle.dump(content, fp, protocol=2)
  raw = smpl.read_arrays(tmp_path / 'scipy.pkl')
  np.testing.assert_array_equal(raw['J_regressor'], arrays['J_regressor'])
