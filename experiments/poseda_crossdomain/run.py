"""PoseDA cross-domain check on real motion: DeepMimic through the H36M cameras -> the Pose2Sim rig.

  .venv/bin/python experiments/poseda_crossdomain/run.py [--split time|camera] [--steps 1000]

Source (3D labels + 2D): the 12 DeepMimic training clips (`jaxpose.data.deepmimic`, real mocap,
H36M-17, 50 Hz) seen by the four H36M cameras (S9 extrinsics, 1000 px wide, f ~ 1145 px, ~5 m).
Target (a different real rig): the 3 held-out clips (cartwheel, punch, walk) seen by the Pose2Sim
demo's calibrated cameras (portrait 1088 x 1920, f ~ 1680 px, 1.7-2.1 m high looking down from
2.4-4 m; `pose2sim_cameras.json`, read from the demo's Calib.qca.txt), the clips placed where the
cameras' optical axes meet, feet on the floor. Splits (--split): 'time' (default): the first half
of every held-out clip in all four cameras is target-train (2D only for the adaptation; 2D + 3D
for the oracle), the second half target-test; 'camera': cam01 + cam02 train, cam03 + cam04 test.
2D: exact pinhole projections (no detector noise; the source keeps VideoPose3D's distortion).

Rows, one single-frame lifter each (VideoPose3D with a 1-frame receptive field, 2 residual blocks,
256 channels), same steps, batch and optimiser:
  source only        `methods.poseda` with gpa = lpa = False (= supervised on the source pairs)
  + GPA              gpa = True: source 3D placed with GPA into the target-train cameras
  + GPA + LPA        gpa = lpa = True (the reconstructed LPA, jaxpose/models/_poseda.py)
  target oracle      `methods.supervised` on the target-train pairs with their 3D labels
  (context, 5th)     `methods.supervised` on the source motions seen by the target rig, with 3D:
                     labelled data in the target cameras, but not the target's motions
  (ablation, --rows gpa_lpa_untrained) LPA with lr_g = lr_d = 0: random, untrained transformations
Metrics on target-test: MPJPE (mm, root-relative, H36M-17, flip test) and PCK (% joints within
150 mm). Seeds: --seeds (default 0 1 2) -> mean and std per row. Writes results_<split>.json here.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from configs import common  # noqa: E402
from configs import poseda as poseda_cfg  # noqa: E402
from jaxpose.data import deepmimic  # noqa: E402
from jaxpose.geometry import camera  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
TRAIN_CAMS, TEST_CAMS = ('cam01', 'cam02'), ('cam03', 'cam04')


def pose2sim_cameras() -> list[dict]:
  """The four calibrated Pose2Sim cameras (pixels, metres, OpenCV world -> camera)."""
  raw = json.loads((HERE / 'pose2sim_cameras.json').read_text())['cameras']
  return [{k: np.asarray(v, np.float64) if k != 'name' else v for k, v in c.items()} for c in raw]


def axes_meeting_point(cams: list[dict]) -> np.ndarray:
  """The point closest (least squares) to every camera's optical axis, world metres."""
  a, b = np.zeros((3, 3)), np.zeros(3)
  for c in cams:
    centre = -c['R'].T @ c['t']
    d = c['R'][2] / np.linalg.norm(c['R'][2])
    p = np.eye(3) - np.outer(d, d)
    a += p
    b += p @ centre
  return np.linalg.solve(a, b)


def view(world: np.ndarray, R, t, K, size) -> dict[str, np.ndarray]:
  """World poses (N, J, 3) -> one camera's lifter samples (pinhole)."""
  x = world @ np.asarray(R).T + np.asarray(t)
  px = x[..., :2] / x[..., 2:] * np.diag(K)[:2] + K[:2, 2]
  k9 = np.zeros(9, np.float32)
  k9[:4] = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
  return samples(x, px, k9, *size)


def samples(x: np.ndarray, px: np.ndarray, k9: np.ndarray, w: int, h: int) -> dict[str, np.ndarray]:
  """Camera-frame poses x (N, J, 3) and their pixels px (N, J, 2) -> lifter samples, with the
  9 intrinsics k9 (fx, fy, cx, cy, k1..k3, p1, p2) and the image size."""
  n = len(x)
  return {
    'pose3d_cam': (x - x[:, :1]).astype(np.float32),
    'pose3d_root': x[:, :1].astype(np.float32),
    'kp2d_norm': camera.normalize_screen_coordinates(px, w, h).astype(np.float32),
    'kp2d_px': px.astype(np.float32),
    'cam_intrinsics': np.tile(k9, (n, 1)),
    'res_w': np.full((n,), w, np.int32),
    'res_h': np.full((n,), h, np.int32),
  }


