"""The synthetic SMPL-format model: layout, topology, plausibility, determinism and file writers."""

import numpy as np
import pytest

from jaxpose.body import mesh, regressors, smpl, synthetic

OFFICIAL = {
  'v_template': (np.float64, ('V', 3)),
  'shapedirs': (np.float64, ('V', 3, 10)),
  'posedirs': (np.float64, ('V', 3, 207)),
  'J_regressor': (np.float64, (24, 'V')),
  'weights': (np.float64, ('V', 24)),
  'kintree_table': (np.int64, (2, 24)),
  'f': (np.uint32, ('F', 3)),
  'J': (np.float64, (24, 3)),
}


def _check_layout(a, num_vertices):
  sizes = {'V': num_vertices, 'F': 2 * num_vertices - 4}
  for key, (dtype, shape) in OFFICIAL.items():
    assert a[key].dtype == dtype, key
    assert a[key].shape == tuple(sizes.get(s, s) for s in shape), key
  parents = [-1] + a['kintree_table'][0, 1:].tolist()
  assert parents == list(smpl.SMPL_PARENTS) and a['kintree_table'][0, 0] == 2**32 - 1
  topo = mesh.topology(a['f'], num_vertices)
  assert topo['closed'] and topo['oriented'] and topo['vertex_manifold'] and topo['edge_manifold']
  assert topo['euler'] == 2 and topo['components'] == 1 and topo['genus'] == 0
  assert topo['degenerate_faces'] == 0
  w = a['weights']
  assert w.min() >= 0 and np.abs(w.sum(1) - 1).max() < 1e-12
  r = a['J_regressor']
  assert r.min() >= 0 and np.abs(r.sum(1) - 1).max() < 1e-12
  np.testing.assert_allclose(r @ a['v_template'], a['J'], atol=1e-12)


def _signed_volume(v, f):
  a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
  return np.sum(a * np.cross(b, c)) / 6.0


@pytest.fixture(scope='module')
def small():
  return synthetic.synthetic_arrays('small')


def test_small_layout_and_topology(small):
  _check_layout(small, 400)
  # Joints are the designed ones (a coarse hand may pull one in by about a centimetre).
  assert np.abs(small['J'] - synthetic.rest_joints()).max() < 0.015


def test_full_model_has_smpl_counts_and_a_closed_genus0_surface():
  a = synthetic.synthetic_arrays('full')
  _check_layout(a, 6890)
  assert a['f'].shape == (13776, 3)
  np.testing.assert_allclose(a['J'], synthetic.rest_joints(), atol=1e-9)
  # A human-sized, outward-oriented body: 1.7-1.8 m tall, 50-100 litres.
  height = np.ptp(a['v_template'][:, 1])
  assert 1.65 < height < 1.85
  assert 0.05 < _signed_volume(a['v_template'], a['f'].astype(np.int64)) < 0.1


def test_same_bytes_every_build(small, tmp_path):
  smpl.save_pkl(tmp_path / 'a.pkl', small)
  synthetic._build.cache_clear()
  again = synthetic.synthetic_arrays('small')
  smpl.save_pkl(tmp_path / 'b.pkl', again)
  assert (tmp_path / 'a.pkl').read_bytes() == (tmp_path / 'b.pkl').read_bytes()
  for key, value in small.items():
    if isinstance(value, np.ndarray):
      assert value.tobytes() == again[key].tobytes(), key


def test_body_is_plausible(small):
  v, f, j = small['v_template'], small['f'].astype(np.int64), small['J']
  assert _signed_volume(v, f) > 0.04  # outward faces, human volume
  assert j[15, 1] > j[12, 1] > j[9, 1] > j[0, 1] > j[4, 1] > j[7, 1]  # head .. ankle
  left = [1, 4, 7, 10, 13, 16, 18, 20, 22]
  assert np.all(j[left, 0] > 0) and np.all(j[[i + 1 for i in left], 0] < 0)
  # Each vertex is skinned mostly to a nearby bone: hands to wrist/hand, feet to ankle/foot.
  dominant = np.argmax(small['weights'], axis=1)
  assert set(dominant[v[:, 0] > 0.72]) <= {20, 22}
  assert set(dominant[v[:, 1] < -1.12]) <= {7, 8, 10, 11}
  # Normals point away from the body's medial axis (the nearest joint) almost everywhere.
  n = mesh.vertex_normals(v, f)
  nearest = j[np.argmin(np.linalg.norm(v[:, None] - j[None], axis=-1), axis=1)]
  assert np.mean(np.sum(n * (v - nearest), -1) > 0) > 0.9


