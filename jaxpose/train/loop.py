"""The default trainer: `run(config, workdir)`.

Data-parallel over every device and every process, resumable (a killed run restarted with the
same command continues from the last checkpoint that verifies, with the same data order and RNG,
and ends with the same parameters as an uninterrupted run), preemptible (SIGTERM/SIGINT: the
current step ends, a checkpoint is written, `Preempted` is raised), exclusive (a workdir lock),
observable (metrics.jsonl, TensorBoard, tqdm, config.json). Models, methods and losses plug in by
name; nothing here knows about a particular paper.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

from jaxpose import methods, sharding
from jaxpose.data import build, pipeline
from jaxpose.eval import evaluator
from jaxpose.eval import steps as eval_steps
from jaxpose.train import checkpoint, optim, preemption, steps, writers
from jaxpose.train import state as state_lib
from jaxpose.train import workdir as workdir_lib


def run(config: mlc.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains and evaluates `config` in `workdir` (resuming the latest checkpoint if any).

  Args:
    config: the locked run config (configs/common.py schema).
    workdir: run directory: config.json, ckpt/, best/, metrics.jsonl, tb/, .lock (while running).

  Returns:
    The final evaluation (`jaxpose.eval.evaluator.evaluate`): mpjpe_mm, p_mpjpe_mm (millimetres,
    root-relative; the protocol's average), mpjpe_mm_frames, per_group, num_frames, example.

  Raises:
    FloatingPointError: a non-finite loss (the last good checkpoint is kept).
    jaxpose.train.preemption.Preempted: SIGTERM/SIGINT; a checkpoint of the last step is written.
    jaxpose.train.workdir.WorkdirError: the workdir cannot be created or written, another run
      holds it, or it holds a run with another config (WorkdirConfigError, a ValueError).
    jaxpose.train.checkpoint.CheckpointIntegrityError: no checkpoint of the workdir verifies.
    ValueError: a batch size does not divide by the number of devices.
  """
  workdir = pathlib.Path(workdir)
  sharding.maybe_initialize_distributed(config.mesh)
  with workdir_lib.locked(workdir):
    workdir_lib.check_config(config, workdir)
    # Embedded datasets build on first use; a licence-gated one not built yet raises with the command.
    build.ensure_built(config.data.name, config.data.data_dir or None, config.data.config or None)
    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.data.batch_size, mesh)
    sharding.check_batch_size(config.data.eval_batch_size, mesh, 'eval_batch_size')
    steps.matmul_precision(config)  # an unknown value fails here, before data and init
    method = methods.get(config.method.name)
    model = method.make_model(config)
    # A method that trains on more than the configured dataset (PoSynDA: target + source domain)
    # supplies its own resumable iterator.
    data_iter = method.train_iterator(
      config, seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count()
    )
    total, per_epoch = schedule_lengths(config)
    tx, lr_fn = optim.make_optimizer(config, total, per_epoch)
    ckpt = checkpoint.Checkpointer(workdir, config.train.keep_ckpts, config.train.best_metric)
    try:
      state = restore_or_init(config, model, tx, mesh, method, ckpt, data_iter)
      workdir_lib.write_config(config, workdir)  # only now: the run has really started
      parts = (method, model, mesh, ckpt, data_iter, lr_fn)
      return train(
        config, workdir, state, total, steps.make_train_step(model, method, tx, config), parts
      )
    finally:
      ckpt.close()


