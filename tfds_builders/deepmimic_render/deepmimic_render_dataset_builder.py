"""The DeepMimic motion rendered through the four H36M cameras: the embedded multi-view image set.

No manual download: built from the mocap clips inside the installed pybullet package by
`jaxpose data build deepmimic_render` (or on first use, `jaxpose.data.build.ensure_built`), with
numpy and OpenCV only (no TensorFlow). The body, the room, the cameras and the off-centre placing
are described in `jaxpose.data.deepmimic_render`. One record per synchronised frame with all 4
views (tfds_builders/_images.py): JPEG images (quality 90), PNG part masks, exact 2D (pinhole
projection of the H36M-17 joints through the stored K; no lens distortion is rendered, dist = 0),
3D in world and camera frames, K, R, t.

Configs:
  default  scale 0.5 (500 x 500 and 500 x 501 images), 12.5 fps (every 4th frame of the 50 Hz
           motion): train 12 clips, 350 frames x 4 views; test cartwheel, punch, walk, 77 frames x
           4 views (the split of `deepmimic`). 62 MB, built in 16 s to 42 s on the shared 2-core CPU
           (experiments/image_pipeline/README.md).
  tiny     for tests: scale 0.16 (160 x 160 images), train jump and kick, test walk, 3
           frames each; builds in about a second.

The numbers measured on this data only compare runs with each other (one body, synthetic images).
Licence of the motion: pybullet zlib, DeepMimic MIT; CMU mocap acknowledgement as in `deepmimic`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import deepmimic, images
from jaxpose.data import deepmimic_render as dr
from tfds_builders._images import ImageBuilder, make_image_example


@dataclasses.dataclass(eq=False)
class RenderConfig(tfds.core.BuilderConfig):
  """What to render.

  Attributes:
    scale: image size and intrinsics relative to the H36M sensors (1000 x 1000 / 1000 x 1002).
    fps: frame rate kept from the 50 Hz motion (every round(50 / fps)-th frame).
    train_clips, test_clips: clips of each split.
    max_frames: at most this many frames per clip (0 = all).
    jpeg_quality: JPEG quality of the images.
  """

  scale: float = 0.5
  fps: float = 12.5
  train_clips: tuple[str, ...] = deepmimic.TRAIN_CLIPS
  test_clips: tuple[str, ...] = deepmimic.TEST_CLIPS
  max_frames: int = 0
  jpeg_quality: int = 90


class Builder(ImageBuilder):
  """DeepMimic clips rendered as 4-view images of a capsule body (see the module docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: capsule body, textured room, S9 cameras, 12.5 fps.'}
  BUILDER_CONFIGS = [
    RenderConfig(name='default', description='500 px images, 12.5 fps, deepmimic split'),
    RenderConfig(
      name='tiny',
      description='tests: 160 px, a few frames',
      scale=0.16,
      train_clips=('jump', 'kick'),
      test_clips=('walk',),
      max_frames=3,
    ),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _metadata(self):
    cfg = self.builder_config
    return {
      'layout_2d': 'h36m17',
      'layout_3d': 'h36m17',
      'num_views': 4,
      'fps': float(cfg.fps),
      'cameras': [v.name for v in dr.views(cfg.scale)],
      'part_names': list(dr.PARTS),
      'pose3d_units': 'm',
      'scale': float(cfg.scale),
      'notes': (
        f'rendered DeepMimic (pybullet) motion, subject {deepmimic.SUBJECT}, S9 cameras, '
        f'no lens distortion; test clips: {", ".join(cfg.test_clips)}'
      ),
    }

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    clips = tuple(cfg.train_clips) + tuple(cfg.test_clips)
    unknown = sorted(set(clips) - set(deepmimic.CLIPS))
    if unknown:
      raise ValueError(f'config {cfg.name}: unknown clips {unknown}; valid: {deepmimic.CLIPS}')
    points = dr.body_points(tuple(c for c in deepmimic.CLIPS if c in clips))
    return {
      'train': self._generate_examples(cfg.train_clips, points),
      'test': self._generate_examples(cfg.test_clips, points),
    }

  def _generate_examples(self, clips, points):
    cfg = self.builder_config
    cams = dr.views(cfg.scale)
    for clip in clips:
      for fr in dr.render_take(clip, points[clip], cams, cfg.fps, cfg.max_frames):
        where = f'{deepmimic.SUBJECT}/{clip} frame {fr.frame_idx}'
        yield f'{deepmimic.SUBJECT}/{clip}/{fr.frame_idx:05d}', self._example(cams, fr, where)

  def _example(self, cams, fr, where):
    cfg = self.builder_config
    cam3d = np.stack([dr.to_camera(v, fr.pose3d_world) for v in cams])
    kp = np.stack([dr.project(v, fr.pose3d_world) for v in cams])
    inside = [
      (kp[i, :, 0] >= 0) & (kp[i, :, 0] < v.width) & (kp[i, :, 1] >= 0) & (kp[i, :, 1] < v.height)
      for i, v in enumerate(cams)
    ]
    return make_image_example(
      where=where,
      images_enc=[images.encode_jpeg(im, cfg.jpeg_quality) for im in fr.images],
      part_masks=[images.encode_png(lab) for lab in fr.labels],
      kp2d_px=kp,
      kp2d_vis=np.stack(inside).astype(np.float32),
      pose3d_world=fr.pose3d_world,
      pose3d_cam=cam3d,
      K=np.stack([v.K for v in cams]),
      R=np.stack([v.R for v in cams]),
      t=np.stack([v.t for v in cams]),
      res_w=[v.width for v in cams],
      res_h=[v.height for v in cams],
      cameras=[v.name for v in cams],
      subject=deepmimic.SUBJECT,
      action=fr.clip,
      source=f'humanoid3d_{fr.clip}.txt:{fr.source_frame}',
      take_id=fr.take_id,
      frame_idx=fr.frame_idx,
      num_joints=17,
    )
