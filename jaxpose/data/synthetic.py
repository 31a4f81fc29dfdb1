"""Tiny files in each official benchmark format, for builder and pipeline tests.

Every writer reproduces the on-disk structure documented in research/data.md: the same container
(npz with a pickled dict in a 0-d object array, or a plain pickle), the same key names and nesting,
dtypes and metadata, with a few short sequences of a moving synthetic skeleton instead of real
motion. 2D ground truth is the projection of the 3D through the dataset's camera model, so a test
can check that a built record's 2D and 3D agree.

`defect` makes a malformed copy for the error-path tests:
  'npz_key'   the top-level npz key (or pickle split) is misspelled,
  'structure' a level of the nesting has the wrong container type,
  'joints'    one sequence has the wrong joint count,
  'nan'       one value is NaN.
"""

from __future__ import annotations

import pathlib
import pickle
from typing import Any

import numpy as np

DEFECTS = ('npz_key', 'structure', 'joints', 'nan')

# A standing H36M-17 pose, world frame (z up), metres, facing -y; right side at -x.
_H36M17_TEMPLATE = np.array(
  [
    [0.0, 0.0, 0.92],
    [-0.13, 0.0, 0.92],
    [-0.14, 0.0, 0.48],
    [-0.15, 0.05, 0.07],
    [0.13, 0.0, 0.92],
    [0.14, 0.0, 0.48],
    [0.15, 0.05, 0.07],
    [0.0, 0.0, 1.15],
    [0.0, 0.0, 1.40],
    [0.0, -0.05, 1.50],
    [0.0, 0.0, 1.62],
    [0.17, 0.0, 1.38],
    [0.20, 0.0, 1.10],
    [0.22, -0.05, 0.85],
    [-0.17, 0.0, 1.38],
    [-0.20, 0.0, 1.10],
    [-0.22, -0.05, 0.85],
  ]
)
_KEEP_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# Raw H36M-32 parents: the 15 static joints copy their parent.
_H36M32_PARENTS = (
  -1,
  0,
  1,
  2,
  3,
  4,
  0,
  6,
  7,
  8,
  9,
  0,
  11,
  12,
  13,
  14,
  12,
  16,
  17,
  18,
  19,
  20,
  19,
  22,
  12,
  24,
  25,
  26,
  27,
  28,
  27,
  30,
)
H36M_SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]
COCO_SYMMETRY = [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]


def motion(num_frames: int, num_joints: int = 17, seed: int = 0) -> np.ndarray:
  """A smooth synthetic motion, world frame z-up, metres.

  Args:
    num_frames: T.
    num_joints: J; the H36M-17 template is cycled/truncated for other counts.
    seed: varies amplitude, phase and walking direction.

  Returns:
    (T, J, 3) float32.
  """
  rng = np.random.default_rng(seed)
  base = _H36M17_TEMPLATE[np.arange(num_joints) % 17].copy()
  if num_joints > 17:  # keep joints distinct
    base[17:] += 0.02 * (np.arange(num_joints - 17)[:, None] % 5 + 1)
  t = np.arange(num_frames)[:, None, None] / 50.0
  phase = rng.uniform(0, 2 * np.pi, (1, num_joints, 3))
  wobble = 0.05 * np.sin(2 * np.pi * 1.3 * t + phase)
  heading = rng.uniform(0, 2 * np.pi)
  walk = np.stack([np.cos(heading), np.sin(heading), 0.0]) * 0.6 * t
  return (base[None] + wobble + walk).astype(np.float32)


def h36m32(num_frames: int, seed: int = 0) -> np.ndarray:
  """(T, 32, 3) float32 raw-H36M world joints whose VideoPose3D 17 are `motion(...)`."""
  m17 = motion(num_frames, 17, seed)
  out = np.zeros((num_frames, 32, 3), np.float32)
  out[:, list(_KEEP_17)] = m17
  kept = set(_KEEP_17)
  for j, p in enumerate(_H36M32_PARENTS):
    if j not in kept:
      out[:, j] = out[:, p]
  return out


def _project_h36m(world17: np.ndarray, cam: dict) -> np.ndarray:
  from jaxpose.geometry import camera

  x = camera.world_to_camera(
    world17.astype(np.float64),
    cam['orientation'].astype(np.float64),
    cam['translation'].astype(np.float64),
  )
  uv = camera.project_to_2d(x, cam['intrinsic'].astype(np.float64))
  return camera.image_coordinates(uv, cam['res_w'], cam['res_h']).astype(np.float32)


