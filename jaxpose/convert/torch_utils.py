"""Mapping official PyTorch state dicts onto Flax variable trees (no torch import here).

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
mismatches when the converted tree is not exactly the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

SKIPPED_SUFFIXES = ('num_batches_tracked',)


def linear(weight: np.ndarray, bias: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """torch Linear (out, in) [+ (out,)] -> {'kernel': (in, out), 'bias': (out,)}."""
  out = {'kernel': np.asarray(weight).T}
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