def test_shape_and_pose_directions(small):
  v, s, f = small['v_template'], small['shapedirs'], small['f'].astype(np.int64)
  taller = v + 2.0 * s[..., 0]
  assert np.ptp(taller[:, 1]) - np.ptp(v[:, 1]) > 0.1
  heavier = v + 2.0 * s[..., 1]
  assert _signed_volume(heavier, f) > 1.1 * _signed_volume(v, f)
  leggy = small['J_regressor'] @ (v + 2.0 * s[..., 2])
  assert leggy[7, 1] < small['J'][7, 1] - 0.05 and abs(leggy[12, 1] - small['J'][12, 1]) < 0.01
  # Pose correctives stay small: at most ~1 cm for a 90 degree bend of every joint.
  bend = np.zeros(207)
  bend[0::9] = bend[8::9] = -1.0  # R - I of a 90 degree rotation about y: diag(-1, 0, -1)
  bend[2::9], bend[6::9] = 1.0, -1.0
  offsets = np.linalg.norm(small['posedirs'] @ bend, axis=-1)
  assert 0.002 < offsets.max() < 0.03


def test_regressors_on_the_synthetic_mesh(small):
  r = synthetic.synthetic_regressors('small')
  v = small['v_template']
  for key, rows in (('J_regressor_h36m', 17), ('J_regressor_extra', 9)):
    assert r[key].shape == (rows, 400) and r[key].min() >= 0
    np.testing.assert_allclose(r[key].sum(1), 1.0, atol=1e-12)
  h36m = r['J_regressor_h36m'] @ v
  np.testing.assert_allclose(h36m[0], 0.5 * (h36m[1] + h36m[4]), atol=1e-9)  # pelvis = mid-hips
  assert h36m[10, 1] > h36m[9, 1] > h36m[8, 1] > h36m[7, 1] > h36m[0, 1]  # head > nose > thorax ..
  ids = r['vertex_joint_ids']
  assert ids.shape == (21,) and ids.min() >= 0 and ids.max() < 400
  lm = dict(zip(regressors.VERTEX_JOINT_NAMES, v[ids]))
  assert lm['nose'][2] > 0.1 and lm['left_eye'][0] > 0 > lm['right_eye'][0]
  assert lm['left_ear'][0] > 0.05 and lm['right_ear'][0] < -0.05
  assert lm['left_big_toe'][2] > small['J'][7, 2] > lm['left_heel'][2]
  for name in ('thumb', 'index', 'middle', 'ring', 'pinky'):
    assert lm[f'left_{name}'][0] > 0.65 and lm[f'right_{name}'][0] < -0.65


def test_write_files_round_trip(small, tmp_path):
  paths = synthetic.write_files(tmp_path, 'small')
  reference = synthetic.synthetic_model('small')
  for name in ('SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL.npz'):
    loaded = smpl.load_model(paths[name])
    np.testing.assert_array_equal(loaded.posedirs, reference.posedirs)
    np.testing.assert_array_equal(loaded.faces, reference.faces)
  h36m = regressors.load_regressor(paths['J_regressor_h36m.npy'], num_vertices=400, num_joints=17)
  np.testing.assert_allclose(
    h36m, synthetic.synthetic_regressors('small')['J_regressor_h36m'], atol=1e-7
  )
  with pytest.raises(
    ValueError, match=r'J_regressor_extra.npy: regressor has shape \(9, 400\), expected \(9, 6890\)'
  ):
    regressors.load_regressor(paths['J_regressor_extra.npy'], num_vertices=6890, num_joints=9)
  sampling = mesh.load_mesh_sampling(paths['mesh_downsampling.npz'])
  assert sampling.sizes == (400, 100, 25)
  np.testing.assert_array_equal(np.load(paths['smpl_mean_vertices.npy']), small['v_template'])


def test_unknown_variant():
  with pytest.raises(
    ValueError, match="unknown synthetic body variant 'huge'; valid: \\['full', 'small'\\]"
  ):
    synthetic.synthetic_arrays('huge')
