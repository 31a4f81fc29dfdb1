"""Times EpipolarPose's deconvolution head (forward and a full training gradient) on XLA:CPU with
the two exactly equivalent transposed-convolution forms of `jaxpose.models.layers.conv`:
'dilated' (the convolution of the stride-dilated input) and 'subpixel' (one stride-1 convolution
to s^2 C_out channels + depth-to-space), the one `ConvTranspose2d` uses.

  PYTHONPATH=. python experiments/epipolarpose_deepmimic/deconv_bench.py [--batch 4]

Prints one JSON line per (head, form, pass): median seconds of 3 timed calls after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from jaxpose.models import epipolarpose
from jaxpose.models.layers import conv

FORMS = {'dilated': conv.conv_transpose_dilated, 'subpixel': conv.conv_transpose_subpixel}
# (name, input channels, feature side, filters, joints x depth bins)
HEADS = (
  ('r50 head @256 px', 2048, 8, (256, 256, 256), (17, 64)),
  ('smoke head @64 px (r18 width 8)', 64, 2, (32, 32, 32), (17, 16)),
)


def _time(fn, *args, reps: int = 3) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return sorted(times)[len(times) // 2]


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument('--batch', type=int, default=4)
  args = ap.parse_args()
  for name, cin, side, filters, (j, d) in HEADS:
    head = epipolarpose.DeconvHead(j, d, filters)
    x = jnp.ones((args.batch, side, side, cin), jnp.float32)
    v = head.init(jax.random.key(0), x, train=False)
    for form, fn in FORMS.items():
      orig = conv.conv_transpose_subpixel
      conv.conv_transpose_subpixel = fn  # ConvTranspose2d looks the function up at call time
      try:

        def loss(params, x):
          out, _ = head.apply({**v, 'params': params}, x, train=True, mutable=['batch_stats'])
          return jnp.mean(out**2)

        fwd = jax.jit(lambda p, x: head.apply({**v, 'params': p}, x, train=False))
        grad = jax.jit(jax.grad(loss))
        for kind, f in (('forward', fwd), ('train_grad', grad)):
          s = _time(f, v['params'], x)
          print(json.dumps({'head': name, 'form': form, 'pass': kind, 'batch': args.batch, 's': s}))
      finally:
        conv.conv_transpose_subpixel = orig


if __name__ == '__main__':
  main()
