"""LoRA as a parameter transform for any transformer lifter.

Paper: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022), used by PoSynDA
(Liu et al., ACM MM 2023, github.com/hbing-l/PoSynDA @ d592dbac8a9a8f767de8f737449ed465ae99ace4,
`common/lora.py`, itself cloneofsimo/lora) on the `qkv` and `proj` projections of every attention
module of the D3DP/MixSTE denoiser.

Official layer: y = W x + b + scale * up(down(x)), down (r, in) ~ N(0, std 1/r), up (out, r) = 0,
no bias, dropout 0, base weights frozen. Here the same thing is pure pytree surgery:

- `init_adapters(params, key, rank)` finds every Dense-like sub-tree (a dict holding `kernel`
  (in, out)) whose module name is in `targets` and returns an adapter pytree mirroring those paths:
  {'A': (in, r) ~ N(0, (1/r)^2), 'B': (r, out) = 0} (A = down.T, B = up.T);
- `merge(params, adapters, scale)` returns params with kernel + scale * A @ B, to be passed to
  `model.apply` (no module changes, so it works on every lifter of the registry);
- `trainable_mask` / `masked_optimizer` train only the adapters in a {'base', 'lora'} pytree
  (frozen base weights get zero updates, so they stay bit-identical).

Deviations: the merged kernel computes x (W + s A B) instead of x W + s (x A) B; the two differ by
float rounding only (measured ~1e-7 relative on the PoSynDA fixture). No LoRA dropout (official 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

DEFAULT_TARGETS = ('qkv', 'proj')


def _walk(tree: Mapping[str, Any], path: tuple[str, ...] = ()):
  """Yields (path, subtree) for every dict node of a nested mapping (pre-order)."""
  yield path, tree
  for k, v in tree.items():
    if isinstance(v, Mapping):
      yield from _walk(v, (*path, k))


def target_paths(
  params: Mapping[str, Any], targets: tuple[str, ...] = DEFAULT_TARGETS
) -> list[tuple[str, ...]]:
  """Paths of the Dense sub-trees (with a 2-D `kernel`) named one of `targets`, in tree order."""
  out = []
  for path, node in _walk(params):
    if path and path[-1] in targets and 'kernel' in node and np.ndim(node['kernel']) == 2:
      out.append(path)
  return out


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def _set(tree: Mapping[str, Any], path: tuple[str, ...], value) -> dict[str, Any]:
  """Copy of `tree` with tree[path] = value (only the nodes on the path are copied)."""
  if not path:
    return value
  out = dict(tree)
  out[path[0]] = _set(tree.get(path[0], {}), path[1:], value)
  return out


def init_adapters(
  params: Mapping[str, Any],
  key: jax.Array,
  rank: int = 4,
  targets: tuple[str, ...] = DEFAULT_TARGETS,
) -> dict[str, Any]:
  """Adapter pytree for every target projection of `params`.

  Args:
    params: the model's `params` collection (nested dict).
    key: PRNG key for the A matrices.
    rank: r.
    targets: module names to adapt (default: attention `qkv` and `proj`).

  Returns:
    Nested dict mirroring the target paths, each {'A': (in, r) ~ N(0, 1/r^2), 'B': (r, out) zeros},
    float32.

  Raises:
    ValueError: when no target projection is found.
  """
  paths = target_paths(params, targets)
  if not paths:
    raise ValueError(f'no Dense sub-tree named one of {targets} in params')
  keys = jax.random.split(key, len(paths))
  out: dict[str, Any] = {}
  for k, path in zip(keys, paths):
    d_in, d_out = np.shape(_get(params, path)['kernel'])
    a = jax.random.normal(k, (d_in, rank), jnp.float32) / rank
    out = _set(out, path, {'A': a, 'B': jnp.zeros((rank, d_out), jnp.float32)})
  return out


def adapter_paths(adapters: Mapping[str, Any]) -> list[tuple[str, ...]]:
  """Paths of the adapter nodes ({'A', 'B'} dicts)."""
  return [p for p, n in _walk(adapters) if 'A' in n and 'B' in n]


def merge(params: Mapping[str, Any], adapters: Mapping[str, Any], scale: float = 1.0):
  """params with kernel <- kernel + scale * A @ B at every adapter path (differentiable).

  Args:
    params: base `params` (in, out) kernels.
    adapters: from `init_adapters` (or converted).
    scale: the LoRA scale.

  Returns:
    A new params pytree (untouched leaves are shared).
  """
  out = params
  for path in adapter_paths(adapters):
    ad = _get(adapters, path)
    node = _get(params, path)
    if 'kernel' not in node:
      raise ValueError(f'adapter at {"/".join(path)} has no kernel in params')
    out = _set(out, path, {**node, 'kernel': node['kernel'] + scale * (ad['A'] @ ad['B'])})
  return out


def num_adapter_params(adapters: Mapping[str, Any]) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(adapters)))


def trainable_mask(tree: Mapping[str, Any]) -> dict[str, Any]:
  """Bool pytree for {'base': params, 'lora': adapters, ...}: True only under non-'base' keys."""
  return {k: jax.tree.map(lambda _, t=(k != 'base'): t, v) for k, v in tree.items()}


def masked_optimizer(tx: optax.GradientTransformation, tree: Mapping[str, Any]):
  """`tx` on the trainable leaves of `tree` (see `trainable_mask`), zero updates on 'base'."""
  labels = jax.tree.map(lambda t: 'train' if t else 'freeze', trainable_mask(tree))
  return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()}, labels)


def from_torch(
  state_dict: Mapping[str, np.ndarray], module_path_fn
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Splits an official LoRA-injected state dict into a plain one and an adapter pytree.

  Args:
    state_dict: keys `<m>.linear.weight/bias`, `<m>.lora_down.weight` (r, in),
      `<m>.lora_up.weight` (out, r) for injected layers; other keys pass through.
    module_path_fn: maps the torch module path `<m>` to the flax path tuple of that Dense in the
      converted params (e.g. flax_module_path(rename(m))).

  Returns:
    (plain state dict with `<m>.weight/bias`, adapters {path: {'A': down.T, 'B': up.T}}).
  """
  plain, adapters = {}, {}
  for key, value in state_dict.items():
    if '.lora_down.' in key or '.lora_up.' in key:
      continue
    plain[key.replace('.linear.', '.')] = value
  for key, value in state_dict.items():
    if key.endswith('.lora_down.weight'):
      m = key[: -len('.lora_down.weight')]
      up = np.asarray(state_dict[f'{m}.lora_up.weight'], np.float32)
      down = np.asarray(value, np.float32)
      adapters = _set(adapters, module_path_fn(m), {'A': down.T.copy(), 'B': up.T.copy()})
  return plain, adapters
