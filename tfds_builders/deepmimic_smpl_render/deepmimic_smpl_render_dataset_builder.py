"""The synthetic SMPL-format body driven by DeepMimic, rendered through the four H36M cameras.

No manual download: built from the mocap clips inside the installed pybullet package by
`jaxpose data build deepmimic_smpl_render` (or on first use, `jaxpose.data.build.ensure_built`),
with numpy, OpenCV and JAX only (no TensorFlow). How the body is posed, placed and drawn:
`jaxpose.data.deepmimic_smpl_render`. One record per synchronised frame with all 4 views
(tfds_builders/_images.py): JPEG images (quality 90), PNG part-label maps (`jaxpose.body.parts`
labels, 0 = background), exact 2D (pinhole projection of the mesh-regressed H36M-17 through the
stored K; dist = 0), 3D in world and camera frames, K, R, t, and the body in each camera's frame:

  body_rotmat  (V, 24, 3, 3) float32  local rotations, joint 0 = global orientation in camera v
  body_transl  (V, 3) float32         camera-frame `transl`, metres
  body_betas   (10,) float32          shape (one fitted shape for every clip)
  has_smpl     (V,) bool              all True
`jaxpose.body.forward(jaxpose.body.synthetic_model(<body>), body_rotmat[v], body_betas,
body_transl[v])` gives camera-frame vertices; metadata `body_model` names the body
('synthetic:small' or 'synthetic:full').

Configs (train: the 12 `deepmimic` train clips, test: cartwheel, punch, walk):
  default  'small' body (400 vertices, 796 faces), scale 0.224 (224 x 224 images), 12.5 fps, the
           first 32 frames of each train clip and 16 of each test clip: 384 + 48 frames x 4 views.
           Built in about 30 s on the shared 2-core CPU.
  full     the same frames with the 'full' body (6890 vertices, 13776 faces); several minutes
           (building and retargeting the full body: 6 min for one clip under a load of 18).
  tiny     for tests: 'small' body, scale 0.12 (120 px), train jump and kick, test walk, 2 frames
           each.

The numbers measured on this data only compare runs with each other (one synthetic body, no
clothing, synthetic images). Licence of the motion: pybullet zlib, DeepMimic MIT; CMU mocap
acknowledgement as in `deepmimic`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import deepmimic, images
from jaxpose.data import deepmimic_render as dr
from jaxpose.data import deepmimic_smpl_render as dsr
from tfds_builders._common import body_arrays, body_features
from tfds_builders._images import ImageBuilder, make_image_example


@dataclasses.dataclass(eq=False)
class SmplRenderConfig(tfds.core.BuilderConfig):
  """What to render.

  Attributes:
    body: synthetic body variant ('small' or 'full').
    scale: image size and intrinsics relative to the H36M sensors (0.224 -> 224 x 224).
    fps: frame rate kept from the 50 Hz motion.
    train_clips, test_clips: clips of each split.
    train_frames, test_frames: at most this many frames per clip (0 = all).
    jpeg_quality: JPEG quality of the images.
  """

  body: str = 'small'
  scale: float = 0.224
  fps: float = 12.5
  train_clips: tuple[str, ...] = deepmimic.TRAIN_CLIPS
  test_clips: tuple[str, ...] = deepmimic.TEST_CLIPS
  train_frames: int = 32
  test_frames: int = 16
  jpeg_quality: int = 90


class Builder(ImageBuilder):
  """DeepMimic clips on the synthetic SMPL-format body, rendered in 4 views with part labels."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: synthetic body, part labels, S9 cameras, 12.5 fps.'}
  BUILDER_CONFIGS = [
    SmplRenderConfig(name='default', description="'small' body, 224 px, 32/16 frames per clip"),
    SmplRenderConfig(
      name='full', description="'full' body, 224 px, 32/16 frames per clip", body='full'
    ),
    SmplRenderConfig(
      name='tiny',
      description='tests: 120 px, 2 frames',
      scale=0.12,
      train_clips=('jump', 'kick'),
      test_clips=('walk',),
      train_frames=2,
      test_frames=2,
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
      'part_names': list(dsr.PARTS),
      'pose3d_units': 'm',
      'scale': float(cfg.scale),
      'body_model': f'synthetic:{cfg.body}',
      'body_regressor': 'synthetic J_regressor_h36m',
      'notes': (
        f'DeepMimic (pybullet) motion on the synthetic SMPL-format body ({cfg.body}), subject '
        f'{deepmimic.SUBJECT}, S9 cameras, no lens distortion; pose3d = mesh-regressed H36M-17; '
        f'test clips: {", ".join(cfg.test_clips)}'
      ),
    }

  def _features(self) -> tfds.features.FeaturesDict:
    feats = dict(super()._features())
    feats.update(body_features())  # (V, ...) per view where a sequence has (T, ...)
    return tfds.features.FeaturesDict(feats)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    clips = tuple(cfg.train_clips) + tuple(cfg.test_clips)
    unknown = sorted(set(clips) - set(deepmimic.CLIPS))
    if unknown:
      raise ValueError(f'config {cfg.name}: unknown clips {unknown}; valid: {deepmimic.CLIPS}')
    if cfg.body not in ('small', 'full'):
      raise ValueError(f"config {cfg.name}: body {cfg.body!r}; valid: 'small', 'full'")
    return {
      'train': self._generate_examples(cfg.train_clips, cfg.train_frames),
      'test': self._generate_examples(cfg.test_clips, cfg.test_frames),
    }

  def _generate_examples(self, clips, max_frames):
    cfg = self.builder_config
    cams = dr.views(cfg.scale)
    for clip, take in dsr.takes(clips, cfg.body, cfg.fps, max_frames).items():
      for fr in dsr.render_take(take, cams, cfg.body):
        where = f'{deepmimic.SUBJECT}/{clip} frame {fr.frame_idx}'
        yield f'{deepmimic.SUBJECT}/{clip}/{fr.frame_idx:05d}', self._example(cams, fr, where)

  def _example(self, cams, fr, where):
    cfg = self.builder_config
    kp = fr.kp2d_px
    inside = [
      (kp[i, :, 0] >= 0) & (kp[i, :, 0] < v.width) & (kp[i, :, 1] >= 0) & (kp[i, :, 1] < v.height)
      for i, v in enumerate(cams)
    ]
    ex = make_image_example(
      where=where,
      images_enc=[images.encode_jpeg(im, cfg.jpeg_quality) for im in fr.images],
      part_masks=[images.encode_png(lab) for lab in fr.labels],
      kp2d_px=kp,
      kp2d_vis=np.stack(inside).astype(np.float32),
      pose3d_world=fr.pose3d_world,
      pose3d_cam=fr.pose3d_cam,
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
    body = body_arrays(
      file=where,
      key='body',
      rotmat=fr.body_rotmat,
      betas=fr.body_betas,
      transl=fr.body_transl,
      has_smpl=np.ones(len(cams), bool),
    )
    return {**ex, **body}
