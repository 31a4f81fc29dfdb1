"""Optimisers and learning-rate schedules from `config.optim` and `config.schedule`."""

from __future__ import annotations

import ml_collections as mlc
import optax

SCHEDULES = ('exponential_epoch', 'multistep_epoch', 'cosine', 'constant')


def make_schedule(
  sched: mlc.ConfigDict, lr: float, total_steps: int, steps_per_epoch: int
) -> optax.Schedule:
  """The papers' schedules, with optional linear warm-up.

  exponential_epoch: lr * decay**epoch, stepped once per epoch (MotionAGFormer, MotionBERT,
  MixSTE, VideoPose3D all decay per epoch). multistep_epoch: lr times decay at each epoch of
  `milestones` (torch MultiStepLR; EpipolarPose: x0.1 at epochs 90 and 120). cosine: cosine
  decay to 0 over the run. constant.

  Args:
    sched: `config.schedule` (type, decay per epoch or per milestone, milestones in epochs,
      warmup_steps).
    lr: the peak learning rate.
    total_steps, steps_per_epoch: run length and epoch length in optimiser steps.

  Returns:
    An optax schedule: optimiser step (int) -> learning rate.
  """
  if sched.type == 'exponential_epoch':
    main = optax.exponential_decay(
      lr, transition_steps=max(1, steps_per_epoch), decay_rate=sched.decay, staircase=True
    )
  elif sched.type == 'multistep_epoch':
    steps = [int(m) * max(1, steps_per_epoch) for m in sched.get('milestones', ())]
    main = optax.piecewise_constant_schedule(lr, {s: sched.decay for s in steps})
  elif sched.type == 'cosine':
    main = optax.cosine_decay_schedule(lr, max(1, total_steps - sched.warmup_steps))
  elif sched.type == 'constant':
    main = optax.constant_schedule(lr)
  else:
    raise ValueError(f'Unknown schedule.type {sched.type!r}; valid: {", ".join(SCHEDULES)}')
  if sched.warmup_steps:
    warm = optax.linear_schedule(0.0, lr, sched.warmup_steps)
    return optax.join_schedules([warm, main], [sched.warmup_steps])
  return main


OPTIMIZERS = ('adamw', 'adam', 'adam_amsgrad', 'sgd')


def make_optimizer(
  config: mlc.ConfigDict, total_steps: int, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimiser of `config.optim` (adamw, adam, adam_amsgrad, sgd; optional global-norm
  clipping at optim.grad_clip) with the learning-rate schedule of `config.schedule`.

  Args:
    config: the run config.
    total_steps, steps_per_epoch: run length and epoch length in optimiser steps.

  Returns:
    (optax transformation, schedule: optimiser step -> learning rate).
  """
  o = config.optim
  lr = make_schedule(config.schedule, o.lr, total_steps, steps_per_epoch)
  if o.name == 'adamw':
    tx = optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
  elif o.name == 'adam':
    tx = optax.adam(lr, b1=o.b1, b2=o.b2, eps=o.eps)
  elif o.name == 'adam_amsgrad':
    tx = optax.amsgrad(lr, b1=o.b1, b2=o.b2, eps=o.eps)
  elif o.name == 'sgd':
    tx = optax.sgd(lr)
  else:
    raise ValueError(f'Unknown optim.name {o.name!r}; valid: {", ".join(OPTIMIZERS)}')
  if o.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
  return tx, lr
