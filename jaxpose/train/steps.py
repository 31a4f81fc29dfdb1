"""The jitted train and eval steps. Models, methods and losses plug in; the steps never change."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import jax
import jax.numpy as jnp
import ml_collections as mlc
import optax

from jaxpose import metrics
from jaxpose.train.state import TrainState


def make_train_step(model, method: ModuleType, tx: optax.GradientTransformation,
                    config: mlc.ConfigDict) -> Callable:
  """train_step(state, batch) -> (state, scalars). The state is donated."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss(params):
      return method.loss_fn(model, params, state.model_state, batch, rng, config)

    (_, (scalars, model_state)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    scalars = {**scalars, 'grad_norm': optax.global_norm(grads)}
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=model_state)
    return new_state, scalars

  return jax.jit(train_step, donate_argnums=0)


def root_relative(pose: jax.Array) -> jax.Array:
  return pose - pose[..., :1, :]


def make_eval_step(model, method: ModuleType, config: mlc.ConfigDict) -> Callable:
  """eval_step(variables, batch) -> {'pred': (B,T,J,3), 'mpjpe_mm': (B,T), 'p_mpjpe_mm': (B,T)}.

  Errors are per frame, in millimetres, root-relative (the prediction's root is moved to the
  origin, as the MotionAGFormer/MotionBERT evaluators do). `scale_2_5d` undoes MotionBERT's 2.5D
  normalisation (1.0 for metric datasets).
  """

  def eval_step(variables, batch):
    pred = method.predict(model, variables, batch['kp2d_norm'], config)
    gt = batch['pose3d_cam']
    scale = batch['scale_2_5d'][:, -pred.shape[1]:, None, None] * 1000.0  # -> mm
    pred_mm, gt_mm = root_relative(pred) * scale, root_relative(gt) * scale
    per_frame = jax.vmap(jax.vmap(metrics.mpjpe))(pred_mm, gt_mm)
    per_frame_pa = jax.vmap(jax.vmap(metrics.p_mpjpe))(pred_mm, gt_mm)
    return {'pred': pred, 'mpjpe_mm': per_frame, 'p_mpjpe_mm': per_frame_pa}

  return jax.jit(eval_step)


def is_finite(x) -> bool:
  return bool(jnp.all(jnp.isfinite(x)))
