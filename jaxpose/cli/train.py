"""`jaxpose train` and `jaxpose eval`: a config (ml_collections config_flags) and a workdir.

  jaxpose train --config configs/motionagformer.py:xs --workdir runs/x [--config.optim.lr=1e-4]
                [--config.model.kwargs.<name>=V] [--config.method.kwargs.<name>=V]
  jaxpose eval  --config configs/motionagformer.py:xs --workdir runs/x   (or --checkpoint DIR)

Every `--config.<key>=<value>` overrides one key of the config (listed by `--help --config FILE`);
a misspelt key is refused with the closest valid one. `model.kwargs` takes any argument of the
model's constructor, `method.kwargs` any setting the method declares. A train run holds
workdir/.lock while it runs; SIGTERM or SIGINT stops it after the current step with a checkpoint
(exit status 75: run the same command again to continue).

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

from jaxpose.cli import common, config_args


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
  """Parses flags into a locked config with its overrides (`config_args` adds the open
  `--config.model.kwargs.<name>` / `--config.method.kwargs.<name>` flags). `--help` prints the
  usage and the config keys and exits 0; a bad flag or key exits with one line."""
  argv = list(argv)
  prog = f'jaxpose {argv[0]}' if not argv[0].startswith('jaxpose') else argv[0]
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    print(common.usage(make_flags(argv), __doc__) + '\n\n' + config_args.help_text(argv))
    raise SystemExit(0)
  try:
    rest, open_items = config_args.split_open(argv)
    fv = make_flags(rest)
    try:
      fv(rest)
    except (flags.Error, KeyError, AttributeError) as e:  # unknown override keys raise the latter
      raise config_args.ConfigArgError(config_args.explain(rest) or _message(e)) from None
    if fv.config is None:
      raise config_args.ConfigArgError('--config is required (e.g. configs/motionagformer.py:xs)')
    config_args.apply_open(fv.config, open_items)
  except (config_args.ConfigArgError, ValueError) as e:
    raise SystemExit(f'{prog}: {e}') from None
  return fv


def parse(argv: Sequence[str]) -> mlc.ConfigDict:
  """The locked config of `argv` with its overrides applied."""
  return parse_flags(argv).config


def _message(err: Exception) -> str:
  """The text of a flag error on one line (KeyError's repr quoting dropped)."""
  msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
  return ' '.join(msg.split())


def main(argv: Sequence[str]) -> int:
  """`jaxpose train|eval`; argv[0] is the command. Exit status: 0 done, 1 a run that could not
  start or go on (one line on stderr: workdir, checkpoint, dataset), 2 a usage error,
  `preemption.EXIT_CODE` (75) stopped by SIGTERM/SIGINT after writing a checkpoint."""
  cmd = argv[0]
  fv = parse_flags(argv)
  config = fv.config
  from jaxpose import methods
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
  except (WorkdirError, CheckpointIntegrityError, FileNotFoundError) as e:  # incl. NotBuiltError
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