def _savez(path: pathlib.Path, **arrays: Any) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  obj = {k: (np.array(v, dtype=object) if isinstance(v, dict) else v) for k, v in arrays.items()}
  np.savez_compressed(path, **obj)
  return path


def _check_defect(defect: str | None) -> None:
  if defect is not None and defect not in DEFECTS:
    raise ValueError(f'unknown defect {defect!r}; valid: {DEFECTS}')


H36M_ACTIONS = {
  'S1': ('Walking', 'Directions 1'),
  'S5': ('Eating',),
  'S6': ('Walking 1',),
  'S7': ('Greeting',),
  'S8': ('Sitting 1',),
  'S9': ('Walking', 'Greeting 1'),
  'S11': ('Directions', 'Directions 1'),
}


def write_h36m_vp3d(
  out_dir: str | pathlib.Path,
  sources: tuple[str, ...] = ('gt', 'cpn_ft_h36m_dbb'),
  num_frames: int = 24,
  defect: str | None = None,
) -> dict[str, pathlib.Path]:
  """VideoPose3D `data_3d_h36m.npz` + `data_2d_h36m_<source>.npz` (data.md §1.1-1.2).

  3D: {subject: {action: (T, 32, 3) float32 world metres}} for the 7 subjects; S11 has the broken
  'Directions'. 2D 'gt' is the distorted projection; other sources add noise and two extra frames
  (VideoPose3D trims them), and the cpn file has a 2D-only subject S2. `detectron_pt_coco` is in the
  COCO layout. T varies per sequence (num_frames + 3 * index).

  Returns:
    {'3d': path, <source>: path}.
  """
  from jaxpose.geometry import camera

  _check_defect(defect)
  out_dir = pathlib.Path(out_dir)
  cams = camera.h36m_cameras()
  pos3d: dict[str, dict[str, np.ndarray]] = {}
  k = 0
  for subject, actions in H36M_ACTIONS.items():
    pos3d[subject] = {}
    for action in actions:
      pos3d[subject][action] = h36m32(num_frames + 3 * k, seed=k)
      k += 1
  paths = {}
  for src in sources:
    rng = np.random.default_rng(len(src))
    pos2d: dict[str, dict[str, list]] = {}
    for subject, actions in pos3d.items():
      pos2d[subject] = {}
      for action, world in actions.items():
        views = []
        for cam in cams[subject]:
          kp = _project_h36m(world[:, list(_KEEP_17)], cam)
          if src != 'gt':
            kp = np.concatenate([kp, kp[-2:]]) + rng.normal(0, 2.0, (len(kp) + 2, 17, 2))
          views.append(kp.astype(np.float32))
        pos2d[subject][action] = views
    if src == 'cpn_ft_h36m_dbb':
      pos2d['S2'] = {'Walking': [np.zeros((10, 17, 2), np.float32)] * 4}
    meta: dict[str, Any] = {'num_joints': 17, 'keypoints_symmetry': H36M_SYMMETRY}
    if src != 'gt':
      meta['layout_name'] = 'coco' if src == 'detectron_pt_coco' else 'h36m'
    if src == 'detectron_pt_coco':
      meta['keypoints_symmetry'] = COCO_SYMMETRY
    if defect == 'structure':
      pos2d['S9']['Walking'] = pos2d['S9']['Walking'][0]  # an array instead of a camera list
    if defect == 'joints':
      pos2d['S5']['Eating'][1] = pos2d['S5']['Eating'][1][:, :16]
    key = 'positions_2d_' if defect == 'npz_key' else 'positions_2d'
    paths[src] = _savez(out_dir / f'data_2d_h36m_{src}.npz', **{key: pos2d, 'metadata': meta})
  if defect == 'nan':
    pos3d['S1']['Walking'][3, 5, 1] = np.nan
  paths['3d'] = _savez(out_dir / 'data_3d_h36m.npz', positions_3d=pos3d)
  return paths


