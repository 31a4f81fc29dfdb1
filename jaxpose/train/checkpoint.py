"""Checkpoints that survive a kill: Orbax, asynchronous, last N plus the best.

Layout under the workdir:
  ckpt/<step>/{state,data,meta}   the last `train.keep_ckpts` steps (resume reads the latest)
  best/<step>/{state,meta}        the single best step by `train.best_metric` (lower is better)
Each checkpoint holds the TrainState, the grain iterator state (so a resumed run sees the same
batches) and the config. Orbax writes into a temporary directory and renames it when complete,
so a run killed mid-save leaves no checkpoint that a restore would accept.
"""

from __future__ import annotations

import pathlib
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from jaxpose.types import PyTree


class Checkpointer:
  """Thin wrapper around two Orbax CheckpointManagers (latest and best).

  Args:
    workdir: the run directory; checkpoints go to workdir/ckpt and workdir/best.
    keep: latest checkpoints kept (train.keep_ckpts).
    best_metric: the metric (lower is better, e.g. 'mpjpe_mm', millimetres) that ranks `best`.
    async_save: write in a background thread (call `wait` before reading them).
  """

  def __init__(
    self,
    workdir: str | pathlib.Path,
    keep: int = 2,
    best_metric: str = 'mpjpe_mm',
    async_save: bool = True,
  ):
    root = pathlib.Path(workdir).absolute()
    self.best_metric = best_metric
    self.latest = ocp.CheckpointManager(
      root / 'ckpt',
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=async_save, create=True
      ),
    )
    self.best = ocp.CheckpointManager(
      root / 'best',
      options=ocp.CheckpointManagerOptions(
        max_to_keep=1,
        best_fn=lambda m: m[best_metric],
        best_mode='min',
        keep_checkpoints_without_metrics=False,
        enable_async_checkpointing=async_save,
        create=True,
      ),
    )

  def latest_step(self) -> int | None:
    """The step (optimiser updates) of the newest complete checkpoint in ckpt/, or None."""
    return self.latest.latest_step()

  def save(self, step: int, state: PyTree, data_iter: Any, config: dict[str, Any]) -> None:
    """Saves `state` (a TrainState), the grain iterator position and `config` (a plain dict,
    config.to_dict()) as ckpt/<step> (step: optimiser updates done)."""
    args = {'state': ocp.args.StandardSave(state), 'meta': ocp.args.JsonSave(config)}
    if data_iter is not None:
      args['data'] = grain.checkpoint.CheckpointSave(data_iter)
    self.latest.save(step, args=ocp.args.Composite(**args))

  def save_best(
    self, step: int, state: PyTree, config: dict[str, Any], metrics: dict[str, float]
  ) -> None:
    """Offers `state` at `step` to best/: kept if metrics[best_metric] (e.g. mpjpe_mm,
    millimetres) is the lowest seen; `config` is a plain dict."""
    self.best.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(config)),
      metrics=metrics,
    )

  def restore(
    self,
    abstract_state: PyTree,
    data_iter: Any = None,
    step: int | None = None,
    which: str = 'latest',
  ) -> PyTree:
    """Restores onto the shardings carried by `abstract_state` (any device count).

    Args:
      abstract_state: ShapeDtypeStructs with shardings (`abstract_like`) of the TrainState.
      data_iter: when given, advanced in place to the saved iterator position.
      step: the step to restore (default: the newest; for 'best', the best one).
      which: 'latest' (ckpt/) or 'best' (best/).

    Returns:
      The TrainState, sharded like `abstract_state`.
    """
    mngr = self.latest if which == 'latest' else self.best
    step = mngr.latest_step() if step is None else step
    if which == 'best' and step is not None:
      step = mngr.best_step()
    if step is None:
      raise FileNotFoundError(f'no {which} checkpoint under {mngr.directory}')
    args = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None:
      args['data'] = grain.checkpoint.CheckpointRestore(data_iter)
    return mngr.restore(step, args=ocp.args.Composite(**args))['state']

  def wait(self) -> None:
    """Blocks until every asynchronous save has finished."""
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases both managers."""
    self.latest.close()
    self.best.close()


def abstract_like(state: PyTree, sharding) -> PyTree:
  """ShapeDtypeStructs of `state` carrying `sharding`: the restore target on this topology."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def load_params(path: str | pathlib.Path, which: str = 'best') -> dict[str, Any]:
  """Restores params and model_state of a workdir or checkpoint dir to host numpy (no target).

  Args:
    path: a workdir (its newest `which` checkpoint, else ckpt/) or a `.../<step>` directory.
    which: 'best' (best/, falling back to ckpt/) or anything else for ckpt/ only.

  Returns:
    Variables {'params': ..., other collections (e.g. 'batch_stats')} of numpy arrays, ready for
    `model.apply`.
  """
  import numpy as np

  path = pathlib.Path(path).absolute()
  if (path / 'state').exists():
    step_dir = path
  else:
    for sub in [which, 'ckpt'] if which == 'best' else ['ckpt']:
      steps = sorted(int(p.name) for p in (path / sub).glob('[0-9]*') if p.name.isdigit())
      if steps:
        step_dir = path / sub / str(steps[-1])
        break
    else:
      raise FileNotFoundError(f'no checkpoint under {path} (looked in best/ and ckpt/)')
  ckptr = ocp.PyTreeCheckpointer()
  meta = ckptr.metadata(step_dir / 'state').item_metadata.tree
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
  tree = ckptr.restore(step_dir / 'state', args=ocp.args.PyTreeRestore(restore_args=restore_args))
  return {'params': tree['params'], **(tree.get('model_state') or {})}
