"""3DPW from the official `sequenceFiles` pickles (research/data.md §5); no SMPL model needed.

Each `sequenceFiles/<split>/<seq>.pkl` (Python 2 pickle) holds per-actor lists (`jointPositions`
(N, 72) world metres = 24 SMPL joints, `campose_valid` (N,), `poses2d` (N, 3, 18) OpenPose) and
per-sequence `cam_poses` (N, 4, 4) world->camera and `cam_intrinsics` (3, 3), at 30 Hz.

Records: one per (sequence, actor): subject 'actor0' / 'actor1', action = sequence name, camera
'phone'. pose3d_cam = R_t X + t_t with the frame's camera pose (the phone moves), metres, SMPL-24
layout; kp2d_px is its pinhole projection with the sequence's intrinsics (3DPW images have no lens
model), so 2D and 3D share the layout `smpl24` and kp2d_conf = 1. The OpenPose COCO-18 detections
are kept as `kp2d_openpose` (N, 18, 2) px and `kp2d_openpose_conf` (N, 18). `valid` =
`campose_valid` (evaluate only valid frames), also False where a joint is behind the camera.
Image size is taken as twice the principal point (1080x1920 portrait for the phone videos).
Splits: train, validation, test (the official folders).
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data.io import (
  DataFormatError,
  ManualDirError,
  as_array,
  get_key,
  load_pickle,
  require_file,
  type_name,
)
from tfds_builders._common import Example, SequenceBuilder, SequenceConfig, make_example

SPLITS = ('train', 'validation', 'test')


class Builder(SequenceBuilder):
  """3DPW sequences, one record per actor, SMPL-24 joints."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: jointPositions + projected 2D, OpenPose 2D extra.'}
  BUILDER_CONFIGS = [
    SequenceConfig(
      name='gt',
      source_2d='gt',
      layout_2d='smpl24',
      layout_3d='smpl24',
      description='projected SMPL joints as 2D; OpenPose 2D as an extra feature',
    ),
  ]
  DEFAULT_CONFIG_NAME = 'gt'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download 3DPW (https://virtualhumans.mpi-inf.mpg.de/3DPW/, sequenceFiles.zip) and unzip it so that
  manual_dir/sequenceFiles/{train,validation,test}/*.pkl exist. The files are pickles: use the
  official copy.
  """
  FPS = 30.0
  NOTES = 'kp2d_px = pinhole projection of jointPositions; OpenPose 2D in kp2d_openpose'

  def _extra_features(self):
    f = tfds.features
    return {
      'kp2d_openpose': f.Tensor(shape=(None, 18, 2), dtype=np.float32),
      'kp2d_openpose_conf': f.Tensor(shape=(None, 18), dtype=np.float32),
    }

  def read_splits(self, manual_dir) -> dict[str, list[tuple[str, Example]]]:
    root = require_file(manual_dir, 'sequenceFiles', self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    out = {}
    for split in SPLITS:
      files = sorted((root / split).glob('*.pkl'))
      if not files:
        raise ManualDirError(f'no {root / split}/*.pkl files.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}')
      out[split] = [ex for f in files for ex in read_sequence(f)]
    return out


def _per_actor(d, key, path) -> list:
  v = get_key(d, key, path, 'pickle')
  if not isinstance(v, list | tuple):
    raise DataFormatError(path, f'pickle[{key!r}]', 'a list with one entry per actor', type_name(v))
  return list(v)


def read_sequence(path: pathlib.Path) -> list[tuple[str, Example]]:
  """One 3DPW sequence file -> [(key, example)] per actor."""
  d = load_pickle(path)
  if not isinstance(d, dict):
    raise DataFormatError(path, '', 'a dict', type_name(d))
  seq = str(d.get('sequence', path.stem))
  joints = _per_actor(d, 'jointPositions', path)
  valid_l = _per_actor(d, 'campose_valid', path)
  pose2d_l = _per_actor(d, 'poses2d', path)
  n = len(as_array(joints[0], path, "pickle['jointPositions'][0]", (None, 72)))
  cam_poses = as_array(
    get_key(d, 'cam_poses', path, 'pickle'),
    path,
    "pickle['cam_poses']",
    (n, 4, 4),
    dtype=np.float64,
  )
  k = as_array(
    get_key(d, 'cam_intrinsics', path, 'pickle'),
    path,
    "pickle['cam_intrinsics']",
    (3, 3),
    dtype=np.float64,
  )
  fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
  rot, trans = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
  out = []
  for a, jp in enumerate(joints):
    world = as_array(jp, path, f"pickle['jointPositions'][{a}]", (n, 72), dtype=np.float64)
    world = world.reshape(n, 24, 3)
    pose = np.einsum('nij,nkj->nki', rot, world) + trans[:, None]
    z = pose[..., 2]
    front = (z > 1e-3).all(axis=1)
    zs = np.where(z > 1e-3, z, 1.0)
    kp = np.stack([fx * pose[..., 0] / zs + cx, fy * pose[..., 1] / zs + cy], axis=-1)
    valid = as_array(valid_l[a], path, f"pickle['campose_valid'][{a}]", (n,), dtype=np.bool_)
    op = as_array(pose2d_l[a], path, f"pickle['poses2d'][{a}]", (n, 3, 18)).transpose(0, 2, 1)
    out.append(
      (
        f'{seq}/actor{a}',
        make_example(
          file=path,
          key=f'actor{a}',
          kp2d_px=kp,
          pose3d_cam=pose,
          j2d=24,
          j3d=24,
          subject=f'actor{a}',
          action=seq,
          camera='phone',
          res_w=int(round(2 * cx)),
          res_h=int(round(2 * cy)),
          fps=30.0,
          cam_intrinsics=np.array([fx, fy, cx, cy, 0, 0, 0, 0, 0]),
          valid=valid & front,
          kp2d_openpose=np.ascontiguousarray(op[..., :2]),
          kp2d_openpose_conf=np.ascontiguousarray(op[..., 2]),
        ),
      )
    )
  return out
