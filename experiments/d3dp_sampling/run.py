"""D3DP sampling cost: MACs per sample and poses/s for (H, K) settings with the MixSTE denoiser.

MACs come from the jaxpr walker (`jaxpose.bench.flops.count_macs`, all matmuls, abstract shapes:
nothing is allocated) over the whole jitted sampler (the scan body times K). Timings use
`jaxpose.bench.throughput.time_fn` (AOT compile, warm-up, median of `--repeats` windows) on random
weights and inputs (cost does not depend on the values). A pose is one output frame: poses/s =
B x T / seconds per sampler call (all K steps and H hypotheses, flip TTA, JPMA excluded).

  python experiments/d3dp_sampling/run.py --frames 243 --settings 1x1,5x5,20x10 --time 1x1
  python experiments/d3dp_sampling/run.py --frames 27 --time 1x1,5x5,20x10

`--time` picks the settings that are timed (the others are only counted); `--dim`/`--depth`
shrink the denoiser for quick checks. Prints a Markdown table.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
from absl import flags

from jaxpose import models
from jaxpose.bench.flops import abstract_variables, count_macs
from jaxpose.bench.throughput import time_fn
from jaxpose.cli import common
from jaxpose.methods import d3dp


def _pairs(text: str) -> list[tuple[int, int]]:
  return [tuple(map(int, s.split('x'))) for s in filter(None, text.split(','))]


def main(argv=None):
  args = flags.FlagValues()
  flags.DEFINE_integer('frames', 243, 'window length T', flag_values=args)
  flags.DEFINE_integer('batch', 1, 'windows per sampler call', flag_values=args)
  flags.DEFINE_string('settings', '1x1,5x5,20x10', 'HxK settings counted', flag_values=args)
  flags.DEFINE_string('time', '1x1', 'HxK settings timed', flag_values=args)
  flags.DEFINE_integer('repeats', 3, 'timed windows', flag_values=args)
  flags.DEFINE_integer('warmup', 1, 'untimed calls', flag_values=args)
  flags.DEFINE_integer('dim', 512, 'denoiser width', flag_values=args)
  flags.DEFINE_integer('depth', 8, 'denoiser depth', flag_values=args)
  common.parse(args, sys.argv if argv is None else argv, __doc__)

  model = models.build(
    'd3dp', num_frames=args.frames, lifter_kwargs=(('dim', args.dim), ('depth', args.depth))
  )
  b, t = args.batch, args.frames
  kp2d = jax.random.uniform(jax.random.key(1), (b, t, 17, 2), minval=-0.5, maxval=0.5)
  abstract = abstract_variables(model, jax.ShapeDtypeStruct((1, t, 17, 5), jnp.float32))
  one_call = count_macs(
    lambda v, x: model.apply(v, x, train=False),
    abstract,
    jax.ShapeDtypeStruct((1, t, 17, 5), jnp.float32),
  ).total
  timed = set(_pairs(args.time))
  variables = None
  print(
    f'device: {jax.devices()[0].device_kind}, {os.cpu_count()} cores visible, load average '
    f'{os.getloadavg()[0]:.1f}; MixSTE denoiser dim {args.dim}, depth {args.depth}, T = {t}, '
    f'B = {b}; one denoiser call {one_call / 1e9:.2f} G MACs'
  )
  print(
    '| H | K | denoiser calls | G MACs / window | M MACs / pose | s / call | poses/s | compile s |'
  )
  print('|---:|---:|---:|---:|---:|---:|---:|---:|')
  for h, k in _pairs(args.settings):
    run = lambda v, x, key, h=h, k=k: d3dp.sample(model, v, x, key, num_hypotheses=h, num_steps=k)
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    kp_abs = jax.ShapeDtypeStruct((1, t, 17, 2), jnp.float32)
    macs = count_macs(run, abstract, kp_abs, key).total  # per window (B = 1)
    row = f'| {h} | {k} | {2 * h * k} | {macs / 1e9:.1f} | {macs / t / 1e6:.0f} |'
    if (h, k) in timed:
      if variables is None:
        variables = jax.jit(lambda key: model.init(key, jnp.zeros((1, t, 17, 5)), train=False))(
          jax.random.key(0)
        )
      timing = time_fn(
        run, variables, kp2d, jax.random.key(0), warmup=args.warmup, repeats=args.repeats
      )
      row += f' {timing.step_s:.2f} | {b * t / timing.step_s:.3g} | {timing.compile_s:.1f} |'
    else:
      row += ' - | - | - |'
    print(row, flush=True)


if __name__ == '__main__':
  main()