def write_h36m_sh(
  out_dir: str | pathlib.Path, num_frames: int = 30, defect: str | None = None
) -> pathlib.Path:
  """MotionBERT's `h36m_sh_conf_cam_source_final.pkl` (data.md §2).

  {'train': {...}, 'test': {...}}, every array all frames of all videos concatenated. Videos:
  train S1 (2 actions x 2 cameras), test S9 (one normal video, one on MotionBERT's eval block list)
  and S11. joint3d_image / 2.5d_factor follow `geometry.camera.image_frame_2p5d`.
  """
  from jaxpose.geometry import camera

  _check_defect(defect)
  cams = camera.h36m_cameras()
  rng = np.random.default_rng(7)
  videos = {
    'train': [('S1', 2, 1, 0), ('S1', 2, 1, 1), ('S1', 14, 2, 0), ('S5', 4, 1, 3)],
    'test': [('S9', 14, 1, 0), ('S9', 5, 2, 1), ('S11', 3, 1, 2)],
  }
  data: dict[str, dict[str, Any]] = {}
  for split, vids in videos.items():
    cols: dict[str, list] = {
      k: []
      for k in (
        'joint_2d',
        'confidence',
        'joint3d_image',
        'camera_name',
        'source',
        'joints_2.5d_image',
        '2.5d_factor',
        'action',
      )
    }
    for i, (subject, act, subact, ci) in enumerate(vids):
      t = num_frames + 5 * i
      cam = cams[subject][ci]
      world = motion(t, 17, seed=30 + i)
      x = camera.world_to_camera(
        world.astype(np.float64),
        cam['orientation'].astype(np.float64),
        cam['translation'].astype(np.float64),
      )
      img, factor = camera.image_frame_2p5d(x * 1000, cam['focal_length'], cam['center'])
      cols['joint_2d'].append(img[..., :2] + rng.normal(0, 1.5, img[..., :2].shape))
      cols['confidence'].append(rng.uniform(0.3, 1.0, (t, 17)))
      cols['joint3d_image'].append(img)
      cols['camera_name'] += [cam['id']] * t
      src = f's_{int(subject[1:]):02d}_act_{act:02d}_subact_{subact:02d}_ca_{ci + 1:02d}'
      cols['source'] += [src] * t
      cols['joints_2.5d_image'].append(img * factor[:, None, None])
      cols['2.5d_factor'].append(factor)
      cols['action'] += [f'act_{act}'] * t
    d = {
      'joint_2d': np.concatenate(cols['joint_2d']).astype(np.float32),
      'confidence': np.concatenate(cols['confidence']).astype(np.float32),
      'joint3d_image': np.concatenate(cols['joint3d_image']).astype(np.float32),
      'camera_name': np.array(cols['camera_name']),
      'source': list(cols['source']),
    }
    if split == 'test':
      d['joints_2.5d_image'] = np.concatenate(cols['joints_2.5d_image']).astype(np.float32)
      d['2.5d_factor'] = np.concatenate(cols['2.5d_factor']).astype(np.float32)
      d['action'] = np.array(cols['action'])
    data[split] = d
  if defect == 'npz_key':
    data['validation'] = data.pop('test')
  elif defect == 'structure':
    data['train'] = list(data['train'].values())
  elif defect == 'joints':
    data['test']['joint_2d'] = data['test']['joint_2d'][:, :16]
  elif defect == 'nan':
    data['train']['joint3d_image'][4, 2, 2] = np.inf
  path = pathlib.Path(out_dir) / 'h36m_sh_conf_cam_source_final.pkl'
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open('wb') as f:
    pickle.dump(data, f)
  return path


MPI3DHP_TRAIN = {'S1 Seq1': 25, 'S1 Seq2': 50, 'S2 Seq1': 25}
MPI3DHP_TEST = {'TS1': (2048, 2048), 'TS5': (1920, 1080)}
_H36M_TO_MPI = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
ANNOT3_SCALE = 0.95  # the synthetic subject's real size relative to the universal skeleton


def _mpi_motion(t: int, seed: int) -> np.ndarray:
  """(T, 17, 3) camera-frame mm in the 3DHP joint order, about 4 m in front of the camera."""
  h = motion(t, 17, seed)
  cam = np.stack(
    [h[..., 0], -(h[..., 2] - 0.9), h[..., 1] + 4.0], -1
  )  # z-up world -> y-down camera
  out = np.empty_like(cam)
  out[:, list(_H36M_TO_MPI)] = cam
  return out * 1000


def _annot3(x: np.ndarray) -> np.ndarray:
  """A universal-skeleton motion as the subject's own: shrunk by ANNOT3_SCALE about the pelvis."""
  x = x.astype(np.float64)
  root = x[:, 14:15]
  return root + ANNOT3_SCALE * (x - root)


