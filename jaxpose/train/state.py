"""Training state: a flax struct carried through the jitted step and saved by Orbax."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxpose.types import PyTree


@flax.struct.dataclass
class TrainState:
  """Everything a step reads and writes.

  step: () int32. params: the `params` collection. model_state: the other mutable collections
  (`{'batch_stats': ...}` for BatchNorm models, else `{}`). opt_state: optax state.
  rng: (2,) uint32 raw key; per-step keys are `fold_in(rng, step)`, so a resumed run draws the
  same dropout masks as an uninterrupted one.
  """

  step: jax.Array
  params: PyTree
  model_state: PyTree
  opt_state: PyTree
  rng: jax.Array


def split_variables(variables: dict[str, Any]) -> tuple[PyTree, PyTree]:
  """{'params': p, other collections...} -> (p, {other collections}) (model_state)."""
  variables = dict(variables)
  params = variables.pop('params')
  return params, variables


def create(
  model,
  tx: optax.GradientTransformation,
  inputs: tuple[jax.Array, ...] | jax.Array,
  seed: int,
  variables: dict[str, Any] | None = None,
) -> TrainState:
  """Initialises (or adopts `variables`, e.g. imported weights) and the optimiser state.

  Args:
    model: a flax module applied as `model.init(rngs, *inputs, train=False)`.
    tx: the optimiser.
    inputs: example inputs of `model.init` (a tuple, or one array): a lifter's zero window
      (1, T, J, C_in) (`Method.init_inputs`). Only their shapes and dtypes matter.
    seed: the run seed; `PRNGKey(seed)` splits into the init key and the state's `rng`.
    variables: the run's variables when they do not come from `model.init` ({'params': ...,
      other collections}).

  Returns:
    A TrainState at step 0.
  """
  inputs = inputs if isinstance(inputs, tuple) else (inputs,)
  init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
  if variables is None:
    variables = model.init({'params': init_key, 'dropout': init_key}, *inputs, train=False)
  params, model_state = split_variables(variables)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    model_state=model_state,
    opt_state=tx.init(params),
    rng=rng,
  )
