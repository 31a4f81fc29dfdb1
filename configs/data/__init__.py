"""Dataset blocks: `configs/data/<name>.py:get(**overrides)` returns the data-block values.

Each module is named after its TFDS builder; `configs.common.dataset(name, **kw)` loads it. `block`
merges a dataset's defaults with keyword overrides and rejects keys the schema does not declare.
"""

from __future__ import annotations

from typing import Any

from configs import common

KEYS = tuple(common.data_block().keys())  # the schema's data block is the one source of truth


def block(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
  """defaults updated by overrides; both may only use the data-block keys (configs/common.py)."""
  for source in (defaults, overrides):
    bad = sorted(set(source) - set(KEYS))
    if bad:
      raise KeyError(f'unknown data keys {bad}; valid: {", ".join(KEYS)}')
  return {**defaults, **overrides}
