"""`jaxpose sweep`: expand a config's `get_sweep(arg)` into `jaxpose train` runs.

  jaxpose sweep --config configs/motionagformer.py:xs --workdir runs/sweep [--print_only]
                [--config.k=v ...]   (extra overrides apply to every run)

The config is read by ml_collections config_flags exactly as `jaxpose train` reads it, and every
run's command line is parsed by `jaxpose train`'s own parser before anything is launched, so a
run that `jaxpose train` would reject fails here, with the valid keys. `get_sweep(arg)` comes from
the config's module in the `configs` package. Runs go one after another, each in its own process
(fresh XLA state), into `<workdir>/<i>_<k=v,...>`, or with --print_only one command per run is
printed (to hand to separate TPU VMs).
"""

from __future__ import annotations

import importlib
import pathlib
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from absl import flags
from ml_collections import config_flags

from jaxpose.cli import common, config_args
from jaxpose.cli import train as train_cli


def make_flags(argv: Sequence[str]) -> flags.FlagValues:
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file(
    'config', None, 'config file[:arg]', flag_values=fv, lock_config=True, sys_argv=list(argv)
  )
  flags.DEFINE_string(
    'workdir', None, 'sweep directory (one sub-directory per run)', flag_values=fv
  )
  flags.DEFINE_bool(
    'print_only', False, 'print one command per run instead of running', flag_values=fv
  )
  return fv


def config_module(config_arg: str) -> ModuleType:
  """The module of `configs/<...>.py[:arg]` in the `configs` package (imported, not exec'd)."""
  import configs

  path = pathlib.Path(config_arg.partition(':')[0]).resolve()
  root = pathlib.Path(configs.__file__).resolve().parent
  if path.suffix != '.py' or not path.is_relative_to(root):
    raise SystemExit(
      f'jaxpose sweep: {config_arg!r} is not a config of the configs package ({root}/<name>.py)'
    )
  return importlib.import_module(
    '.'.join(('configs', *path.relative_to(root).with_suffix('').parts))
  )


def expand(config_arg: str, extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
  """The sweep's {dotted.key: value} runs (with `extra` overrides), each validated by parsing the
  `jaxpose train` command line it becomes (raises SystemExit naming the run and the bad key)."""
  mod = config_module(config_arg)
  if not hasattr(mod, 'get_sweep'):
    raise SystemExit(f'jaxpose sweep: {config_arg} defines no get_sweep(arg)')
  arg = config_arg.partition(':')[2]
  runs = [dict(r, **(extra or {})) for r in mod.get_sweep(arg or None)]
  for i, overrides in enumerate(runs):
    try:
      train_cli.parse(['train', *run_flags(config_arg, overrides)])
    except SystemExit as e:
      raise SystemExit(f'jaxpose sweep: run {i} {overrides}: {e}') from None
  return runs


def run_flags(config_arg: str, overrides: Mapping[str, Any]) -> list[str]:
  return [f'--config={config_arg}', *(f'--config.{k}={v}' for k, v in overrides.items())]


def run_name(i: int, overrides: Mapping[str, Any]) -> str:
  body = ','.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items())
  return re.sub(r'[^A-Za-z0-9_.,=-]+', '_', f'{i:02d}_{body}')[:120]


def commands(config_arg: str, workdir: str, runs: list[dict[str, Any]]) -> list[list[str]]:
  """One `jaxpose train` command line per run."""
  return [
    [
      'jaxpose',
      'train',
      f'--config={config_arg}',
      f'--workdir={workdir}/{run_name(i, r)}',
      *run_flags(config_arg, r)[1:],
    ]
    for i, r in enumerate(runs)
  ]


def main(argv: Sequence[str]) -> int:
  """`jaxpose sweep`; argv[0] is the command."""
  argv = list(argv)
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    print(common.usage(make_flags(argv), __doc__) + '\n\n' + config_args.help_text(argv))
    return 0
  try:
    argv, open_items = config_args.split_open(argv)
  except config_args.ConfigArgError as e:
    raise SystemExit(f'jaxpose sweep: {e}') from None
  fv = make_flags(argv)
  try:
    fv(argv)  # validates --config and the extra overrides on it
  except (flags.Error, KeyError, AttributeError) as e:
    raise SystemExit(f'jaxpose sweep: {config_args.explain(argv) or e}') from None
  if fv['config'].value is None or not fv.workdir:
    raise SystemExit('jaxpose sweep: --config and --workdir are required')
  config_arg = config_flags.get_config_filename(fv['config'])  # 'path[:arg]'
  extra = config_flags.get_override_values(fv['config'])  # {dotted.key: value}
  extra.update({f'{block}.kwargs.{name}': text for block, name, text in open_items})
  runs = expand(config_arg, extra)
  cmds = commands(config_arg, fv.workdir, runs)
  if fv.print_only:
    print('\n'.join(shlex.join(c) for c in cmds))
    return 0
  for i, cmd in enumerate(cmds):
    print(f'[sweep {i + 1}/{len(cmds)}] {shlex.join(cmd)}', flush=True)
    rc = subprocess.call([sys.executable, '-m', 'jaxpose.cli', *cmd[1:]])
    if rc:
      print(f'jaxpose sweep: run {i} failed with exit code {rc}', file=sys.stderr)
      return rc
  return 0
