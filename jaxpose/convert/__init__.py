"""Official PyTorch checkpoints -> Flax variables.

`load_official(name, path_or_state_dict, **official_kwargs)` reads a torch checkpoint, finds and
cleans its state dict, and calls `jaxpose.models.<name>.from_torch(state_dict, **official_kwargs)`,
which returns `(module, variables)`. torch is imported lazily, only to read `.pth`/`.pth.tr`/`.bin`
files (extra `torch`); `.safetensors` files need the `safetensors` package; `.npz` needs neither.
The per-layer conversions every port shares are in `jaxpose.convert.torch_utils`.
"""

from __future__ import annotations

import os
import pathlib
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

# Where official training scripts keep the weights inside a checkpoint dict, most specific first
# (VideoPose3D-style files hold 'model_pos' next to 'model_traj').
STATE_DICT_KEYS = ('model_pos', 'model', 'state_dict', 'model_state_dict', 'net', 'params')
_PREFIXES = ('module.', '_orig_mod.')


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


def read_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False) -> Mapping[str, Any]:
  """Reads a `.pth`/`.pth.tr`/`.pt`/`.bin`/`.ckpt` (torch), `.safetensors` or `.npz` file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'checkpoint {path} does not exist')
  if path.suffix == '.npz':
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  if path.suffix == '.safetensors':
    from safetensors.numpy import load_file

    return load_file(str(path))
  try:
    import torch
  except ImportError as e:
    raise ImportError(f'reading {path} needs torch: pip install "jaxpose[torch]"') from e
  if trust_pickle:
    return torch.load(path, map_location='cpu', weights_only=False)
  try:
    return torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError:
    # Training scripts often pickle numpy scalars (best error, epoch) next to the weights.
    with torch.serialization.safe_globals(_numpy_safe_globals()):
      try:
        return torch.load(path, map_location='cpu', weights_only=True)
      except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
          f'{path}: holds objects other than tensors and numpy scalars; if the file is from a '
          f'trusted source pass trust_pickle=True. Original error: {e}'
        ) from e


def _numpy_safe_globals() -> list[Any]:
  import numpy.dtypes as npd

  scalar = getattr(np, '_core', np).multiarray.scalar
  return [scalar, np.dtype, *(getattr(npd, n) for n in dir(npd) if n.endswith('DType'))]


def extract_state_dict(
  checkpoint: Mapping[str, Any], checkpoint_key: str | None = None
) -> dict[str, np.ndarray]:
  """Finds the state dict in a checkpoint dict, strips wrapper prefixes, converts to numpy.

  Args:
    checkpoint: a loaded checkpoint: a state dict, or a dict holding one.
    checkpoint_key: the key of the state dict; None picks the first of STATE_DICT_KEYS present.

  Returns:
    {key without 'module.'/'_orig_mod.' prefixes: numpy array}.
  """
  if checkpoint_key is not None:
    if checkpoint_key not in checkpoint:
      raise KeyError(f'checkpoint has no {checkpoint_key!r}; keys: {sorted(checkpoint)}')
    state = checkpoint[checkpoint_key]
  elif all(_is_array(v) for v in checkpoint.values()):
    state = checkpoint
  else:
    found = [k for k in STATE_DICT_KEYS if isinstance(checkpoint.get(k), Mapping)]
    if not found:
      raise KeyError(
        f'no state dict in checkpoint: none of {STATE_DICT_KEYS} among keys {sorted(checkpoint)}; '
        'pass checkpoint_key='
      )
    state = checkpoint[found[0]]
  out = {}
  for k, v in state.items():
    if not _is_array(v):
      continue
    while k.startswith(_PREFIXES):
      k = k.split('.', 1)[1]
    out[k] = to_numpy(v)
  return out


def _is_array(v: Any) -> bool:
  return isinstance(v, np.ndarray) or type(v).__module__.startswith('torch')


def to_numpy(v: Any) -> np.ndarray:
  """torch tensor (any device, bf16 widened to float32) or array-like -> numpy."""
  if type(v).__module__.startswith('torch'):
    v = v.detach().cpu()
    if str(v.dtype) == 'torch.bfloat16':
      v = v.float()
    return v.numpy()
  return np.asarray(v)
