"""`jaxpose data <subcommand>`: build datasets, list them, benchmark the input pipeline, mixtures.

  jaxpose data build <name> [--config C|all] [--manual_dir M] [--data_dir D] [--overwrite] [--strict]
  jaxpose data list [--data_dir D]
  jaxpose data bench [--frames 243] [--batch_size 64] [--num_workers 0] [--batches 50]
  jaxpose data gmm <src.npz> <dst.npz> [--conf C] [--std_px 5] [--broad_std_px 20] [--swap_prob 0.5]

`build` needs no TensorFlow (TFDS' Python API with array_record output); `deepmimic` needs no
--manual_dir (it reads the installed pybullet package). `jaxpose data build <name> --help` lists
the dataset's configs and which files go in --manual_dir. `bench` measures training windows per second
on deepmimic (built into --data_dir first if needed); it is a benchmark, not a test. `gmm` writes
DiffPose-style 2D mixtures of a VideoPose3D 2D file (`jaxpose.data.gmm.convert_vp3d_file`).
`jaxpose data <subcommand> --help` lists a subcommand's flags.
"""

from __future__ import annotations

import sys
import time
import types
import warnings

from absl import flags

from jaxpose.cli import common
from jaxpose.data import build as build_lib
from jaxpose.data.io import DataFormatError, ManualDirError


def _build(args) -> int:
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  t0 = time.time()
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always', build_lib.DataWarning)
      path = build_lib.build(
        args.name, args.config, args.manual_dir, args.data_dir, args.overwrite, args.strict
      )
  except (ManualDirError, DataFormatError, ValueError) as e:
    print(f'jaxpose data build: {e}', file=sys.stderr)
    return 1
  finally:
    for w in caught:  # one line each (the default format adds a source line)
      if issubclass(w.category, build_lib.DataWarning):
        print(f'jaxpose data build: warning: {w.message}', file=sys.stderr)
      else:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
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


def _gmm(args) -> int:
  from jaxpose.data import gmm

  out = gmm.convert_vp3d_file(
    args.src,
    args.dst,
    conf_file=args.conf,
    std_px=args.std_px,
    broad_std_px=args.broad_std_px,
    swap_prob=args.swap_prob,
  )
  print(f'wrote {out}')
  return 0


def make_flags(sub: str) -> flags.FlagValues:
  """The flags of one subcommand (a fresh set per call)."""
  fv = flags.FlagValues()
  data_dir_help = 'datasets root (default $JAXPOSE_DATA_DIR or ~/jaxpose_datasets)'
  if sub == 'build':
    flags.DEFINE_string('config', None, "builder config ('all' = every config)", flag_values=fv)
    flags.DEFINE_string('manual_dir', None, 'folder holding the official files', flag_values=fv)
    flags.DEFINE_string('data_dir', None, data_dir_help, flag_values=fv)
    flags.DEFINE_bool('overwrite', False, 'rebuild an existing dataset', flag_values=fv)
    flags.DEFINE_bool(
      'strict', False, 'refuse input names outside the protocol (h36m)', flag_values=fv
    )
  elif sub == 'list':
    flags.DEFINE_string('data_dir', None, data_dir_help, flag_values=fv)
  elif sub == 'bench':
    flags.DEFINE_string('data_dir', None, data_dir_help, flag_values=fv)
    flags.DEFINE_integer('frames', 243, 'window length T', flag_values=fv)
    flags.DEFINE_integer('stride', 1, 'train window stride, frames', flag_values=fv)
    flags.DEFINE_enum('mode', 'seq2seq', ['seq2seq', 'center'], 'window targets', flag_values=fv)
    flags.DEFINE_integer('batch_size', 64, 'windows per batch', flag_values=fv)
    flags.DEFINE_integer('num_workers', 0, 'grain worker processes', flag_values=fv)
    flags.DEFINE_integer('batches', 50, 'timed batches', flag_values=fv)
  elif sub == 'gmm':
    flags.DEFINE_string(
      'conf', None, "npz with per-camera confidences under 'confidence'", flag_values=fv
    )
    flags.DEFINE_float('std_px', 5.0, 'component std of the detection, pixels', flag_values=fv)
    flags.DEFINE_float('broad_std_px', 20.0, 'std of the broad component, pixels', flag_values=fv)
    flags.DEFINE_float('swap_prob', 0.5, 'left/right swap probability', flag_values=fv)
  return fv


def _describe_datasets(args: list[str], fv: flags.FlagValues) -> str:
  """`describe` of the dataset named among `args` (the positional, skipping flag values), else
  the list of datasets."""
  positional, skip = [], False
  for a in args:
    if skip:  # the value of the flag before
      skip = False
    elif a.startswith('-'):
      name = a.lstrip('-').split('=', 1)[0]
      skip = '=' not in a and name in fv and not fv[name].boolean
    else:
      positional.append(a)
  if positional:
    try:
      return build_lib.describe(positional[0])
    except ValueError as e:
      return str(e)
  return f'datasets: {", ".join(build_lib.names())} (jaxpose data build <name> --help: its files)'


# subcommand: (run, positional argument names, synopsis)
_SUBS = {
  'build': (
    _build,
    ('name',),
    'jaxpose data build <name>: build a TFDS dataset from the official files',
  ),
  'list': (_list, (), 'jaxpose data list: datasets, configs and what is built'),
  'bench': (_bench, (), 'jaxpose data bench: training windows/s on deepmimic'),
  'gmm': (
    _gmm,
    ('src', 'dst'),
    'jaxpose data gmm <src> <dst>: 2D mixtures of a VideoPose3D 2D file',
  ),
}


def main(argv: list[str]) -> int:
  """`jaxpose data <subcommand>`; argv = ['data', <subcommand>, ...] as dispatched by jaxpose.cli."""
  argv = list(argv[1:] if argv and argv[0] == 'data' else argv)
  if not argv or argv[0] in ('-h', '--help', 'help'):
    print(__doc__)
    return 0
  sub = argv[0]
  if sub not in _SUBS:
    return common.error('jaxpose data', f'unknown subcommand {sub!r}; valid: {", ".join(_SUBS)}')
  run, names, synopsis = _SUBS[sub]
  fv = make_flags(sub)
  if sub == 'build' and any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    print(common.usage(fv, synopsis) + '\n')
    print(_describe_datasets(argv[1:], fv))
    return 0
  rest = common.parse(fv, [f'jaxpose data {sub}', *argv[1:]], synopsis)[1:]
  if len(rest) != len(names):
    want = ' '.join(f'<{n}>' for n in names) or 'no positional arguments'
    return common.error(f'jaxpose data {sub}', f'expected {want}, got {rest}')
  args = {n: getattr(fv, n) for n in fv if n not in ('flagfile', 'undefok')}
  args.update(zip(names, rest))
  return run(types.SimpleNamespace(**args))
