"""The jitted train step. Models, methods and losses plug in; the step never changes.

The eval step is `jaxpose.eval.steps.make_eval_step`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import ml_collections as mlc
import optax

from jaxpose.methods.base import Method
from jaxpose.train.state import TrainState

# config.train.matmul_precision -> jax_default_matmul_precision while the step is traced.
MATMUL_PRECISIONS = {'float32': None, 'bfloat16': 'bfloat16'}


def matmul_precision(config: mlc.ConfigDict) -> str | None:
  """The `jax.default_matmul_precision` value of config.train.matmul_precision (default float32).

  'bfloat16' gives the matmuls of `layers.Linear` and `layers.attention.attend` (every
  transformer lifter's) bfloat16 operands with float32 accumulation; parameters, optimiser state
  and all other arithmetic stay float32 (`jaxpose.models.layers.matmul`).
  """
  name = config.train.get('matmul_precision', 'float32')
  if name not in MATMUL_PRECISIONS:
    raise ValueError(
      f'config.train.matmul_precision: expected one of {sorted(MATMUL_PRECISIONS)}, got {name!r}'
    )
  return MATMUL_PRECISIONS[name]


def make_train_step(
  model, method: Method, tx: optax.GradientTransformation, config: mlc.ConfigDict
) -> Callable:
  """train_step(state, batch) -> (state, scalars). The state is donated.

  The loss is `method.loss_fn(model, params, model_state, batch, rng, config)` with
  rng = fold_in(state.rng, state.step); scalars are the loss's plus `grad_norm` (global L2 norm
  of the gradients), each () float32, on device. The forward and backward passes are traced under
  config.train.matmul_precision (`matmul_precision`).
  """
  precision = matmul_precision(config)

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss(params):
      return method.loss_fn(model, params, state.model_state, batch, rng, config)

    with jax.default_matmul_precision(precision):
      (_, (scalars, model_state)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    scalars = {**scalars, 'grad_norm': optax.global_norm(grads)}
    new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
    )
    return new_state, scalars

  return jax.jit(train_step, donate_argnums=0)
