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

Since 1.1.0 records also carry the SMPL parameters (`tfds_builders/_common.py` body features,
`jaxpose.data.bodies`), in the CAMERA frame of each frame:
  body_rotmat (N, 24, 3, 3)  Rodrigues of `poses` (N, 72) (world axis-angle); joint 0 becomes
                             R_t G_0 (the orientation as the phone sees it), joints 1-23 unchanged
  body_betas (10,)           `betas[:10]` of the actor
  body_transl (N, 3)         R_t (J_0 + trans) + t_t - J_0, so that the SMPL layer with these
                             parameters gives camera-frame vertices; J_0, the actor's rest pelvis
                             joint, needs the (gendered, licence-gated) model, so it is read from
                             the file instead: the median over frames of jointPositions[:, 0] - trans
                             (constant when the joints are the SMPL joints of poses/trans)
  has_smpl (N,)              all True (evaluate on `valid`)
  body_gender                'male' / 'female' (`genders`, or `gender`), 'neutral' when absent;
                             3DPW ground-truth meshes use the gendered SMPL models.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import bodies
from jaxpose.data.io import (
  DataFormatError,
  ManualDirError,
  as_array,
  get_key,
  load_pickle,
  require_file,
  type_name,
)
from tfds_builders._common import (
  Example,
  SequenceBuilder,
  SequenceConfig,
  body_arrays,
  body_features,
  make_example,
)

SPLITS = ('train', 'validation', 'test')


class Builder(SequenceBuilder):
  """3DPW sequences, one record per actor, SMPL-24 joints."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
    '1.0.0': 'Initial release: jointPositions + projected 2D, OpenPose 2D extra.',
    '1.1.0': 'SMPL parameters in the camera frame (body_rotmat, body_betas, body_transl, '
    'has_smpl, body_gender).',
  }
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
      'body_gender': f.Text(),
      **body_features(),
    }

  def _metadata(self):
    return {**super()._metadata(), 'body_model': 'smpl (gendered: body_gender)'}

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


_GENDERS = {'m': 'male', 'f': 'female', 'male': 'male', 'female': 'female', 'neutral': 'neutral'}


def _genders(d, path, actors: int) -> list[str]:
  key = 'genders' if 'genders' in d else 'gender' if 'gender' in d else None
  if key is None:
    return ['neutral'] * actors
  raw = d[key]
  raw = [raw] * actors if isinstance(raw, str | bytes) else list(raw)
  out = []
  for a, g in enumerate(raw[:actors]):
    g = g.decode() if isinstance(g, bytes) else str(g)
    if g.lower() not in _GENDERS:
      raise DataFormatError(path, f'pickle[{key!r}][{a}]', f'one of {sorted(_GENDERS)}', repr(g))
    out.append(_GENDERS[g.lower()])
  if len(out) != actors:
    raise DataFormatError(path, f'pickle[{key!r}]', f'{actors} entries (one per actor)', len(raw))
  return out


def read_body(
  d: dict, path: pathlib.Path, actor: int, joints: np.ndarray, rot: np.ndarray, trans: np.ndarray
) -> Example:
  """One actor's SMPL parameters in the camera frame (module docstring).

  Args:
    d: the sequence pickle.
    path: its file (for errors).
    actor: actor index.
    joints: (N, 24, 3) world jointPositions, metres.
    rot: (N, 3, 3) world -> camera rotations; trans: (N, 3) their translations.

  Raises:
    DataFormatError: poses not (N, 72), trans not (N, 3), betas shorter than 10, non-finite values.
  """
  n = len(joints)
  poses = as_array(
    _per_actor(d, 'poses', path)[actor],
    path,
    f"pickle['poses'][{actor}]",
    (n, 72),
    dtype=np.float64,
  )
  transl = as_array(
    _per_actor(d, 'trans', path)[actor], path, f"pickle['trans'][{actor}]", (n, 3), dtype=np.float64
  )
  betas = as_array(
    _per_actor(d, 'betas', path)[actor], path, f"pickle['betas'][{actor}]", (None,)
  ).reshape(-1)
  if betas.shape[0] < bodies.NUM_BETAS:
    raise DataFormatError(
      path, f"pickle['betas'][{actor}]", f'at least {bodies.NUM_BETAS} values', betas.shape[0]
    )
  rest_root = np.median(joints[:, 0] - transl, axis=0)
  rotmat, transl_cam = bodies.to_camera_frame(
    bodies.axis_angle_to_rotmat(poses.reshape(n, 24, 3)), transl, rest_root, rot, trans
  )
  return body_arrays(
    file=path,
    key=f'actor{actor}',
    rotmat=rotmat,
    betas=betas[: bodies.NUM_BETAS],
    transl=transl_cam,
  )


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
  genders = _genders(d, path, len(joints))
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
          body_gender=genders[a],
          **read_body(d, path, a, world, rot, trans),
        ),
      )
    )
  return out
