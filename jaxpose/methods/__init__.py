"""Methods: objectives and inference procedures that wrap any lifter.

The registry is the import path: `config.method.name` is a module stem here. A method module
exposes `loss_fn(model, params, model_state, batch, rng, config) -> (loss, (scalars, model_state))`
and `predict(model, variables, kp2d, config) -> pose3d`. The default trainer
(`jaxpose.train.loop`) also looks for these optional hooks:

  make_model(config)                  the network the method trains (default: the configured lifter)
  init_variables(config, model)       every variable of a fresh run ({'params': trainable, other
                                      collections: frozen or EMA state}); replaces init_from loading
  adapt_init(loaded, fresh)           maps init_from weights that cover part of the network
  train_iterator(config, *, seed, process_index, process_count)
                                      a resumable grain iterator (get_state/set_state) of batches,
                                      possibly nested (two domains)
  predict_batch(model, variables, batch, config)  evaluation that needs more than the 2D
  eval_metrics(model, variables, batch, config)   extra per-frame (B, T) metrics
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
