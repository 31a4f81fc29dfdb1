"""DSR ablation at a CPU size: the same network and data with and without the DSR losses.

PYTHONPATH=. python experiments/dsr_ablation/run.py [--steps 500] [--workdir /tmp/dsr_ablation]
    [--arms spin,dsr] [--table-from results.jsonl]

Each arm is `jaxpose.train.loop.run` on configs/dsr.py:smoke grown to a CPU size (module constant
`CPU`: ResNet-18 of width 16, head 128, 48 px crops, batch 16, Adam 3e-4) on the embedded
`deepmimic_smpl_render` default config (the 'small' body; 384 train frames x 4 views, test
cartwheel/punch/walk 16 frames x 4 cameras = 192 rows), same seed and data order; the arms differ
only in method.kwargs.dsr_mc / dsr_c (0 vs DSR's 0.1). Prints a markdown table of MPJPE,
PA-MPJPE, PVE and PA-PVE (mm, the full test split) and the training time, and appends one JSON
line per arm to --out.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

CPU = dict(
  size=48,
  batch=16,
  model={'depth': 18, 'width': 16, 'hidden': 128},
  lr=3e-4,
)
ARMS = {'spin': {'dsr_mc': 0.0, 'dsr_c': 0.0}, 'dsr': {'dsr_mc': 0.1, 'dsr_c': 0.1}}
KEYS = ('mpjpe_mm', 'p_mpjpe_mm', 'pve_mm', 'pa_pve_mm')


def make_config(arm: str, steps: int, seed: int = 0, init_from: str = ''):
  from configs import dsr as cfg

  c = cfg.get_config('smoke')
  size = CPU['size']
  with c.unlocked():
    c.seed = seed
    c.model.kwargs.update(CPU['model'], img_res=size, focal_length=cfg.focal_for(size))
    c.method.kwargs.update(ARMS[arm])
    c.data.update(config='', batch_size=CPU['batch'], eval_batch_size=32)
    c.data.image.size = size
    c.optim.lr = CPU['lr']
    c.train.total_steps = steps
    c.train.log_every, c.train.ckpt_every, c.train.eval_every = 50, 0, 0
    c.train.progress = False
    c.eval.max_batches = 0
    c.init_from.path, c.init_from.format = init_from, 'orbax' if init_from else ''
  return c


def run_arm(
  arm: str, steps: int, workdir: pathlib.Path, seed: int, init_from: str = '', name: str = ''
) -> dict:
  from jaxpose.train import loop

  t0 = time.time()
  run_dir = workdir / (name or f'{arm}_s{seed}')
  res = loop.run(make_config(arm, steps, seed, init_from), run_dir)
  wall = time.time() - t0
  lines = [json.loads(s) for s in (run_dir / 'metrics.jsonl').read_text().split('\n') if s]
  last = [x for x in lines if 'loss' in x][-1]
  compile_s = next((x['compile_time_s'] for x in lines if 'compile_time_s' in x), float('nan'))
  out = {'arm': arm, 'seed': seed, 'steps': steps, 'wall_s': wall, 'compile_s': compile_s}
  out['init'] = f'{init_from} (SPIN-only pretraining)' if init_from else 'scratch'
  out.update({k: float(res[k]) for k in KEYS if k in res})
  out.update({k: last[k] for k in last if k.startswith('loss')})
  out['steps_per_s'] = last.get('steps_per_s', float('nan'))
  return out


def table(rows: list[dict]) -> str:
  head = (
    '| arm | start | DSR weights | steps | MPJPE | PA-MPJPE | PVE | PA-PVE |'
    ' train wall s (compile) |'
  )
  lines = [head, '|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    w = ARMS[r['arm']]
    lines.append(
      f'| {r["arm"]} (seed {r["seed"]}) | {"pretrained" if r.get("init", "scratch") != "scratch" else "scratch"} |'
      f' MC {w["dsr_mc"]}, C {w["dsr_c"]} | {r["steps"]} |'
      f' {r["mpjpe_mm"]:.1f} | {r["p_mpjpe_mm"]:.1f} | {r["pve_mm"]:.1f} | {r["pa_pve_mm"]:.1f} |'
      f' {r["wall_s"]:.0f} ({r["compile_s"]:.0f}) |'
    )
  return '\n'.join(lines)


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument('--steps', type=int, default=500)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--arms', default='spin,dsr')
  p.add_argument(
    '--pretrain_steps',
    type=int,
    default=0,
    help='> 0: first train SPIN-only for this many steps, then start every arm from it (the '
    "paper's setting: DSR fine-tunes a SPIN-pretrained regressor)",
  )
  p.add_argument('--workdir', default='/tmp/dsr_ablation')
  p.add_argument('--out', default=None, help='append the JSON lines here')
  p.add_argument('--table-from', default=None, help='only print the table of a JSONL file')
  a = p.parse_args()
  if a.table_from:
    rows = [json.loads(s) for s in pathlib.Path(a.table_from).read_text().split('\n') if s]
    print(table(rows))
    return
  rows, init = [], ''
  if a.pretrain_steps:
    pre = run_arm('spin', a.pretrain_steps, pathlib.Path(a.workdir), a.seed, name='pretrain')
    print(json.dumps({**pre, 'arm': 'pretrain'}), flush=True)
    init = str(pathlib.Path(a.workdir) / 'pretrain')
  for arm in a.arms.split(','):
    name = f'{arm}_ft_s{a.seed}' if init else ''
    r = run_arm(arm, a.steps, pathlib.Path(a.workdir), a.seed, init, name)
    print(json.dumps(r), flush=True)
    rows.append(r)
    if a.out:
      with open(a.out, 'a') as f:
        f.write(json.dumps(r) + '\n')
  print(table(rows))


if __name__ == '__main__':
  main()
