"""`jaxpose` console script: `jaxpose <command> [args]`.

Each command lives in its own module and exposes `main(argv: list[str]) -> int | None`; this file
only dispatches, so importing it stays cheap.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
  'train': ('jaxpose.train.cli', 'train a model from a config'),
  'eval': ('jaxpose.train.cli', 'evaluate a workdir or checkpoint'),
  'sweep': ('jaxpose.train.sweep', "expand a config's get_sweep into runs"),
  'main': ('jaxpose.train.main_job', 'the README main job: MotionAGFormer-XS on deepmimic'),
  'bench': ('jaxpose.bench.cli', 'parameters, MACs, FLOPs, throughput and the model zoo table'),
  'data': ('jaxpose.data.cli', 'build TFDS datasets from the official files'),
  'demo': ('jaxpose.viz.demo', 'lift in-the-wild 2D keypoints and plot them'),
}


def _usage() -> str:
  lines = ['usage: jaxpose <command> [args]', '', 'commands:']
  lines += [f'  {name:<7} {help_}' for name, (_, help_) in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ('-h', '--help', 'help'):
    print(_usage())
    return 0
  cmd, rest = argv[0], argv[1:]
  if cmd not in COMMANDS:
    print(
      f'jaxpose: unknown command {cmd!r}; valid commands: {", ".join(COMMANDS)}', file=sys.stderr
    )
    return 2
  module = importlib.import_module(COMMANDS[cmd][0])
  rc = module.main([cmd, *rest])
  return int(rc or 0)


if __name__ == '__main__':
  sys.exit(main())
