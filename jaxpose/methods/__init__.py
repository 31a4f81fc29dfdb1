"""Methods: objectives and inference procedures that wrap any lifter (no flax modules here).

The contract is `jaxpose.methods.base.Method`, a frozen dataclass. Every method module
`jaxpose/methods/<name>.py` exports `METHOD = Method(...)`; `config.method.name` is the module
stem, and the registry lists exactly the modules that export one. Required fields:

  loss_fn(model, params, model_state, batch, rng, config) -> (loss, (scalars, model_state))
  predict(model, variables, kp2d_norm, config) -> pose3d_cam
      kp2d_norm (B, T, J, C_in) normalised screen coordinates -> (B, T_out, J, 3) metres, camera
      frame, root-relative

Optional hooks (defaults in brackets; the trainer reads the fields, never hasattr):

  make_model(config)                  the network the method trains [models.build_from_config]
  init_inputs(config, model)          example inputs of model.init [one zero lifter window
                                      (1, data.frames, data.num_joints, C_in); image: (1, H, W, 3)]
  init_variables(config, model, loaded)
                                      every variable of a fresh run ({'params': trainable, other
                                      collections: frozen or EMA state}); `loaded` = the init_from
                                      checkpoint or None [None: model.init or init_from]
  adapt_init(loaded, fresh)           maps init_from weights that cover part of the network [None]
  train_iterator(config, *, seed, process_index, process_count)
                                      a resumable grain iterator (get_state/set_state) of batches,
                                      possibly nested (two domains) [config.data's train split]
  predict_batch(model, variables, batch, config)
                                      evaluation that needs more than the 2D [predict on kp2d_norm]
  eval_metrics(model, variables, batch, config)
                                      extra per-frame (B, T_out) metrics [none]
  run(config, workdir)                a loop of its own, called by `jaxpose train` [None: the
                                      default trainer, jaxpose.train.loop.run]

Method settings are `config.method.kwargs`, read through `jaxpose.methods._kwargs.settings` over
the module's documented DEFAULTS (an unknown key raises with the valid ones).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from jaxpose.methods.base import Method

__all__ = ['Method', 'get', 'get_module', 'list_methods']

_NOT_METHODS = {'base'}


def _candidates() -> list[str]:
  path = __path__  # type: ignore[name-defined]
  return sorted(
    m.name
    for m in pkgutil.iter_modules(path)
    if not m.name.startswith('_') and m.name not in _NOT_METHODS
  )


def list_methods() -> list[str]:
  """Names of the method modules that export `METHOD` (imports each candidate once)."""
  return [
    name
    for name in _candidates()
    if isinstance(getattr(importlib.import_module(f'{__name__}.{name}'), 'METHOD', None), Method)
  ]


def get_module(name: str) -> ModuleType:
  """Imports `jaxpose.methods.<name>`; an unknown name raises a ValueError listing valid names."""
  if name in _candidates():
    module = importlib.import_module(f'{__name__}.{name}')
    if isinstance(getattr(module, 'METHOD', None), Method):
      return module
  raise ValueError(f'Unknown method name {name!r}; valid names: {", ".join(list_methods())}')


def get(name: str) -> Method:
  """The `METHOD` of `jaxpose.methods.<name>` (what `config.method.name` selects)."""
  return get_module(name).METHOD
