"""`jaxpose train` and `jaxpose eval`: a config (ml_collections config_flags) and a workdir.

  jaxpose train --config configs/motionagformer.py:xs --workdir runs/x [--config.optim.lr=1e-4]
  jaxpose eval  --config configs/motionagformer.py:xs --workdir runs/x   (or --checkpoint DIR)

`train` runs the method's own loop when it has one (`Method.run`), else the default trainer
(`jaxpose.train.loop.run`); both print the evaluation table and a JSON line of the headline
numbers (mpjpe_mm, p_mpjpe_mm: millimetres; num_frames).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import ml_collections as mlc
from absl import flags
from ml_collections import config_flags

from jaxpose.cli import common


def make_flags(argv: Sequence[str]) -> flags.FlagValues:
  """A fresh flag set per parse. config_flags finds the `--config.k=v` overrides in `sys_argv`
  (sys.argv by default), so it is given the argv actually parsed."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file(
    'config', None, 'config file[:arg]', flag_values=fv, lock_config=True, sys_argv=list(argv)
  )
  flags.DEFINE_string(
    'workdir', None, 'run directory (checkpoints, metrics, plots)', flag_values=fv
  )
  flags.DEFINE_string(
    'checkpoint', None, 'eval: a checkpoint or workdir to evaluate instead', flag_values=fv
  )
  flags.DEFINE_string(
    'split', None, 'eval: split to evaluate (default: data.eval_split)', flag_values=fv
  )
  return fv


def parse_flags(argv: Sequence[str]) -> flags.FlagValues:
  """Parses flags; turns config errors into messages that list the valid keys."""
  argv = list(argv)
  fv = make_flags(argv)
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    common.parse(fv, argv, __doc__)  # prints the usage and exits 0
  try:
    fv(argv)
  except (flags.Error, KeyError, AttributeError) as e:  # unknown override keys raise the latter
    raise SystemExit(f'{argv[0]}: {_explain(e, argv)}') from None
  if fv.config is None:
    raise SystemExit(f'{argv[0]}: --config is required (e.g. configs/motionagformer.py:xs)')
  return fv


def parse(argv: Sequence[str]) -> mlc.ConfigDict:
  """The locked config of `argv` with its overrides applied."""
  return parse_flags(argv).config


def _explain(err: Exception, argv: Sequence[str]) -> str:
  """Adds the valid keys to an unknown-override error (the config is parsed again, without the
  overrides, by config_flags)."""
  msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
  bad = [a.split('=', 1)[0][len('--config.') :] for a in argv if a.startswith('--config.')]
  cfg_args = [a for a in argv[1:] if a.startswith('--config=')]
  if not cfg_args or not bad:
    return msg
  try:
    plain = [argv[0], cfg_args[-1]]
    fv = make_flags(plain)
    fv(plain)
    cfg = fv.config
  except Exception:  # noqa: BLE001 - best effort; the original message still stands
    return msg
  for key in bad:
    node = cfg
    for part in key.split('.'):
      if part not in node:
        valid = ', '.join(sorted(node.keys()))
        return f'{msg}\nunknown config key {key!r}: {part!r} is not one of: {valid}'
      node = node[part]
      if not hasattr(node, 'keys'):
        break
  return msg


def main(argv: Sequence[str]) -> int:
  """`jaxpose train|eval`; argv[0] is the command. Exit status: 0 done, 1 a run that could not
  start or go on (one line on stderr: workdir, checkpoint, dataset), 2 a usage error,
  `preemption.EXIT_CODE` (75) stopped by SIGTERM/SIGINT after writing a checkpoint."""
  cmd = argv[0]
  fv = parse_flags(argv)
  config = fv.config
  from jaxpose import methods
  from jaxpose.data.build import NotBuiltError
  from jaxpose.eval import evaluator
  from jaxpose.train import loop, preemption
  from jaxpose.train.integrity import CheckpointIntegrityError
  from jaxpose.train.workdir import WorkdirError

  try:
    if cmd == 'train':
      if not fv.workdir:
        raise SystemExit('jaxpose train: --workdir is required')
      run = methods.get(config.method.name).run or loop.run  # a method's own loop, if it has one
      res = run(config, fv.workdir)
    else:
      res = evaluate(config, fv.workdir, fv.checkpoint, fv.split)
  except preemption.Preempted as e:
    print(e, file=sys.stderr)
    return preemption.EXIT_CODE
  except (WorkdirError, CheckpointIntegrityError, NotBuiltError) as e:
    print(f'jaxpose {cmd}: {e}', file=sys.stderr)
    return 1
  print(evaluator.format_table(res))
  print(json.dumps({k: res[k] for k in ('mpjpe_mm', 'p_mpjpe_mm', 'num_frames')}))
  return 0


def evaluate(config, workdir: str | None, checkpoint: str | None, split: str | None):
  """`jaxpose eval`: the best (else latest) checkpoint of `workdir`, or `checkpoint`."""
  from jaxpose.train import loop

  src = checkpoint or workdir
  if not src:
    raise SystemExit('jaxpose eval: give --workdir or --checkpoint')
  return loop.evaluate_checkpoint(config, src, split=split)
