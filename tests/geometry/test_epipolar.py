"""Epipolar geometry on synthetic two-camera scenes: F, E, (R, t), robust estimators, pseudo labels."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import epipolar as ep
from jaxpose.geometry import triangulation as tri
from tests.geometry._multiview import rig, skeleton


def _h(u):
  return np.concatenate([u, np.ones(u.shape[:-1] + (1,))], -1)


def scene(seed, joints=17, noise=0.0):
  rng = np.random.default_rng(seed)
  k, r, t, p = rig(rng, 2)
  x = skeleton(rng, joints)
  kp = tri.project(x, p) + rng.normal(scale=noise, size=(2, joints, 2))
  r_rel, t_rel = ep.relative_pose_from_extrinsics(r[0], t[0], r[1], t[1])
  return dict(k=k, r=r, t=t, p=p, x=x, u1=kp[0], u2=kp[1], r_rel=r_rel, t_rel=t_rel, rng=rng)


@given(st.integers(0, 2**31 - 1))
def test_8point_satisfies_the_epipolar_constraint_and_recovers_pose(seed):
  s = scene(seed)
  f = ep.fundamental_8point(s['u1'], s['u2'])
  assert np.linalg.matrix_rank(f, tol=1e-9 * np.abs(f).max()) == 2
  res = np.einsum('ni,ij,nj->n', _h(s['u2']), f, _h(s['u1']))
  lines = np.einsum('ij,nj->ni', f, _h(s['u1']))
  assert np.abs(res / np.linalg.norm(lines[:, :2], axis=1)).max() < 1e-6  # pixels
  f_true = tri.fundamental_from_projections(s['p'][0], s['p'][1])
  np.testing.assert_allclose(
    f / np.linalg.norm(f) * np.sign(f[2, 2] * f_true[2, 2]), f_true, atol=1e-6
  )
  rel = ep.relative_pose(s['u1'], s['u2'], s['k'][0], s['k'][1])
  assert ep.rotation_angle_deg(rel.R, s['r_rel']) < 1e-5
  np.testing.assert_allclose(rel.t, s['t_rel'] / np.linalg.norm(s['t_rel']), atol=1e-6)
  assert rel.in_front.all()


@given(st.integers(0, 2**31 - 1))
def test_seven_point_solutions_are_exact_on_their_sample(seed):
  s = scene(seed, joints=7)
  fs, valid = ep.seven_point(s['u1'][None], s['u2'][None])
  assert valid[0].any()
  for f in fs[0][valid[0]]:
    assert np.sqrt(ep.epipolar_errors(f, s['u1'], s['u2'])).max() < 1e-6
    assert abs(np.linalg.det(f / np.linalg.norm(f))) < 1e-9
  # The true F is one of the solutions.
  f_true = tri.fundamental_from_projections(s['p'][0], s['p'][1])
  dist = [
    min(np.abs(f / np.linalg.norm(f) - g * f_true).max() for g in (1, -1)) for f in fs[0][valid[0]]
  ]
  assert min(dist) < 1e-6


def test_robust_estimators_reject_outliers():
  s = scene(11, joints=60, noise=0.3)
  u2 = s['u2'].copy()
  bad = np.arange(0, 60, 4)  # 25 % outliers
  u2[bad] += s['rng'].uniform(30, 80, size=(len(bad), 2)) * s['rng'].choice([-1, 1], (len(bad), 2))
  plain = ep.relative_pose(s['u1'], u2, s['k'][0], s['k'][1])
  for est in ('ransac', 'lmeds'):
    rel = ep.relative_pose(s['u1'], u2, s['k'][0], s['k'][1], estimator=est, seed=0)
    assert not rel.inliers[bad].any(), est
    assert rel.inliers.sum() >= 40, est
    assert ep.rotation_angle_deg(rel.R, s['r_rel']) < 1.0, est
  assert ep.rotation_angle_deg(plain.R, s['r_rel']) > 2.0  # the outliers do matter
  a = ep.fundamental_ransac(s['u1'], u2, seed=3)
  b = ep.fundamental_ransac(s['u1'], u2, seed=np.random.default_rng(3))
  np.testing.assert_array_equal(a.F, b.F)  # seeded


def test_lmeds_inlier_rule_and_exhaustive_subsets():
  # LMedS needs n // 2 >= 7 (a 7-point model fits its own sample exactly): 20 points, 3 outliers.
  s = scene(12, joints=20, noise=0.0)
  u2 = s['u2'].copy()
  u2[[1, 5, 14]] += 25.0
  est = ep.fundamental_lmeds(s['u1'], u2, subsets=ep.all_subsets(np.arange(10)))
  assert est.iterations == 120  # C(10, 7)
  np.testing.assert_array_equal(np.flatnonzero(~est.inliers), [1, 5, 14])
  assert est.score < 1e-12
  rand = ep.fundamental_lmeds(s['u1'], u2, seed=1, iterations=200)
  np.testing.assert_array_equal(rand.inliers, est.inliers)
  # Inlier threshold: sigma = 2.5 * 1.4826 * (1 + 5 / (n - 7)) * sqrt(median), floored at 1e-3 px.
  assert ep.lmeds_sigma(0.04, 17) == pytest.approx(2.5 * 1.4826 * 1.5 * 0.2)
  assert ep.lmeds_sigma(0.0, 17) == 0.001


def test_official_estimator_truncates_to_int():
  s = scene(13, noise=0.0)
  est = ep.fundamental_official(s['u1'] + 0.99, s['u2'] + 0.99, seed=0)
  ref = ep.fundamental_lmeds(np.trunc(s['u1'] + 0.99), np.trunc(s['u2'] + 0.99), seed=0)
  np.testing.assert_array_equal(est.F, ref.F)
  np.testing.assert_array_equal(est.inliers, ref.inliers)


def test_essential_forms():
  s = scene(14)
  f = ep.fundamental_8point(s['u1'], s['u2'])
  e = ep.essential_from_fundamental(f, s['k'][0], s['k'][1])
  y1 = (np.linalg.inv(s['k'][0]) @ _h(s['u1']).T).T
  y2 = (np.linalg.inv(s['k'][1]) @ _h(s['u2']).T).T
  assert np.abs(np.einsum('ni,ij,nj->n', y2, e, y1)).max() < 1e-9 * np.abs(e).max()
  sv = np.linalg.svd(e, compute_uv=False)
  assert sv[0] == pytest.approx(sv[1], rel=1e-6) and sv[2] < 1e-9 * sv[0]
  np.testing.assert_allclose(
    ep.essential_from_fundamental(f, s['k'][0]), s['k'][0].T @ f @ s['k'][0]
  )  # the repo's same-K form
  rs, ts = ep.decompose_essential(e)
  assert np.allclose(np.linalg.det(rs), 1.0) and np.allclose(np.linalg.norm(ts, axis=1), 1.0)
  counts, _ = ep.cheirality_counts(rs, ts, y1[:, :2], y2[:, :2])
  assert sorted(counts.tolist())[-1] == 17 and sorted(counts.tolist())[-2] < 17


@given(st.integers(0, 2**31 - 1))
def test_pseudo_label_recovers_the_pose_up_to_scale(seed):
  s = scene(seed)
  lab = ep.pseudo_label_pose(s['u1'], s['u2'], s['k'][0], s['k'][1])
  x_cam1 = s['x'] @ s['r'][0].T + s['t'][0]
  scale = np.linalg.norm(s['t_rel'])
  np.testing.assert_allclose(lab.pose3d_cam1 * scale, x_cam1, atol=1e-6)
  np.testing.assert_allclose(lab.pose3d_rel, lab.pose3d_cam1 - lab.pose3d_cam1[0])
  with_rt, world = ep.pseudo_label_pose_extrinsics(
    s['u1'], s['u2'], s['k'][0], s['r'][0], s['t'][0], s['k'][1], s['r'][1], s['t'][1]
  )
  np.testing.assert_allclose(world, s['x'], atol=1e-8)
  np.testing.assert_allclose(with_rt.pose3d_cam1, x_cam1, atol=1e-8)


def test_pooled_relative_pose_beats_single_frames():
  rng = np.random.default_rng(15)
  k, r, t, p = rig(rng, 2)
  frames = np.stack([skeleton(rng, 17) for _ in range(30)])
  kp = np.stack([tri.project(x, p) for x in frames]) + rng.normal(scale=2.0, size=(30, 2, 17, 2))
  r_rel, _ = ep.relative_pose_from_extrinsics(r[0], t[0], r[1], t[1])
  pooled = ep.pooled_relative_pose(kp[:, 0], kp[:, 1], k[0], k[1], pair=('c1', 'c2'))
  single = [
    ep.rotation_angle_deg(ep.relative_pose(kp[i, 0], kp[i, 1], k[0], k[1]).R, r_rel)
    for i in range(5)
  ]
  err = ep.rotation_angle_deg(pooled.R, r_rel)
  assert err < 2.0 and err < np.median(single)
  assert pooled.inliers.shape == (30 * 17,)
  valid = np.ones((30, 17), bool)
  valid[:, 3] = False
  masked = ep.pooled_relative_pose(kp[:, 0], kp[:, 1], k[0], k[1], valid=valid)
  assert not masked.inliers.reshape(30, 17)[:, 3].any()
  with pytest.raises(ValueError, match=r'pair \(c1, c2\): views disagree: view 1 has 30 frames'):
    ep.pooled_relative_pose(kp[:, 0], kp[:29, 1], k[0], pair=('c1', 'c2'))


def test_degenerate_correspondences_name_the_pair_and_frame():
  s = scene(16)
  where = 'pair (cam01, cam02), frame 12'
  with pytest.raises(ValueError, match=r'pair \(cam01, cam02\), frame 12: .*at least 8.*got 7'):
    ep.fundamental_8point(s['u1'][:7], s['u2'][:7], where=where)
  same = np.tile(s['u1'][:1], (10, 1))
  with pytest.raises(
    ValueError, match='frame 12: degenerate correspondences: all u1 points are identical'
  ):
    ep.fundamental_8point(same, s['u2'][:10], where=where)
  line = np.stack([np.linspace(0, 100, 10), 2 * np.linspace(0, 100, 10) + 3], 1)
  with pytest.raises(
    ValueError, match='frame 12: degenerate correspondences: the u2 points are collinear'
  ):
    ep.fundamental_lmeds(s['u1'][:10], line, where=where)
  with pytest.raises(ValueError, match='u1 has 17 points, u2 has 16'):
    ep.fundamental_ransac(s['u1'], s['u2'][:16], where=where)
  with pytest.raises(ValueError, match='non-finite points at indices'):
    bad = s['u1'].copy()
    bad[3, 0] = np.nan
    ep.fundamental_8point(bad, s['u2'], where=where)
  with pytest.raises(ValueError, match="K of view 'view 2' is not invertible"):
    ep.essential_from_fundamental(np.eye(3), s['k'][0], np.zeros((3, 3)), where=where)
  with pytest.raises(ValueError, match='unknown estimator'):
    ep.relative_pose(s['u1'], s['u2'], s['k'][0], estimator='5point')


def test_refinement_recovers_the_pose_despite_outliers():
  s = scene(17)
  rng = np.random.default_rng(17)
  world = rng.normal(scale=0.6, size=(100, 3)) + [0.0, 0.0, 1.0]  # a person-sized cloud of points
  kp = tri.project(world, s['p']) + rng.normal(scale=1.0, size=(2, 100, 2))
  s['u1'], u2 = kp[0], kp[1].copy()
  bad = np.arange(0, 100, 5)  # 20 % gross outliers
  u2[bad] += rng.uniform(200, 400, (20, 2)) * rng.choice([-1, 1], (20, 2))
  t_true = s['t_rel'] / np.linalg.norm(s['t_rel'])
  r0 = ep._rodrigues(np.radians([3.0, -2.0, 2.0])) @ s['r_rel']
  t0 = t_true + [0.05, -0.05, 0.02]
  assert ep.rotation_angle_deg(r0, s['r_rel']) > 3.0
  r, t = ep.refine_relative_pose(r0, t0, s['u1'], u2, s['k'][0], s['k'][1])
  assert ep.rotation_angle_deg(r, s['r_rel']) < 0.3
  assert np.degrees(np.arccos(np.clip(t @ t_true, -1, 1))) < 1.0
  a = ep.relative_pose(s['u1'], u2, s['k'][0], s['k'][1], estimator='ransac', seed=0, refine=True)
  b = ep.relative_pose(s['u1'], u2, s['k'][0], s['k'][1], estimator='ransac', seed=5, refine=True)
  assert ep.rotation_angle_deg(a.R, b.R) < 1e-3  # the refinement forgets the RANSAC sample
  x2 = np.concatenate([u2, np.ones((100, 1))], 1)
  x1 = np.concatenate([s['u1'], np.ones((100, 1))], 1)
  good = np.setdiff1d(np.arange(100), bad)
  res = np.einsum('ni,ij,nj->n', x2[good], a.F, x1[good])
  lines = np.einsum('ij,nj->ni', a.F, x1[good])
  assert np.median(np.abs(res) / np.linalg.norm(lines[:, :2], axis=1)) < 2.0  # px, F from (R, t)


def test_pseudo_label_batch_shared_and_per_sample():
  rng = np.random.default_rng(18)
  k, r, t, p = rig(rng, 2)
  frames = np.stack([skeleton(rng, 17) for _ in range(4)])
  kp = np.stack([tri.project(x, p) for x in frames])  # (B, V, J, 2)
  r_rel, t_rel = ep.relative_pose_from_extrinsics(r[0], t[0], r[1], t[1])
  x_cam1 = frames @ r[0].T + t[0]
  gt = (x_cam1 - x_cam1[:, :1]) / np.linalg.norm(t_rel)  # the |t| = 1 scale
  shared = ep.pooled_relative_pose(kp[:, 0], kp[:, 1], k[0], k[1])
  pose, valid = ep.pseudo_label_batch(kp[:, 0], kp[:, 1], k[0], k[1], relative=shared)
  assert valid.all()
  np.testing.assert_allclose(pose, gt, atol=1e-6)
  per, valid = ep.pseudo_label_batch(kp[:, 0], kp[:, 1], k[0], k[1])
  np.testing.assert_allclose(per, gt, atol=1e-6)
  bad = kp.copy()
  bad[2, 0] = bad[2, 0, :1]  # all joints identical in view 1 of sample 2
  with pytest.raises(ValueError, match='sample S9/walk#2: degenerate'):
    ep.pseudo_label_batch(
      bad[:, 0], bad[:, 1], k[0], k[1], names=[f'S9/walk#{i}' for i in range(4)]
    )
  pose, valid = ep.pseudo_label_batch(bad[:, 0], bad[:, 1], k[0], k[1], skip_degenerate=True)
  assert valid.tolist() == [True, True, False, True] and np.isnan(pose[2]).all()
