"""DeepMimic mocap as an H36M-style benchmark, built from the installed pybullet package.

No manual download: the 15 DeepMimic reference clips (real CMU/SFU motion capture retargeted onto
pybullet's humanoid) are read from `pybullet_data/data/motions/`, resampled to 50 Hz, mapped to
H36M-17 and projected through the four Human3.6M cameras with S9's extrinsics and lens distortion
(`jaxpose.data.deepmimic` has the recipe). Records have the same features and units as `h36m`:
one per clip and camera (subject 'DM', action = clip name, camera = H36M camera id), ground-truth
2D (kp2d_conf = 1), camera-frame 3D in metres.

Splits (by clip, so no motion is shared between them):
  train: backflip, crawl, dance_a, dance_b, getup_facedown, getup_faceup, jump, kick, roll, run,
         spin, spinkick (12 clips, 1,377 frames x 4 cameras);
  test:  cartwheel, punch, walk (3 clips, 307 frames x 4 cameras): locomotion, an upper-body
         strike and an acrobatic inverted motion, each with a related clip in train.

Licence of the motion: pybullet zlib, DeepMimic MIT; the CMU database asks for the acknowledgement
"The data used in this project was obtained from mocap.cs.cmu.edu. The database was created with
funding from NSF EIA-0196217."
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from jaxpose.data import deepmimic
from tfds_builders._common import SequenceBuilder, SequenceConfig, camera_vectors, make_example


class Builder(SequenceBuilder):
  """DeepMimic clips from pybullet_data as H36M-17 sequences (4 cameras each)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: 15 clips, 50 Hz, S9 cameras, split by clip.'}
  BUILDER_CONFIGS = [SequenceConfig(name='gt', description='ground-truth 2D projections')]
  DEFAULT_CONFIG_NAME = 'gt'
  NEEDS_MANUAL_DIR = False
  NOTES = f'test clips: {", ".join(deepmimic.TEST_CLIPS)}; train: the other 12'

  def read_splits(self, manual_dir=None):
    cams = deepmimic.cameras()
    out = {'train': [], 'test': []}
    for clip, world in deepmimic.clips_h36m17().items():
      split = 'test' if clip in deepmimic.TEST_CLIPS else 'train'
      path = deepmimic.clip_path(clip)
      for cam in cams:
        pose, kp = deepmimic.project(world, cam)
        key = f'{deepmimic.SUBJECT}/{clip}/{cam["id"]}'
        intr, extr = camera_vectors(cam)
        out[split].append(
          (
            key,
            make_example(
              file=path,
              key=key,
              kp2d_px=kp,
              pose3d_cam=pose,
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
            ),
          )
        )
    return out
