"""Pose2Sim demo: does jaxpose's geometry reproduce the calibrated 3D and the camera rotations?

(a) DLT triangulation with the `.qca` calibration (jaxpose.data.qca), best 3 of 4 views per point,
    median / p90 reprojection error (research/real_data.md §3 reports 7.9 px / 17 px).
(b) F -> E -> (R, t) from the 2D alone for each of the 6 camera pairs, pooling the 100 frames
    (jaxpose.geometry.epipolar.pooled_relative_pose), and the angle between the recovered and the
    calibrated relative rotation.

  .venv/bin/python experiments/pose2sim_geometry/geometry_check.py \
      --demo <.../Pose2Sim/Demo_SinglePerson> \
      --kp2d experiments/pose2sim_geometry/kp2d_mediapipe_h36m17.npz --out results.json

Runs in jaxpose's environment (numpy float64 geometry; OpenCV only for the optional undistortion).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib

import numpy as np

from jaxpose.data import qca
from jaxpose.geometry import epipolar as ep
from jaxpose.geometry import skeleton
from jaxpose.geometry import triangulation as tri

# H36M-17 indices of shoulders, elbows, wrists, hips, knees and ankles (real_data.md §3's check).
LIMB_JOINTS = (11, 12, 13, 14, 15, 16, 1, 2, 3, 4, 5, 6)


def load(kp2d_path, demo):
  z = np.load(kp2d_path, allow_pickle=False)
  cams = qca.read_qca(pathlib.Path(demo) / 'calibration' / 'Calib.qca.txt')
  names = [str(c) for c in z['cameras']]
  if names != [c.name for c in cams]:
    raise SystemExit(f'camera names differ: npz {names}, qca {[c.name for c in cams]}')
  return z, cams


def undistort(kp, cam):
  import cv2

  flat = kp.reshape(-1, 1, 2).astype(np.float64)
  ok = np.isfinite(flat).all(-1)[:, 0]
  out = flat.copy()
  out[ok] = cv2.undistortPoints(flat[ok], cam.K, cam.dist, P=cam.K)
  return out.reshape(kp.shape)


def reprojection_stats(kp_tvj, proj, joints):
  """Best-3-of-4 DLT; errors per (frame, joint) over the used views and per (frame, joint, view)."""
  pts, used, err = tri.triangulate_best_subset(kp_tvj, proj, num_views=3)
  per_view = tri.reprojection_errors(pts, proj, kp_tvj)  # (T, V, J)
  j = list(joints)
  pv = per_view[:, :, j][used[:, :, j]]
  pm = err[:, j].ravel()
  return pts, {
    'median_px_point_view': float(np.median(pv)),
    'p90_px_point_view': float(np.percentile(pv, 90)),
    'median_px_point_mean': float(np.median(pm)),
    'p90_px_point_mean': float(np.percentile(pm, 90)),
    'n_points': int(pm.size),
  }


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--demo', required=True)
  ap.add_argument('--kp2d', required=True)
  ap.add_argument('--out', default='')
  ap.add_argument('--min_conf', type=float, default=0.5)
  ap.add_argument('--threshold_px', type=float, default=10.0)
  ap.add_argument('--seeds', type=int, default=3)
  args = ap.parse_args()
  z, cams = load(args.kp2d, args.demo)
  kp = np.transpose(z['kp2d_px'].astype(np.float64), (1, 0, 2, 3))  # (T, V, J, 2)
  conf = np.transpose(z['kp2d_conf'], (1, 0, 2))  # (T, V, J)
  proj = np.stack([c.P for c in cams])
  results = {'cameras': [c.name for c in cams], 'frames': int(kp.shape[0])}
  # The npz's H36M-17 must be jaxpose's mediapipe33 -> h36m17 map of its raw landmarks.
  mapped = skeleton.convert(z['mp33_px'].astype(np.float64), 'mediapipe33', 'h36m17')
  results['mapping_max_diff_px'] = float(np.abs(mapped - z['kp2d_px']).max())

  # (a) triangulation + reprojection
  pts, stats = reprojection_stats(kp, proj, LIMB_JOINTS)
  results['reprojection_best3of4'] = stats
  kp_u = np.stack([undistort(kp[:, v], cams[v]) for v in range(len(cams))], axis=1)
  results['reprojection_best3of4_undistorted'] = reprojection_stats(kp_u, proj, LIMB_JOINTS)[1]
  noflip = np.stack(
    [tri.projection_matrix(c.K, qca.PI_ABOUT_X @ c.R, qca.PI_ABOUT_X @ c.t) for c in cams]
  )
  results['reprojection_without_pi_flip'] = reprojection_stats(kp, noflip, LIMB_JOINTS)[1]
  two = tri.triangulate_dlt(kp[:, :2], proj[:2])
  e34 = tri.reprojection_errors(two, proj[2:], kp[:, 2:])[:, :, list(LIMB_JOINTS)]
  results['two_view_cam01_cam02_into_cam03_cam04_median_px'] = float(np.median(e34))
  pelvis_h = np.median(pts[:, 0, 2])
  thigh = np.median(np.linalg.norm(pts[:, [1, 4]] - pts[:, [2, 5]], axis=-1))
  results['skeleton'] = {'pelvis_height_m': float(pelvis_h), 'thigh_m': float(thigh)}

  # (b) relative rotation per pair from the 2D alone (undistorted keypoints, confident in both views)
  variants = {  # name: (estimator, RANSAC threshold px, refine)
    'ransac10_refined': ('ransac', args.threshold_px, True),
    'ransac10': ('ransac', args.threshold_px, False),
    'lmeds': ('lmeds', 0.0, False),
    '8point': ('8point', 0.0, False),
  }
  pairs = []
  for a, b in itertools.combinations(range(len(cams)), 2):
    r_cal, t_cal = ep.relative_pose_from_extrinsics(cams[a].R, cams[a].t, cams[b].R, cams[b].t)
    t_dir = t_cal / np.linalg.norm(t_cal)
    valid = (conf[:, a] >= args.min_conf) & (conf[:, b] >= args.min_conf)
    f_cal = tri.fundamental_from_projections(cams[a].P, cams[b].P)
    d_cal = np.sqrt(ep.epipolar_errors(f_cal, kp_u[:, a][valid], kp_u[:, b][valid]))
    row = {
      'pair': f'{cams[a].name}-{cams[b].name}',
      'correspondences': int(valid.sum()),
      'baseline_angle_deg': ep.rotation_angle_deg(np.eye(3), r_cal),
      'calibrated_F_epipolar_dist_px': {
        'median': float(np.median(d_cal)),
        'p90': float(np.percentile(d_cal, 90)),
      },
    }
    for name, (est, thr, refine) in variants.items():
      runs = []
      for seed in range(args.seeds if est in ('ransac', 'lmeds') else 1):
        rel = ep.pooled_relative_pose(
          kp_u[:, a],
          kp_u[:, b],
          cams[a].K,
          cams[b].K,
          valid=valid,
          estimator=est,
          seed=seed,
          threshold_px=thr or ep.RANSAC_THRESHOLD_PX,
          refine=refine,
          pair=(cams[a].name, cams[b].name),
        )
        runs.append(
          (
            ep.rotation_angle_deg(rel.R, r_cal),
            float(np.degrees(np.arccos(np.clip(rel.t @ t_dir, -1, 1)))),
            int(rel.inliers.sum()),
          )
        )
      runs = np.array(runs)
      row[name] = {
        'rot_err_deg_per_seed': runs[:, 0].tolist(),
        't_dir_err_deg_per_seed': runs[:, 1].tolist(),
        'inliers_per_seed': runs[:, 2].astype(int).tolist(),
      }
    # Single-frame estimates (17 joints, the paper's setting) for contrast: median over frames.
    single = []
    for f in range(kp.shape[0]):
      m = valid[f]
      if m.sum() < 8:
        continue
      try:
        rel = ep.relative_pose(kp_u[f, a][m], kp_u[f, b][m], cams[a].K, cams[b].K)
      except ValueError:
        continue
      single.append(ep.rotation_angle_deg(rel.R, r_cal))
    row['single_frame_8point_median_rot_err_deg'] = float(np.median(single)) if single else None
    pairs.append(row)
  results['relative_rotation'] = pairs

  print(json.dumps(results, indent=1))
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1) + '\n')


if __name__ == '__main__':
  main()
