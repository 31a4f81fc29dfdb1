"""Pose2Sim demo: real, calibrated 4-view video as per-frame multi-view image records (optional).

Optional dataset, never built unless asked for: `jaxpose data build pose2sim [--manual_dir M]`. It
reads the Pose2Sim demo (the installed `pose2sim` package, or a manual_dir holding
`Demo_SinglePerson/`; instructions in `jaxpose.data.pose2sim.INSTRUCTIONS`), decodes the four
videos with OpenCV, takes 2D keypoints from a user-supplied npz (format in `jaxpose.data.pose2sim`;
default: the committed MediaPipe output of experiments/pose2sim_geometry) and the calibration from
`Calib.qca.txt` (`jaxpose.data.qca`).

Records: one per synchronised frame with all 4 views, in the multi-view image layout of the image
builders (`tfds_builders._images.image_features`): JPEG images, no part
masks, kp2d_px in the stored images' pixels (the detector's, lens distortion included), kp2d_vis =
confidence >= 0.5, K / dist / R / t from the calibration (OpenCV convention, metres).
**pose3d_world and pose3d_cam are pseudo ground truth**: DLT triangulation of the same 2D (best 3 of
4 views, undistorted), flagged in the metadata (`pose3d_source`); the package has no marker data.

Configs: `default` stores images at half resolution (540x960 / 544x960; K and keypoints scaled
about pixel centres, distortion unchanged), `full` at the native 1080x1920 / 1088x1920. Splits by
frame: train = frames 0-79, test = frames 80-99 (one take, subject 'P2S', action 'reach').
Licence: the videos and calibration are BSD-3-Clause (pose2sim); MediaPipe's model Apache-2.0.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import pose2sim, qca
from jaxpose.data.io import DataFormatError, ManualDirError, as_array
from tfds_builders._images import image_features

SUBJECT, ACTION = 'P2S', 'reach'
TEST_FRACTION = 0.2


@dataclasses.dataclass(eq=False)
class Pose2SimConfig(tfds.core.BuilderConfig):
  """Attributes: scale (stored image size / native), jpeg_quality."""

  scale: float = 0.5
  jpeg_quality: int = 90


def _scale_matrix(s: float) -> np.ndarray:
  """Pixel-centre-aligned resize: u' = s (u + 0.5) - 0.5 (what cv2.resize does)."""
  o = 0.5 * s - 0.5
  return np.array([[s, 0.0, o], [0.0, s, o], [0.0, 0.0, 1.0]])


@dataclasses.dataclass
class _Take:
  demo: pathlib.Path
  kp_file: pathlib.Path
  cams: list
  kp: np.ndarray  # (V, T, J, 2) native px, NaN missing
  conf: np.ndarray  # (V, T, J)
  pose3d: np.ndarray  # (T, J, 3) m
  sizes: list  # native (w, h) per view
  num_frames: int


