"""PSS and the EpipolarPose N-MPJPE: invariances, k-means on separable clusters, save/load, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.metrics import n_mpjpe, n_mpjpe_procrustes_scale
from jaxpose.metrics.pss import (
  assign_clusters,
  fit_and_save_pss_centers,
  fit_pss_centers,
  load_pss_centers,
  normalize_pose,
  pss,
  save_pss_centers,
)


def _clusters(rng, k=4, per=30, joints=6, spread=0.02):
  protos = rng.normal(size=(k, joints, 3))
  protos[:, 0] = 0.0
  lab = np.repeat(np.arange(k), per)
  poses = protos[lab] + spread * rng.normal(size=(k * per, joints, 3))
  poses[:, 0] = 0.0
  return protos, lab, poses


@given(st.integers(0, 2**31 - 1), st.floats(0.1, 10.0), st.integers(1, 5))
def test_normalisation_is_invariant_to_scale_and_translation(seed, scale, root):
  rng = np.random.default_rng(seed)
  pose = rng.normal(size=(2, 6, 3))
  moved = scale * pose + rng.normal(size=(2, 1, 3))
  z = normalize_pose(pose, root)
  np.testing.assert_allclose(normalize_pose(moved, root), z, atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0)
  np.testing.assert_array_equal(z.reshape(2, 6, 3)[:, root], 0.0)


def test_kmeans_recovers_separable_clusters_and_pss():
  rng = np.random.default_rng(0)
  protos, lab, poses = _clusters(rng)
  centers, inertia = fit_pss_centers(poses, 4, seed=1, n_init=3)
  a = assign_clusters(poses, centers)
  # The partition matches the generating labels up to a permutation.
  assert all(len(set(a[lab == i].tolist())) == 1 for i in range(4))
  assert len(set(a.tolist())) == 4 and inertia < 0.2
  scaled = 3.0 * poses  # scale invariance
  np.testing.assert_array_equal(pss(scaled, poses, centers), 1.0)
  swapped = poses[np.roll(np.arange(len(poses)), 30)]  # every pose paired with another cluster's
  np.testing.assert_array_equal(pss(swapped, poses, centers), 0.0)


def test_save_load_roundtrip_and_errors(tmp_path):
  rng = np.random.default_rng(1)
  _, _, poses = _clusters(rng, k=3, per=10)
  path = tmp_path / 'pss_k3.npz'
  centers = fit_and_save_pss_centers(poses, 3, path, seed=0, meta={'dataset': 'synthetic'})
  loaded, meta = load_pss_centers(path)
  np.testing.assert_array_equal(loaded, centers)
  assert meta['k'] == 3 and meta['num_joints'] == 6 and meta['dataset'] == 'synthetic'
  bad = tmp_path / 'bad.npz'
  np.savez(bad, mu=np.zeros((3, 18)))
  with pytest.raises(ValueError, match=r'bad.npz: no key "centers"'):
    load_pss_centers(bad)
  with pytest.raises(ValueError, match=r'centers must be \(K, 3J\)'):
    save_pss_centers(tmp_path / 'x.npz', np.zeros((3, 4)))
  with pytest.raises(ValueError, match=r'k must be in \[1, N=30\], got 31'):
    fit_pss_centers(poses, 31)
  degenerate = poses.copy()
  degenerate[4] = 0.0
  with pytest.raises(ValueError, match='first at index 4'):
    fit_pss_centers(degenerate, 2)


def test_n_mpjpe_procrustes_scale_is_the_repo_definition():
  rng = np.random.default_rng(2)
  gt = rng.normal(size=(3, 17, 3)).astype(np.float32)
  q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  q *= np.sign(np.linalg.det(q))
  pred = (0.5 * (gt + 0.05 * rng.normal(size=gt.shape)) @ q + 1.0).astype(np.float32)
  out = np.asarray(n_mpjpe_procrustes_scale(pred, gt))
  # Reference: MATLAB-procrustes scale (trace of singular values with reflection fix) * |gt0| / |pred0|.
  ref = []
  for p, g in zip(pred.astype(np.float64), gt.astype(np.float64)):
    p0, g0 = p - p.mean(0), g - g.mean(0)
    u, s, vt = np.linalg.svd((g0 / np.linalg.norm(g0)).T @ (p0 / np.linalg.norm(p0)))
    s[-1] *= np.sign(np.linalg.det(vt.T @ u.T))
    b = s.sum() * np.linalg.norm(g0) / np.linalg.norm(p0)
    pn = b * p
    ref.append(np.linalg.norm((pn - pn[0]) - (g - g[0]), axis=1).mean())
  np.testing.assert_allclose(out, ref, rtol=1e-4)
  # It differs from Rhodin's N-MPJPE (least-squares scale, no rotation): here the rotation shrinks
  # the least-squares scale but not the Procrustes scale.
  assert np.all(np.abs(out - np.asarray(n_mpjpe(pred - pred[:, :1], gt - gt[:, :1]))) > 1e-3)
