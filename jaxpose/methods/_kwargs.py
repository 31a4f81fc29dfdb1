"""`config.method.kwargs` over a method's documented defaults (shared by the methods).

A method declares its settings as the module-level mapping `DEFAULTS` of jaxpose/methods/<name>.py
(name -> default) and reads them with `settings(config, DEFAULTS, name)`; `declared(name)` gives the
same mapping to the command line, which refuses `--config.method.kwargs.<key>` for any other key
before a run starts. A method without `DEFAULTS` takes no settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def settings(config: Any, defaults: Mapping[str, Any], method: str) -> dict[str, Any]:
  """`config.method.kwargs` over `defaults`; unknown keys raise a ValueError naming the valid ones."""
  given = dict(config.method.get('kwargs', {}) or {})
  bad = sorted(set(given) - set(defaults))
  if bad:
    raise ValueError(
      f'Unknown method.kwargs key(s) {bad} for {method}; valid: {", ".join(defaults)}'
    )
  return {**defaults, **given}


def declared(method: str) -> dict[str, Any]:
  """{setting: default} that method `method` accepts in config.method.kwargs ({} for none).

  Raises:
    ValueError: an unknown method name (listing the valid ones).
  """
  methods = importlib.import_module('jaxpose.methods')
  return dict(getattr(methods.get_module(method), 'DEFAULTS', None) or {})