def write_mpi_inf_3dhp(
  out_dir: str | pathlib.Path,
  num_frames: int = 20,
  defect: str | None = None,
  ori: bool = False,
) -> dict[str, pathlib.Path]:
  """P-STMO's `data_train_3dhp.npz` and `data_test_3dhp.npz` (data.md §3).

  train: {'data': {'S1 Seq1': [{cam: {'data_2d': (F,17,2), 'data_3d': (F,17,3) mm}}, fps]}} with
  cameras '0' and '2'; test: {'data': {'TS1': {'data_2d', 'data_3d', 'valid'}}} with TS1 (2048x2048)
  and TS5 (1920x1080). Float64 as loadmat/h5py give. 2D = pinhole projection (f 1500 px / 1680 px).

  ori=True writes D3DP's `data_train_3dhp_ori.npz` and `data_test_3dhp_ori.npz` instead (the
  `annot3` builder config): the same structure and motions, the 3D as `annot3` (the skeleton shrunk
  by ANNOT3_SCALE about the pelvis, float64), and the test 2D its projection through the official
  camera of the sequence (the builder's `official_test_intrinsics`); train 2D as above.
  """
  _check_defect(defect)
  out_dir = pathlib.Path(out_dir)
  to_3d = _annot3 if ori else (lambda x: x)
  train: dict[str, Any] = {}
  for i, (seq, fps) in enumerate(MPI3DHP_TRAIN.items()):
    dic_cam = {}
    for cam in ('0', '2'):
      x = to_3d(_mpi_motion(num_frames + 2 * i, seed=40 + i + int(cam)))
      kp = 1500.0 * x[..., :2] / x[..., 2:] + np.array([1024.0, 1024.0])
      dic_cam[cam] = {'data_2d': kp, 'data_3d': x}
    train[seq] = [dic_cam, fps]
  test: dict[str, Any] = {}
  for i, (ts, (w, h)) in enumerate(MPI3DHP_TEST.items()):
    x = to_3d(_mpi_motion(num_frames + 4 * i, seed=50 + i))
    if ori:
      from tfds_builders.mpi_inf_3dhp.mpi_inf_3dhp_dataset_builder import official_test_intrinsics

      k = official_test_intrinsics(ts).astype(np.float64)
      kp = k[:2] * x[..., :2] / x[..., 2:] + k[2:4]
    else:
      f = 1500.0 if w == 2048 else 1680.0
      kp = f * x[..., :2] / x[..., 2:] + np.array([w / 2, h / 2])
    valid = np.ones(len(x))
    valid[::3] = 0
    test[ts] = {'data_2d': kp, 'data_3d': x, 'valid': valid}
  if defect == 'npz_key':
    test = {'TS1': test['TS1']}
    key = 'data_'
  else:
    key = 'data'
  if defect == 'structure':
    train['S1 Seq1'] = train['S1 Seq1'][0]  # the [dic_cam, fps] pair lost its fps
  if defect == 'joints':
    test['TS5']['data_3d'] = test['TS5']['data_3d'][:, :14]
  if defect == 'nan':
    train['S2 Seq1'][0]['2']['data_2d'][1, 1, 0] = np.nan
  stem = '_ori' if ori else ''
  return {
    'train': _savez(out_dir / f'data_train_3dhp{stem}.npz', data=train),
    'test': _savez(out_dir / f'data_test_3dhp{stem}.npz', **{key: test}),
  }


HUMANEVA_SEQS = {
  'Train/S1': ('Walking 1 chunk0', 'Jog 1 chunk0'),
  'Train/S2': ('Box 1 chunk0',),
  'Validate/S1': ('Walking 1 chunk0',),
  'Validate/S3': ('Jog 1 chunk0', 'Jog 1 chunk1'),
}


