"""MPI-INF-3DHP from P-STMO's preprocessed npz files (research/data.md §3).

`data_train_3dhp.npz`: {'data': {'S1 Seq1': [{camera: {'data_2d': (F,17,2) px, 'data_3d': (F,17,3)
mm}}, fps]}}, 8 cameras per sequence, 2048x2048 images. `data_test_3dhp.npz`: {'data': {'TS1':
{'data_2d', 'data_3d', 'valid'}}}; TS1-TS4 are 2048x2048, TS5-TS6 1920x1080 (outdoor).

Records: one per (sequence, camera) in train (subject 'S1', action 'Seq1', camera '0') and one per
test sequence (subject = action = 'TS1', camera '0'). Joints are the 17 "relevant" 3DHP joints
(layout mpi3dhp17, root 14 = pelvis); 3D is `univ_annot3` (the universal, H36M-height skeleton the
lifting papers train and test on) in the camera frame, converted from mm to metres. `valid` is the
official valid-frame mask on test (only valid frames are evaluated) and all True on train.

`cam_intrinsics` is not in the files: it is a least-squares pinhole fit (fx, fy, cx, cy; no
distortion) of the record's 2D against its 3D, as mmpose does for its `cameras_test.pkl`. It is an
estimate (the universal skeleton is rescaled, so it does not project exactly onto the 2D). fps is
the per-sequence rate on train and 0 (not in the files) on test.
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

TEST_RES = {'TS1': (2048, 2048), 'TS2': (2048, 2048), 'TS3': (2048, 2048), 'TS4': (2048, 2048),
            'TS5': (1920, 1080), 'TS6': (1920, 1080)}  # fmt: skip
TRAIN_RES = (2048, 2048)


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
  """MPI-INF-3DHP sequences (P-STMO npz files, universal skeleton)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: P-STMO train/test npz, valid-frame masks.'}
  BUILDER_CONFIGS = [
    SequenceConfig(name='gt', source_2d='gt', layout_2d='mpi3dhp17', layout_3d='mpi3dhp17',
                   description='annotated 2D, univ_annot3 3D'),
  ]  # fmt: skip
  DEFAULT_CONFIG_NAME = 'gt'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put P-STMO's preprocessed MPI-INF-3DHP files directly in manual_dir:
    data_train_3dhp.npz and data_test_3dhp.npz
  (made by P-STMO's common/data_to_npz_3dhp.py and data_to_npz_3dhp_test.py from the official
  release; MotionAGFormer links the same files). They hold pickles: use copies you trust.
  """
  FPS = 0.0  # per record: 25 or 50 on train, unknown on test
  NOTES = 'intrinsics are least-squares pinhole fits; test fps unknown (0)'

  def read_splits(self, manual_dir) -> dict[str, list[tuple[str, Example]]]:
    ins = self.MANUAL_DOWNLOAD_INSTRUCTIONS
    return {
      'train': read_train(require_file(manual_dir, 'data_train_3dhp.npz', ins)),
      'test': read_test(require_file(manual_dir, 'data_test_3dhp.npz', ins)),
    }


def _record(path, key, kp, pose_mm, subject, action, camera, res, fps, valid=None) -> Example:
  kp = as_array(kp, path, f"{key}['data_2d']", (None, 17, 2))
  pose = as_array(pose_mm, path, f"{key}['data_3d']", (kp.shape[0], 17, 3), dtype=np.float64)
  return make_example(
    file=path, key=key, kp2d_px=kp, pose3d_cam=pose / 1000.0, j2d=17, j3d=17, subject=subject,
    action=action, camera=camera, res_w=res[0], res_h=res[1], fps=fps,
    cam_intrinsics=fit_pinhole(kp, pose), valid=valid,
  )  # fmt: skip


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
      out.append((f'{seq}/{cam}', _record(path, w, kp, pose, parts[0], parts[1], str(cam),
                                          TRAIN_RES, float(fps))))  # fmt: skip
  return out


def read_test(path) -> list[tuple[str, Example]]:
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
    out.append((ts, _record(path, where, kp, pose, ts, ts, '0', TEST_RES[ts], 0.0, valid > 0.5)))
  return out
