"""`jaxpose data <subcommand>`: build datasets, list them, benchmark the input pipeline.

  jaxpose data build <name> [--config C|all] [--manual_dir M] [--data_dir D] [--overwrite]
  jaxpose data list [--data_dir D]
  jaxpose data bench [--frames 243] [--batch_size 64] [--num_workers 0] [--batches 50]

`build` needs no TensorFlow (TFDS' Python API with array_record output); `deepmimic` needs no
--manual_dir (it reads the installed pybullet package). `bench` measures training windows per second
on deepmimic (built into --data_dir first if needed); it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import sys
import time

from jaxpose.data import build as build_lib
from jaxpose.data.io import DataFormatError, ManualDirError


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog='jaxpose data', description=__doc__.split('\n\n')[0])
  sub = p.add_subparsers(dest='sub', required=True)
  b = sub.add_parser('build', help='build a TFDS dataset from the official files')
  b.add_argument('name', help='h36m | mpi_inf_3dhp | humaneva | pw3d | deepmimic')
  b.add_argument('--config', default=None, help="builder config ('all' = every config)")
  b.add_argument('--manual_dir', default=None, help='folder holding the official files')
  b.add_argument(
    '--data_dir', default=None, help='output root (default $JAXPOSE_DATA_DIR or ~/jaxpose_datasets)'
  )
  b.add_argument('--overwrite', action='store_true', help='rebuild an existing dataset')
  ls = sub.add_parser('list', help='datasets, configs and what is built')
  ls.add_argument('--data_dir', default=None)
  bench = sub.add_parser('bench', help='training windows/s on deepmimic')
  bench.add_argument('--data_dir', default=None)
  bench.add_argument('--frames', type=int, default=243)
  bench.add_argument('--stride', type=int, default=1)
  bench.add_argument('--mode', default='seq2seq', choices=('seq2seq', 'center'))
  bench.add_argument('--batch_size', type=int, default=64)
  bench.add_argument('--num_workers', type=int, default=0)
  bench.add_argument('--batches', type=int, default=50)
  return p


def _build(args) -> int:
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  t0 = time.time()
  try:
    path = build_lib.build(args.name, args.config, args.manual_dir, args.data_dir, args.overwrite)
  except (ManualDirError, DataFormatError, ValueError) as e:
    print(f'jaxpose data build: {e}', file=sys.stderr)
    return 1
  print(f'built {args.name} ({args.config or "default config"}) in {time.time() - t0:.1f}s: {path}')
  return 0


def _list(args) -> int:
  data_dir = build_lib.resolve_data_dir(args.data_dir)
  print(f'data_dir: {data_dir}')
  for name in build_lib.names():
    for cfg in build_lib.config_names(name):
      state = 'built' if build_lib.is_built(name, cfg, data_dir) else 'not built'
      print(f'  {name + "/" + cfg:<32} {state}')
  return 0


def bench(
  data_dir: str | None = None,
  frames: int = 243,
  stride: int = 1,
  mode: str = 'seq2seq',
  batch_size: int = 64,
  num_workers: int = 0,
  batches: int = 50,
) -> dict[str, float]:
  """Times the training pipeline on deepmimic. Returns windows/s and the set-up time."""
  from absl import flags

  from jaxpose.data import pipeline

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # grain workers read absl flags
  build_lib.ensure_built('deepmimic', data_dir)
  cfg = dict(
    name='deepmimic',
    data_dir=data_dir or '',
    frames=frames,
    stride=stride,
    mode=mode,
    batch_size=batch_size,
    num_workers=num_workers,
  )
  t0 = time.time()
  it = pipeline.train_iterator(cfg, seed=0)
  next(it)
  setup = time.time() - t0
  t1 = time.time()
  for _ in range(batches):
    next(it)
  dt = time.time() - t1
  if hasattr(it, 'close'):
    it.close()
  return {
    'windows_per_s': batches * batch_size / dt,
    'batches_per_s': batches / dt,
    'setup_s': setup,
    'train_windows': pipeline.num_windows(cfg),
  }


def _bench(args) -> int:
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  r = bench(
    args.data_dir,
    args.frames,
    args.stride,
    args.mode,
    args.batch_size,
    args.num_workers,
    args.batches,
  )
  print(
    f'deepmimic train pipeline: T={args.frames} {args.mode} stride={args.stride} '
    f'batch={args.batch_size} workers={args.num_workers}: {r["windows_per_s"]:.0f} windows/s '
    f'({r["batches_per_s"]:.1f} batches/s; first batch after {r["setup_s"]:.2f}s; '
    f'{r["train_windows"]} windows per epoch)'
  )
  return 0


def main(argv: list[str]) -> int:
  """Entry point; argv = ['data', <subcommand>, ...] as dispatched by jaxpose/cli.py."""
  args = _parser().parse_args(argv[1:] if argv and argv[0] == 'data' else argv)
  return {'build': _build, 'list': _list, 'bench': _bench}[args.sub](args)


if __name__ == '__main__':
  sys.exit(main(['data', *sys.argv[1:]]))
