"""Parity with the official EpipolarPose geometry (`epipolarpose__geometry.npz`, parts A and B).

(A) the official iterative-LS / linear-LS / polynomial triangulations with known P, and the
iterative-LS status codes. (B) F, E, the cheirality pose, the polynomial triangulation at arbitrary
scale and the NMPJPE / PA numbers, for the repo's int32 + LMedS F (`official_lmeds_int`) and the
float 8-point F (`float_8point`). Everything is computed from the fixture's inputs; the only fixture
outputs used as inputs are those a random process produced: OpenCV's LMedS sample (the test searches
every 7-subset of the fixture's inlier set instead, which is deterministic) and, for the int branch,
the rotation/translation it led to when checking the downstream steps.

Part C (patch labels) is tested with the image pipeline.
"""

import numpy as np
import pytest

from jaxpose.geometry import epipolar as ep
from jaxpose.geometry import procrustes
from jaxpose.geometry import triangulation as tri
from jaxpose.metrics import n_mpjpe
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

FILES = fixture_files('epipolarpose', 'geometry*')
BRANCHES = ('official_lmeds_int', 'float_8point')


@pytest.fixture(scope='module', params=FILES)
def fx(request):
  return Fixture(request.param)


def _unit(f):
  """F up to scale: unit Frobenius norm with a fixed sign."""
  f = np.asarray(f, np.float64) / np.linalg.norm(f)
  return f * np.sign(f.flat[np.argmax(np.abs(f))])


def test_triangulations_and_status(fx):
  kp = np.stack([fx['input/u1'], fx['input/u2']])
  proj = np.stack([fx['input/P1'], fx['input/P2']])
  x, status = tri.triangulate_iterative_ls(kp, proj)
  assert_parity(x, fx['output/X_iterative_LS'], name='X_iterative_LS')
  np.testing.assert_array_equal(status, fx['output/status_iterative_LS'])
  assert_parity(tri.triangulate_linear_ls(kp, proj), fx['output/X_linear_LS'], name='X_linear_LS')
  x_poly = tri.triangulate_polynomial(fx['input/u1'], proj[0], fx['input/u2'], proj[1])
  assert_parity(x_poly, fx['output/X_polynomial'], name='X_polynomial')
  gt = fx['input/X_world_gt']
  err = np.linalg.norm((x - x[0]) - (gt - gt[0]), axis=-1).mean()  # root-aligned MPJPE, mm
  assert err == pytest.approx(float(fx['output/mpjpe_iterative_LS']), abs=1e-6)


def test_projection_matrices_from_cameras(fx):
  """P = K [R | -R T] (H36M convention, T = camera centre) rebuilds the fixture's P1, P2."""
  for i in (1, 2):
    r, c = fx[f'input/cam{i}_R'], fx[f'input/cam{i}_T'][:, 0]
    p = tri.projection_matrix(fx['input/K'], r, -r @ c)
    assert_parity(p, fx[f'input/P{i}'], atol=1e-6, name=f'P{i}')


def test_float_8point_F(fx):
  f = ep.fundamental_8point(fx['input/u1'], fx['input/u2'])
  assert_parity(_unit(f), _unit(fx['output/F_8point']), atol=1e-6, name='F_8point')
  # Same scale convention as OpenCV (F[2,2] = 1 here).
  assert_parity(f, fx['output/F_8point'], name='F_8point (scaled)')


def test_official_lmeds_F_on_the_fixture_inliers(fx):
  """Deterministic part of the official LMedS: the best 7-point model among subsets of its inliers.

  OpenCV's LMedS draws random 7-point samples with an internal RNG; the winning model is a 7-point
  solution (zero residual on 7 inliers, not refitted). Scoring every 7-subset of the fixture's
  inlier set by the LMedS median over all joints must give back the same F and the same inliers.
  """
  i1 = fx['input/u1'].astype(np.int32).astype(np.float64)
  i2 = fx['input/u2'].astype(np.int32).astype(np.float64)
  inl_u1, inl_u2 = fx['output/F_official_inliers_u1'], fx['output/F_official_inliers_u2']
  assert len(inl_u1) == fx.meta['n_F_inliers_official']
  idx = [
    int(np.flatnonzero((i1 == a).all(1) & (i2 == b).all(1))[0]) for a, b in zip(inl_u1, inl_u2)
  ]
  est = ep.fundamental_lmeds(i1, i2, subsets=ep.all_subsets(idx))
  np.testing.assert_array_equal(np.flatnonzero(est.inliers), sorted(idx))
  assert_parity(_unit(est.F), _unit(fx['output/F_official']), atol=1e-9, name='F_official')
  assert_parity(est.F, fx['output/F_official'], name='F_official (scaled)')


