"""Mapping official PyTorch state dicts onto Flax variable trees (torch imported only to read files).

Conventions every port shares:
  torch Linear weight (out, in)             -> params/.../kernel (in, out)        (transpose)
  torch Conv{1,2,3}d weight (O, I, *K)      -> params/.../kernel (*K, I, O)
  LayerNorm / BatchNorm weight, bias        -> params/.../scale, bias
  BatchNorm running_mean, running_var       -> batch_stats/.../mean, var          (num_batches_tracked dropped)
  nn.Embedding weight                       -> params/.../embedding
  a bare nn.Parameter `name`                -> params/.../name                    (unchanged)
Module paths map dot-to-slash, and an integer segment is glued to the previous one, the way flax
names list members: `layers.0.mlp.fc1` -> `layers_0/mlp/fc1`. A port whose names differ passes a
`rename` function over the torch module path.

`convert_state_dict` decides each leaf by looking at the reference tree (from
`jax.eval_shape(model.init, ...)`), and fails with the missing/unexpected keys and shape
mismatches when the converted tree is not exactly the reference's. `convert_for_model` is the tail
every `from_torch` shares (build the reference with `abstract_variables`, then convert);
`check_variables` checks hand-converted trees the same way. `read_checkpoint`,
`extract_state_dict`, `strip_prefixes` and `to_numpy` read official files (re-exported by
`jaxpose.convert`). This module imports no jaxpose model.
"""

from __future__ import annotations

import os
import pathlib
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SKIPPED_SUFFIXES = ('num_batches_tracked',)
# Where official training scripts keep the weights inside a checkpoint dict, most specific first
# (VideoPose3D-style files hold 'model_pos' next to 'model_traj').
STATE_DICT_KEYS = ('model_pos', 'model', 'state_dict', 'model_state_dict', 'net', 'params')
# Wrapper prefixes of saved state dicts: DataParallel / DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ('module.', '_orig_mod.')


