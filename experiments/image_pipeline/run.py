"""Images/s of the host image pipeline vs a ResNet-50 training step on the same CPU.

  PYTHONPATH=. python experiments/image_pipeline/run.py [--batches 20] [--skip_model]

Writes experiments/image_pipeline/out/results.json and prints a table (README.md has the
protocol and the numbers).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

OUT = pathlib.Path(__file__).parent / 'out'


def data_cfg(data_dir: str, batch: int, workers: int, views: int = 1, **image) -> dict:
  full_aug = dict(size=256, views=views, occlusion=1.0, scale_aug=0.25, rot_prob=0.6)
  return dict(
    name='deepmimic_render',
    config='',
    data_dir=data_dir,
    batch_size=batch,
    eval_batch_size=batch,
    num_workers=workers,
    flip_aug=True,
    image={**full_aug, **image},
  )


def pipeline_rate(cfg: dict, batches: int) -> dict:
  """Steady-state images/s: 2 warm-up batches (store, worker start-up), then `batches` timed."""
  from jaxpose.data import pipeline

  t0 = time.perf_counter()
  it = pipeline.train_iterator(cfg, seed=0)
  for _ in range(2):
    next(it)
  warm = time.perf_counter() - t0
  t0 = time.perf_counter()
  n = 0
  for _ in range(batches):
    b = next(it)
    n += b['image_u8'].shape[0] * (b['image_u8'].shape[1] if b['image_u8'].ndim == 5 else 1)
  dt = time.perf_counter() - t0
  it.close()
  return {'images_per_s': n / dt, 'seconds': dt, 'images': n, 'warmup_s': warm}


def components(data_dir: str, reps: int = 40) -> dict:
  """Median ms per view of each step of `process_view`, single thread."""
  import numpy as np

  from jaxpose.data import image_pipeline, images

  cfg = data_cfg(data_dir, 8, 0)
  store = image_pipeline.get_store(cfg, 'train')
  rec = store.read(0)
  full = images.decode_image(rec['images'][0])
  mask = images.decode_mask(rec['part_masks'][0])
  m = images.crop_matrix((250, 250), (230, 230), 256, 1.1, 20)
  crop = images.warp(full, m, 256)
  spec = image_pipeline.image_spec(cfg, 'h36m17')
  aug = images.sample_augmentation(np.random.default_rng(0), occlusion=1.0)
  steps = {
    'read record (4 views)': lambda: store.read(0),
    'decode JPEG 500x500': lambda: images.decode_image(rec['images'][0]),
    'decode PNG mask': lambda: images.decode_mask(rec['part_masks'][0]),
    'warp bilinear 256': lambda: images.warp(full, m, 256),
    'warp nearest 256 (mask)': lambda: images.warp(mask, m, 256, nearest=True),
    'occlusion': lambda: images.occlude(crop, 7),
    'colour scale': lambda: images.color_scale(crop, (0.9, 1.1, 1.05)),
    'process_view (all, full aug)': lambda: image_pipeline.process_view(
      store, rec, 0, 0, spec, aug, True
    ),
  }
  out = {}
  for name, fn in steps.items():
    ts = []
    for _ in range(reps):
      t0 = time.perf_counter()
      fn()
      ts.append(time.perf_counter() - t0)
    out[name] = 1000 * statistics.median(ts)
  return out


def resnet_step(batch: int, head: str) -> dict:
  """One AdamW step of a stand-in ResNet-50 (torchvision layout) with a classifier head
  ('classifier': 25.56 M params) or EpipolarPose's deconv head ('deconv': 34.27 M params)."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  from jaxpose.bench import throughput

  class Bottleneck(nn.Module):
    width: int
    stride: int = 1

    @nn.compact
    def __call__(self, x, train):
      bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
      y = nn.relu(bn()(nn.Conv(self.width, (1, 1), use_bias=False)(x)))
      y = nn.Conv(self.width, (3, 3), self.stride, padding=1, use_bias=False)(y)
      y = nn.relu(bn()(y))
      y = bn()(nn.Conv(self.width * 4, (1, 1), use_bias=False)(y))
      if x.shape[-1] != self.width * 4 or self.stride != 1:
        x = bn()(nn.Conv(self.width * 4, (1, 1), self.stride, use_bias=False)(x))
      return nn.relu(x + y)

  class StandIn(nn.Module):
    head: str = 'deconv'
    joints: int = 17
    depth: int = 64

    @nn.compact
    def __call__(self, x, train=False):
      bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
      x = nn.relu(bn()(nn.Conv(64, (7, 7), 2, padding=3, use_bias=False)(x)))
      x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
      for i, (w, n) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        for j in range(n):
          x = Bottleneck(w, 2 if (j == 0 and i > 0) else 1)(x, train)
      if self.head == 'classifier':
        return nn.Dense(1000)(x.mean(axis=(1, 2)))
      for _ in range(3):
        x = nn.ConvTranspose(256, (4, 4), (2, 2), padding=((2, 2), (2, 2)), use_bias=False)(x)
        x = nn.relu(bn()(x))
      return nn.Conv(self.joints * self.depth, (1, 1))(x)

  model = StandIn(head)
  x = jnp.zeros((batch, 256, 256, 3), jnp.float32)
  variables = throughput.init_variables(model, x)
  params = sum(p.size for p in jax.tree.leaves(variables['params']))
  res = throughput.train_throughput(model, variables, x, warmup=1, repeats=2)
  return {
    'head': head,
    'params': int(params),
    'batch': batch,
    'step_s': res['train_step_s'],
    'compile_s': res['train_compile_s'],
    'images_per_s': batch / res['train_step_s'],
  }


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument('--data_dir', default='')
  p.add_argument('--batch_size', type=int, default=32)
  p.add_argument('--batches', type=int, default=20)
  p.add_argument('--model_batch', type=int, default=4)
  p.add_argument('--skip_model', action='store_true')
  args = p.parse_args()
  from absl import flags

  flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
  import tensorflow_datasets as tfds

  from jaxpose.data import build

  tfds.disable_progress_bar()
  OUT.mkdir(exist_ok=True)
  t0 = time.perf_counter()
  build.ensure_built('deepmimic_render', args.data_dir or None)
  res = {'ensure_built_s': time.perf_counter() - t0, 'components_ms': components(args.data_dir)}
  for workers in (0, 1, 2):
    cfg = data_cfg(args.data_dir, args.batch_size, workers)
    res[f'single_view_workers{workers}'] = pipeline_rate(cfg, args.batches)
    print(workers, res[f'single_view_workers{workers}'], flush=True)
  cfg = data_cfg(args.data_dir, args.batch_size // 2, 0, views=2)
  res['two_view_workers0'] = pipeline_rate(cfg, args.batches)
  cfg = data_cfg(args.data_dir, args.batch_size, 0, augment=False, part_labels=False)
  res['single_view_no_aug_no_masks_workers0'] = pipeline_rate(cfg, args.batches)
  (OUT / 'results.json').write_text(json.dumps(res, indent=1))
  if not args.skip_model:
    for head in ('classifier', 'deconv'):
      res[f'resnet50_{head}_train_step'] = resnet_step(args.model_batch, head)
      print(res[f'resnet50_{head}_train_step'], flush=True)
  (OUT / 'results.json').write_text(json.dumps(res, indent=1))
  print(json.dumps(res, indent=1))


if __name__ == '__main__':
  main()
