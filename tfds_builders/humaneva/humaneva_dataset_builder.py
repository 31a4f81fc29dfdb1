"""HumanEva-I from VideoPose3D's preprocessed files (research/data.md §4).

`data_3d_humaneva15.npz`: {'Train/S1': {'Walking 1 chunk0': (T, 15, 3) world metres}} (60 Hz,
Trial 1 only, NaN runs already split into chunks). `data_2d_humaneva15_<config>.npz`: a list of
three camera arrays (C1, C2, C3; 640x480 pixels) per sequence.

Configs: gt (default; the 15-joint projections) and detectron_pt_coco (COCO-17 detections: 2D and
3D then have different joint counts, layout_2d = 'coco17'). Splits: train = Train/S1-S3,
test = Validate/S1-S3 (the usual protocol; the validation partition is the test set). `Unlabeled/*`
2D-only subjects are ignored, as is S3 ThrowCatch (damaged mocap) should a file contain it.

3D is moved into each camera's frame with the extrinsics VideoPose3D ships (`EXTRINSICS`: camera
->world quaternion w, x, y, z and camera centre in mm). VideoPose3D has no HumanEva intrinsics, so
cam_intrinsics is all zero (no reprojection on this dataset).
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

CAMERAS = ('C1', 'C2', 'C3')
RES = (640, 480)
# Camera parameters (numbers only) from VideoPose3D common/humaneva_dataset.py @ 1afb1ca0:
# per subject and camera, [w, x, y, z] camera->world orientation, camera centre in mm.
EXTRINSICS = {
  'S1': [
    ([0.424207, -0.4983646, -0.5802981, 0.4847012], [4062.227, 663.2477, 1528.397]),
    ([0.6503354, -0.7481602, -0.0919284, 0.0941766], [844.8131, -3805.2092, 1504.9929]),
    ([0.0664734, -0.0690535, 0.7416416, -0.6639132], [-797.67377, 3916.3174, 1433.6602]),
  ],
  'S2': [
    ([0.4214752, -0.4961493, -0.5838273, 0.4851187], [4112.9121, 626.4929, 1545.2988]),
    ([0.6501393, -0.7476588, -0.0954617, 0.0959808], [923.5740, -3877.9243, 1504.5518]),
    ([0.0699353, -0.0712403, 0.7421637, -0.662742], [-781.4915, 3838.8853, 1444.9929]),
  ],
  'S3': [
    ([0.424207, -0.4983646, -0.5802981, 0.4847012], [4062.2271, 663.2477, 1528.3970]),
    ([0.6503354, -0.7481602, -0.0919284, 0.0941766], [844.8131, -3805.2092, 1504.9929]),
    ([0.0664734, -0.0690535, 0.7416416, -0.6639132], [-797.6738, 3916.3174, 1433.6602]),
  ],
}
SPLITS = {'train': 'Train/', 'test': 'Validate/'}


class Builder(SequenceBuilder):
  """HumanEva-I sequences (VideoPose3D npz files)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: VideoPose3D gt and detectron_pt_coco 2D.'}
  BUILDER_CONFIGS = [
    SequenceConfig(
      name='gt',
      source_2d='gt',
      layout_2d='humaneva15',
      layout_3d='humaneva15',
      description='ground-truth 2D (15 joints)',
    ),
    SequenceConfig(
      name='detectron_pt_coco',
      source_2d='detectron_pt_coco',
      layout_2d='coco17',
      layout_3d='humaneva15',
      description='Detectron COCO-17 2D detections',
    ),
  ]
  DEFAULT_CONFIG_NAME = 'gt'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put VideoPose3D's HumanEva-I files directly in manual_dir (its DATASETS.md, "HumanEva-I"):
    data_3d_humaneva15.npz and data_2d_humaneva15_<config>.npz (config gt or detectron_pt_coco).
  They hold pickles: use copies you trust.
  """
  FPS = 60.0
  NOTES = 'no intrinsics (zeros); extrinsics from VideoPose3D'

  def read_splits(self, manual_dir) -> dict[str, list[tuple[str, Example]]]:
    from jaxpose.geometry import camera, skeleton

    cfg = self.builder_config
    ins = self.MANUAL_DOWNLOAD_INSTRUCTIONS
    f3d = require_file(manual_dir, 'data_3d_humaneva15.npz', ins)
    f2d = require_file(manual_dir, f'data_2d_humaneva15_{cfg.source_2d}.npz', ins)
    pos3d, pos2d = load_npz_dict(f3d, 'positions_3d'), load_npz_dict(f2d, 'positions_2d')
    j2d = skeleton.get(cfg.layout_2d).num_joints
    out: dict[str, list[tuple[str, Example]]] = {s: [] for s in SPLITS}
    for subject in sorted(pos3d):
      split = next((s for s, p in SPLITS.items() if subject.startswith(p)), None)
      if split is None:
        continue
      short = subject.split('/')[-1]
      if short not in EXTRINSICS:
        raise DataFormatError(
          f3d,
          f'positions_3d[{subject!r}]',
          f'subjects S1-S3 under {list(SPLITS.values())}',
          repr(subject),
        )
      actions = pos3d[subject]
      if not isinstance(actions, dict):
        raise DataFormatError(
          f3d, f'positions_3d[{subject!r}]', 'a dict of actions', type_name(actions)
        )
      for action in sorted(actions):
        if short == 'S3' and action.startswith('ThrowCatch'):
          continue
        where3 = f'positions_3d[{subject!r}][{action!r}]'
        world = as_array(actions[action], f3d, where3, (None, 15, 3), dtype=np.float64)
        where2 = f'positions_2d[{subject!r}][{action!r}]'
        views = get_key(
          get_key(pos2d, subject, f2d, 'positions_2d'), action, f2d, f'positions_2d[{subject!r}]'
        )
        if not isinstance(views, list | tuple) or len(views) != 3:
          raise DataFormatError(f2d, where2, 'a list of 3 camera arrays', type_name(views))
        t = world.shape[0]
        for ci, cam in enumerate(CAMERAS):
          kp = as_array(views[ci], f2d, f'{where2}[{ci}]', (None, j2d, 2))
          if kp.shape[0] < t:
            raise DataFormatError(
              f2d, f'{where2}[{ci}]', f'at least {t} frames', f'{kp.shape[0]} frames'
            )
          q, c = EXTRINSICS[short][ci]
          pose = camera.world_to_camera(world, np.asarray(q), np.asarray(c) / 1000)
          key = f'{subject}/{action}/{cam}'
          out[split].append(
            (
              key,
              make_example(
                file=f2d,
                key=key,
                kp2d_px=kp[:t],
                pose3d_cam=pose,
                j2d=j2d,
                j3d=15,
                subject=subject,
                action=action,
                camera=cam,
                res_w=RES[0],
                res_h=RES[1],
                fps=60.0,
                cam_extrinsics=np.concatenate([q, np.asarray(c) / 1000]),
              ),
            )
          )
    return out
