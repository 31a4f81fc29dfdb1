"""PersPose's PR+PE ablation on the embedded deepmimic_render: train with and without, compare.

  python experiments/perspose_ablation/run.py --workdir /tmp/perspose_ablation [--steps 1500]
      [--arms both|full|single] [--data_dir DIR] [--seed 0]

Each arm is `configs/perspose.py:ablation` with the overrides of `get_sweep` (with PR+PE: crop
'perspective', method.kwargs.pe True; without: 'perspective_nopr', pe False; `--arms full` adds
PR only and PE only, `--arms single` only those two), trained by the default trainer (`jaxpose.train.loop.run`) in its own
workdir and evaluated on every (frame, camera) of the test split (cartwheel, punch, walk; 4 H36M
cameras). Writes <workdir>/results.json and prints the markdown table of the README.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from configs import common, perspose  # noqa: E402

METRICS = ('mpjpe_mm', 'p_mpjpe_mm', 'root_depth_err_mm', 'root_err_mm')


def arm_name(overrides: dict) -> str:
  pr = overrides['data.image.crop'] == 'perspective'
  pe = bool(overrides['method.kwargs.pe'])
  return {(True, True): 'PR+PE', (False, False): 'none', (True, False): 'PR', (False, True): 'PE'}[
    (pr, pe)
  ]


def run_arm(overrides: dict, args) -> dict:
  from jaxpose.data import image_pipeline
  from jaxpose.train import loop

  c = perspose.get_config('ablation')
  common.apply_overrides(c, overrides)
  c.seed = args.seed
  c.train.total_steps = args.steps
  c.train.progress = False
  if args.data_dir:
    c.data.data_dir = args.data_dir
  t0 = time.time()
  res = loop.run(c, pathlib.Path(args.workdir) / arm_name(overrides))
  image_pipeline.clear_stores()
  out = {k: float(res[k]) for k in METRICS}
  out.update(num_frames=int(res['num_frames']), wall_s=round(time.time() - t0, 1))
  return out


def table(results: dict) -> str:
  lines = [
    '| arm | MPJPE | PA-MPJPE | root depth err | root pos err | eval rows | wall (s) |',
    '|---|---|---|---|---|---|---|',
  ]
  for name, r in results.items():
    lines.append(
      f'| {name} | {r["mpjpe_mm"]:.1f} | {r["p_mpjpe_mm"]:.1f} | {r["root_depth_err_mm"]:.1f} | '
      f'{r["root_err_mm"]:.1f} | {r["num_frames"]} | {r["wall_s"]:.0f} |'
    )
  return '\n'.join(lines)


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--workdir', required=True)
  p.add_argument('--steps', type=int, default=1500)
  p.add_argument('--arms', choices=('both', 'full', 'single'), default='both')
  p.add_argument('--data_dir', default='')
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  runs = perspose.get_sweep('full' if args.arms != 'both' else None)
  if args.arms == 'single':
    runs = [r for r in runs if arm_name(r) in ('PR', 'PE')]
  results = {}
  for overrides in runs:
    results[arm_name(overrides)] = run_arm(overrides, args)
    print(arm_name(overrides), results[arm_name(overrides)], flush=True)
  out = pathlib.Path(args.workdir) / 'results.json'
  out.write_text(json.dumps({'steps': args.steps, 'seed': args.seed, 'results': results}, indent=2))
  print(table(results))
  return results


if __name__ == '__main__':
  main()
