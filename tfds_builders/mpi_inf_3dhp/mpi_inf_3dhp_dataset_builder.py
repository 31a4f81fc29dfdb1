"""MPI-INF-3DHP from the preprocessed npz files of P-STMO and D3DP (research/data.md §3).

Configs:
  gt (default): P-STMO's `data_train_3dhp.npz` / `data_test_3dhp.npz`, 3D = `univ_annot3`.
  annot3: D3DP's own `data_train_3dhp_ori.npz` / `data_test_3dhp_ori.npz` (also used by PoSynDA;
      research/d3dp.md §1, posynda.md §1): exactly the same structure, but the 3D is `annot3`, the
      subject's real camera-space skeleton (mm), and the test records carry the official test
      cameras (below) instead of a fit.

`data_train_3dhp.npz`: {'data': {'S1 Seq1': [{camera: {'data_2d': (F,17,2) px, 'data_3d': (F,17,3)
mm}}, fps]}}, 8 cameras per sequence, 2048x2048 images. `data_test_3dhp.npz`: {'data': {'TS1':
{'data_2d', 'data_3d', 'valid'}}}; TS1-TS4 are 2048x2048, TS5-TS6 1920x1080 (outdoor).

Records: one per (sequence, camera) in train (subject 'S1', action 'Seq1', camera '0') and one per
test sequence (subject = action = 'TS1', camera '0'). Joints are the 17 "relevant" 3DHP joints
(layout mpi3dhp17, root 14 = pelvis); 3D is `univ_annot3` (the universal, H36M-height skeleton the
lifting papers train and test on; `annot3` for the annot3 config) in the camera frame, converted
from mm to metres. `valid` is the official valid-frame mask on test (only valid frames are
evaluated) and all True on train.

`cam_intrinsics` is not in the files: it is a least-squares pinhole fit (fx, fy, cx, cy; no
distortion) of the record's 2D against its 3D, as mmpose does for its `cameras_test.pkl`. It is an
estimate (the universal skeleton is rescaled, so it does not project exactly onto the 2D). The
annot3 TEST records instead hold the official test cameras in pixels (`official_test_intrinsics`,
zero distortion), the cameras D3DP and PoSynDA project with; annot3 is the real skeleton, so its
3D projects onto its 2D through them. annot3 train records keep the fit. fps is the per-sequence
rate on train and 0 (not in the files) on test.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data.io import (
  DataFormatError,
  as_array,
  get_key,
  load_npz_dict,
  require_file,
  type_name,
)
from tfds_builders._common import Example, SequenceBuilder, SequenceConfig, make_example

TEST_RES = {
  'TS1': (2048, 2048),
  'TS2': (2048, 2048),
  'TS3': (2048, 2048),
  'TS4': (2048, 2048),
  'TS5': (1920, 1080),
  'TS6': (1920, 1080),
}
TRAIN_RES = (2048, 2048)
# Manual files of each config: (train, test).
FILES = {
  'gt': ('data_train_3dhp.npz', 'data_test_3dhp.npz'),
  'annot3': ('data_train_3dhp_ori.npz', 'data_test_3dhp_ori.npz'),
}
# The official 3DHP test cameras, as D3DP's main_3dhp.py and PoSynDA's h36m_3dhp_transfer.py
# hard-code them (research/d3dp.md §3, posynda.md §4; data.md §3.3: the release's calibration gives
# the same focal lengths). Per sequence: [w, h, sensor_w, sensor_h] (pixels, pixels, mm, mm) and
# the camera [fx, fy, cx, cy] in mm, the principal point as an offset from the image centre.
_STUDIO_CAM = ((2048, 2048, 10.0, 10.0), (7.32506, 7.32506, -0.0322884, 0.0929296))
_OUTDOOR_CAM = ((1920, 1080, 10.0, 5.625), (8.770747185, 8.770747185, -0.104908645, 0.104899704))
TEST_CAMERAS_MM = {
  'TS1': _STUDIO_CAM,
  'TS2': _STUDIO_CAM,
  'TS3': _STUDIO_CAM,
  'TS4': _STUDIO_CAM,
  'TS5': _OUTDOOR_CAM,
  'TS6': _OUTDOOR_CAM,
}


def official_test_intrinsics(ts: str) -> np.ndarray:
  """The official camera of test sequence `ts` ('TS1'..'TS6') in pixels (TEST_CAMERAS_MM).

  fx_px = fx w / sensor_w, fy_px = fy h / sensor_h, cx_px = cx w / sensor_w + w / 2 and
  cy_px = cy h / sensor_h + h / 2, as D3DP's main_3dhp.py converts them.

  Returns:
    (9,) float32 [fx, fy, cx, cy, 0, 0, 0, 0, 0]: pixels, no distortion.
  """
  (w, h, sensor_w, sensor_h), (fx, fy, cx, cy) = TEST_CAMERAS_MM[ts]
  sx, sy = w / sensor_w, h / sensor_h
  out = np.zeros(9, np.float64)
  out[:4] = [fx * sx, fy * sy, cx * sx + w / 2, cy * sy + h / 2]
  return out.astype(np.float32)


def fit_pinhole(kp2d_px: np.ndarray, pose3d: np.ndarray) -> np.ndarray:
  """Least-squares pinhole intrinsics u = fx X/Z + cx, v = fy Y/Z + cy.

  Args:
    kp2d_px: (T, J, 2) pixels.
    pose3d: (T, J, 3) camera frame (any unit), Z > 0.

  Returns:
    (9,) float32 [fx, fy, cx, cy, 0, 0, 0, 0, 0]; zeros if the fit is degenerate.
  """
  z = pose3d[..., 2]
  ok = z > 1e-6
  out = np.zeros(9, np.float32)
  for axis in (0, 1):
    x = (pose3d[..., axis][ok] / z[ok]).astype(np.float64)
    u = kp2d_px[..., axis][ok].astype(np.float64)
    if x.size < 2 or np.ptp(x) < 1e-9:
      return np.zeros(9, np.float32)
    a = np.stack([x, np.ones_like(x)], axis=1)
    (f, c), *_ = np.linalg.lstsq(a, u, rcond=None)
    out[axis], out[2 + axis] = f, c
  return out


class Builder(SequenceBuilder):
  """MPI-INF-3DHP sequences (P-STMO npz files, universal skeleton; D3DP's _ori files, annot3)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: P-STMO train/test npz, valid-frame masks.'}
  BUILDER_CONFIGS = [
    SequenceConfig(
      name='gt',
      source_2d='gt',
      layout_2d='mpi3dhp17',
      layout_3d='mpi3dhp17',
      description='annotated 2D, univ_annot3 3D',
    ),
    SequenceConfig(
      name='annot3',
      source_2d='gt',
      layout_2d='mpi3dhp17',
      layout_3d='mpi3dhp17',
      description="D3DP's data_{train,test}_3dhp_ori.npz: annotated 2D, annot3 3D, "
      'official test cameras',
    ),
  ]
  DEFAULT_CONFIG_NAME = 'gt'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the preprocessed MPI-INF-3DHP files directly in manual_dir:
    config gt (default, univ_annot3):
      data_train_3dhp.npz and data_test_3dhp.npz (made by P-STMO's common/data_to_npz_3dhp.py and
      data_to_npz_3dhp_test.py from the official release; MotionAGFormer links the same files);
    config annot3 (annot3, the real skeleton):
      data_train_3dhp_ori.npz and data_test_3dhp_ori.npz (the D3DP authors' own files, with the
      same structure; PoSynDA uses the same).
  They hold pickles: use copies you trust.
  """
  FPS = 0.0  # per record: 25 or 50 on train, unknown on test

  @property
  def NOTES(self) -> str:  # noqa: N802 - matches the base-class constant
    if self.builder_config.name == 'annot3':
      return (
        'test intrinsics are the official cameras, train intrinsics least-squares pinhole '
        'fits; test fps unknown (0)'
      )
    return 'intrinsics are least-squares pinhole fits; test fps unknown (0)'

  def read_splits(self, manual_dir) -> dict[str, list[tuple[str, Example]]]:
    ins = self.MANUAL_DOWNLOAD_INSTRUCTIONS
    name = self.builder_config.name
    train_file, test_file = FILES[name]
    return {
      'train': read_train(require_file(manual_dir, train_file, ins)),
      'test': read_test(
        require_file(manual_dir, test_file, ins), official_cameras=name == 'annot3'
      ),
    }


def _record(
  path, key, kp, pose_mm, subject, action, camera, res, fps, valid=None, intrinsics=None
) -> Example:
  """One record; intrinsics None -> the least-squares fit of its 2D against its 3D."""
  kp = as_array(kp, path, f"{key}['data_2d']", (None, 17, 2))
  pose = as_array(pose_mm, path, f"{key}['data_3d']", (kp.shape[0], 17, 3), dtype=np.float64)
  return make_example(
    file=path,
    key=key,
    kp2d_px=kp,
    pose3d_cam=pose / 1000.0,
    j2d=17,
    j3d=17,
    subject=subject,
    action=action,
    camera=camera,
    res_w=res[0],
    res_h=res[1],
    fps=fps,
    cam_intrinsics=fit_pinhole(kp, pose) if intrinsics is None else intrinsics,
    valid=valid,
  )


def read_train(path) -> list[tuple[str, Example]]:
  data = load_npz_dict(path, 'data')
  out = []
  for seq in sorted(data):
    where = f'data[{seq!r}]'
    entry = data[seq]
    if not isinstance(entry, list | tuple) or len(entry) != 2 or not isinstance(entry[0], dict):
      raise DataFormatError(path, where, '[{camera: {...}}, fps]', type_name(entry))
    dic_cam, fps = entry
    parts = str(seq).split(' ')
    if len(parts) != 2:
      raise DataFormatError(path, where, "sequence keys like 'S1 Seq1'", repr(seq))
    for cam in sorted(dic_cam, key=str):
      w = f'{where}[0][{cam!r}]'
      d = dic_cam[cam]
      kp, pose = get_key(d, 'data_2d', path, w), get_key(d, 'data_3d', path, w)
      out.append(
        (
          f'{seq}/{cam}',
          _record(path, w, kp, pose, parts[0], parts[1], str(cam), TRAIN_RES, float(fps)),
        )
      )
  return out


def read_test(path, official_cameras: bool = False) -> list[tuple[str, Example]]:
  """Test records; official_cameras: official_test_intrinsics instead of the fit (annot3)."""
  data = load_npz_dict(path, 'data')
  out = []
  for ts in sorted(data):
    where = f'data[{ts!r}]'
    if ts not in TEST_RES:
      raise DataFormatError(path, where, f'test sequences {sorted(TEST_RES)}', repr(ts))
    d = data[ts]
    kp, pose = get_key(d, 'data_2d', path, where), get_key(d, 'data_3d', path, where)
    valid = get_key(d, 'valid', path, where)
    if np.ndim(valid) == 2 and 1 in np.shape(valid):  # MATLAB-style (F, 1) / (1, F) vectors
      valid = np.ravel(valid)
    valid = as_array(valid, path, f"{where}['valid']", (np.shape(kp)[0],), dtype=np.float64)
    intr = official_test_intrinsics(ts) if official_cameras else None
    out.append(
      (ts, _record(path, where, kp, pose, ts, ts, '0', TEST_RES[ts], 0.0, valid > 0.5, intr))
    )
  return out