def train(config, workdir, state, total: int, train_step, parts) -> dict[str, Any]:
  """The loop from `state.step` to `total`: steps, logs, checkpoints, evaluations, preemption."""
  method, model, mesh, ckpt, data_iter, lr_fn = parts
  eval_step = eval_steps.make_eval_step(model, method, config)
  cfg_dict = config.to_dict()
  start = int(state.step)
  writer = writers.MultiWriter(workdir, resume_step=start if start else None)
  bar = writers.progress_bar(total, start, config.train.progress)
  pending: list[tuple[int, jax.Array]] = []
  results: dict[str, Any] = {}
  compiled, t_last, s_last = None, time.time(), start
  try:
    with preemption.Guard() as guard:
      for step in range(start, total):
        batch = sharding.shard_batch(next(data_iter), mesh)
        if compiled is None:
          compiled = compile_step(train_step, state, batch, writer, step)
          t_last = time.time()
        state, scalars = compiled(state, batch)
        pending.append((step + 1, scalars))
        done = step + 1
        last, stop = done == total, guard.requested(done)
        if done % config.train.log_every == 0 or last:
          log_scalars(writer, bar, pending, lr_fn, (s_last, t_last))
          pending, t_last, s_last = [], time.time(), done
        if (config.train.ckpt_every and done % config.train.ckpt_every == 0) or last or stop:
          log_scalars(writer, bar, pending, lr_fn, None)  # never checkpoint past a NaN
          pending = []
          ckpt.save(done, state, data_iter, cfg_dict)
        if stop and not last:
          raise preemption.Preempted(done, guard.signal_name or 'a signal', str(workdir))
        if (config.train.eval_every and done % config.train.eval_every == 0) or last:
          results = run_eval(eval_step, state, config, mesh, writer, ckpt, done, cfg_dict)
          t_last = time.time()  # keep evaluation out of the training steps/s
  finally:
    bar.close()
    ckpt.wait()
    writer.close()
  if start >= total and not results:  # resumed a finished run: evaluate what it ended with
    results = evaluator.evaluate(
      eval_step, variables_of(state), config, mesh, max_batches=config.eval.max_batches
    )
  return results


def restore_or_init(config, model, tx, mesh, method, ckpt, data_iter) -> state_lib.TrainState:
  """The newest verifying checkpoint restored onto `mesh` (advancing `data_iter` to its position),
  else a fresh state (`init_state`)."""
  if ckpt.latest_step() is None:
    return init_state(config, model, tx, mesh, method)
  inputs = method.init_inputs(config, model)
  init_vars = method.init_variables
  loaded = load_init(config) if init_vars is not None and config.init_from.path else None
  shapes = jax.eval_shape(
    lambda: state_lib.create(
      model, tx, inputs, config.seed, init_vars(config, model, loaded) if init_vars else None
    )
  )
  return ckpt.restore(checkpoint.abstract_like(shapes, sharding.replicated(mesh)), data_iter)


def evaluate_checkpoint(
  config: mlc.ConfigDict, source: str | pathlib.Path, split: str | None = None
) -> dict[str, Any]:
  """Evaluates a checkpoint (or a workdir's best, else latest, one) on `split` (default
  data.eval_split) with the method's eval step, replicated on every device.

  Returns:
    `jaxpose.eval.evaluator.evaluate`'s results (mpjpe_mm, p_mpjpe_mm in millimetres, ...).
  """
  variables = checkpoint.load_params(source)
  mesh = sharding.make_mesh()
  method = methods.get(config.method.name)
  model = method.make_model(config)
  eval_step = eval_steps.make_eval_step(model, method, config)
  variables = sharding.replicate(variables, mesh)
  return evaluator.evaluate(
    eval_step,
    variables,
    config,
    mesh,
    split=split,
    max_batches=config.eval.max_batches,
    progress=True,
  )


def schedule_lengths(config: mlc.ConfigDict) -> tuple[int, int]:
  """(total_steps, steps_per_epoch), both in optimiser steps: train.epochs x steps per epoch
  when epochs > 0, else train.total_steps; an epoch is train.steps_per_epoch or one pass over
  the training windows (num_windows // data.batch_size, at least 1)."""
  per_epoch = config.train.steps_per_epoch or max(
    1, pipeline.num_windows(config.data, config.data.train_split) // config.data.batch_size
  )
  total = config.train.epochs * per_epoch if config.train.epochs else config.train.total_steps
  return int(total), int(per_epoch)


def init_state(
  config: mlc.ConfigDict, model, tx, mesh, method: methods.Method
) -> state_lib.TrainState:
  """Initialises replicated on the mesh, or from `init_from` weights. A method whose pretrained
  weights cover part of the network (MPM's encoder) maps them with `adapt_init(loaded, fresh)`; a
  method whose variables are more than one network's (PoSynDA: frozen denoiser, adapters, refiner,
  teacher) builds them all with `init_variables(config, model, loaded)`.

  Returns:
    A TrainState at step 0 replicated on `mesh`; the example inputs of `model.init` are
    `method.init_inputs(config, model)` (a lifter: zeros (1, T, J, C_in)).
  """
  inputs = method.init_inputs(config, model)
  loaded = load_init(config) if config.init_from.path else None
  variables = loaded
  if method.init_variables is not None:
    variables = method.init_variables(config, model, loaded)
  elif loaded is not None and method.adapt_init is not None:
    fresh = model.init({'params': jax.random.PRNGKey(config.seed)}, *inputs, train=False)
    variables = method.adapt_init(loaded, fresh)
  # Initialised eagerly, then replicated: compiling `init` of a deep model under jit costs
  # minutes on a CPU (seen: 2m51s for MotionAGFormer-XS), running it op by op takes seconds.
  return sharding.replicate(state_lib.create(model, tx, inputs, config.seed, variables), mesh)


