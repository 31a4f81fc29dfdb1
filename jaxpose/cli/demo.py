"""`jaxpose demo`: lift in-the-wild 2D keypoints to 3D and plot them.

  jaxpose demo --keypoints mediapipe_pose_2d.npz [--key demo] [--layout mediapipe33]
               [--width 1768 --height 994] [--checkpoint runs/main] [--frames 20:170]
               [--out demo.png]

Reads (N, J, 2|3|4) pixel keypoints from an npz (x, y [, z] [, visibility]; MediaPipe's 33 or
COCO's 17, or H36M-17), maps them to H36M-17 (`jaxpose.geometry.skeleton.convert`), normalises by
the image width, and lifts them with the model of a workdir or checkpoint (default: the main job's
MotionAGFormer-XS in runs/main) over consecutive windows of the model's length, with the flip test.
The figure shows evenly spaced frames: the 2D input above and the lifted 3D pose below. Frames with
any joint missing (NaN) are filled from the nearest valid frame.

The default keypoints are the Sports2D demo (`../shared/data/sports2d_demo`, BSD-3-Clause): MediaPipe
switches between two people around frame 180, hence the default range 20:170.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import numpy as np
from absl import flags

from jaxpose.cli import common

_SHARED = pathlib.Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'sports2d_demo'


def load_keypoints(
  path: str, key: str, layout: str, width: float, height: float, frames: slice
) -> np.ndarray:
  """Returns (T, 17, 3) normalised H36M-17 2D plus confidence."""
  from jaxpose.geometry import camera, skeleton

  with np.load(path) as z:
    if key not in z.files:
      raise ValueError(f'{path}: no key {key!r}; keys: {", ".join(z.files)}')
    kp = np.asarray(z[key], np.float64)[frames]
  want = skeleton.get(layout).num_joints
  if kp.ndim != 3 or kp.shape[1] != want or kp.shape[2] < 2:
    raise ValueError(
      f'{path}[{key}]: expected shape (N, {want}, 2..4) for {layout}, got {kp.shape}'
    )
  conf = kp[..., -1] if kp.shape[2] in (3, 4) and layout == 'mediapipe33' else np.ones(kp.shape[:2])
  xy = _fill_missing(kp[..., :2])
  if layout != 'h36m17':
    xy = skeleton.convert(xy, layout, 'h36m17')
    conf = skeleton.convert(conf[..., None], layout, 'h36m17')[..., 0]
  xy = camera.normalize_screen_coordinates(xy, width, height)
  return np.concatenate([xy, np.clip(conf, 0, 1)[..., None]], -1).astype(np.float32)


def _fill_missing(xy: np.ndarray) -> np.ndarray:
  ok = np.isfinite(xy).all(axis=(1, 2))
  if not ok.any():
    raise ValueError('no frame has all keypoints')
  idx = np.where(ok)[0]
  nearest = idx[np.abs(np.arange(len(xy))[:, None] - idx[None]).argmin(axis=1)]
  return xy[nearest]


def lift(kp2d: np.ndarray, checkpoint: str) -> np.ndarray:
  """kp2d_norm (T, 17, C) -> pose3d_cam (T, 17, 3) metres, root-relative, with the workdir's model
  and method, window by window (edge-padded tail)."""
  import jax
  import ml_collections as mlc

  from jaxpose import methods
  from jaxpose.train import checkpoint as ckpt_lib

  cfg_path = pathlib.Path(checkpoint) / 'config.json'
  if not cfg_path.exists():
    raise FileNotFoundError(
      f'{cfg_path} not found: pass --checkpoint a training workdir '
      f'(run `jaxpose main` first for the default)'
    )
  config = mlc.ConfigDict(json.loads(cfg_path.read_text()))
  method = methods.get(config.method.name)
  model = method.make_model(config)
  variables = ckpt_lib.load_params(checkpoint)
  t = config.data.frames
  n = len(kp2d)
  pad = (-n) % t
  x = np.concatenate([kp2d, np.repeat(kp2d[-1:], pad, 0)])[:, :, : 3 if config.data.use_conf else 2]
  windows = x.reshape(-1, t, *x.shape[1:])
  predict = jax.jit(lambda v, w: method.predict(model, v, w, config))
  out = np.asarray(predict(variables, windows)).reshape(-1, 17, 3)
  return out[:n]


def make_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string(
    'keypoints',
    str(_SHARED / 'mediapipe_pose_2d.npz'),
    'npz of (N, J, 2..4) pixels',
    flag_values=fv,
  )
  flags.DEFINE_string('key', 'demo', 'array name in the npz', flag_values=fv)
  flags.DEFINE_string('layout', 'mediapipe33', 'joint layout of the keypoints', flag_values=fv)
  flags.DEFINE_float('width', 1768, 'image width, pixels', flag_values=fv)
  flags.DEFINE_float('height', 994, 'image height, pixels', flag_values=fv)
  flags.DEFINE_string('frames', '20:170', 'frame range start:stop', flag_values=fv)
  flags.DEFINE_string('checkpoint', 'runs/main', 'training workdir of the lifter', flag_values=fv)
  flags.DEFINE_string('out', 'demo.png', 'figure path', flag_values=fv)
  flags.DEFINE_integer('panels', 6, 'frames shown', flag_values=fv)
  return fv


def main(argv: Sequence[str]) -> int:
  """`jaxpose demo`; argv[0] is the command."""
  args = make_flags()
  common.parse(args, argv, __doc__)
  a, _, b = args.frames.partition(':')
  frames = slice(int(a) if a else None, int(b) if b else None)
  if not pathlib.Path(args.keypoints).exists():
    raise SystemExit(f'jaxpose demo: keypoint file {args.keypoints} not found')
  kp = load_keypoints(args.keypoints, args.key, args.layout, args.width, args.height, frames)
  pose3d = lift(kp, args.checkpoint)
  from jaxpose.viz import plots

  plots.demo_figure(kp, pose3d, args.out, args.panels)
  print(f'[jaxpose demo] lifted {len(kp)} frames; figure: {args.out}')
  return 0
