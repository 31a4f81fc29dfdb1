"""Model registry. The registry is the import path: `config.model.name` is a module stem here.

Every model module `jaxpose/models/<name>.py` exports:
  Model      a flax.linen Module with typed fields; `__call__(x, *, train: bool)` maps
             x: (B, T, J, C_in) -> (B, T_out, J, 3).
  VARIANTS   {'variant': {constructor kwargs}} as published. The first key is the default.
  from_torch(state_dict, **official_kwargs) -> (module, variables)   official checkpoint import.
Optional: PAPER = {'variant': {'params': int, 'macs': float, ...}} published numbers for benchmarks.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_NOT_MODELS = {'layers'}


def list_models() -> list[str]:
  """Names of every model module (module stems under jaxpose.models)."""
  path = __path__  # type: ignore[name-defined]
  return sorted(
    m.name
    for m in pkgutil.iter_modules(path)
    if m.name not in _NOT_MODELS and not m.name.startswith('_')
  )


def get_module(name: str) -> ModuleType:
  """Imports `jaxpose.models.<name>`; an unknown name raises a ValueError listing valid names."""
  valid = list_models()
  if name not in valid:
    raise ValueError(f'Unknown model name {name!r}; valid names: {", ".join(valid)}')
  return importlib.import_module(f'{__name__}.{name}')


def variants(name: str) -> dict[str, dict[str, Any]]:
  return dict(getattr(get_module(name), 'VARIANTS', {}))


def model_fields(name: str) -> list[str]:
  """Constructor fields of `name`'s Model (what overrides may set)."""
  cls = get_module(name).Model
  return [f.name for f in dataclasses.fields(cls) if f.name not in ('parent', 'name')]


def build(name: str, variant: str | None = None, **overrides: Any):
  """Builds `Model` of `name` with the kwargs of `variant` (default: the first) plus overrides.

  Raises ValueError naming the valid variants or fields when either is wrong.
  """
  mod = get_module(name)
  table = dict(getattr(mod, 'VARIANTS', {}))
  kwargs: dict[str, Any] = {}
  if table:
    variant = variant or next(iter(table))
    if variant not in table:
      raise ValueError(f'Unknown variant {variant!r} for model {name!r}; valid: {", ".join(table)}')
    kwargs.update(table[variant])
  elif variant is not None:
    raise ValueError(f'Model {name!r} has no VARIANTS, got variant={variant!r}')
  fields = model_fields(name)
  bad = sorted(set(overrides) - set(fields))
  if bad:
    raise ValueError(
      f'Unknown override(s) {bad} for model {name!r}; valid fields: {", ".join(fields)}'
    )
  kwargs.update(overrides)
  return mod.Model(**kwargs)


def param_count(name: str, variant: str | None = None, **overrides: Any) -> int:
  """Number of trainable parameters (the `params` collection), computed without allocating."""
  model = build(name, variant, **overrides)
  x = example_input(model)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes['params'])))


def example_input(model, batch: int = 1) -> jax.Array:
  """A zero input of the shape `model` expects: (batch, T, J, C_in).

  Models declare `num_frames`, `num_joints` and `in_channels` fields (or the module-level
  helper `input_shape(model)`), which this reads.
  """
  mod = importlib.import_module(type(model).__module__)
  if hasattr(mod, 'input_shape'):
    shape = tuple(mod.input_shape(model))
  else:
    shape = (model.num_frames, model.num_joints, model.in_channels)
  return jnp.zeros((batch, *shape), jnp.float32)
