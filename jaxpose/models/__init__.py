"""Model registry. The registry is the import path: `config.model.name` is a module stem here.

Every model module `jaxpose/models/<name>.py` exports:
  Model      a flax.linen Module with typed fields, applied as `model.apply(v, *inputs, train=...)`.
  VARIANTS   {'variant': {constructor kwargs}} as published. The first key is the default.
  from_torch(state_dict, **official_kwargs) -> (module, variables)   official checkpoint import.
Optional: PAPER = {'variant': {'params': int, 'macs': float, ...}} published numbers for benchmarks,
TEST_OVERRIDES / TEST_VARIANT (the contract tests' tiny configuration), RNG_STREAMS.

Two input kinds, declared by the module-level `INPUT_KIND`:
  'pose2d' (default)  lifters: x (B, T, J, C_in) normalised 2D (+ confidence) -> (B, T_out, J, 3)
                      metres, camera frame, root-relative. The input shape comes from the fields
                      `num_frames`, `num_joints`, `in_channels` or the helper `input_shape(model)`.
  'image'             image models: x (B, H, W, 3) float32 NHWC RGB, ImageNet-normalised
                      ((rgb_0_255 - (123.675, 116.28, 103.53)) / (58.395, 57.12, 57.375)); the
                      output is an array or a dict of arrays with the batch axis first, documented
                      with shapes and units in the module docstring.
A module whose model takes several inputs (or any non-lifter input) defines
`example_inputs(model, batch) -> tuple[jax.Array, ...]` (zero arrays of the expected shapes);
`example_inputs` below uses it, else builds the single lifter/image input.
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


def build_from_config(config: Any):
  """The model of a run config: `build(config.model.name, config.model.variant, **config.model.kwargs)`.

  `config` is a run config (`configs/common.py` schema) or any mapping with a `model` block of
  `name`, `variant` ('' or None for the default) and `kwargs`.
  """
  m = config['model'] if isinstance(config, dict) else config.model
  get = m.get if hasattr(m, 'get') else lambda k, d=None: getattr(m, k, d)
  return build(get('name'), get('variant') or None, **dict(get('kwargs') or {}))


def param_count(name: str, variant: str | None = None, **overrides: Any) -> int:
  """Number of trainable parameters (the `params` collection), computed without allocating."""
  model = build(name, variant, **overrides)
  xs = example_inputs(model)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *xs, train=False))
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes['params'])))


def input_kind(model_or_name) -> str:
  """'pose2d' (a lifter) or 'image': the module-level INPUT_KIND of the model's module."""
  if isinstance(model_or_name, str):
    mod = get_module(model_or_name)
  else:
    mod = importlib.import_module(type(model_or_name).__module__)
  return getattr(mod, 'INPUT_KIND', 'pose2d')


def example_inputs(model, batch: int = 1) -> tuple[jax.Array, ...]:
  """Zero inputs of the shapes `model` expects, as a tuple for `model.apply(v, *inputs, ...)`.

  The module's own `example_inputs(model, batch)` when it has one, else `(example_input(model,
  batch),)`.
  """
  mod = importlib.import_module(type(model).__module__)
  if hasattr(mod, 'example_inputs'):
    return tuple(mod.example_inputs(model, batch))
  return (example_input(model, batch),)


def example_input(model, batch: int = 1) -> jax.Array:
  """A zero input of the shape a single-input `model` expects.

  Lifters: (batch, T, J, C_in) from the fields `num_frames`, `num_joints` and `in_channels` (or
  the module-level helper `input_shape(model)`). Image models: (batch, H, W, 3) from
  `input_shape(model)` = (H, W, 3).
  """
  mod = importlib.import_module(type(model).__module__)
  if hasattr(mod, 'input_shape'):
    shape = tuple(mod.input_shape(model))
  else:
    shape = (model.num_frames, model.num_joints, model.in_channels)
  return jnp.zeros((batch, *shape), jnp.float32)
