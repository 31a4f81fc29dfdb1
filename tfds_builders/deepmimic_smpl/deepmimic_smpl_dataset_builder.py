"""DeepMimic mocap driving the synthetic SMPL-format body: a video mesh benchmark with no download.

The 15 DeepMimic clips of pybullet (`tfds_builders/deepmimic`) are retargeted onto
`jaxpose.body.synthetic` ('full': 6890 vertices, SMPL's kinematic tree and file format, NOT SMPL)
by `jaxpose.data.deepmimic_smpl` (rest alignment solved from the two rest skeletons, one fitted
shape), at 50 Hz, seen by the four H36M cameras with S9 extrinsics and lens distortion. Same clips,
splits, cameras and frame counts as `deepmimic`: one record per (clip, camera); train 12 clips
(1,377 frames x 4 cameras), test cartwheel, punch, walk (307 frames x 4 cameras).

Record features: the lifter features of every sequence dataset (`tfds_builders/_common.py`) with
  pose3d_cam    (T, 17, 3) H36M-17 REGRESSED FROM THE BODY MESH (the synthetic J_regressor_h36m),
                camera frame, metres; kp2d_px (T, 17, 2) is its projection. These differ from
                `deepmimic`'s FK joints (mean 26-38 mm, mostly the neck/nose and head points that
                the two skeletons define differently; jaxpose.data.deepmimic_smpl), which are kept
                as pose3d_fk_cam (T, 17, 3);
and the body (`jaxpose.data.bodies`):
  body_rotmat   (T, 24, 3, 3) local rotations, joint 0 = global orientation in the camera frame
  body_betas    (10,)         the synthetic model's shape (one fitted shape for every clip)
  body_transl   (T, 3)        camera-frame `transl`, metres: jaxpose.body.forward(model,
                              body_rotmat, body_betas, body_transl) gives camera-frame vertices
  has_smpl      (T,) bool     all True
Vertices are not stored: compute them with jaxpose.body (on device) or
`jaxpose.data.bodies.body_vertices(jaxpose.body.synthetic_model('full'), ...)` (host).
Metadata: body_model 'synthetic:full', body_regressor 'synthetic J_regressor_h36m'.

Licence of the motion: pybullet zlib, DeepMimic MIT; CMU mocap acknowledgement as in `deepmimic`.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import deepmimic, deepmimic_smpl
from tfds_builders._common import (
  SequenceBuilder,
  SequenceConfig,
  body_arrays,
  body_features,
  camera_vectors,
  make_example,
)


def read_sequences(
  clips: tuple[str, ...] = deepmimic.CLIPS, variant: str = deepmimic_smpl.BODY_VARIANT
) -> dict[str, list[tuple[str, dict]]]:
  """{split: [(key, example)]} of the clips, one example per (clip, camera) (tests pass a subset
  and the 'small' body)."""
  cams = deepmimic.cameras()
  out = {'train': [], 'test': []}
  for clip, ret in deepmimic_smpl.retarget_clips(clips, variant).items():
    split = 'test' if clip in deepmimic.TEST_CLIPS else 'train'
    path = deepmimic.clip_path(clip)
    for cam in cams:
      seq = deepmimic_smpl.camera_sequence(ret, cam)
      key = f'{deepmimic.SUBJECT}/{clip}/{cam["id"]}'
      intr, extr = camera_vectors(cam)
      body = body_arrays(
        file=path,
        key=key,
        rotmat=seq['body_rotmat'],
        betas=seq['body_betas'],
        transl=seq['body_transl'],
        has_smpl=seq['has_smpl'],
      )
      ex = make_example(
        file=path,
        key=key,
        kp2d_px=seq['kp2d_px'],
        pose3d_cam=seq['pose3d_cam'],
        j2d=17,
        j3d=17,
        subject=deepmimic.SUBJECT,
        action=clip,
        camera=cam['id'],
        res_w=cam['res_w'],
        res_h=cam['res_h'],
        fps=deepmimic.FPS,
        cam_intrinsics=intr,
        cam_extrinsics=extr,
        pose3d_fk_cam=seq['pose3d_fk_cam'],
        **body,
      )
      out[split].append((key, ex))
  return out


class Builder(SequenceBuilder):
  """DeepMimic clips on the synthetic SMPL-format body, 4 H36M cameras, H36M-17 + body params."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: 15 clips on synthetic:full, 50 Hz, S9 cameras.'}
  BUILDER_CONFIGS = [SequenceConfig(name='gt', description='mesh-regressed H36M-17, GT 2D')]
  DEFAULT_CONFIG_NAME = 'gt'
  NEEDS_MANUAL_DIR = False
  NOTES = (
    f'test clips: {", ".join(deepmimic.TEST_CLIPS)}; pose3d_cam = H36M-17 regressed from the '
    'synthetic body mesh (deepmimic FK joints in pose3d_fk_cam)'
  )

  def _extra_features(self):
    return {
      **body_features(),
      'pose3d_fk_cam': tfds.features.Tensor(shape=(None, 17, 3), dtype=np.float32),
    }

  def _metadata(self):
    return {
      **super()._metadata(),
      'body_model': f'synthetic:{deepmimic_smpl.BODY_VARIANT}',
      'body_regressor': 'synthetic J_regressor_h36m',
    }

  def read_splits(self, manual_dir=None):
    return read_sequences()
