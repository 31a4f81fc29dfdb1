"""Does HoT's MAC reduction become wall-clock speed? Backbone vs HoT/TPC, same device, same protocol.

For each pair it compiles the jitted inference forward of the published-size models ahead of time,
warms them up, then times them *interleaved* (each round calls the backbone, then the wrapped
models), so a change of machine load hits every member alike; it reports the median and the
minimum per call. With --train it also times, interleaved the same way, the generic AdamW + MSE
training step of `jaxpose.bench.throughput.make_train_step`. MACs come from
`jaxpose.bench.flops` (Linear/thop convention and all matmuls). Weights are random (timing does not depend on their values); the clustering runs
inside the timed forward, as in the official inference.

  PYTHONPATH=. python experiments/hot_throughput/run.py                      # inference, B = 1, T = 243
  PYTHONPATH=. python experiments/hot_throughput/run.py --train --repeats 2  # + a training step
  PYTHONPATH=. python experiments/hot_throughput/run.py --pairs mixste --frames 81 --out /tmp/hot.json

Prints a markdown table (speed-up = backbone step time / wrapped step time) and writes JSON.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from jaxpose import models
from jaxpose.bench import flops, throughput
from jaxpose.cli import common
from jaxpose.models import hot

# (label, (name, variant)) rows; the first row of a pair is the backbone.
PAIRS = {
  'mixste': [
    ('MixSTE', ('mixste', '243')),
    ('HoT-MixSTE', ('hot', 'hot_mixste')),
    ('TPC-MixSTE', ('hot', 'tpc_mixste')),
  ],
  'motionbert': [
    ('MotionBERT-Lite', ('motionbert', 'lite')),
    ('HoT-MotionBERT', ('hot', 'hot_motionbert')),
  ],
  'motionagformer': [
    ('MotionAGFormer-B', ('motionagformer', 'b')),
    ('HoT-MotionAGFormer', ('hot', 'hot_motionagformer')),
  ],
}

# Field holding T in each backbone (to run the pairs at a shorter clip with --frames).
_FRAMES_FIELD = {'mixste': 'num_frames', 'motionbert': 'maxlen', 'motionagformer': 'n_frames'}


def build(name: str, variant: str, frames: int | None):
  if frames is None:
    return models.build(name, variant)
  if name != 'hot':
    return models.build(name, variant, **{_FRAMES_FIELD[name]: frames})
  bb = hot.VARIANTS[variant]['backbone']
  tokens = round(hot.VARIANTS[variant]['token_num'] * frames / 243)
  return models.build('hot', variant, backbone_kwargs={_FRAMES_FIELD[bb]: frames}, token_num=tokens)


def random_variables(model, x, seed: int = 0):
  """Variables of the init shapes filled with N(0, 0.02) (norm scales and variances 1)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    if path[-1].key in ('scale', 'var'):
      return jnp.ones(s.shape, s.dtype)
    return jnp.asarray(rng.normal(0.0, 0.02, s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def prepare(label, name, variant, args) -> dict:
  """Builds one model, counts its MACs and compiles its inference forward."""
  model = build(name, variant, args.frames)
  x = jax.random.normal(jax.random.key(1), models.example_input(model, args.batch).shape)
  variables = random_variables(model, x)
  counts = flops.model_flops(model, xla=False)
  t0 = time.perf_counter()
  fn = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
  compile_s = time.perf_counter() - t0
  row = {
    'model': label,
    'name': name,
    'variant': variant,
    'batch': args.batch,
    'frames_in': counts['frames_in'],
    'frames_out': counts['frames_out'],
    'params': counts['params'],
    'gmacs_linear': counts['macs_linear'] / 1e9,
    'gmacs_all': counts['macs_all'] / 1e9,
    'infer_compile_s': compile_s,
  }
  calls = {'infer': lambda: jax.block_until_ready(fn(variables, x))}
  if args.train:
    calls['train'] = compile_train_step(model, variables, x, row)
  return {'row': row, 'calls': calls}


def compile_train_step(model, variables, x, row):
  """The generic AdamW + MSE step of `jaxpose.bench.throughput`, compiled; returns its call."""
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  y = jnp.zeros(out.shape, out.dtype)
  tx = optax.adamw(1e-4)
  step = throughput.make_train_step(model, tx, 'batch_stats' in variables)
  extra = {k: v for k, v in variables.items() if k != 'params'}
  state = (variables['params'], extra, tx.init(variables['params']), x, y, jnp.zeros((), jnp.int32))
  t0 = time.perf_counter()
  fn = jax.jit(step).lower(*state).compile()
  row['train_compile_s'] = time.perf_counter() - t0
  return lambda: jax.block_until_ready(fn(*state))


def time_pair(members: list[dict], args) -> None:
  """Interleaved timing: each round calls every member once, so load drift hits all alike."""
  for kind in members[0]['calls']:
    for m in members:
      for _ in range(args.warmup):
        m['calls'][kind]()
    times = {id(m): [] for m in members}
    for _ in range(args.repeats):
      for m in members:
        t0 = time.perf_counter()
        m['calls'][kind]()
        times[id(m)].append(time.perf_counter() - t0)
    for m in members:
      ts = times[id(m)]
      m['row'].update(
        {f'{kind}_step_s': float(np.median(ts)), f'{kind}_min_s': min(ts), f'{kind}_times_s': ts}
      )
      print(
        f'  {m["row"]["model"]}: {kind} median {np.median(ts):.3f} s (min {min(ts):.3f})',
        flush=True,
      )


def table(rows: list[dict], pairs: dict) -> str:
  """Markdown: MACs and measured step times, each pair against its backbone (first member)."""
  lines = [
    f'| model | T in / out | params | GMACs thop-style | GMACs all | MACs vs backbone '
    f'| infer s/clip (B={rows[0]["batch"]}), median (min) | speed-up, median (min) |',
    '|' + '---|' * 8,
  ]
  train = 'train_step_s' in rows[0]
  if train:
    lines[0] += ' train s/step, median (min) | train speed-up |'
    lines[1] += '---|---|'
  by_label = {r['model']: r for r in rows}
  for members in pairs.values():
    base = by_label.get(members[0][0])
    for label, _ in members:
      r = by_label.get(label)
      if r is None or base is None:
        continue
      cut = r['gmacs_linear'] / base['gmacs_linear'] - 1
      up, up_min = base['infer_step_s'] / r['infer_step_s'], base['infer_min_s'] / r['infer_min_s']
      line = (
        f'| {label} | {r["frames_in"]} / {r["frames_out"]} | {r["params"] / 1e6:.2f} M '
        f'| {r["gmacs_linear"]:.2f} | {r["gmacs_all"]:.2f} | {cut:+.1%} '
        f'| {r["infer_step_s"]:.3f} ({r["infer_min_s"]:.3f}) | {up:.2f}x ({up_min:.2f}x) |'
      )
      if train:
        up_t = base['train_step_s'] / r['train_step_s']
        line += f' {r["train_step_s"]:.3f} ({r["train_min_s"]:.3f}) | {up_t:.2f}x |'
      lines.append(line)
  return '\n'.join(lines)


def main(argv=None):
  args = flags.FlagValues()
  flags.DEFINE_multi_enum('pairs', list(PAIRS), list(PAIRS), 'backbone pairs', flag_values=args)
  flags.DEFINE_integer('batch', 1, 'clips per call', flag_values=args)
  flags.DEFINE_integer('frames', None, 'clip length (default: 243, as published)', flag_values=args)
  flags.DEFINE_integer('warmup', 1, 'untimed calls', flag_values=args)
  flags.DEFINE_integer('repeats', 3, 'timed windows', flag_values=args)
  flags.DEFINE_bool('train', False, 'also time a training step', flag_values=args)
  flags.DEFINE_string('out', 'bench_out/hot_throughput.json', 'output json', flag_values=args)
  common.parse(args, sys.argv if argv is None else ['run.py', *argv], __doc__)
  pairs = {k: PAIRS[k] for k in args.pairs}
  rows = []
  for members in pairs.values():
    prepared = [prepare(label, name, variant, args) for label, (name, variant) in members]
    time_pair(prepared, args)
    rows += [m['row'] for m in prepared]
  meta = {
    'device': str(jax.devices()[0]),
    'platform': platform.platform(),
    'cpu_count': os.cpu_count(),
    'loadavg': os.getloadavg(),
    'jax': jax.__version__,
    'args': args.flag_values_dict(),
  }
  print(table(rows, pairs))
  os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump({'meta': meta, 'rows': rows}, f, indent=1, default=float)
  print(f'wrote {args.out}; load average {meta["loadavg"]}')


if __name__ == '__main__':
  main()