def write_humaneva(
  out_dir: str | pathlib.Path,
  sources: tuple[str, ...] = ('gt', 'detectron_pt_coco'),
  num_frames: int = 20,
  defect: str | None = None,
) -> dict[str, pathlib.Path]:
  """VideoPose3D `data_3d_humaneva15.npz` and `data_2d_humaneva15_<source>.npz` (data.md §4).

  3D: {'Train/S1': {'Walking 1 chunk0': (T, 15, 3) world metres}}; 2D: 3 cameras (640x480), 15
  joints for gt, 17 (COCO) for detectron_pt_coco, whose file also has an Unlabeled subject.
  """
  _check_defect(defect)
  out_dir = pathlib.Path(out_dir)
  pos3d: dict[str, dict[str, np.ndarray]] = {}
  for i, (subject, actions) in enumerate(HUMANEVA_SEQS.items()):
    pos3d[subject] = {
      a: motion(num_frames + 2 * j + i, 15, seed=60 + 3 * i + j) for j, a in enumerate(actions)
    }
  paths = {}
  rng = np.random.default_rng(3)
  for src in sources:
    j = 17 if src == 'detectron_pt_coco' else 15
    pos2d: dict[str, Any] = {
      s: {
        a: [rng.uniform(100, 500, (len(v), j, 2)).astype(np.float32) for _ in range(3)]
        for a, v in acts.items()
      }
      for s, acts in pos3d.items()
    }
    if src == 'detectron_pt_coco':
      pos2d['Unlabeled/Train/S4'] = {'Walking 1 chunk0': [np.zeros((5, 17, 2), np.float32)] * 3}
    meta = {
      'num_joints': j,
      'keypoints_symmetry': COCO_SYMMETRY
      if j == 17
      else [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]],
    }
    if j == 17:
      meta['layout_name'] = 'coco'
    if defect == 'joints' and src == 'gt':
      pos2d['Train/S2']['Box 1 chunk0'][0] = pos2d['Train/S2']['Box 1 chunk0'][0][:, :14]
    paths[src] = _savez(
      out_dir / f'data_2d_humaneva15_{src}.npz', positions_2d=pos2d, metadata=meta
    )
  if defect == 'structure':
    pos3d['Validate/S1'] = list(pos3d['Validate/S1'].values())
  if defect == 'nan':
    pos3d['Train/S1']['Jog 1 chunk0'][2, 2, 2] = np.nan
  key = 'positions3d' if defect == 'npz_key' else 'positions_3d'
  paths['3d'] = _savez(out_dir / 'data_3d_humaneva15.npz', **{key: pos3d})
  return paths


PW3D_SEQS = {
  'train': ('courtyard_arguing_00',),
  'validation': ('downtown_walking_00',),
  'test': ('outdoors_fencing_01', 'flat_guitar_01'),
}


# Defects of the SMPL parameters only the 3DPW writer makes (on the test sequence with 2 actors).
PW3D_BODY_DEFECTS = ('poses', 'betas', 'trans')


def smpl_motion(num_frames: int, seed: int, offset_x: float = 0.0) -> dict[str, np.ndarray]:
  """A smooth SMPL-format motion in a z-up world, with joints from its forward kinematics.

  The body stands up (SMPL's y-up rest rotated to z-up), turns slowly, walks along x and moves
  every joint a little (up to 0.3 rad). Joints are the FK of `poses` on the synthetic model's
  designed rest skeleton (`jaxpose.body.synthetic.rest_joints()`, betas not applied) plus `trans`,
  so the pelvis rest joint J_0 = jointPositions[:, 0] - trans is constant, as in real 3DPW.

  Returns:
    {'poses' (T, 72) axis-angle radians, world orientation first; 'trans' (T, 3) metres;
     'jointPositions' (T, 72) metres, world; 'betas' (10,)}, float64.
  """
  from jaxpose.body import synthetic as body_synthetic
  from jaxpose.data import bodies

  rng = np.random.default_rng(seed)
  t = np.arange(num_frames) / 30.0
  amp = rng.uniform(-0.3, 0.3, (1, 24, 3))
  freq = rng.uniform(0.5, 1.5, (1, 24, 3))
  local = amp * np.sin(2 * np.pi * freq * t[:, None, None] + rng.uniform(0, 6, (1, 24, 3)))
  yaw = 0.4 * np.sin(2 * np.pi * 0.2 * t) + rng.uniform(-1, 1)
  stand = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # SMPL y-up -> world z-up
  turn = bodies.axis_angle_to_rotmat(yaw[:, None] * np.array([0.0, 0.0, 1.0]))
  rot = bodies.axis_angle_to_rotmat(local)
  rot[:, 0] = turn @ stand @ rot[:, 0]
  rest = body_synthetic.rest_joints()
  root = np.stack([offset_x + 0.5 * t, 0.1 * np.sin(t), 0.95 + 0.02 * np.sin(3 * t)], -1)
  trans = root - rest[0]
  joints = bodies.forward_kinematics(rot, rest)[0] + trans[:, None]
  return {
    'poses': bodies.rotmat_to_axis_angle(rot).reshape(num_frames, 72),
    'trans': trans,
    'jointPositions': joints.reshape(num_frames, 72),
    'betas': rng.normal(0, 1, 10),
  }


