"""Dataset blocks: `configs/data/<name>.py:get(**overrides)` returns the data-block values.

Each module is named after its TFDS builder; `configs.common.dataset(name, **kw)` loads it. `block`
merges a dataset's defaults with keyword overrides and rejects keys the schema does not declare.
"""

from __future__ import annotations

from typing import Any

KEYS = ('name', 'config', 'data_dir', 'train_split', 'eval_split', 'skeleton', 'num_joints',
        'frames', 'stride', 'mode', 'use_conf', 'flip_aug', 'batch_size', 'eval_batch_size',
        'num_workers', 'fps')  # fmt: skip


def block(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
  """defaults updated by overrides; both may only use the data-block keys (configs/common.py)."""
  for source in (defaults, overrides):
    bad = sorted(set(source) - set(KEYS))
    if bad:
      raise KeyError(f'unknown data keys {bad}; valid: {", ".join(KEYS)}')
  return {**defaults, **overrides}
