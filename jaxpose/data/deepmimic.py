"""Real mocap from the installed pybullet package: the 15 DeepMimic clips as H36M-17 poses.

`pybullet_data/data/motions/humanoid3d_<clip>.txt` are the DeepMimic reference motions, retargeted by
DeepMimic from the CMU and SFU motion-capture databases onto a 16-joint humanoid (research/
real_data.md §1). This module turns them into Human3.6M-like data:

  1. parse a clip: per keyframe [duration s, root position (3, y-up, metres), root quaternion
     (w, x, y, z), chest, neck, right hip (quaternions), right knee (rad), right ankle, right
     shoulder (quaternions), right elbow (rad), left hip, left knee, left ankle, left shoulder,
     left elbow];
  2. resample to 50 Hz on the keyframe time axis (root position and knee/elbow angles linearly,
     joint rotations by slerp), frames at k / 50 s for every k / 50 <= clip length;
  3. forward kinematics with the joint offsets of `pybullet_data/humanoid/humanoid.urdf` scaled by
     0.25 (pybullet loads the humanoid with globalScaling=0.25); knees and elbows rotate about local z;
  4. map to H36M-17 (pelvis = root, spine = chest joint, thorax = neck joint, neck/nose = midpoint of
     the neck joint and the head sphere centre, head = neck joint + 1.5 (head centre - neck joint));
  5. y-up -> H36M z-up with (x, y, z) -> (x, -z, y) and centre the mean horizontal root position at
     the world origin;
  6. project through the four H36M cameras with S9 extrinsics and VideoPose3D's distortion.

The result matches the independent reference conversion in shared/data/deepmimic_h36m to well under
a millimetre (tests/tfds_builders/test_deepmimic.py).
"""

from __future__ import annotations

import functools
import json
import pathlib
import xml.etree.ElementTree as ET

import numpy as np

FPS = 50.0
URDF_SCALE = 0.25
CLIPS = (
  'backflip',
  'cartwheel',
  'crawl',
  'dance_a',
  'dance_b',
  'getup_facedown',
  'getup_faceup',
  'jump',
  'kick',
  'punch',
  'roll',
  'run',
  'spin',
  'spinkick',
  'walk',
)
# Held out for testing: locomotion (walk; run stays in train), an upper-body strike (punch; kick
# and spinkick stay in train) and an acrobatic, partly inverted motion (cartwheel; backflip and
# roll stay in train). 307 of the 1,684 frames at 50 Hz.
TEST_CLIPS = ('cartwheel', 'punch', 'walk')
TRAIN_CLIPS = tuple(c for c in CLIPS if c not in TEST_CLIPS)
SUBJECT = 'DM'  # the subject name of the reference conversion; it is posed with S9's cameras
CAMERA_SUBJECT = 'S9'

