"""`config.method.kwargs` over a method's documented defaults (shared by the methods)."""

from __future__ import annotations

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
