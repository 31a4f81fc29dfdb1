"""`jaxpose train` and `jaxpose eval` (absl flags + ml_collections config_flags).

jaxpose train --config configs/motionagformer.py:xs --workdir runs/x [--config.optim.lr=1e-4]
jaxpose eval  --config configs/motionagformer.py:xs --workdir runs/x   (or --checkpoint DIR)
"""

from __future__ import annotations

import json
import sys

from absl import flags
from ml_collections import config_flags


def make_flags(argv: list[str]) -> flags.FlagValues:
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


def parse_flags(argv: list[str]) -> flags.FlagValues:
  """Parses flags; turns config errors into messages that list the valid keys."""
  fv = make_flags(argv)
  try:
    fv(argv)
  except (flags.Error, KeyError, AttributeError) as e:  # unknown override keys raise the latter
    raise SystemExit(f'{argv[0]}: {_explain(e, argv)}') from None
  if fv.config is None:
    raise SystemExit(f'{argv[0]}: --config is required (e.g. configs/motionagformer.py:xs)')
  return fv


def parse(argv: list[str]):
  """The locked config of `argv` with its overrides applied."""
  return parse_flags(argv).config


def _explain(err: Exception, argv: list[str]) -> str:
  """Adds the valid keys to an unknown-override error."""
  msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
  bad = [a.split('=', 1)[0][len('--config.') :] for a in argv if a.startswith('--config.')]
  cfg_arg = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  if cfg_arg is None or not bad:
    return msg
  try:
    path, _, arg = cfg_arg.partition(':')
    cfg = config_flags.config_flags._LoadConfigModule('config', path).get_config(arg or None)  # noqa: SLF001
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


def main(argv: list[str]) -> int:
  cmd = argv[0]
  fv = parse_flags(argv)
  config = fv.config
  from jaxpose import methods
  from jaxpose.train import loop

  if cmd == 'train':
    if not fv.workdir:
      raise SystemExit('jaxpose train: --workdir is required')
    run = methods.get(config.method.name).run or loop.run  # a method's own loop, if it has one
    res = run(config, fv.workdir)
  else:
    res = evaluate(config, fv.workdir, fv.checkpoint, fv.split)
  from jaxpose.eval import evaluator

  print(evaluator.format_table(res))
  print(json.dumps({k: res[k] for k in ('mpjpe_mm', 'p_mpjpe_mm', 'num_frames')}))
  return 0


def evaluate(config, workdir: str | None, checkpoint: str | None, split: str | None):
  """Evaluates the best (else latest) checkpoint of a workdir, or a given checkpoint."""
  from jaxpose import methods, sharding
  from jaxpose.eval import evaluator, steps
  from jaxpose.train import checkpoint as ckpt_lib

  src = checkpoint or workdir
  if not src:
    raise SystemExit('jaxpose eval: give --workdir or --checkpoint')
  variables = ckpt_lib.load_params(src)
  mesh = sharding.make_mesh()
  method = methods.get(config.method.name)
  model = method.make_model(config)
  eval_step = steps.make_eval_step(model, method, config)
  variables = sharding.replicate(variables, mesh)
  return evaluator.evaluate(
    eval_step,
    variables,
    config,
    mesh,
    split=split,
    max_batches=config.eval.max_batches,
    progress=True,
  )


if __name__ == '__main__':
  sys.exit(main(['train', *sys.argv[1:]]))
