"""Human3.6M from the files VideoPose3D and MotionBERT users already have (research/data.md §1-2).

Configs:
  gt, cpn_ft_h36m_dbb (default), detectron_ft_h36m, detectron_pt_coco:
      `data_3d_h36m.npz` (32 world joints, metres, 50 Hz) + `data_2d_h36m_<config>.npz` (pixels, one
      list entry per camera in the order 54138969, 55011271, 58860488, 60457274). The 3D is reduced
      to the 17 VideoPose3D joints and moved into each camera's frame (VideoPose3D world_to_camera);
      the 2D is trimmed to the mocap length as VideoPose3D's run.py does. `detectron_pt_coco` is in
      the COCO-17 layout (layout_2d = 'coco17'). No 2D source here has a confidence: kp2d_conf = 1.
      S11 'Directions' is skipped (corrupted video, skipped by VideoPose3D); a camera entry that is
      None (video missing) is skipped.
  sh: MotionBERT / MotionAGFormer's `h36m_sh_conf_cam_source_final.pkl` (Stacked-Hourglass 2D with
      confidence). One record per video (`source`, e.g. s_09_act_02_subact_01_ca_01). `pose3d_cam`
      holds MotionBERT's 2.5D target `joint3d_image` in normalised image units (x, y: px / w * 2 -
      [1, h / w]; z: px / w * 2), which is what MotionBERT trains on; `scale_2_5d` is metres per
      normalised unit, 2.5d_factor * w / 2 / 1000, so `root_relative(pose3d_cam) * scale_2_5d` is
      MotionBERT's evaluation target (joints_2.5d_image, root-relative) in metres. The train split
      has no 2.5d_factor in the file: its scale is the median test factor (nominal, only for
      logging metric-unit losses). The three S9 videos MotionBERT excludes from evaluation
      (Greeting subact 2, SittingDown subact 2, Waiting subact 1, all cameras) have valid = False.

  gt_gmm, cpn_ft_h36m_dbb_gmm: as gt / cpn_ft_h36m_dbb, with the 2D from DiffPose-style mixture
      files `data_2d_h36m_<source>_gmm.npz` (jaxpose.data.gmm: per camera (T, 17, 3, 5) kernels
      [w, mu_x px, mu_y px, s_x, s_y]) stored whole in the extra feature `kp2d_gmm`
      (T, 17, 3, 5); kp2d_px is the heaviest kernel's mean.

Splits: train = S1, S5, S6, S7, S8; test = S9, S11 (S2-S4 2D-only data is not used).
Names outside the protocol are reported, not passed over in silence: subjects of data_3d_h36m.npz
in no split (left out) and actions whose category is not one of the 15 H36M actions (kept, each
its own group in the per-action table) are warned about (`jaxpose.data.build.DataWarning`), or
refused with `strict=True` (`jaxpose data build h36m --strict`).
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data.io import (
  DataFormatError,
  as_array,
  get_key,
  load_npz_dict,
  load_pickle,
  require_file,
  type_name,
)
from tfds_builders._common import (
  Example,
  SequenceBuilder,
  SequenceConfig,
  camera_vectors,
  make_example,
)

TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_SUBJECTS = ('S9', 'S11')
TWO_D_ONLY_SUBJECTS = (
  'S2',
  'S3',
  'S4',
)  # H36M subjects without public 3D (some 2D files hold them)
# VideoPose3D keeps these 17 of the 32 mocap joints (data.md §1.3).
KEEP_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
SKIP = {('S11', 'Directions')}
# H36M action ids 2..16 (data.md §1.6), with VideoPose3D's category spellings.
ACTIONS = {
  2: 'Directions',
  3: 'Discussion',
  4: 'Eating',
  5: 'Greeting',
  6: 'Phoning',
  7: 'Posing',
  8: 'Purchases',
  9: 'Sitting',
  10: 'SittingDown',
  11: 'Smoking',
  12: 'Photo',
  13: 'Waiting',
  14: 'Walking',
  15: 'WalkDog',
  16: 'WalkTogether',
}
MB_EVAL_BLOCK = ('s_09_act_05_subact_02', 's_09_act_10_subact_02', 's_09_act_13_subact_01')
SH_FILE = 'h36m_sh_conf_cam_source_final.pkl'
SH_KEYS = {
  'train': ('joint_2d', 'confidence', 'joint3d_image', 'camera_name', 'source'),
  'test': ('joint_2d', 'confidence', 'joint3d_image', 'camera_name', 'source', '2.5d_factor'),
}

_VP3D = [
  ('gt', 'h36m17'),
  ('cpn_ft_h36m_dbb', 'h36m17'),
  ('detectron_ft_h36m', 'h36m17'),
  ('detectron_pt_coco', 'coco17'),
]
_GMM = ('gt_gmm', 'cpn_ft_h36m_dbb_gmm')
GMM_KERNELS = 3


def _cameras() -> dict[str, list[dict]]:
  from jaxpose.geometry import camera

  return camera.h36m_cameras()


class Builder(SequenceBuilder):
  """Human3.6M sequences (VideoPose3D npz files or the MotionBERT SH pickle)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: VideoPose3D 2D sources and the MotionBERT SH pickle.'}
  BUILDER_CONFIGS = [
    *[
      SequenceConfig(name=n, source_2d=n, layout_2d=lay, description=f'VideoPose3D 3D + {n} 2D')
      for n, lay in _VP3D
    ],
    SequenceConfig(name='sh', source_2d='sh', description='MotionBERT SH pickle (2.5D targets)'),
    *[
      SequenceConfig(name=n, source_2d=n, description=f'VideoPose3D 3D + {n} 2D mixtures')
      for n in _GMM
    ],
  ]
  DEFAULT_CONFIG_NAME = 'cpn_ft_h36m_dbb'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the preprocessed Human3.6M files directly in manual_dir:
    configs gt / cpn_ft_h36m_dbb / detectron_ft_h36m / detectron_pt_coco:
      data_3d_h36m.npz and data_2d_h36m_<config>.npz (VideoPose3D, see its DATASETS.md);
    configs gt_gmm / cpn_ft_h36m_dbb_gmm:
      data_3d_h36m.npz and data_2d_h36m_<gt|cpn_ft_h36m_dbb>_gmm.npz (2D mixtures, made from the
      VideoPose3D 2D file by `jaxpose data gmm`);
    config sh:
      h36m_sh_conf_cam_source_final.pkl (MotionBERT docs/pose3d.md, "H36M-SH").
  These files are pickles: build only from copies you trust.
  """
  FPS = 50.0
  SUPPORTS_STRICT = True  # jaxpose.data.build passes strict=...

  def __init__(self, *, strict: bool = False, **kwargs):
    self.strict = strict
    super().__init__(**kwargs)

  def _extra_features(self) -> dict:
    if self.builder_config.name not in _GMM:
      return {}
    return {'kp2d_gmm': tfds.features.Tensor(shape=(None, 17, GMM_KERNELS, 5), dtype=np.float32)}

  @property
  def POSE3D_UNITS(self) -> str:  # noqa: N802 - matches the base-class constant
    return 'normalised_image' if self.builder_config.name == 'sh' else 'm'

  def read_splits(self, manual_dir: pathlib.Path | None) -> dict[str, list[tuple[str, Example]]]:
    if self.builder_config.name == 'sh':
      return read_sh(manual_dir, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return read_vp3d(
      manual_dir, self.builder_config, self.MANUAL_DOWNLOAD_INSTRUCTIONS, strict=self.strict
    )


# Category spellings of the original file names that VideoPose3D's archive route keeps.
_ACTION_ALIASES = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}


def check_names(pos3d: dict, pos2d: dict, f3d, f2d, strict: bool = False) -> None:
  """Reports subjects in no split and actions that are not H36M actions.

  Subjects of the 3D file outside TRAIN_SUBJECTS + TEST_SUBJECTS are left out of the build;
  subjects of the 2D file with no 3D (other than S2-S4) too; actions whose category ('Walking 1'
  -> 'Walking') is not one of the 15 of `ACTIONS` are kept, each a group of its own.

  Raises:
    DataFormatError: with `strict`, naming the file and every such subject and action.
  Warns:
    jaxpose.data.build.DataWarning: otherwise, one warning per file and kind.
  """
  from jaxpose.data.build import DataWarning

  known = set(ACTIONS.values())
  splits = (*TRAIN_SUBJECTS, *TEST_SUBJECTS)
  problems = []
  extra = sorted(set(pos3d) - set(splits))
  if extra:
    problems.append(
      (
        f3d,
        'subjects',
        f'subjects {extra} are in no split (train {list(TRAIN_SUBJECTS)}, test {list(TEST_SUBJECTS)}); left out',
      )
    )
  extra = sorted(set(pos2d) - set(pos3d) - set(TWO_D_ONLY_SUBJECTS))
  if extra:
    problems.append(
      (f2d, 'subjects', f'subjects {extra} have no 3D in {pathlib.Path(f3d).name}; left out')
    )
  odd = [
    f'{subject} {action!r}'
    for subject in splits
    if isinstance(pos3d.get(subject), dict)
    for action in sorted(pos3d[subject])
    if _ACTION_ALIASES.get(str(action).split(' ')[0], str(action).split(' ')[0]) not in known
  ]
  if odd:
    problems.append(
      (
        f3d,
        'actions',
        f'actions {odd} are not H36M actions ({", ".join(ACTIONS.values())}); kept, each a group of its own',
      )
    )
  if strict and problems:
    file, key, _ = problems[0]
    raise DataFormatError(
      file,
      key,
      'only the H36M protocol subjects and actions (--strict)',
      '; '.join(p[2] for p in problems),
    )
  for file, _, text in problems:
    warnings.warn(f'{file}: {text}', DataWarning, stacklevel=2)


def read_vp3d(manual_dir, cfg: SequenceConfig, instructions: str = '', strict: bool = False):
  """Reads the VideoPose3D files into {split: [(key, example)]} (`check_names` first)."""
  from jaxpose.geometry import camera, skeleton

  f3d = require_file(manual_dir, 'data_3d_h36m.npz', instructions)
  f2d = require_file(manual_dir, f'data_2d_h36m_{cfg.source_2d}.npz', instructions)
  pos3d = load_npz_dict(f3d, 'positions_3d')
  pos2d = load_npz_dict(f2d, 'positions_2d')
  check_names(pos3d, pos2d, f3d, f2d, strict)
  j2d = skeleton.get(cfg.layout_2d).num_joints
  cams = _cameras()
  out: dict[str, list[tuple[str, Example]]] = {'train': [], 'test': []}
  for split, subjects in (('train', TRAIN_SUBJECTS), ('test', TEST_SUBJECTS)):
    for subject in subjects:
      actions = get_key(pos3d, subject, f3d, 'positions_3d')
      if not isinstance(actions, dict):
        raise DataFormatError(
          f3d, f'positions_3d[{subject!r}]', 'a dict of actions', type_name(actions)
        )
      for action in sorted(actions):
        if (subject, action) in SKIP:
          continue
        where3 = f'positions_3d[{subject!r}][{action!r}]'
        world = as_array(actions[action], f3d, where3, (None, None, 3))
        if world.shape[1] == 32:
          world = world[:, KEEP_17]
        elif world.shape[1] != 17:
          raise DataFormatError(
            f3d, where3, '32 (or 17) joints, shape (T, 32, 3)', f'shape {world.shape}'
          )
        views = get_key(
          get_key(pos2d, subject, f2d, 'positions_2d'), action, f2d, f'positions_2d[{subject!r}]'
        )
        where2 = f'positions_2d[{subject!r}][{action!r}]'
        if not isinstance(views, list | tuple) or len(views) != 4:
          raise DataFormatError(f2d, where2, 'a list of 4 camera arrays', type_name(views))
        t = world.shape[0]
        for ci, cam in enumerate(cams[subject]):
          if views[ci] is None:
            continue
          extra = {}
          if cfg.source_2d in _GMM:
            from jaxpose.data import gmm

            mix = gmm.validate(views[ci], f2d, f'{where2}[{ci}]', j2d)
            if mix.shape[2] != GMM_KERNELS:
              raise DataFormatError(
                f2d, f'{where2}[{ci}]', f'{GMM_KERNELS} kernels', f'{mix.shape[2]}'
              )
            kp, extra = gmm.best_kernel_mean(mix), {'kp2d_gmm': mix[:t]}
          else:
            kp = as_array(views[ci], f2d, f'{where2}[{ci}]', (None, j2d, 2))
          if kp.shape[0] < t:
            raise DataFormatError(
              f2d,
              f'{where2}[{ci}]',
              f'at least {t} frames (the mocap length)',
              f'{kp.shape[0]} frames',
            )
          pose = camera.world_to_camera(
            world.astype(np.float64),
            cam['orientation'].astype(np.float64),
            cam['translation'].astype(np.float64),
          )
          key = f'{subject}/{action}/{cam["id"]}'
          out[split].append(
            (
              key,
              make_example(
                file=f2d,
                key=key,
                kp2d_px=kp[:t],
                pose3d_cam=pose,
                j2d=j2d,
                j3d=17,
                subject=subject,
                action=action,
                camera=cam['id'],
                res_w=cam['res_w'],
                res_h=cam['res_h'],
                fps=50.0,
                cam_intrinsics=camera_vectors(cam)[0],
                cam_extrinsics=camera_vectors(cam)[1],
                **extra,
              ),
            )
          )
  return out


def _strings(x, file, key, n: int) -> np.ndarray:
  a = np.asarray(x)
  if a.shape != (n,) or a.dtype.kind not in 'USO':
    raise DataFormatError(file, key, f'{n} strings, shape ({n},)', type_name(a))
  return a.astype(str)


def _parse_source(src: str, file, key) -> tuple[str, int, int, str]:
  """'s_09_act_02_subact_01_ca_01' -> ('S9', 2, 1, '01')."""
  parts = src.split('_')
  try:
    assert parts[0] == 's' and parts[2] == 'act' and parts[4] == 'subact' and parts[6] == 'ca'
    return f'S{int(parts[1])}', int(parts[3]), int(parts[5]), parts[7]
  except (AssertionError, IndexError, ValueError):
    raise DataFormatError(
      file, key, "video ids like 's_09_act_02_subact_01_ca_01'", repr(src)
    ) from None


def read_sh(manual_dir, instructions: str = ''):
  """Reads MotionBERT's SH pickle into {split: [(key, example)]}; one record per video."""
  path = require_file(manual_dir, SH_FILE, instructions)
  data = load_pickle(path)
  cams = _cameras()
  by_id = {c['id']: c for c in cams['S1']}
  if not isinstance(data, dict):
    raise DataFormatError(path, '', "a dict {'train': ..., 'test': ...}", type_name(data))
  split_data = {s: get_key(data, s, path, 'pickle') for s in ('train', 'test')}
  factors = np.asarray(get_key(split_data['test'], '2.5d_factor', path, "pickle['test']"))
  nominal = float(np.median(factors)) if factors.size else 1.0
  out: dict[str, list[tuple[str, Example]]] = {}
  for split, d in split_data.items():
    where = f'pickle[{split!r}]'
    for k in SH_KEYS[split]:
      get_key(d, k, path, where)
    n = len(d['source'])
    kp = as_array(d['joint_2d'], path, f"{where}['joint_2d']", (n, 17, 2))
    conf = np.asarray(d['confidence'])
    if conf.ndim == 3 and conf.shape[-1:] == (1,):
      conf = conf[..., 0]
    conf = as_array(conf, path, f"{where}['confidence']", (n, 17))
    img3d = as_array(d['joint3d_image'], path, f"{where}['joint3d_image']", (n, 17, 3))
    cam_names = _strings(d['camera_name'], path, f"{where}['camera_name']", n)
    sources = _strings(d['source'], path, f"{where}['source']", n)
    factor = (
      as_array(d['2.5d_factor'], path, f"{where}['2.5d_factor']", (n,))
      if '2.5d_factor' in d
      else np.full(n, nominal, np.float32)
    )
    cuts = np.flatnonzero(sources[1:] != sources[:-1]) + 1
    out[split] = []
    for b, (s, e) in enumerate(zip([0, *cuts], [*cuts, n])):
      src = str(sources[s])
      subject, act, subact, _ = _parse_source(src, path, f"{where}['source'][{s}]")
      cam_id = str(cam_names[s])
      if cam_id not in by_id:
        raise DataFormatError(
          path, f"{where}['camera_name'][{s}]", f'one of {sorted(by_id)}', repr(cam_id)
        )
      if act not in ACTIONS:
        raise DataFormatError(path, f"{where}['source'][{s}]", 'action ids 2..16', repr(src))
      if subject not in cams:
        raise DataFormatError(
          path, f"{where}['source'][{s}]", f'subjects {sorted(cams)}', repr(src)
        )
      cam = next(c for c in cams[subject] if c['id'] == cam_id)
      w, h = cam['res_w'], cam['res_h']
      pose = img3d[s:e].astype(np.float64) / w * 2
      pose[..., :2] -= np.array([1.0, h / w])
      blocked = src[:-6] in MB_EVAL_BLOCK and split == 'test'
      key = f'{split}/{src}/{b}'
      out[split].append(
        (
          key,
          make_example(
            file=path,
            key=f'{where}[{s}:{e}] ({src})',
            kp2d_px=kp[s:e],
            kp2d_conf=conf[s:e],
            pose3d_cam=pose,
            j2d=17,
            j3d=17,
            subject=subject,
            action=f'{ACTIONS[act]} (subact {subact})',
            camera=cam_id,
            res_w=w,
            res_h=h,
            fps=50.0,
            cam_intrinsics=camera_vectors(cam)[0],
            cam_extrinsics=camera_vectors(cam)[1],
            valid=np.full(e - s, not blocked),
            scale_2_5d=factor[s:e] * (w / 2 / 1000),
          ),
        )
      )
  return out
