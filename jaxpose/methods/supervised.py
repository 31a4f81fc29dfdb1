"""Plain supervised lifting: the default method for every lifter.

loss: the weighted sum of the `config.method.loss` terms (jaxpose/losses.py), averaged over the
valid rows of the global batch. predict: the model in inference mode, optionally averaged with
its prediction on the horizontally flipped input (the papers' flip test).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc

from jaxpose import losses
from jaxpose.geometry import skeleton as skel
from jaxpose.methods.base import Method


def _apply_train(model, params, model_state, x, rng):
  variables = {'params': params, **model_state}
  drop, path = jax.random.split(rng)
  rngs = {'dropout': drop, 'drop_path': path}
  if model_state:
    return model.apply(variables, x, train=True, rngs=rngs, mutable=list(model_state))
  return model.apply(variables, x, train=True, rngs=rngs), model_state


def masked_mean(per_sample: jax.Array, weights: jax.Array) -> jax.Array:
  return jnp.sum(per_sample * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """Returns (loss, (scalars, new_model_state)). batch: see jaxpose/types.py."""
  pred, new_state = _apply_train(model, params, model_state, batch['kp2d_norm'], rng)
  total, parts = losses.combine(dict(config.method.loss), pred, batch)
  w = (
    batch['valid'].any(axis=-1).astype(pred.dtype) if 'valid' in batch else jnp.ones(pred.shape[0])
  )
  loss = masked_mean(total, w)
  scalars = {'loss': loss, **{f'loss/{k}': masked_mean(v, w) for k, v in parts.items()}}
  return loss, (scalars, new_state)


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """kp2d_norm (B, T, J, C) -> pose3d (B, T_out, J, 3); flip-averaged when config.eval.flip_test."""
  pred = model.apply(variables, kp2d_norm, train=False)
  if config.eval.flip_test:
    sk = config.data.skeleton
    pred_f = model.apply(variables, skel.flip_pose(kp2d_norm, sk), train=False)
    pred = 0.5 * (pred + skel.flip_pose(pred_f, sk))  # flipping is its own inverse
  return pred


METHOD = Method(loss_fn=loss_fn, predict=predict)
