"""`jaxpose sweep`: expand a config's `get_sweep(arg)` into runs.

  jaxpose sweep --config configs/motionagformer.py:xs --workdir runs/sweep [--print_only]
                [--config.k=v ...]   (extra overrides apply to every run)

Every run's overrides are validated against the locked config before anything is launched. Runs
go one after another, each in its own process (fresh XLA state), into `<workdir>/<i>_<k=v,...>`,
or with --print_only one command per run is printed (to hand to separate TPU VMs).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from typing import Any

from absl import flags

from configs import common

FLAGS = flags.FlagValues()
flags.DEFINE_string('config', None, 'config file[:arg]', flag_values=FLAGS)
flags.DEFINE_string('workdir', None, 'sweep directory', flag_values=FLAGS)
flags.DEFINE_bool(
  'print_only', False, 'print one command per run instead of running', flag_values=FLAGS
)


def load_config_module(path: str):
  spec = importlib.util.spec_from_file_location('jaxpose_sweep_config', path)
  if spec is None or spec.loader is None:
    raise SystemExit(f'jaxpose sweep: cannot load config file {path!r}')
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def expand(config_arg: str, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """The sweep's override dicts, each validated on a fresh locked config (raises on a bad key)."""
  path, _, arg = config_arg.partition(':')
  mod = load_config_module(path)
  if not hasattr(mod, 'get_sweep'):
    raise SystemExit(f'jaxpose sweep: {path} defines no get_sweep(arg)')
  runs = [dict(r, **(extra or {})) for r in mod.get_sweep(arg or None)]
  for i, overrides in enumerate(runs):
    try:
      common.apply_overrides(mod.get_config(arg or None), overrides)
    except (KeyError, AttributeError, TypeError, ValueError) as e:
      raise SystemExit(f'jaxpose sweep: run {i} {overrides}: {e}') from None
  return runs


def run_name(i: int, overrides: dict[str, Any]) -> str:
  body = ','.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items())
  return re.sub(r'[^A-Za-z0-9_.,=-]+', '_', f'{i:02d}_{body}')[:120]


def commands(config_arg: str, workdir: str, runs: list[dict[str, Any]]) -> list[list[str]]:
  return [
    [
      'jaxpose',
      'train',
      f'--config={config_arg}',
      f'--workdir={workdir}/{run_name(i, r)}',
      *(f'--config.{k}={v}' for k, v in r.items()),
    ]
    for i, r in enumerate(runs)
  ]


def _extra_overrides(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
  rest, extra = [], {}
  for a in argv:
    if a.startswith('--config.') and '=' in a:
      k, v = a[len('--config.') :].split('=', 1)
      extra[k] = _literal(v)
    else:
      rest.append(a)
  return rest, extra


def _literal(v: str) -> Any:
  import ast

  try:
    return ast.literal_eval(v)
  except (ValueError, SyntaxError):
    return v


def main(argv: list[str]) -> int:
  argv, extra = _extra_overrides(argv)
  FLAGS(argv)
  if not FLAGS.config or not FLAGS.workdir:
    raise SystemExit('jaxpose sweep: --config and --workdir are required')
  runs = expand(FLAGS.config, extra)
  cmds = commands(FLAGS.config, FLAGS.workdir, runs)
  if FLAGS.print_only:
    print('\n'.join(shlex.join(c) for c in cmds))
    return 0
  for i, cmd in enumerate(cmds):
    print(f'[sweep {i + 1}/{len(cmds)}] {shlex.join(cmd)}', flush=True)
    rc = subprocess.call([sys.executable, '-m', 'jaxpose.cli', *cmd[1:]])
    if rc:
      print(f'jaxpose sweep: run {i} failed with exit code {rc}', file=sys.stderr)
      return rc
  return 0
