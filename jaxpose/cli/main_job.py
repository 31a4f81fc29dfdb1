"""`jaxpose main`: the README's first command.

Trains MotionAGFormer-XS from scratch on the embedded `deepmimic` dataset (real CMU/SFU mocap
retargeted by DeepMimic, shipped in the pybullet package; built on first use), evaluates on the
held-out clips with the H36M protocol and flip test, prints MPJPE and P-MPJPE in mm, and writes
checkpoints, metrics.jsonl, TensorBoard events and `main_job.png` (learning curve and a test frame's
predicted and ground-truth 3D skeletons) into the workdir. Sized for about 10 minutes on 2 CPU cores.
Run it again with the same workdir and it resumes (or, when finished, re-evaluates).

  jaxpose main --workdir runs/main [--steps N] [--data_dir D]
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time
from collections.abc import Sequence

import numpy as np
from absl import flags

from jaxpose.cli import common


def default_data_dir() -> str:
  return os.environ.get('JAXPOSE_DATA_DIR') or str(pathlib.Path.home() / 'jaxpose_datasets')


def make_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string('workdir', 'runs/main', 'run directory', flag_values=fv)
  flags.DEFINE_string(
    'data_dir', default_data_dir(), 'datasets root ($JAXPOSE_DATA_DIR)', flag_values=fv
  )
  flags.DEFINE_integer('steps', None, 'override the number of training steps', flag_values=fv)
  return fv


def side_by_side(res: dict, base: dict) -> str:
  """Per-clip MPJPE / P-MPJPE (mm) of the trained model next to the mean-training-pose baseline."""
  head = f'{"held-out clip":<16}{"MPJPE":>9}{"P-MPJPE":>9}   {"baseline MPJPE":>15}{"P-MPJPE":>9}'
  rows = [head]
  for g, v in res['per_group'].items():
    b = base['per_group'].get(g, {})
    rows.append(
      f'{g:<16}{v["mpjpe_mm"]:>9.1f}{v["p_mpjpe_mm"]:>9.1f}   '
      f'{b.get("mpjpe_mm", float("nan")):>15.1f}{b.get("p_mpjpe_mm", float("nan")):>9.1f}'
    )
  rows.append(
    f'{"average":<16}{res["mpjpe_mm"]:>9.1f}{res["p_mpjpe_mm"]:>9.1f}   '
    f'{base["mpjpe_mm"]:>15.1f}{base["p_mpjpe_mm"]:>9.1f}'
  )
  return '\n'.join(rows)


def main(argv: Sequence[str]) -> int:
  """`jaxpose main`; argv[0] is the command."""
  args = make_flags()
  common.parse(args, argv, __doc__)

  from configs import motionagformer
  from jaxpose.data import build
  from jaxpose.train import loop, writers
  from jaxpose.viz import plots

  t0 = time.time()
  print(f'[jaxpose main] dataset deepmimic in {args.data_dir}', flush=True)
  build.ensure_built('deepmimic', data_dir=args.data_dir)
  config = motionagformer.get_config('xs,main,data=deepmimic')
  config.data.data_dir = args.data_dir
  if args.steps:
    config.train.total_steps = args.steps
    config.train.eval_every = 0
  print(
    f'[jaxpose main] training MotionAGFormer-XS for {config.train.total_steps} steps '
    f'(batch {config.data.batch_size}, T={config.data.frames}) in {args.workdir}',
    flush=True,
  )
  from jaxpose.train import preemption
  from jaxpose.train.integrity import CheckpointIntegrityError
  from jaxpose.train.workdir import WorkdirError

  try:
    res = loop.run(config, args.workdir)
  except preemption.Preempted as e:
    print(e, file=sys.stderr)
    return preemption.EXIT_CODE
  except (WorkdirError, CheckpointIntegrityError) as e:
    print(f'jaxpose main: {e}', file=sys.stderr)
    return 1
  workdir = pathlib.Path(args.workdir)
  rows = writers.read_jsonl(workdir / 'metrics.jsonl')
  ex = res['example']
  b = int(np.argmax(ex['valid'].any(axis=1)))
  t = ex['pred'].shape[1] // 2
  pred = ex['pred'][b, t] - ex['pred'][b, t, :1]
  gt = ex['gt'][b, t] - ex['gt'][b, t, :1]
  png = workdir / 'main_job.png'
  plots.main_job_figure(
    rows, pred, gt, png, title='MotionAGFormer-XS on deepmimic (held-out clips)'
  )
  from jaxpose import sharding
  from jaxpose.eval import baselines

  base = baselines.mean_pose_baseline(config, sharding.make_mesh())
  print(side_by_side(res, base))
  summary = {
    'mpjpe_mm': round(res['mpjpe_mm'], 2),
    'p_mpjpe_mm': round(res['p_mpjpe_mm'], 2),
    'per_clip': {
      g: {k: round(v[k], 2) for k in ('mpjpe_mm', 'p_mpjpe_mm')}
      for g, v in res['per_group'].items()
    },
    'baseline_mean_pose': {
      'mpjpe_mm': round(base['mpjpe_mm'], 2),
      'p_mpjpe_mm': round(base['p_mpjpe_mm'], 2),
      'per_clip': {
        g: {k: round(v[k], 2) for k in ('mpjpe_mm', 'p_mpjpe_mm')}
        for g, v in base['per_group'].items()
      },
    },
    'frames': res['num_frames'],
    'wall_s': round(time.time() - t0, 1),
    'png': str(png),
  }
  (workdir / 'results.json').write_text(json.dumps(summary, indent=2))
  print(
    f'[jaxpose main] deepmimic test: MPJPE {summary["mpjpe_mm"]} mm, P-MPJPE '
    f'{summary["p_mpjpe_mm"]} mm over {summary["frames"]} frames; plot: {png}'
  )
  return 0
