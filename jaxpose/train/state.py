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
  variables = dict(variables)
  params = variables.pop('params')
  return params, variables


def create(
  model,
  tx: optax.GradientTransformation,
  example_x: jax.Array,
  seed: int,
  variables: dict[str, Any] | None = None,
) -> TrainState:
  """Initialises (or adopts `variables`, e.g. imported weights) and the optimiser state."""
  init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
  if variables is None:
    variables = model.init({'params': init_key, 'dropout': init_key}, example_x, train=False)
  params, model_state = split_variables(variables)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    model_state=model_state,
    opt_state=tx.init(params),
    rng=rng,
  )
