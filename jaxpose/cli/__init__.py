"""`jaxpose` console script: `jaxpose <command> [flags]` (entry point `jaxpose.cli:main`).

One module per command under jaxpose/cli/, each exposing `main(argv: list[str]) -> int | None`
with argv[0] the command name; this file only dispatches, so importing it stays cheap. Every
command parses absl flags (`jaxpose.cli.common`); configs are ml_collections `config_flags`
(`--config=configs/<paper>.py:<arg>` plus `--config.<key>=<value>` overrides). `jaxpose <command>
--help` lists a command's flags.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
  'train': ('jaxpose.cli.train', 'train a model from a config'),
  'eval': ('jaxpose.cli.train', 'evaluate a workdir or checkpoint'),
  'sweep': ('jaxpose.cli.sweep', "expand a config's get_sweep into runs"),
  'main': ('jaxpose.cli.main_job', 'the README main job: MotionAGFormer-XS on deepmimic'),
  'bench': ('jaxpose.cli.bench', 'parameters, MACs, FLOPs, throughput and the model zoo table'),
  'data': ('jaxpose.cli.data', 'build TFDS datasets from the official files, list, benchmark'),
  'demo': ('jaxpose.cli.demo', 'lift in-the-wild 2D keypoints and plot them'),
  'pseudolabel': ('jaxpose.cli.pseudolabel', 'EpipolarPose: teacher 2D -> epipolar pseudo-3D file'),
}


def _usage() -> str:
  lines = ['usage: jaxpose <command> [flags]   (jaxpose <command> --help)', '', 'commands:']
  lines += [f'  {name:<7} {help_}' for name, (_, help_) in COMMANDS.items()]
  return '\n'.join(lines)


# Commands that run models: they re-execute once with glibc allocator settings (cli/runtime.py).
_COMPUTE = ('train', 'eval', 'main', 'bench', 'demo', 'pseudolabel')


def main(argv: list[str] | None = None) -> int:
  argv_from_process = argv is None
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
  if argv_from_process and cmd in _COMPUTE:
    from jaxpose.cli import runtime

    runtime.maybe_reexec()  # allocator settings for XLA:CPU; replaces this process once
  module = importlib.import_module(COMMANDS[cmd][0])
  rc = module.main([cmd, *rest])
  return int(rc or 0)