def cat(parts: list[dict]) -> dict[str, np.ndarray]:
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_data(split: str = 'time') -> dict[str, dict]:
  src_world = np.concatenate(list(deepmimic.clips_h36m17(deepmimic.TRAIN_CLIPS).values()))
  parts = []
  for c in deepmimic.cameras():  # source: VideoPose3D's model with distortion, as the dataset
    x, px = deepmimic.project(src_world, c)
    k9 = np.zeros(9, np.float32)
    f, cc = c['focal_length'], c['center']
    k9[:4] = f[0], f[1], cc[0], cc[1]
    k9[4:] = np.concatenate([c['radial_distortion'], c['tangential_distortion']])
    parts.append(samples(x, px, k9, int(c['res_w']), int(c['res_h'])))
  source = cat(parts)
  cams = pose2sim_cameras()
  centre = axes_meeting_point(cams)
  clips = deepmimic.clips_h36m17(deepmimic.TEST_CLIPS)
  tgt_world = np.concatenate(list(clips.values()))
  tgt_world = tgt_world + np.array([centre[0], centre[1], 0.0])  # clips are centred, floor z = 0
  # 'time': the first half of every held-out clip is target-train, the second half target-test,
  # all four cameras in both; 'camera': all frames, cam01 + cam02 train, cam03 + cam04 test.
  first_half = np.concatenate([np.arange(len(v)) < len(v) // 2 for v in clips.values()])
  views = {
    c['name']: view(tgt_world, c['R'], c['t'], c['K'], tuple(int(v) for v in c['size']))
    for c in cams
  }
  if split == 'camera':
    train = cat([views[n] for n in TRAIN_CAMS])
    test = cat([views[n] for n in TEST_CAMS])
  else:
    train = cat([{k: v[first_half] for k, v in views[c].items()} for c in views])
    test = cat([{k: v[~first_half] for k, v in views[c].items()} for c in views])
  # Context row: the SOURCE motions seen by the target rig, with 3D (labels in the target cameras).
  rig_world = src_world + np.array([centre[0], centre[1], 0.0])
  rig = cat(
    [view(rig_world, c['R'], c['t'], c['K'], tuple(int(v) for v in c['size'])) for c in cams]
  )
  return {
    'source': source,
    'target_train': train,
    'target_test': test,
    'rig_train': rig,
    'meeting_point': centre,
  }


def config(row: str, args):
  c = poseda_cfg.get_config('3dhp,smoke')  # deepmimic-sized H36M-17 blocks; tiny LPA nets
  over = {
    'model.kwargs.filter_widths': (1, 1),
    'model.kwargs.channels': args.channels,
    'model.kwargs.dropout': 0.1,
    'data.batch_size': args.batch,
    'method.kwargs.gpa': row in ('gpa', 'gpa_lpa', 'gpa_lpa_untrained'),
    'method.kwargs.lpa': row in ('gpa_lpa', 'gpa_lpa_untrained'),
    'method.kwargs.noise_dim': 16,
    'method.kwargs.g_hidden': 128,
    'method.kwargs.g_depth': 2,
    'method.kwargs.d_hidden': 128,
    'method.kwargs.d2_hidden': 100,
    'method.kwargs.d2_depth': 3,
    'method.kwargs.lr_g': 1e-4,
    'method.kwargs.lr_d': 1e-4,
    'method.kwargs.lpa_warmup': args.steps // 5,
    'eval.flip_test': True,
  }
  if row == 'gpa_lpa_untrained':  # ablation: the generator keeps its random initialisation
    over.update({'method.kwargs.lr_g': 0.0, 'method.kwargs.lr_d': 0.0})
  if row in ('oracle', 'rig_oracle'):
    over['method.name'] = 'supervised'
  return common.apply_overrides(c, over)


def sample(rng: np.random.Generator, data: dict, n: int) -> dict:
  idx = rng.integers(0, len(data['pose3d_cam']), n)
  out = {k: v[idx] for k, v in data.items() if k != 'kp2d_px'}
  for k in ('pose3d_cam', 'pose3d_root', 'kp2d_norm'):
    out[k] = out[k][:, None]  # T = 1
  out['valid'] = np.ones((n, 1), bool)
  return out


def evaluate(method, model, variables, c, test: dict) -> dict[str, float]:
  pred = jax.jit(lambda v, x: method.predict(model, v, x, c))(variables, test['kp2d_norm'][:, None])
  err = np.linalg.norm(np.asarray(pred)[:, 0] - test['pose3d_cam'], axis=-1) * 1000.0
  return {'mpjpe_mm': float(err.mean()), 'pck150': float((err < 150.0).mean() * 100)}


def train_row(row: str, data: dict, args, seed: int) -> dict[str, float]:
  from jaxpose import methods

  c = config(row, args)
  with c.unlocked():
    c.seed = seed
  method = methods.get(c.method.name)
  model = method.make_model(c)
  if method.init_variables is not None:
    variables = method.init_variables(c, model)
  else:
    variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 1, 17, 2)), train=False)
  variables = dict(variables)
  params = variables.pop('params')
  state = variables
  tx = optax.adam(args.lr)
  opt = tx.init(params)

  @jax.jit
  def step(params, state, opt, batch, key):
    def loss(p):
      return method.loss_fn(model, p, state, batch, key, c)

    (val, (sc, new_state)), g = jax.value_and_grad(loss, has_aux=True)(params)
    up, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, up), new_state, opt, val, sc

  rng = np.random.default_rng(seed)
  t0 = time.time()
  src, tgt = data['source'], data['target_train']
  for i in range(args.steps):
    if row == 'oracle':
      batch = sample(rng, tgt, args.batch)
    elif row == 'rig_oracle':
      batch = sample(rng, data['rig_train'], args.batch)
    else:
      batch = {'source': sample(rng, src, args.batch), 'target': sample(rng, tgt, args.batch)}
    params, state, opt, val, sc = step(
      params, state, opt, batch, jax.random.PRNGKey(seed * 7919 + i)
    )
    if not np.isfinite(float(val)):
      raise FloatingPointError(f'{row}: non-finite loss at step {i}')
  res = evaluate(method, model, {'params': params, **state}, c, data['target_test'])
  res['train_s'] = time.time() - t0
  if row.startswith('gpa_lpa'):
    res['final_lpa'] = {k: float(v) for k, v in sc.items() if k.startswith('lpa/')}
  return res


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--steps', type=int, default=1000)
  ap.add_argument('--batch', type=int, default=256)
  ap.add_argument('--lr', type=float, default=1e-3)
  ap.add_argument('--channels', type=int, default=256)
  ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  ap.add_argument(
    '--rows', nargs='+', default=['source_only', 'gpa', 'gpa_lpa', 'oracle', 'rig_oracle']
  )
  ap.add_argument('--split', choices=('time', 'camera'), default='time')
  ap.add_argument('--out', default=None)
  args = ap.parse_args()
  data = build_data(args.split)
  stats = {}
  for name in ('source', 'target_train', 'target_test', 'rig_train'):
    d = data[name]
    px = d['kp2d_px']
    w, h = d['res_w'][:, None], d['res_h'][:, None]
    inside = (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h)
    box = (px.max(1) - px.min(1)).mean(-1)
    stats[name] = {
      'samples': len(px),
      'root_depth_m': float(d['pose3d_root'][:, 0, 2].mean()),
      'box_px_median': float(np.median(box)),
      'box_over_width_median': float(np.median(box / d['res_w'])),
      'joints_inside_image_pct': float(inside.mean() * 100),
    }
  print(json.dumps(stats, indent=1))
  results = {}
  for row in args.rows:
    runs = [train_row(row, data, args, s) for s in args.seeds]
    m = np.array([r['mpjpe_mm'] for r in runs])
    p = np.array([r['pck150'] for r in runs])
    results[row] = {
      'mpjpe_mm': float(m.mean()),
      'mpjpe_std': float(m.std()),
      'pck150': float(p.mean()),
      'pck150_std': float(p.std()),
      'runs': runs,
    }
    print(
      f'{row:12s} MPJPE {m.mean():6.1f} +- {m.std():4.1f} mm   PCK150 {p.mean():5.1f} +- '
      f'{p.std():4.1f} %   ({np.mean([r["train_s"] for r in runs]):.0f} s/run)',
      flush=True,
    )
  out = {
    'args': vars(args),
    'meeting_point_m': data['meeting_point'].tolist(),
    'data': stats,
    'results': results,
    'jax': jax.__version__,
    'devices': str(jax.devices()),
  }
  out_path = args.out or str(HERE / f'results_{args.split}.json')
  pathlib.Path(out_path).write_text(json.dumps(out, indent=1))
  print('| row | target MPJPE (mm) | target PCK@150 mm (%) |\n|---|---|---|')
  label = {
    'source_only': 'source only',
    'gpa': '+ GPA',
    'gpa_lpa': '+ GPA + LPA',
    'gpa_lpa_untrained': '(ablation) + GPA + LPA, generator never trained',
    'oracle': 'target-supervised oracle',
    'rig_oracle': '(context) source motions in the target rig, supervised',
  }
  for row, r in results.items():
    print(
      f'| {label[row]} | {r["mpjpe_mm"]:.1f} ± {r["mpjpe_std"]:.1f} | {r["pck150"]:.1f} ± {r["pck150_std"]:.1f} |'
    )


if __name__ == '__main__':
  main()
