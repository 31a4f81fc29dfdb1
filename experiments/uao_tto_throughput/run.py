"""UAO test-time optimisation throughput vs plain inference for the published GUMLP.

Times, per batch size, (a) plain inference = the flip-averaged forward (2 passes) and (b) the
UAO TTO with the official settings (4 Adam steps on the 2D input, both flip branches: 12 forward
and 8 backward passes per sample), in both optimisation modes. Random weights and synthetic
inputs: cost does not depend on the values. Prints a Markdown table; see README.md.

  python experiments/uao_tto_throughput/run.py [--batches 1,128,1024] [--repeats 3] [--chunk 128]

The TTO keeps ~17 MB of activations per sample (both branches' backward passes), so batch 1024
needs ~17 GB unless `--chunk` bounds the samples optimised at once (per_sample mode only).
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from absl import flags

from jaxpose import models
from jaxpose.bench.throughput import time_fn
from jaxpose.cli import common
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import uao

CAM = np.array([2.29, 2.288, 0.025, 0.029, -0.207, 0.248, -0.003, -0.001, -0.0014], np.float32)


def main(argv=None):
  args = flags.FlagValues()
  flags.DEFINE_string('batches', '1,128,1024', 'batch sizes', flag_values=args)
  flags.DEFINE_integer('repeats', 3, 'timed windows', flag_values=args)
  flags.DEFINE_integer('warmup', 1, 'untimed calls', flag_values=args)
  flags.DEFINE_string('modes', 'per_sample,batch', 'TTO modes', flag_values=args)
  flags.DEFINE_integer('chunk', 0, 'per_sample chunk_size (0: whole batch)', flag_values=args)
  flags.DEFINE_string('variant', 'published', 'GUMLP variant', flag_values=args)
  common.parse(args, sys.argv if argv is None else argv, __doc__)

  model = models.build('uao', args.variant)
  variables = jax.jit(lambda k: model.init(k, models.example_input(model), train=False))(
    jax.random.key(0)
  )
  perm = jnp.asarray(skel.get('h36m17').flip_perm)
  config = mlc.ConfigDict({'eval': {'flip_test': True}, 'data': {'skeleton': 'h36m17'}})
  print(
    f'device: {jax.devices()[0].device_kind}, {os.cpu_count()} cores visible, '
    f'load average {os.getloadavg()[0]:.1f}'
  )
  print('| batch | inference (flip) samples/s | TTO per_sample samples/s | TTO batch samples/s |')
  print('|---:|---:|---:|---:|')
  for b in map(int, args.batches.split(',')):
    rng = np.random.default_rng(b)
    x = jnp.asarray(rng.normal(0, 0.3, (b, 1, 17, 2)), jnp.float32)
    cam = jnp.asarray(np.broadcast_to(CAM, (b, 9)))
    root = jnp.asarray(np.broadcast_to([0.0, 0.0, 4.5], (b, 1, 1, 3)), jnp.float32)
    infer = lambda v, x: uao.predict(model, v, x, config)
    plain = time_fn(infer, variables, x, warmup=args.warmup, repeats=args.repeats)
    rate = {'inference': f'{b / plain.step_s:,.1f}'}
    for mode in args.modes.split(','):
      chunk = args.chunk if mode == 'per_sample' and 0 < args.chunk < b else None
      fn = lambda v, x, c, r, mode=mode, chunk=chunk: uao.tto(
        model, v, x, c, r, flip_perm=perm, mode=mode, chunk_size=chunk
      )
      t = time_fn(fn, variables, x, cam, root, warmup=args.warmup, repeats=args.repeats)
      rate[mode] = f'{b / t.step_s:,.1f}'
    cols = [rate.get(k, '-') for k in ('inference', 'per_sample', 'batch')]
    print(f'| {b} | ' + ' | '.join(cols) + ' |', flush=True)


if __name__ == '__main__':
  main()