def load_init(config: mlc.ConfigDict) -> dict[str, Any]:
  """The variables of `config.init_from`: an official torch checkpoint (format 'torch', through
  `jaxpose.convert.load_official` with config.model.kwargs as the official arguments) or a jaxpose
  workdir / checkpoint (format 'orbax' or ''). {'params': ..., other collections}, numpy."""
  fmt, path = config.init_from.format or 'orbax', config.init_from.path
  if fmt == 'torch':
    from jaxpose import convert

    return convert.load_official(config.model.name, path, **config.model.kwargs)[1]
  if fmt == 'orbax':
    return checkpoint.load_params(path)
  raise ValueError(f"Unknown init_from.format {fmt!r}; valid: 'orbax', 'torch'")


def compile_step(train_step, state, batch, writer, step: int):
  """AOT-compiles `train_step` for these shapes and logs `compile_time_s` (seconds) at `step`."""
  t0 = time.time()
  compiled = train_step.lower(state, batch).compile()
  writer.write_scalars(step, {'compile_time_s': time.time() - t0})
  return compiled


def log_scalars(writer, bar, pending, lr_fn, since: tuple[int, float] | None) -> None:
  """Fetches pending step scalars, stops on a non-finite loss, writes the last one.

  `pending` holds (optimiser step, scalars on device) pairs; `since` = (step, Unix seconds) of
  the previous log: steps/s is measured after the fetch, which waits for the dispatched steps to
  finish (dispatch itself is asynchronous and nearly free). Adds `lr` (the schedule at that
  step) and `steps_per_s`.

  Raises:
    FloatingPointError: a pending step has a non-finite loss.
  """
  if not pending:
    return
  host = jax.device_get(pending)
  steps_per_s = None
  if since is not None:
    steps_per_s = (host[-1][0] - since[0]) / max(time.time() - since[1], 1e-9)
  for step, sc in host:
    if not np.isfinite(sc['loss']):
      raise FloatingPointError(
        f'non-finite loss {float(sc["loss"])} at step {step}; the run '
        f'stopped and its last good checkpoint is kept'
      )
  step, sc = host[-1]
  out = {k: float(v) for k, v in sc.items()}
  out['lr'] = float(lr_fn(step - 1))
  if steps_per_s is not None:
    out['steps_per_s'] = steps_per_s
    bar.set_postfix(loss=f'{out["loss"]:.4f}', lr=f'{out["lr"]:.2e}', refresh=False)
    bar.update(step - bar.n)
  writer.write_scalars(step, out)


def variables_of(state: state_lib.TrainState) -> dict[str, Any]:
  """The model's variables of a TrainState: {'params': ..., **model_state}, for `model.apply`."""
  return {'params': state.params, **state.model_state}


def run_eval(eval_step, state, config, mesh, writer, ckpt, step, cfg_dict) -> dict[str, Any]:
  """Evaluates `state`, logs eval/mpjpe_mm, eval/p_mpjpe_mm, eval/mpjpe_mm_frames (millimetres)
  at `step` and offers the state to the best checkpoint. Returns the evaluation results."""
  res = evaluator.evaluate(
    eval_step, variables_of(state), config, mesh, max_batches=config.eval.max_batches
  )
  scalars = {f'eval/{k}': res[k] for k in ('mpjpe_mm', 'p_mpjpe_mm', 'mpjpe_mm_frames')}
  writer.write_scalars(step, scalars)
  writer.flush()
  if np.isfinite(res[config.train.best_metric]):
    ckpt.save_best(step, state, cfg_dict, {config.train.best_metric: res[config.train.best_metric]})
  return res