class Builder(tfds.core.GeneratorBasedBuilder):
  """The Pose2Sim demo as 4-view image records with triangulated pseudo-3D (see the docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: Demo_SinglePerson, 4 views, 100 frames, 60 fps.'}
  BUILDER_CONFIGS = [
    Pose2SimConfig(name='default', description='half-resolution JPEG images'),
    Pose2SimConfig(name='full', description='native-resolution JPEG images', scale=1.0),
  ]
  DEFAULT_CONFIG_NAME = 'default'
  NEEDS_MANUAL_DIR = False  # found in the installed pose2sim package when no manual_dir is given
  MANUAL_DOWNLOAD_INSTRUCTIONS = pose2sim.INSTRUCTIONS
  OPTIONAL = True
  KIND = 'image'
  NUM_JOINTS = pose2sim.NUM_JOINTS

  def __init__(self, *, file_format: str | None = None, **kwargs: Any):
    super().__init__(file_format=file_format or 'array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    meta = {
      'kind': self.KIND,
      'layout_2d': 'h36m17',
      'layout_3d': 'h36m17',
      'num_views': 4,
      'fps': 60.0,
      'cameras': ['cam01', 'cam02', 'cam03', 'cam04'],
      'part_names': [],
      'pose3d_units': 'm',
      'pose3d_source': 'triangulated_2d',
      'pseudo_gt': True,
      'notes': 'pose3d_world/pose3d_cam are pseudo ground truth: DLT (best 3 of 4 views) of the '
      'user-supplied 2D keypoints with the Qualisys calibration; no marker data. World: Qualisys '
      'lab frame, z up, metres. Splits: train frames 0-79, test 80-99.',
    }
    return self.dataset_info_from_configs(
      features=image_features(self.NUM_JOINTS),
      metadata=tfds.core.MetadataDict(meta),
      supervised_keys=None,
      disable_shuffling=True,
    )

  def _read(self, manual_dir) -> _Take:
    try:
      import cv2  # noqa: F401
    except ImportError:
      raise ManualDirError(
        'the pose2sim dataset decodes videos with OpenCV: pip install opencv-python-headless'
      ) from None
    demo = pose2sim.find_demo_dir(manual_dir)
    cams = qca.read_qca(demo / pose2sim.CALIB)
    names = [c.name for c in cams]
    kp_file = pose2sim.find_kp2d_file(manual_dir)
    kp, conf = pose2sim.read_kp2d(kp_file, names)
    sizes, counts = [], {}
    for c in cams:
      path = pose2sim.video_path(demo, c.name)
      if not path.is_file():
        raise DataFormatError(path, '', f'the video of camera {c.name}', 'no such file')
      n, w, h, _ = pose2sim.video_info(path)
      counts[c.name] = n
      sizes.append((w, h))
    if len(set(counts.values())) != 1:
      raise DataFormatError(demo / 'videos', 'frame counts', 'views that agree', str(counts))
    t = kp.shape[1]
    if t != counts[names[0]]:
      raise DataFormatError(
        kp_file, 'kp2d_px', f'{counts[names[0]]} frames (the videos)', f'{t} frames'
      )
    pose3d, _ = pose2sim.triangulate_pseudo_gt(kp, conf, cams, where=str(kp_file))
    return _Take(demo, kp_file, cams, kp, conf, pose3d, sizes, t)

  def _split_generators(self, dl_manager):
    try:
      manual = pathlib.Path(os.fspath(dl_manager.manual_dir))
    except (AssertionError, TypeError, ValueError):  # TFDS asserts when no manual_dir was given
      manual = None
    take = self._read(manual)
    n_test = int(round(TEST_FRACTION * take.num_frames))
    cut = take.num_frames - n_test
    return {
      'train': self._generate_examples(take, 0, cut),
      'test': self._generate_examples(take, cut, take.num_frames),
    }

  def _generate_examples(self, take: _Take, start: int, stop: int):
    import cv2

    s = float(self.builder_config.scale)
    sm = _scale_matrix(s)
    v = len(take.cams)
    k = np.stack([sm @ c.K for c in take.cams])
    r = np.stack([c.R for c in take.cams])
    t = np.stack([c.t for c in take.cams])
    dist = np.stack([c.dist for c in take.cams])
    res = [(int(round(w * s)), int(round(h * s))) for w, h in take.sizes]
    readers = [
      pose2sim.read_frames(pose2sim.video_path(take.demo, c.name), stop) for c in take.cams
    ]
    for i in range(stop):
      frames = [next(rd) for rd in readers]
      if i < start:
        continue
      enc = []
      for vi, fr in enumerate(frames):
        if fr.shape[:2] != take.sizes[vi][::-1]:
          raise DataFormatError(
            pose2sim.video_path(take.demo, take.cams[vi].name),
            f'frame {i}',
            f'{take.sizes[vi][0]}x{take.sizes[vi][1]}',
            f'{fr.shape[1]}x{fr.shape[0]}',
          )
        if s != 1.0:
          fr = cv2.resize(fr, res[vi], interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(
          '.jpg', fr, [cv2.IMWRITE_JPEG_QUALITY, self.builder_config.jpeg_quality]
        )
        if not ok:
          raise DataFormatError(take.demo, f'{take.cams[vi].name} frame {i}', 'JPEG', 'failed')
        enc.append(buf.tobytes())
      kp = take.kp[:, i]  # (V, J, 2) native px
      vis = (take.conf[:, i] >= pose2sim.VIS_THRESHOLD) & np.isfinite(kp).all(-1)
      kp = np.where(np.isfinite(kp), s * (kp + 0.5) - 0.5, 0.0)
      world = take.pose3d[i]
      where = f'{take.kp_file.name} frame {i}'
      cam3d = np.einsum('vij,nj->vni', r, world) + t[:, None]
      yield (
        i,
        {
          'images': np.array(enc, dtype=object),
          'part_masks': np.array([b''] * v, dtype=object),
          'kp2d_px': as_array(kp, where, 'kp2d_px', (v, self.NUM_JOINTS, 2)),
          'kp2d_vis': vis.astype(np.float32),
          'pose3d_world': as_array(world, where, 'pose3d_world', (self.NUM_JOINTS, 3)),
          'pose3d_cam': as_array(cam3d, where, 'pose3d_cam', (v, self.NUM_JOINTS, 3)),
          'K': k.astype(np.float32),
          'dist': dist.astype(np.float32),
          'R': r.astype(np.float32),
          't': t.astype(np.float32),
          'res_w': np.array([w for w, _ in res], np.int32),
          'res_h': np.array([h for _, h in res], np.int32),
          'cameras': np.array([c.name for c in take.cams], dtype=object),
          'subject': SUBJECT,
          'action': ACTION,
          'take_id': np.int32(0),
          'frame_idx': np.int32(i),
          'source': f'{take.demo.name}/videos frame {i}; 2D {take.kp_file.name}',
        },
      )
