"""Methods: objectives and inference procedures that wrap any lifter.

The registry is the import path: `config.method.name` is a module stem here. A method module
exposes `loss_fn(model, params, model_state, batch, rng, config) -> (loss, (scalars, model_state))`
and `predict(model, variables, kp2d, config) -> pose3d`, or a `run(config, workdir)` when its
loop differs from the default trainer.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def list_methods() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith('_'))  # type: ignore[name-defined]


def get_module(name: str) -> ModuleType:
  valid = list_methods()
  if name not in valid:
    raise ValueError(f'Unknown method name {name!r}; valid names: {", ".join(valid)}')
  return importlib.import_module(f'{__name__}.{name}')
