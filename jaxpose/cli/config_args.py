"""The config flags of `jaxpose train`, `eval` and `sweep`, beyond what config_flags does itself.

- `config_arg(argv)`: the `--config` value, written `--config FILE[:arg]` or `--config=FILE[:arg]`.
- `explain(argv)`: one line for a misspelt `--config.<key>`: the bad key, the closest valid key and
  the valid keys of its block.
- `split_open(argv)` / `apply_open(config, items)`: `--config.model.kwargs.<name>=V` and
  `--config.method.kwargs.<name>=V`. Those blocks start empty (configs/common.py), so config_flags
  would refuse any new key; these flags are taken out before config_flags parses, then checked
  against what the model's constructor (its dataclass fields) or the method's declared settings
  (`jaxpose.methods._kwargs.declared`) accept, parsed by the type of the current value or default,
  and set; a name neither takes is refused with the valid names.
- `help_text(argv)`: the config keys and their values (of `--config` when given, else of the base
  schema), for `--help`.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

import ml_collections as mlc
from absl import flags
from ml_collections import config_flags

OPEN_BLOCKS = ('model', 'method')  # <block>.kwargs


class ConfigArgError(ValueError):
  """A config flag that cannot be applied; the message is one line."""


def config_arg(argv: Sequence[str]) -> str | None:
  """The last `--config` value of `argv` (either spelling), or None."""
  value = None
  for i, a in enumerate(argv):
    if a.startswith('--config='):
      value = a.split('=', 1)[1]
    elif a == '--config' and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def load(config_file: str) -> mlc.ConfigDict:
  """The locked config of `config_file` ('path[:arg]'), without any override."""
  fv = flags.FlagValues()
  argv = ['jaxpose', f'--config={config_file}']
  config_flags.DEFINE_config_file(
    'config', None, '', flag_values=fv, lock_config=True, sys_argv=argv
  )
  fv(argv)
  return fv.config


def _flat(node: Any, prefix: str = '') -> dict[str, Any]:
  out: dict[str, Any] = {}
  for k in sorted(node.keys()):
    v = node[k]
    if hasattr(v, 'keys'):
      out.update(_flat(v, f'{prefix}{k}.'))
      if not v.keys():
        out[f'{prefix}{k}'] = '{}'
    else:
      out[f'{prefix}{k}'] = v
  return out


def explain(argv: Sequence[str]) -> str | None:
  """One line naming the first unknown `--config.<key>` of `argv`, its closest valid key and the
  valid keys of its block; None when every key exists (or the config itself does not load)."""
  cfg_file = config_arg(argv)
  if cfg_file is None:
    return None
  try:
    cfg = load(cfg_file)
  except Exception:  # noqa: BLE001 - the original error then stands
    return None
  for a in argv:
    if not a.startswith('--config.'):
      continue
    key = a[len('--config.') :].split('=', 1)[0]
    parts = key.split('.')
    node = cfg
    for i, part in enumerate(parts):
      if not hasattr(node, 'keys'):
        break
      if part not in node:
        block = '.'.join(parts[:i]) or 'the config'
        valid = sorted(node.keys())
        close = difflib.get_close_matches(part, valid, n=1, cutoff=0.5)
        hint = (
          f" (did you mean '{_closest(cfg, [*parts[:i], close[0]], parts[i + 1 :])}'?)"
          if close
          else ''
        )
        return f"unknown config key '{key}'{hint}; valid keys of {block}: {', '.join(valid)}"
      node = node[part]
  return None


def _closest(cfg: Any, head: list[str], tail: list[str]) -> str:
  """'head.tail' when that key exists in `cfg`, else 'head'."""
  node = cfg
  for part in [*head, *tail]:
    if not hasattr(node, 'keys') or part not in node:
      return '.'.join(head)
    node = node[part]
  return '.'.join([*head, *tail])


def split_open(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str, str]]]:
  """(argv without the open-block flags, [(block, name, text)]) for `--config.<block>.kwargs.
  <name>=V` and `--config.<block>.kwargs.<name> V`, block in OPEN_BLOCKS."""
  rest: list[str] = []
  items: list[tuple[str, str, str]] = []
  argv = list(argv)
  i = 0
  while i < len(argv):
    a = argv[i]
    block = next((b for b in OPEN_BLOCKS if a.startswith(f'--config.{b}.kwargs.')), None)
    if block is None:
      rest.append(a)
      i += 1
      continue
    name, eq, text = a[len(f'--config.{block}.kwargs.') :].partition('=')
    if '.' in name:  # a key inside a block the config file put there: config_flags sets it
      rest.append(a)
      i += 1
      continue
    if not eq:
      if i + 1 >= len(argv):
        raise ConfigArgError(f'{a} needs a value ({a}=VALUE)')
      text, i = argv[i + 1], i + 1
    items.append((block, name, text))
    i += 1
  return rest, items


def _accepted(config: mlc.ConfigDict, block: str) -> dict[str, Any]:
  """{name: a typed example value or None} that `<block>.kwargs` may set."""
  if block == 'model':
    from jaxpose import models

    cls = models.get_module(config.model.name).Model
    variant = dict(models.variants(config.model.name).get(config.model.variant or '', {}))
    out = {}
    for f in dataclasses.fields(cls):
      if f.name in ('parent', 'name'):
        continue
      default = None if f.default is dataclasses.MISSING else f.default
      out[f.name] = variant.get(f.name, default)
    return out
  from jaxpose.methods import _kwargs

  return _kwargs.declared(config.method.name)


def parse_value(text: str, like: Any) -> Any:
  """`text` as the type of `like` (bool, int, float, str), else a Python literal (tuple, list,
  None ...), else the string itself."""
  if isinstance(like, bool):
    low = text.strip().lower()
    if low in ('1', 'true', 'yes', 'on'):
      return True
    if low in ('0', 'false', 'no', 'off'):
      return False
    raise ConfigArgError(f'expected a boolean, got {text!r}')
  if isinstance(like, int | float) and not isinstance(like, bool):
    try:
      return type(like)(text)
    except ValueError:
      raise ConfigArgError(f'expected {type(like).__name__}, got {text!r}') from None
  if isinstance(like, str):
    return text
  if hasattr(like, 'keys'):
    raise ConfigArgError(
      'a block: set its keys one by one (--config.<block>.kwargs.<name>.<key>=V)'
    )
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_open(config: mlc.ConfigDict, items: Sequence[tuple[str, str, str]]) -> None:
  """Sets the `split_open` items on `config` after checking each name.

  Raises:
    ConfigArgError: one line: the flag, what the model (method) is and the names it accepts.
  """
  for block, name, text in items:
    flag = f'--config.{block}.kwargs.{name}'
    accepted = _accepted(config, block)
    owner = f'{block} {config[block].name!r}'
    if name not in accepted:
      valid = ', '.join(sorted(accepted)) or 'none'
      raise ConfigArgError(f'{flag}: {owner} takes no argument {name!r}; valid: {valid}')
    kwargs = config[block].kwargs
    like = kwargs[name] if name in kwargs else accepted[name]
    try:
      value = parse_value(text, like)
    except ConfigArgError as e:
      raise ConfigArgError(f'{flag}: {e}') from None
    with kwargs.unlocked():
      kwargs[name] = value


def help_text(argv: Sequence[str]) -> str:
  """The config keys with their values (`--config` of `argv`, else the base schema), one a line."""
  cfg_file = config_arg(argv)
  if cfg_file:
    try:
      cfg, title = (
        load(cfg_file),
        f'config keys of {cfg_file} (override with --config.<key>=<value>):',
      )
    except Exception as e:  # noqa: BLE001 - help still prints the rest
      return f'(could not load {cfg_file}: {e})'
  else:
    from configs import common

    cfg = common.get_base_config()
    title = "config keys (base schema; give --config FILE to see a config's values):"
  lines = [title]
  lines += [
    f'  --config.{k}={v!r}' if isinstance(v, str) else f'  --config.{k}={v}'
    for k, v in _flat(cfg).items()
  ]
  lines.append(
    '  --config.model.kwargs.<name>=...  any constructor argument of the model '
    '(--config.method.kwargs.<name>: a setting the method declares)'
  )
  return '\n'.join(lines)
