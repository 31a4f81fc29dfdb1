"""The one flag system of the command lines: absl flags (+ ml_collections config_flags).

Each command builds a fresh `flags.FlagValues` per call (so commands and tests never share global
flag state) and parses it with `parse`, which adds `--help` and turns flag errors into a one-line
exit message.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import flags

_SPECIAL = ('flagfile', 'undefok')


def usage(fv: flags.FlagValues, synopsis: str) -> str:
  """`synopsis` (the command's docstring) and one line per flag with its default."""
  lines = [synopsis.strip(), '', 'flags:']
  for name in sorted(n for n in fv if n not in _SPECIAL):
    f = fv[name]
    if f.name != name:  # a short alias
      continue
    spelled = f'--[no]{name}' if f.boolean else f'--{name}'
    default = '' if f.default in (None, '') else f' (default: {f.default_as_str})'
    lines.append(f'  {spelled}: {f.help}{default}')
  return '\n'.join(lines)


def parse(fv: flags.FlagValues, argv: Sequence[str], synopsis: str) -> list[str]:
  """Parses `argv` (argv[0] = the program name) into `fv`; returns argv[0] and the positionals.

  `-h`/`--help` anywhere prints `usage(fv, synopsis)` and exits 0; an unknown or malformed flag
  exits with `<prog>: <error>` (status 1).
  """
  argv = list(argv)
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    print(usage(fv, synopsis))
    raise SystemExit(0)
  try:
    return fv(argv)
  except flags.Error as e:
    raise SystemExit(f'{argv[0]}: {e}') from None


def error(prog: str, message: str) -> int:
  """Prints `<prog>: <message>` to stderr and returns exit status 2 (a usage error)."""
  print(f'{prog}: {message}', file=sys.stderr)
  return 2