# Layout of one keyframe: (name, first index, kind) with kind 'quat' (4 values) or 'angle' (1).
_CHANNELS = (
  ('chest', 8, 'quat'),
  ('neck', 12, 'quat'),
  ('right_hip', 16, 'quat'),
  ('right_knee', 20, 'angle'),
  ('right_ankle', 21, 'quat'),
  ('right_shoulder', 25, 'quat'),
  ('right_elbow', 29, 'angle'),
  ('left_hip', 30, 'quat'),
  ('left_knee', 34, 'angle'),
  ('left_ankle', 35, 'quat'),
  ('left_shoulder', 39, 'quat'),
  ('left_elbow', 43, 'angle'),
)
FRAME_SIZE = 44
# Kinematic order (parents before children), as in the URDF.
_JOINTS = (
  'root',
  'chest',
  'neck',
  'right_hip',
  'right_knee',
  'right_ankle',
  'right_shoulder',
  'right_elbow',
  'right_wrist',
  'left_hip',
  'left_knee',
  'left_ankle',
  'left_shoulder',
  'left_elbow',
  'left_wrist',
)
# H36M-17 index -> humanoid joint, or a derived point.
_TO_H36M = (
  'root',
  'right_hip',
  'right_knee',
  'right_ankle',
  'left_hip',
  'left_knee',
  'left_ankle',
  'chest',
  'neck',
  'nose',
  'head',
  'left_shoulder',
  'left_elbow',
  'left_wrist',
  'right_shoulder',
  'right_elbow',
  'right_wrist',
)
# VideoPose3D's 17 of the raw 32 H36M joints, and the raw parents (to fill the 15 static joints).
KEEP_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M32_PARENTS = (
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


def pybullet_data_dir() -> pathlib.Path:
  """The installed `pybullet_data` folder (ImportError with the pip command if absent)."""
  try:
    import pybullet_data
  except ImportError as e:
    raise ImportError(
      'the deepmimic dataset reads pybullet_data: pip install pybullet==3.2.7'
    ) from e
  return pathlib.Path(pybullet_data.getDataPath())


def clip_path(clip: str) -> pathlib.Path:
  """Path of `humanoid3d_<clip>.txt` inside the installed pybullet package."""
  if clip not in CLIPS:
    raise ValueError(f'unknown DeepMimic clip {clip!r}; valid: {", ".join(CLIPS)}')
  path = pybullet_data_dir() / 'data' / 'motions' / f'humanoid3d_{clip}.txt'
  if not path.exists():
    raise FileNotFoundError(f'{path} is missing from the installed pybullet package')
  return path


def read_clip(path: str | pathlib.Path) -> np.ndarray:
  """Reads a DeepMimic motion file. Returns (N, 44) float64 keyframes.

  Raises:
    ValueError: not JSON with a 'Frames' list of 44-value rows; the message names the file.
  """
  from jaxpose.data.io import DataFormatError, as_array, get_key

  path = pathlib.Path(path)
  try:
    obj = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise DataFormatError(path, '', 'a JSON motion file', f'unreadable ({e})') from e
  frames = get_key(obj, 'Frames', path, 'json')
  return as_array(frames, path, "json['Frames']", (None, FRAME_SIZE), dtype=np.float64)


@functools.cache
def urdf_offsets() -> tuple[dict[str, tuple[str, np.ndarray]], np.ndarray]:
  """Joint offsets of the pybullet humanoid, in metres.

  Returns:
    ({joint: (parent joint, (3,) offset in the parent's frame)}, head-centre offset (3,) in the
    neck's frame (the origin of the neck link's sphere)).
  """
  path = pybullet_data_dir() / 'humanoid' / 'humanoid.urdf'
  text = path.read_bytes().replace(b'\x00', b'').decode()  # the file carries NUL bytes
  root = ET.fromstring(text)
  xyz = lambda el: np.array([float(v) for v in el.find('origin').get('xyz').split()])
  link_parent = {}
  offsets = {}
  for j in root.iter('joint'):
    child, parent = j.find('child').get('link'), j.find('parent').get('link')
    link_parent[child] = parent
    offsets[child] = (parent, xyz(j) * URDF_SCALE)
  out = {name: offsets[name] for name in _JOINTS if name != 'root'}
  neck = next(link for link in root.iter('link') if link.get('name') == 'neck')
  head = xyz(neck.find('collision')) * URDF_SCALE
  return out, head


@functools.cache
def _jitted():
  """jit-compiled (slerp, multiply): one compile each instead of one per eager op and shape."""
  import jax

  from jaxpose.geometry.rotation import quat_multiply, quat_slerp

  return jax.jit(quat_slerp), jax.jit(quat_multiply)


def _timing(frames: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
  """Keyframe interval index (T,) and interpolation weight (T,) of each output frame."""
  times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
  n = int(np.floor(times[-1] * fps + 1e-6)) + 1
  t = np.arange(n) / fps
  i = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(frames) - 2)
  span = times[i + 1] - times[i]
  a = np.where(span > 0, (t - times[i]) / np.where(span > 0, span, 1.0), 0.0)
  return i, a


def resample(frames: np.ndarray | list[np.ndarray], fps: float = FPS) -> dict[str, np.ndarray]:
  """Resamples keyframes to `fps` on their own time axis.

  Several clips are resampled in one call (their frames concatenated) so the jax slerp compiles
  once; split the result with the lengths `np.diff(out['offsets'])`.

  Args:
    frames: (N, 44) keyframes of one clip, or a list of them; column 0 is each keyframe's duration
      in seconds.
    fps: output rate.

  Returns:
    {'root_pos': (T, 3), 'root_rot': (T, 4), <joint>: (T, 4) quaternion or (T,) angle,
     'offsets': (num_clips + 1,) start of each clip}, float64 (offsets int).
  """
  clips = [frames] if isinstance(frames, np.ndarray) else list(frames)
  lo, hi, alpha, base = [], [], [], 0
  for fr in clips:
    i, a = _timing(fr, fps)
    lo.append(base + i)
    hi.append(base + i + 1)
    alpha.append(a)
    base += len(fr)
  lo, hi, a = np.concatenate(lo), np.concatenate(hi), np.concatenate(alpha)
  allf = np.concatenate(clips)
  quat_cols = [4] + [k for _, k, kind in _CHANNELS if kind == 'quat']
  q = np.stack([allf[:, k : k + 4] for k in quat_cols], axis=1)  # (N, Q, 4)
  # Some keyframe quaternions are far from unit norm (down to 0.58 in `kick`); normalise them first
  # so slerp's angle is the true angle between the rotations.
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  qs = np.asarray(_jitted()[0](q[lo], q[hi], a[:, None]), np.float64)
  lerp = lambda x: x[lo] + a.reshape((-1,) + (1,) * (x.ndim - 1)) * (x[hi] - x[lo])
  out = {'root_pos': lerp(allf[:, 1:4]), 'root_rot': qs[:, 0]}
  qi = 1
  for name, k, kind in _CHANNELS:
    if kind == 'quat':
      out[name], qi = qs[:, qi], qi + 1
    else:
      out[name] = lerp(allf[:, k])
  out['offsets'] = np.cumsum([0] + [len(x) for x in alpha])
  return out


def _quat_z(angle: np.ndarray) -> np.ndarray:
  """Rotation about local z by `angle` (T,) -> (T, 4) (w, x, y, z)."""
  z = np.zeros_like(angle)
  return np.stack([np.cos(angle / 2), z, z, np.sin(angle / 2)], axis=-1)


def forward_kinematics(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Joint positions (y-up world, metres) of resampled channels. Returns {joint: (T, 3)} + 'head'."""
  return forward_kinematics_with_rotations(pose)[0]


def forward_kinematics_with_rotations(
  pose: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """`forward_kinematics` that also returns each link's world rotation.

  Returns:
    ({joint: (T, 3)} + 'head': positions, y-up world, metres;
     {joint: (T, 4)}: world rotation (w, x, y, z) of every joint's link except the fixed wrists,
     i.e. the frame the link's URDF geometry is attached to).
  """
  from jaxpose.geometry.rotation import quat_rotate

  quat_multiply = _jitted()[1]
  offsets, head = urdf_offsets()
  rot = {'root': pose['root_rot']}
  pos = {'root': pose['root_pos']}
  for name in _JOINTS[1:]:
    parent, off = offsets[name]
    pos[name] = pos[parent] + quat_rotate(rot[parent], off)
    if name.endswith('wrist'):
      continue  # fixed joint, leaf
    local = pose[name]
    local = _quat_z(local) if local.ndim == 1 else local
    rot[name] = np.asarray(quat_multiply(rot[parent], local), np.float64)
  pos['head'] = pos['neck'] + quat_rotate(rot['neck'], head)
  return pos, rot


def to_h36m17(pos: dict[str, np.ndarray], offsets: np.ndarray | None = None) -> np.ndarray:
  """FK joints -> (T, 17, 3) H36M-17 in H36M world coordinates (z up).

  Each clip (frames offsets[k]:offsets[k+1]; one clip if None) is centred horizontally on its mean
  root position.
  """
  derived = {
    'nose': (pos['neck'] + pos['head']) / 2,
    'head': pos['neck'] + 1.5 * (pos['head'] - pos['neck']),
  }
  yup = np.stack([derived.get(n, pos.get(n)) for n in _TO_H36M], axis=1)
  zup = np.stack([yup[..., 0], -yup[..., 2], yup[..., 1]], axis=-1)
  offsets = [0, len(zup)] if offsets is None else offsets
  for s, e in zip(offsets[:-1], offsets[1:]):
    zup[s:e, :, :2] -= zup[s:e, 0, :2].mean(axis=0)
  return zup


def clips_h36m17(clips: tuple[str, ...] = CLIPS) -> dict[str, np.ndarray]:
  """Clips as {name: (T, 17, 3) float64 H36M-17 world poses at 50 Hz, metres}."""
  pose = resample([read_clip(clip_path(c)) for c in clips])
  offsets = pose['offsets']
  world = to_h36m17(forward_kinematics(pose), offsets)
  return {c: world[s:e] for c, s, e in zip(clips, offsets[:-1], offsets[1:])}


def clip_h36m17(clip: str) -> np.ndarray:
  """One clip as (T, 17, 3) float64 H36M-17 world poses at 50 Hz, metres."""
  return clips_h36m17((clip,))[clip]


def to_h36m32(pose17: np.ndarray) -> np.ndarray:
  """(T, 17, 3) -> (T, 32, 3) raw H36M layout (`data_3d_h36m.npz`), static joints at their parent."""
  out = np.zeros(pose17.shape[:1] + (32, 3), pose17.dtype)
  out[:, list(KEEP_17)] = pose17
  for j, p in enumerate(H36M32_PARENTS):
    if j not in KEEP_17:
      out[:, j] = out[:, p]
  return out


def cameras() -> list[dict]:
  """The four H36M cameras with S9 extrinsics (jaxpose.geometry.camera.h36m_cameras)."""
  from jaxpose.geometry import camera

  return camera.h36m_cameras()[CAMERA_SUBJECT]


def project(world17: np.ndarray, cam: dict) -> tuple[np.ndarray, np.ndarray]:
  """World poses -> (camera-frame 3D (T, 17, 3) metres, pixels (T, 17, 2)), VideoPose3D model."""
  from jaxpose.geometry import camera

  x = camera.world_to_camera(
    world17, cam['orientation'].astype(np.float64), cam['translation'].astype(np.float64)
  )
  uv = camera.project_to_2d(x, cam['intrinsic'].astype(np.float64))
  return x, camera.image_coordinates(uv, cam['res_w'], cam['res_h'])
