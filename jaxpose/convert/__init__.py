"""Official PyTorch checkpoints -> Flax variables.

`load_official(name, path_or_state_dict, **official_kwargs)` reads a torch checkpoint, finds and
cleans its state dict, and calls `jaxpose.models.<name>.from_torch(state_dict, **official_kwargs)`,
which returns `(module, variables)`. torch is imported lazily, only to read `.pth`/`.pth.tr`/`.bin`
files (extra `torch`); `.safetensors` files need the `safetensors` package; `.npz` needs neither.
The readers (`read_checkpoint`, `extract_state_dict`, `to_numpy`, `strip_prefixes`) and the
per-layer conversions every port shares are in `jaxpose.convert.torch_utils` (re-exported here);
`jaxpose.models` is imported inside `load_official` only, so model files may import
`jaxpose.convert.torch_utils` without an import cycle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jaxpose.convert.torch_utils import (  # noqa: F401  (the checkpoint readers are public here)
  STATE_DICT_KEYS,
  extract_state_dict,
  read_checkpoint,
  strip_prefixes,
  to_numpy,
)


def load_official(
  name: str,
  path_or_state_dict: str | os.PathLike | Mapping[str, Any],
  *,
  checkpoint_key: str | None = None,
  trust_pickle: bool = False,
  **official_kwargs: Any,
):
  """Loads an official checkpoint of model family `name`.

  Args:
    name: model module stem, e.g. 'motionagformer'.
    path_or_state_dict: a checkpoint file, or an already-loaded checkpoint / state dict.
    checkpoint_key: the entry of the checkpoint dict holding the state dict; by default the
      first of STATE_DICT_KEYS present (or the dict itself when it holds only arrays).
    trust_pickle: allow arbitrary pickled objects (torch `weights_only=False`); only for files
      from a trusted source.
    **official_kwargs: the official constructor arguments, forwarded to `from_torch`.

  Returns:
    (module, variables) from `jaxpose.models.<name>.from_torch`.
  """
  from jaxpose.models import get_module

  module = get_module(name)
  if not hasattr(module, 'from_torch'):
    raise ValueError(f'jaxpose.models.{name} has no from_torch converter')
  if isinstance(path_or_state_dict, Mapping):
    checkpoint = path_or_state_dict
  else:
    checkpoint = read_checkpoint(path_or_state_dict, trust_pickle=trust_pickle)
  state = extract_state_dict(checkpoint, checkpoint_key)
  return module.from_torch(state, **official_kwargs)
