"""EpipolarPose on deepmimic_render: fully supervised against self-supervised, on a 2-core CPU.

  PYTHONPATH=. python experiments/epipolarpose_deepmimic/run.py [--steps 200] [--out DIR]
      [--stages teacher,sup,pseudo_ss,ss,pseudo_ss_rt,ss_rt,eval]

Every training stage is one `jaxpose train` of configs/epipolarpose.py (data=deepmimic_render,
default config: 500 px images, 4 H36M cameras, train 12 clips / test cartwheel, punch, walk) at a
CPU size (`EXP`: ResNet-18 at width 32, three 128-filter deconvolutions, 32 depth bins, 128 px
crops, batch 16 crops, Adam 1e-3 with cosine decay):
  teacher       the 2D teacher: 2D labels only (z weight 0), from scratch (the paper's MPII stage)
  sup           fully supervised (GT 2D + 3D), initialised from the teacher
  pseudo_ss     `jaxpose pseudolabel`: teacher 2D -> F (RANSAC) -> E -> R, t up to scale ->
                polynomial triangulation (no extrinsics); prints the label quality
  ss            self-supervised on those labels (8 view pairs = 16 crops), from the teacher
  pseudo_ss_rt  the same with the known extrinsics (iterative-LS triangulation)
  ss_rt         self-supervised "with R/t"
  eval          every finished run on the whole test split (GT root depth, the paper's protocol)
                plus the mean-training-pose baseline; writes out/results.json and prints the table.
Data: $JAXPOSE_DATA_DIR (built on first use). Seconds per stage go to out/times.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = 'configs/epipolarpose.py:r18,data=deepmimic_render,cpu'
EXP = {
  'data.eval_batch_size': 32,
  'schedule.type': 'cosine',
  'train.epochs': 0,
  'train.log_every': 25,
  'train.eval_every': 0,
  'method.kwargs.pss_k': '(50,100)',
}
MODES = {'teacher': 'teacher', 'sup': 'sup', 'ss': 'ss', 'ss_rt': 'ss_rt'}
BATCH = {'teacher': 16, 'sup': 16, 'ss': 8, 'ss_rt': 8}  # ss: view pairs (2 crops each)
METRICS = ('mpjpe_mm', 'p_mpjpe_mm', 'n_mpjpe_mm', 'pss50', 'pss100', 'err2d_px')


def flags(mode: str, out: pathlib.Path, steps: int) -> list[str]:
  """The `--config...` flags of one run (the same for train, pseudolabel and eval)."""
  f = [f'--config={CONFIG},{mode}']
  f += [f'--config.{k}={v}' for k, v in EXP.items()]
  f += [f'--config.train.total_steps={steps}', f'--config.data.batch_size={BATCH[mode]}']
  if mode in ('ss', 'ss_rt'):
    f += [
      f'--config.method.kwargs.labels={out / f"labels_{mode}.npz"}',
      f'--config.method.kwargs.teacher={out / "runs" / "teacher"}',
    ]
  return f


def _run(cmd: list[str], log: pathlib.Path) -> float:
  t0 = time.time()
  with open(log, 'w') as fh:
    rc = subprocess.call(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
  if rc:
    sys.exit(f'{" ".join(cmd)} failed ({rc}); see {log}')
  return time.time() - t0


def stage(name: str, out: pathlib.Path, steps: int) -> float:
  jaxpose = [sys.executable, '-m', 'jaxpose.cli']
  if name.startswith('pseudo_'):
    mode = name[len('pseudo_') :]
    return _run([*jaxpose, 'pseudolabel', *flags(mode, out, steps)], out / f'{name}.log')
  cmd = [*jaxpose, 'train', *flags(name, out, steps), f'--workdir={out / "runs" / name}']
  if name != 'teacher':
    cmd.append(f'--config.init_from.path={out / "runs" / "teacher"}')
  return _run(cmd, out / f'{name}.log')


def evaluate(out: pathlib.Path, steps: int) -> dict[str, dict[str, float]]:
  """Every finished run and the mean-pose baseline on the whole test split."""
  import dataclasses

  import jax.numpy as jnp

  from jaxpose import metrics
  from jaxpose.cli import train as train_cli
  from jaxpose.eval import evaluator
  from jaxpose.eval import steps as eval_steps
  from jaxpose.methods import epipolarpose as ep
  from jaxpose.train import loop

  res: dict[str, dict[str, float]] = {}
  config = None
  for mode in MODES:
    workdir = out / 'runs' / mode
    if not (workdir / 'best').exists() and not (workdir / 'ckpt').exists():
      continue
    config = train_cli.parse(['train', *flags(mode, out, steps)])
    r = loop.evaluate_checkpoint(config, workdir)
    res[mode] = {k: float(r[k]) for k in METRICS if k in r}
    print(mode, res[mode], flush=True)
  if config is None:
    return res
  # The mean training pose (root-relative, camera frame), scored by the same step and protocol.
  mean = jnp.asarray(ep._train_poses(config.data).mean(0), jnp.float32)  # (J, 3) metres
  root = ep._root(config)

  def predict_batch(model, variables, batch, config):
    return jnp.broadcast_to(mean, (batch['pose3d_cam'].shape[0], 1, *mean.shape))

  def eval_metrics(model, variables, batch, config):
    pred = predict_batch(model, variables, batch, config)[:, 0]
    gt = batch['pose3d_cam']
    m = {'n_mpjpe_mm': metrics.n_mpjpe_procrustes_scale(pred * 1000, gt * 1000, root=root)}
    for k in (50, 100):
      m[f'pss{k}'] = metrics.pss(pred, gt, jnp.asarray(ep.pss_centers(config, k)), root)
    return {k: v[:, None].astype(jnp.float32) for k, v in m.items()}

  method = dataclasses.replace(ep.METHOD, predict_batch=predict_batch, eval_metrics=eval_metrics)
  from jaxpose import sharding

  mesh = sharding.make_mesh()
  r = evaluator.evaluate(eval_steps.make_eval_step(None, method, config), {}, config, mesh)
  res['mean_pose'] = {k: float(r[k]) for k in METRICS if k in r}
  return res


def table(res: dict[str, dict[str, float]]) -> str:
  head = '| run | MPJPE mm | PA-MPJPE mm | N-MPJPE mm | PSS@50 | PSS@100 | 2D err px |'
  rows = [head, '|' + '---|' * 7]
  for name, r in res.items():
    cells = [f'{r[k]:.1f}' if k in r else '-' for k in METRICS]
    cells[3:5] = [f'{r[k]:.2f}' if k in r else '-' for k in ('pss50', 'pss100')]
    rows.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(rows)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--steps', type=int, default=200)
  p.add_argument('--out', default=str(ROOT / 'experiments/epipolarpose_deepmimic/out'))
  p.add_argument('--stages', default='teacher,sup,pseudo_ss,ss,eval')
  a = p.parse_args()
  out = pathlib.Path(a.out).resolve()
  (out / 'runs').mkdir(parents=True, exist_ok=True)
  os.environ.setdefault('PYTHONPATH', str(ROOT))
  times_path = out / 'times.json'
  times = json.loads(times_path.read_text()) if times_path.exists() else {}
  for name in a.stages.split(','):
    if name == 'eval':
      t0 = time.time()
      res = evaluate(out, a.steps)
      times['eval'] = time.time() - t0
      (out / 'results.json').write_text(json.dumps(res, indent=1))
      print(table(res))
    else:
      times[name] = stage(name, out, a.steps)
      print(f'{name}: {times[name]:.0f} s', flush=True)
    times_path.write_text(json.dumps(times, indent=1))


if __name__ == '__main__':
  main()
