"""Mesh toolkit: topology, normals, decimation, sampling matrices, file layout, PMCE losses."""

import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.body import mesh

TETRA_V = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
TETRA_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
  """Unit icosphere (outward CCW faces) by midpoint subdivision of an icosahedron."""
  t = (1 + 5**0.5) / 2
  v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t]]
  v += [[0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
  f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4]]
  f += [[11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8]]
  f += [[3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
  v = [np.asarray(p, float) / np.linalg.norm(p) for p in v]
  for _ in range(subdivisions):
    cache, new_f = {}, []

    def mid(a, b):
      key = (min(a, b), max(a, b))
      if key not in cache:
        p = v[a] + v[b]
        v.append(p / np.linalg.norm(p))
        cache[key] = len(v) - 1
      return cache[key]

    for a, b, c in f:
      ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
      new_f += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    f = new_f
  return np.asarray(v), np.asarray(f)


@pytest.fixture(scope='module')
def sphere():
  return icosphere(3)  # 642 vertices, 1280 faces


def test_topology_of_known_meshes(sphere):
  topo = mesh.topology(TETRA_F, 4)
  assert (topo['num_edges'], topo['euler'], topo['genus']) == (6, 2, 0)
  assert topo['closed'] and topo['oriented'] and topo['vertex_manifold']
  v, f = sphere
  assert mesh.topology(f, len(v))['euler'] == 2 and len(mesh.edges(f)) == 1920
  open_mesh = mesh.topology(f[1:], len(v))
  assert not open_mesh['closed'] and open_mesh['edge_manifold'] and open_mesh['genus'] is None
  flipped = f.copy()
  flipped[0] = flipped[0, ::-1]
  assert not mesh.topology(flipped, len(v))['oriented']
  # Two tetrahedra sharing only vertex 0: closed and edge-manifold, but not vertex-manifold.
  pinched = np.concatenate([TETRA_F, np.where(TETRA_F == 0, 0, TETRA_F + 3)])
  topo = mesh.topology(pinched, 7)
  assert topo['closed'] and not topo['vertex_manifold'] and topo['components'] == 1


def test_normals(sphere):
  n = mesh.face_normals(TETRA_V, TETRA_F)
  np.testing.assert_allclose(n[3], np.ones(3) / np.sqrt(3), atol=1e-12)
  np.testing.assert_allclose(mesh.face_normals(TETRA_V, TETRA_F, normalize=False)[0], [0, 0, -1])
  v, f = sphere
  vn = mesh.vertex_normals(v, f)
  assert np.min(np.sum(vn * v, -1)) > 0.999  # a sphere's normals are radial
  vn_jax = mesh.vertex_normals(jnp.asarray(v, jnp.float32), f)
  assert isinstance(vn_jax, jax.Array)
  np.testing.assert_allclose(vn_jax, vn, atol=1e-5)


def test_neighbours(sphere):
  v, f = sphere
  nb = mesh.neighbours(f, len(v))
  assert sorted(len(n) for n in nb[:12]) == [5] * 12  # icosahedron corners keep valence 5
  assert all(len(n) == 6 for n in nb[12:])


def test_decimate_keeps_a_closed_sphere_and_a_vertex_subset(sphere):
  v, f = sphere
  kept, new_f = mesh.decimate(v, f, 100)
  assert kept.shape == (100,) and np.all(np.diff(kept) > 0)
  assert new_f.shape == (196, 3)
  topo = mesh.topology(new_f, 100)
  assert topo['closed'] and topo['oriented'] and topo['vertex_manifold'] and topo['genus'] == 0
  # Still a sphere: every coarse face normal points outwards.
  centres = v[kept][new_f].mean(1)
  assert np.all(np.sum(mesh.face_normals(v[kept], new_f) * centres, -1) > 0)
  with pytest.raises(ValueError, match=r'num_vertices must be in \[4, 642\], got 700'):
    mesh.decimate(v, f, 700)


def test_closest_point_barycentric(sphere):
  v, f = sphere
  rng = np.random.default_rng(0)
  fi = rng.integers(0, len(f), 50)
  w = rng.dirichlet(np.ones(3), 50)
  on = np.einsum('pk,pkc->pc', w, v[f[fi]])
  got_f, got_w, d2 = mesh.closest_point_barycentric(on, v, f, chunk=16)
  np.testing.assert_allclose(d2, 0.0, atol=1e-20)
  np.testing.assert_allclose(np.einsum('pk,pkc->pc', got_w, v[f[got_f]]), on, atol=1e-12)
  # Points pushed out along a face normal by h are at squared distance h^2 from that face.
  centre = v[f[fi]].mean(1)
  normal = mesh.face_normals(v, f)[fi]
  _, _, d2 = mesh.closest_point_barycentric(centre + 0.01 * normal, v, f)
  np.testing.assert_allclose(d2, 1e-4, rtol=1e-6)
  # Far outside a corner: the closest point is that vertex.
  got_f, got_w, _ = mesh.closest_point_barycentric(v[:1] * 3.0, v, f)
  np.testing.assert_allclose(np.einsum('k,kc->c', got_w[0], v[f[got_f[0]]]), v[0], atol=1e-12)


def test_sparse_rows():
  rng = np.random.default_rng(1)
  dense = rng.normal(size=(5, 7)) * (rng.random((5, 7)) < 0.4)
  dense[2] = 0.0
  sr = mesh.SparseRows.from_dense(dense)
  assert sr.shape == (5, 7)
  np.testing.assert_allclose(sr.to_dense(), dense, atol=1e-6)
  x = rng.normal(size=(3, 7, 2))
  np.testing.assert_allclose(sr(x), np.einsum('oi,bic->boc', dense, x), atol=1e-5)
  g = jax.grad(lambda y: jnp.sum(jax.jit(sr.__call__)(y) ** 2))(jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(
    g, 2 * np.einsum('oi,boc->bic', dense, np.einsum('oi,bic->boc', dense, x)), rtol=1e-4, atol=1e-5
  )
  with pytest.raises(ValueError, match=r'expects \(\.\.\., 7, C\) input, got \(3, 6, 2\)'):
    sr(x[:, :6])


@pytest.fixture(scope='module')
def sampling(sphere):
  return mesh.mesh_sampling(*sphere, factors=(4, 4))


def test_mesh_sampling_shapes_and_row_sums(sphere, sampling):
  v, _ = sphere
  assert sampling.sizes == (642, 161, 41)  # ceil(642 / 4), ceil(161 / 4)
  for i, (d, u) in enumerate(zip(sampling.down, sampling.up)):
    n_fine, n_coarse = sampling.sizes[i], sampling.sizes[i + 1]
    dd, uu = d.to_dense(), u.to_dense()
    assert dd.shape == (n_coarse, n_fine) and uu.shape == (n_fine, n_coarse)
    np.testing.assert_allclose(dd.sum(1), 1.0)
    assert np.all((dd == 0) | (dd == 1)) and np.all(dd.sum(0) <= 1)  # a selection
    np.testing.assert_allclose(uu.sum(1), 1.0, atol=1e-6)
    assert uu.min() >= -1e-6 and np.all((uu > 0).sum(1) <= 3)
    np.testing.assert_allclose(uu @ dd @ sampling.vertices[i], sampling.vertices[i], atol=0.2)
    np.testing.assert_allclose(dd @ sampling.vertices[i], sampling.vertices[i + 1])
    # Surviving vertices map back onto themselves exactly.
    np.testing.assert_allclose(dd @ uu, np.eye(n_coarse), atol=1e-6)
  coarse = sampling.downsample(v[None])
  assert coarse.shape == (1, 41, 3)
  assert sampling.upsample(coarse).shape == (1, 642, 3)
  # Up-sampled points lie on the coarse sphere polyhedron: just inside the unit sphere.
  r = np.linalg.norm(sampling.up[0](sampling.vertices[1]), axis=-1)
  assert 0.9 < r.min() and r.max() <= 1 + 1e-9


def test_mesh_sampling_file_round_trip(sampling, tmp_path):
  path = tmp_path / 'mesh_downsampling.npz'
  mesh.write_mesh_sampling(path, sampling)
  loaded = mesh.load_mesh_sampling(path)
  assert loaded.sizes == sampling.sizes
  for a, b in zip(loaded.down + loaded.up, sampling.down + sampling.up):
    np.testing.assert_allclose(a.to_dense(), b.to_dense(), atol=1e-7)


def test_reads_the_graphcmr_layout_written_by_scipy(sampling, tmp_path):
  sp = pytest.importorskip('scipy.sparse')

  def objects(mats):
    arr = np.empty(len(mats), dtype=object)
    arr[:] = mats
    return arr

  path = tmp_path / 'official.npz'
  down = [sp.csc_matrix(d.to_dense()) for d in sampling.down]
  up = [sp.coo_matrix(u.to_dense()) for u in sampling.up]
  adj = [sp.csr_matrix(np.eye(n)) for n in sampling.sizes]
  np.savez(path, A=objects(adj), D=objects(down), U=objects(up))
  loaded = mesh.load_mesh_sampling(path)
  for a, b in zip(loaded.down + loaded.up, sampling.down + sampling.up):
    np.testing.assert_allclose(a.to_dense(), b.to_dense(), atol=1e-7)
  # The file written here holds real scipy csc matrices too.
  mine = tmp_path / 'mine.npz'
  mesh.write_mesh_sampling(mine, sampling)
  with zipfile.ZipFile(mine) as zf, zf.open('D.npy') as fp:
    np.lib.format.read_magic(fp)
    np.lib.format.read_array_header_1_0(fp)
    d = pickle.load(fp, encoding='latin1')
  assert isinstance(d[0], sp.csc_matrix)
  np.testing.assert_array_equal(d[0].toarray(), sampling.down[0].to_dense())


def test_load_mesh_sampling_errors(tmp_path):
  path = tmp_path / 'bad.npz'
  np.savez(path, D=np.zeros(1))
  with pytest.raises(ValueError, match=r"bad.npz: missing key 'U'"):
    mesh.load_mesh_sampling(path)


# PMCE losses on hand-checkable cases.

TRI = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
TRI_F = np.array([[0, 1, 2]])


def test_coord_loss_counts_masked_entries_as_zeros():
  pred = np.zeros((2, 3, 3))
  gt = np.ones((2, 3, 3))
  valid = np.array([[1, 1, 0], [0, 0, 0]], np.float32)[..., None]
  np.testing.assert_allclose(mesh.coord_loss(pred, gt, valid), [2 / 3, 0.0])
  np.testing.assert_allclose(mesh.coord_loss(pred, gt), [1.0, 1.0])


def test_edge_and_normal_losses():
  scaled = TRI * 2.0
  # Edge lengths 1, 1, sqrt 2 -> 2, 2, 2 sqrt 2.
  np.testing.assert_allclose(
    mesh.edge_length_loss(scaled, TRI, TRI_F), [(2 + 2**0.5) / 3], rtol=1e-6
  )
  np.testing.assert_allclose(mesh.edge_length_loss(TRI, TRI, TRI_F), [0.0])
  # In-plane edges are orthogonal to the GT normal; tilt one vertex out of plane by 45 degrees.
  np.testing.assert_allclose(mesh.normal_vector_loss(scaled, TRI, TRI_F), [0.0], atol=1e-7)
  tilted = TRI.copy()
  tilted[0, 1] = [1, 0, 1]
  cos = 1 / 2**0.5  # e01 = (1, 0, 1)/sqrt 2; e12 = (-1, 1, -1)/sqrt 3
  np.testing.assert_allclose(
    mesh.normal_vector_loss(tilted, TRI, TRI_F), [(cos + 0 + 1 / 3**0.5) / 3], rtol=1e-6
  )


def test_losses_have_finite_gradients_on_collapsed_faces():
  collapsed = jnp.zeros((1, 3, 3))
  for loss in (mesh.edge_length_loss, mesh.normal_vector_loss):
    g = jax.grad(lambda p, loss=loss: loss(p, TRI, TRI_F).sum())(collapsed)
    assert np.all(np.isfinite(g))