def write_3dpw(
  out_dir: str | pathlib.Path, num_frames: int = 16, defect: str | None = None
) -> dict[str, list[pathlib.Path]]:
  """3DPW `sequenceFiles/{train,validation,test}/<seq>.pkl` (data.md §5), Python-2-style pickles.

  Per actor lists (the first test sequence has 2 actors): jointPositions (N, 72) world metres,
  poses (N, 72) axis-angle, trans (N, 3), betas (10,) (`smpl_motion`: the joints are the FK of
  poses/trans), poses2d (N, 3, 18), campose_valid (N,) bool, genders; per sequence: cam_poses
  (N, 4, 4) world->camera, cam_intrinsics (3, 3), img_frame_ids (N,). `defect` may also be one of
  `PW3D_BODY_DEFECTS`: poses (N, 69), betas (9,), or a NaN in trans.
  """
  if defect not in PW3D_BODY_DEFECTS:
    _check_defect(defect)
  root = pathlib.Path(out_dir) / 'sequenceFiles'
  rng = np.random.default_rng(11)
  paths: dict[str, list[pathlib.Path]] = {}
  k = 0
  for split, seqs in PW3D_SEQS.items():
    paths[split] = []
    for s_i, seq in enumerate(seqs):
      n = num_frames + 3 * k
      actors = 2 if (split == 'test' and s_i == 0) else 1
      # Camera: world z-up to a y-down camera 4 m away, slowly panning.
      yaw = np.linspace(0, 0.2, n)
      cam_poses = np.zeros((n, 4, 4))
      for f in range(n):
        c, s = np.cos(yaw[f]), np.sin(yaw[f])
        cam_poses[f, :3, :3] = [[c, s, 0], [0, 0, -1], [-s, c, 0]]
        cam_poses[f, :3, 3] = [0.0, 0.9, 4.0]
        cam_poses[f, 3, 3] = 1.0
      d: dict[str, Any] = {
        'sequence': seq,
        'cam_poses': cam_poses,
        'cam_intrinsics': np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]]),
        'img_frame_ids': np.arange(n),
        'jointPositions': [],
        'poses': [],
        'trans': [],
        'betas': [],
        'poses2d': [],
        'campose_valid': [],
        'genders': [],
      }
      for a in range(actors):
        body = smpl_motion(n, seed=70 + k + a, offset_x=0.5 * a - 0.3)
        for key in ('jointPositions', 'poses', 'trans', 'betas'):
          d[key].append(body[key])
        p2 = rng.uniform(0, 1000, (n, 3, 18))
        p2[:, 2] = rng.uniform(0, 1, (n, 18))
        d['poses2d'].append(p2)
        valid = np.ones(n, bool)
        valid[-2:] = a == 0
        d['campose_valid'].append(valid)
        d['genders'].append('m' if a == 0 else 'f')
      k += 1
      if defect == 'npz_key' and split == 'validation':
        d['joint_positions'] = d.pop('jointPositions')
      if defect == 'structure' and split == 'train':
        d['jointPositions'] = d['jointPositions'][0]  # array instead of a per-actor list
      if defect == 'joints' and split == 'test' and s_i == 1:
        d['jointPositions'][0] = d['jointPositions'][0][:, :69]
      if defect == 'nan' and split == 'train':
        d['cam_poses'][3, 0, 3] = np.nan
      if split == 'test' and s_i == 0:
        if defect == 'poses':
          d['poses'][1] = d['poses'][1][:, :69]
        if defect == 'betas':
          d['betas'][1] = d['betas'][1][:9]
        if defect == 'trans':
          d['trans'][1][5, 2] = np.nan
      path = root / split / f'{seq}.pkl'
      path.parent.mkdir(parents=True, exist_ok=True)
      with path.open('wb') as f:
        pickle.dump(d, f, protocol=2)
      paths[split].append(path)
  return paths


WRITERS = {
  'h36m': write_h36m_vp3d,
  'h36m_sh': write_h36m_sh,
  'mpi_inf_3dhp': write_mpi_inf_3dhp,
  'humaneva': write_humaneva,
  'pw3d': write_3dpw,
}


def write_all(out_dir: str | pathlib.Path) -> pathlib.Path:
  """Writes every format into one folder (the H36M npz files and the SH pickle side by side)."""
  out_dir = pathlib.Path(out_dir)
  write_h36m_vp3d(
    out_dir, sources=('gt', 'cpn_ft_h36m_dbb', 'detectron_ft_h36m', 'detectron_pt_coco')
  )
  write_h36m_sh(out_dir)
  write_mpi_inf_3dhp(out_dir)
  write_mpi_inf_3dhp(out_dir, ori=True)
  write_humaneva(out_dir)
  write_3dpw(out_dir)
  return out_dir