@pytest.mark.parametrize('branch', BRANCHES)
def test_relative_pose_and_pseudo_label(fx, branch):
  u1, u2, k = fx['input/u1'], fx['input/u2'], fx['input/K']
  f = ep.fundamental_8point(u1, u2) if branch == 'float_8point' else fx['output/F_official']
  e = ep.essential_from_fundamental(f, k)  # the repo's same-K form
  assert_parity(_unit(e), _unit(fx[f'output/{branch}/E']), atol=1e-6, name=f'{branch}/E')
  r, t, front = ep.recover_pose(e, u1, u2, k)
  assert_parity(r, fx[f'output/{branch}/R_rel'], atol=1e-5, name=f'{branch}/R_rel')
  assert_parity(t, fx[f'output/{branch}/t_rel'], atol=1e-5, name=f'{branch}/t_rel')
  assert int(front.sum()) == int(fx[f'output/{branch}/n_in_front'])
  r_gt = fx['output/R_rel_gt']
  rot = ep.rotation_angle_deg(r, r_gt)
  assert rot == pytest.approx(float(fx[f'output/{branch}/rot_err_deg']), abs=1e-3)
  # Pseudo label with the fixture's F (the relative pose is then fully determined).
  rel = ep.RelativePose(r, t, f, e, np.ones(len(u1), bool), front)
  lab = ep.pseudo_label_pose(u1, u2, k, relative=rel)
  assert_parity(
    lab.pose3d_cam1, fx[f'output/{branch}/X_cam1_up_to_scale'], atol=1e-6, name=f'{branch}/X'
  )
  # NMPJPE: Rhodin's least-squares scale on root-relative poses (mm).
  gt = fx['output/X_cam1_gt'] - fx['output/X_cam1_gt'][0]
  pred = lab.pose3d_rel
  scale = np.sum(gt * pred) / np.sum(pred * pred)
  assert scale == pytest.approx(float(fx[f'output/{branch}/nmpjpe_scale']), rel=1e-6)
  assert float(n_mpjpe(pred, gt)) == pytest.approx(float(fx[f'output/{branch}/nmpjpe']), rel=1e-4)
  # PA: similarity Procrustes of the root-relative prediction.
  s, rot_pa, tr_pa = (np.asarray(a) for a in procrustes.similarity_transform(pred, gt))
  assert float(s) == pytest.approx(float(fx[f'output/{branch}/pa_scale']), rel=1e-4)
  assert_parity(rot_pa, fx[f'output/{branch}/pa_R'], atol=1e-4, rtol_l2=1e-4, name='pa_R')
  aligned = np.asarray(procrustes.align(pred, gt))
  pa = np.linalg.norm(aligned - gt, axis=-1).mean()
  assert pa == pytest.approx(float(fx[f'output/{branch}/pa_mpjpe']), rel=1e-4)


def test_float_8point_pipeline_end_to_end(fx):
  """The paper's pipeline from the 2D alone (no fixture outputs as inputs)."""
  lab = ep.pseudo_label_pose(fx['input/u1'], fx['input/u2'], fx['input/K'], estimator='8point')
  b = 'output/float_8point'
  assert_parity(lab.R, fx[f'{b}/R_rel'], atol=1e-5, name='R_rel')
  assert_parity(lab.pose3d_cam1, fx[f'{b}/X_cam1_up_to_scale'], atol=1e-5, name='X_cam1')