def linear(weight: np.ndarray, bias: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """torch Linear (out, in) or Conv1d with kernel size 1 (out, in, 1) [+ bias (out,)] ->
  {'kernel': (in, out), 'bias': (out,)}."""
  w = np.asarray(weight)
  if w.ndim == 3 and w.shape[-1] == 1:
    w = w[..., 0]
  out = {'kernel': w.T}
  if bias is not None:
    out['bias'] = np.asarray(bias)
  return out


def conv_kernel(weight: np.ndarray) -> np.ndarray:
  """torch Conv weight (O, I, *K) -> flax Conv kernel (*K, I, O); 2-D weights are Linear."""
  w = np.asarray(weight)
  if w.ndim == 2:
    return w.T
  return np.transpose(w, (*range(2, w.ndim), 1, 0))


def layer_norm(weight: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
  """torch LayerNorm/GroupNorm affine -> {'scale', 'bias'}."""
  return {'scale': np.asarray(weight), 'bias': np.asarray(bias)}


def batch_norm(
  weight: np.ndarray, bias: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """torch BatchNorm -> (params {'scale', 'bias'}, batch_stats {'mean', 'var'})."""
  return layer_norm(weight, bias), {
    'mean': np.asarray(running_mean),
    'var': np.asarray(running_var),
  }


def flax_module_path(torch_module_path: str) -> tuple[str, ...]:
  """'layers.0.mlp.fc1' -> ('layers_0', 'mlp', 'fc1'); '' -> ()."""
  out: list[str] = []
  for seg in torch_module_path.split('.') if torch_module_path else []:
    if seg.isdigit() and out:
      out[-1] = f'{out[-1]}_{seg}'
    else:
      out.append(seg)
  return tuple(out)


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  """Nested mapping -> {path tuple: leaf}."""
  flat: dict[tuple[str, ...], Any] = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      flat.update(flatten(v, (*prefix, k)))
    else:
      flat[(*prefix, k)] = v
  return flat


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
  """{path tuple: leaf} -> nested plain dicts."""
  tree: dict[str, Any] = {}
  for path, v in flat.items():
    node = tree
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = v
  return tree


def _map_leaf(
  path: tuple[str, ...], leaf: str, value: np.ndarray, ref: Mapping[tuple[str, ...], Any]
) -> tuple[tuple[str, ...], np.ndarray]:
  """One torch leaf -> (flax variable path incl. collection, converted value)."""
  if leaf == 'weight':
    if ('params', *path, 'kernel') in ref:
      return ('params', *path, 'kernel'), conv_kernel(value)
    for name in ('scale', 'embedding'):
      if ('params', *path, name) in ref:
        return ('params', *path, name), value
  if leaf == 'running_mean':
    return ('batch_stats', *path, 'mean'), value
  if leaf == 'running_var':
    return ('batch_stats', *path, 'var'), value
  return ('params', *path, leaf), value


def convert_state_dict(
  state_dict: Mapping[str, Any],
  reference: Mapping[str, Any],
  *,
  rename: Callable[[str], str] | None = None,
  skip: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
  """Converts a torch state dict (numpy values) to variables shaped exactly like `reference`.

  Args:
    state_dict: torch key -> array (already numpy; `module.` prefixes stripped).
    reference: the model's variables or their `jax.eval_shape` (any leaves with `.shape`).
    rename: maps a torch module path (the key without its last segment) before conversion.
    skip: returns True for torch keys to ignore (besides `num_batches_tracked`).

  Returns:
    Nested dict of numpy arrays, one entry per collection of `reference`, with the reference's
    dtypes.

  Raises:
    ValueError: listing missing keys, unexpected keys and shape mismatches.
  """
  ref = flatten(reference)
  out: dict[tuple[str, ...], np.ndarray] = {}
  origin: dict[tuple[str, ...], str] = {}
  for key, value in state_dict.items():
    if key.endswith(SKIPPED_SUFFIXES) or (skip is not None and skip(key)):
      continue
    module, _, leaf = key.rpartition('.')
    path = flax_module_path(rename(module) if rename else module)
    fpath, arr = _map_leaf(path, leaf, np.asarray(value), ref)
    if fpath in out:
      raise ValueError(f'torch keys {origin[fpath]!r} and {key!r} both map to {"/".join(fpath)}')
    out[fpath], origin[fpath] = arr, key

  missing = sorted('/'.join(p) for p in set(ref) - set(out))
  unexpected = sorted(f'{origin[p]} -> {"/".join(p)}' for p in set(out) - set(ref))
  shapes = sorted(
    f'{origin[p]} -> {"/".join(p)}: {out[p].shape} != {tuple(ref[p].shape)}'
    for p in set(out) & set(ref)
    if tuple(out[p].shape) != tuple(ref[p].shape)
  )
  if missing or unexpected or shapes:
    raise ValueError(
      'state dict does not match the model:\n'
      + _listing('missing (in model, not in checkpoint)', missing)
      + _listing('unexpected (in checkpoint, not in model)', unexpected)
      + _listing('shape mismatches', shapes)
    )
  return unflatten({p: out[p].astype(np.dtype(ref[p].dtype)) for p in ref})


def _listing(title: str, items: list[str], limit: int = 20) -> str:
  if not items:
    return ''
  more = f'\n    ... {len(items) - limit} more' if len(items) > limit else ''
  return f'  {title} ({len(items)}):\n    ' + '\n    '.join(items[:limit]) + more + '\n'


# ---------------------------------------------------------------------------------------------
# Reading official checkpoints (torch imported lazily, only for torch files).


def strip_prefixes(
  state_dict: Mapping[str, Any], prefixes: Sequence[str] = WRAPPER_PREFIXES
) -> dict[str, Any]:
  """Drops wrapper prefixes (`module.`, `_orig_mod.`, repeated) from every key; values unchanged."""
  out = {}
  for k, v in state_dict.items():
    while k.startswith(tuple(prefixes)):
      k = k.split('.', 1)[1]
    out[k] = v
  return out


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
  return strip_prefixes({k: to_numpy(v) for k, v in state.items() if _is_array(v)})


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


# ---------------------------------------------------------------------------------------------
# The tail every `from_torch` shares: abstract variables of the built model, then the conversion.


def abstract_variables(model: Any, *inputs: Any, **init_kwargs: Any) -> Any:
  """Shapes and dtypes of `model.init(key, *inputs, train=False, **init_kwargs)`, allocating
  nothing (jax.eval_shape).

  Args:
    model: a flax module.
    *inputs: example inputs: arrays, ShapeDtypeStructs, shape tuples (float32 zeros), e.g.
      `(1, *input_shape(model))` for a lifter's (1, T, J, C_in) window, or None (passed as is).
    **init_kwargs: more keywords of `init` (e.g. a diffusion timestep `t`).

  Returns:
    The variables pytree with jax.ShapeDtypeStruct leaves.
  """
  xs = [
    x if x is None else jnp.zeros(x, jnp.float32) if isinstance(x, tuple) else jnp.zeros_like(x)
    for x in inputs
  ]
  return jax.eval_shape(lambda: model.init(jax.random.key(0), *xs, train=False, **init_kwargs))


def convert_for_model(
  state_dict: Mapping[str, Any],
  model: Any,
  *inputs: Any,
  rename: Callable[[str], str] | None = None,
  skip: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
  """`convert_state_dict(state_dict, abstract_variables(model, *inputs), rename=, skip=)`: the
  variables of `model` from a torch state dict, shaped exactly like `model.init`'s (raises with
  the missing / unexpected keys and shape mismatches otherwise)."""
  return convert_state_dict(
    state_dict, abstract_variables(model, *inputs), rename=rename, skip=skip
  )


def check_variables(variables: Mapping[str, Any], reference: Mapping[str, Any], what: str) -> None:
  """Raises ValueError naming every path whose presence or shape differs between `variables`
  (e.g. hand-converted ones) and `reference` (e.g. `abstract_variables(model, ...)`); `what`
  names the model in the message."""
  got = {'/'.join(k): tuple(np.shape(v)) for k, v in flatten(variables).items()}
  ref = {'/'.join(k): tuple(v.shape) for k, v in flatten(reference).items()}
  missing = sorted(set(ref) - set(got))
  extra = sorted(set(got) - set(ref))
  bad = sorted(f'{k}: {got[k]} != {ref[k]}' for k in set(got) & set(ref) if got[k] != ref[k])
  if missing or extra or bad:
    raise ValueError(
      f'converted checkpoint does not fit {what}:\n'
      + _listing('missing (in model, not in checkpoint)', missing)
      + _listing('unexpected (in checkpoint, not in model)', extra)
      + _listing('shape mismatches', bad)
    )
