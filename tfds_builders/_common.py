"""What every jaxpose sequence builder shares: the record features, array_record output, validation.

Record layout (one record per sequence = subject x action x camera; the API the input pipeline and
the training engine rely on):

  kp2d_px        (T, J2, 2) float32  2D keypoints, pixels (x right, y down, origin top-left)
  kp2d_conf      (T, J2)    float32  detector confidence; 1.0 where the source has none
  pose3d_cam     (T, J3, 3) float32  3D in the camera frame, metres, NOT root-relative (the `sh`
                                     H36M config stores MotionBERT's 2.5D in normalised image
                                     units instead; see that builder)
  cam_intrinsics (9,)       float32  [fx, fy, cx, cy, k1, k2, k3, p1, p2], pixels (VideoPose3D
                                     distortion order); all zero when the dataset has none
  cam_extrinsics (7,)       float32  camera->world quaternion (w, x, y, z) then the camera centre in
                                     world metres (VideoPose3D convention); all zero when unknown
  res_w, res_h   int32               image size in pixels
  subject, action, camera, source    Text (source: the file and key the record came from)
  num_frames     int32               T
  fps            float32             frame rate (0 when the files do not say)
  valid          (T,)       bool     frame is usable (3DHP valid-frame mask; False for frames the
                                     reference evaluation skips); all True elsewhere
  scale_2_5d     (T,)       float32  metres per unit of pose3d_cam (MotionBERT 2.5D); 1.0 elsewhere

Datasets with SMPL-format bodies add `body_features()` (jaxpose.data.bodies): body_rotmat
(T, 24, 3, 3) local rotations with the camera-frame global orientation, body_betas (10,),
body_transl (T, 3) camera-frame metres, has_smpl (T,) bool; checked by `body_arrays`.

Dataset-level metadata (`info.metadata`): layout_2d / layout_3d (jaxpose.geometry.skeleton names),
fps, pose3d_units, and notes (body datasets: body_model).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data.io import DataFormatError, as_array

Example = dict[str, Any]


@dataclasses.dataclass(eq=False)
class SequenceConfig(tfds.core.BuilderConfig):
  """Builder config shared by the sequence builders.

  Attributes:
    source_2d: which 2D keypoints (a file stem or a format name, per builder).
    layout_2d: skeleton layout of the 2D keypoints.
    layout_3d: skeleton layout of the 3D joints.
  """

  source_2d: str = 'gt'
  layout_2d: str = 'h36m17'
  layout_3d: str = 'h36m17'


def sequence_features(j2d: int, j3d: int, extra: Mapping[str, Any] | None = None):
  """The FeaturesDict of one sequence record (see the module docstring)."""
  f = tfds.features
  feats = {
    'kp2d_px': f.Tensor(shape=(None, j2d, 2), dtype=np.float32),
    'kp2d_conf': f.Tensor(shape=(None, j2d), dtype=np.float32),
    'pose3d_cam': f.Tensor(shape=(None, j3d, 3), dtype=np.float32),
    'cam_intrinsics': f.Tensor(shape=(9,), dtype=np.float32),
    'cam_extrinsics': f.Tensor(shape=(7,), dtype=np.float32),
    'res_w': f.Scalar(dtype=np.int32),
    'res_h': f.Scalar(dtype=np.int32),
    'subject': f.Text(),
    'action': f.Text(),
    'camera': f.Text(),
    'source': f.Text(),
    'num_frames': f.Scalar(dtype=np.int32),
    'fps': f.Scalar(dtype=np.float32),
    'valid': f.Tensor(shape=(None,), dtype=np.bool_),
    'scale_2_5d': f.Tensor(shape=(None,), dtype=np.float32),
  }
  feats.update(extra or {})
  return f.FeaturesDict(feats)


def make_example(
  *,
  file: str | pathlib.Path,
  key: str,
  kp2d_px: np.ndarray,
  pose3d_cam: np.ndarray,
  j2d: int,
  j3d: int,
  subject: str,
  action: str,
  camera: str,
  res_w: int,
  res_h: int,
  fps: float,
  kp2d_conf: np.ndarray | None = None,
  cam_intrinsics: np.ndarray | None = None,
  cam_extrinsics: np.ndarray | None = None,
  valid: np.ndarray | None = None,
  scale_2_5d: np.ndarray | None = None,
  **extra: Any,
) -> Example:
  """Validates one sequence and fills the defaults of the optional features.

  Args:
    file: file the sequence came from (for errors and the `source` feature).
    key: key path of the sequence inside the file.
    kp2d_px: (T, j2d, 2) pixels.
    pose3d_cam: (T, j3d, 3) camera frame.
    j2d, j3d: expected joint counts.
    subject, action, camera: identity of the record.
    res_w, res_h: image size in pixels.
    fps: frame rate.
    kp2d_conf: (T, j2d) or None (-> ones).
    cam_intrinsics: (9,) pixels or None (-> zeros).
    cam_extrinsics: (7,) or None (-> zeros).
    valid: (T,) bool or None (-> all True).
    scale_2_5d: (T,) or None (-> ones).
    **extra: builder-specific features, passed through.

  Raises:
    DataFormatError: a shape, joint count or finiteness problem, naming file and key.
  """
  kp2d = as_array(kp2d_px, file, f'{key} (2D)', (None, j2d, 2))
  t = kp2d.shape[0]
  if t == 0:
    raise DataFormatError(file, key, 'at least one frame', '0 frames')
  pose = as_array(pose3d_cam, file, f'{key} (3D)', (t, j3d, 3))
  ones = np.ones(t, np.float32)
  conf = np.ones((t, j2d), np.float32) if kp2d_conf is None else kp2d_conf
  return {
    'kp2d_px': kp2d,
    'kp2d_conf': as_array(conf, file, f'{key} (confidence)', (t, j2d)),
    'pose3d_cam': pose,
    'cam_intrinsics': as_array(
      np.zeros(9) if cam_intrinsics is None else cam_intrinsics, file, f'{key} (intrinsics)', (9,)
    ),
    'cam_extrinsics': as_array(
      np.zeros(7) if cam_extrinsics is None else cam_extrinsics, file, f'{key} (extrinsics)', (7,)
    ),
    'res_w': np.int32(res_w),
    'res_h': np.int32(res_h),
    'subject': str(subject),
    'action': str(action),
    'camera': str(camera),
    'source': f'{pathlib.Path(file).name}:{key}',
    'num_frames': np.int32(t),
    'fps': np.float32(fps),
    'valid': as_array(
      np.ones(t, bool) if valid is None else valid, file, f'{key} (valid)', (t,), dtype=np.bool_
    ),
    'scale_2_5d': as_array(
      ones if scale_2_5d is None else scale_2_5d, file, f'{key} (2.5D scale)', (t,)
    ),
    **extra,
  }


def body_features() -> dict[str, Any]:
  """The body features of datasets with SMPL-format bodies (module docstring)."""
  f = tfds.features
  return {
    'body_rotmat': f.Tensor(shape=(None, 24, 3, 3), dtype=np.float32),
    'body_betas': f.Tensor(shape=(10,), dtype=np.float32),
    'body_transl': f.Tensor(shape=(None, 3), dtype=np.float32),
    'has_smpl': f.Tensor(shape=(None,), dtype=np.bool_),
  }


def body_arrays(
  *,
  file: str | pathlib.Path,
  key: str,
  rotmat: np.ndarray,
  betas: np.ndarray,
  transl: np.ndarray,
  has_smpl: np.ndarray | None = None,
) -> Example:
  """Validates one sequence's body (T frames) and returns the `body_features()` entries.

  Raises:
    DataFormatError: a shape, finiteness or non-rotation problem, naming file and key.
  """
  rot = as_array(rotmat, file, f'{key} (body_rotmat)', (None, 24, 3, 3))
  t = rot.shape[0]
  r64 = rot.astype(np.float64)
  err = np.abs(np.swapaxes(r64, -1, -2) @ r64 - np.eye(3)).max(axis=(-2, -1))
  det = np.linalg.det(r64)
  bad = (err > 1e-3) | (np.abs(det - 1) > 1e-3)
  if bad.any():
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise DataFormatError(
      file,
      f'{key} (body_rotmat)',
      'rotation matrices (R^T R = I, det R = 1)',
      f'frame {idx[0]} joint {idx[1]}: max |R^T R - I| = {err[idx]:.3g}, det = {det[idx]:.4g}',
    )
  return {
    'body_rotmat': rot,
    'body_betas': as_array(betas, file, f'{key} (body_betas)', (10,)),
    'body_transl': as_array(transl, file, f'{key} (body_transl)', (t, 3)),
    'has_smpl': as_array(
      np.ones(t, bool) if has_smpl is None else has_smpl,
      file,
      f'{key} (has_smpl)',
      (t,),
      dtype=np.bool_,
    ),
  }


def camera_vectors(cam: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """(cam_intrinsics (9,) pixels, cam_extrinsics (7,)) of a `geometry.camera.h36m_cameras()` entry."""
  intr = np.concatenate(
    [cam['focal_length'], cam['center'], cam['radial_distortion'], cam['tangential_distortion']]
  )
  extr = np.concatenate([cam['orientation'], cam['translation']])
  return intr.astype(np.float32), extr.astype(np.float32)


class SequenceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: array_record output, one record per sequence, examples read up front.

  Subclasses define `read_splits(manual_dir) -> {split: [(key, example), ...]}`, `J2D`/`J3D` (or
  per-config layouts) and `METADATA`. Everything is read and validated before anything is written,
  and TFDS writes into an `incomplete.*` directory renamed only on success, so a failed build
  leaves nothing a later `tfds.data_source` would accept.
  """

  NEEDS_MANUAL_DIR = True
  FPS = 50.0
  POSE3D_UNITS = 'm'
  NOTES = ''

  def __init__(self, *, file_format: str | None = None, **kwargs: Any):
    # tfrecord (TFDS' default) needs TensorFlow to write; array_record does not.
    super().__init__(file_format=file_format or 'array_record', **kwargs)

  def _joint_counts(self) -> tuple[int, int]:
    from jaxpose.geometry import skeleton

    cfg = self.builder_config
    return skeleton.get(cfg.layout_2d).num_joints, skeleton.get(cfg.layout_3d).num_joints

  def _extra_features(self) -> dict[str, Any]:
    return {}

  def _metadata(self) -> dict[str, Any]:
    cfg = self.builder_config
    return {
      'layout_2d': cfg.layout_2d,
      'layout_3d': cfg.layout_3d,
      'fps': self.FPS,
      'pose3d_units': self.POSE3D_UNITS,
      'notes': self.NOTES,
    }

  def _info(self) -> tfds.core.DatasetInfo:
    j2d, j3d = self._joint_counts()
    return self.dataset_info_from_configs(
      features=sequence_features(j2d, j3d, self._extra_features()),
      metadata=tfds.core.MetadataDict(self._metadata()),
      supervised_keys=None,
    )

  def read_splits(self, manual_dir: pathlib.Path | None) -> dict[str, list[tuple[str, Example]]]:
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    manual = pathlib.Path(os.fspath(dl_manager.manual_dir)) if self.NEEDS_MANUAL_DIR else None
    splits = self.read_splits(manual)
    return {name: self._generate_examples(examples) for name, examples in splits.items()}

  def _generate_examples(self, examples) -> Iterator[tuple[str, Example]]:
    yield from examples
