"""Checkpoints that survive a kill: Orbax, asynchronous, last N plus the best.

Layout under the workdir:
  ckpt/<step>/{state,data,meta}   the last `train.keep_ckpts` steps (resume reads the latest)
  best/<step>/{state,meta}        the single best step by `train.best_metric` (lower is better)
Each checkpoint holds the TrainState, the grain iterator state (so a resumed run sees the same
batches), the config and an integrity record (`jaxpose.train.integrity`: a CRC-32 per array).
Orbax writes into a temporary directory and renames it when complete, so a run killed mid-save
leaves no checkpoint that a restore would accept; the integrity record catches what Orbax does not
(damaged bytes that still decode). Every restore verifies the record. Resuming falls back to the
newest kept step that verifies, saying in one line which step it skipped and why, and moves the
skipped steps to workdir/quarantine/ (so the rerun can write those steps again); `load_params` on
a workdir falls back the same way without touching it, on a step directory it raises.
"""

from __future__ import annotations

import pathlib
import sys
import time
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxpose.train import integrity
from jaxpose.train.integrity import CheckpointIntegrityError
from jaxpose.types import PyTree

__all__ = ['CheckpointIntegrityError', 'Checkpointer', 'abstract_like', 'load_params']


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
    self.root = root
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
    """Saves `state` (a TrainState), the grain iterator position, `config` (a plain dict,
    config.to_dict()) and their integrity record as ckpt/<step> (step: optimiser updates done)."""
    data_crcs = None
    if data_iter is not None:
      data_crcs = _per_process(integrity.json_crc(data_iter.get_state()))
    args = {
      'state': ocp.args.StandardSave(state),
      'meta': ocp.args.JsonSave(config),
      integrity.RECORD_ITEM: ocp.args.JsonSave(integrity.record(state, config, data_crcs)),
    }
    if data_iter is not None:
      args['data'] = grain.checkpoint.CheckpointSave(data_iter)
    self.latest.save(step, args=ocp.args.Composite(**args))

  def save_best(
    self, step: int, state: PyTree, config: dict[str, Any], metrics: dict[str, float]
  ) -> None:
    """Offers `state` at `step` to best/: kept if metrics[best_metric] (e.g. mpjpe_mm,
    millimetres) is the lowest seen; `config` is a plain dict. A step best/ already holds (a
    resumed run reaching it again, with the same weights) is left as it is."""
    if step in self.best.all_steps():
      return
    rec = integrity.record(state, config)
    self.best.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave(config),
        **{integrity.RECORD_ITEM: ocp.args.JsonSave(rec)},
      ),
      metrics=metrics,
    )

  def restore(
    self,
    abstract_state: PyTree,
    data_iter: Any = None,
    step: int | None = None,
    which: str = 'latest',
  ) -> PyTree:
    """Restores and verifies onto the shardings carried by `abstract_state` (any device count).

    Without `step`, the newest step that restores and verifies is used: each newer one is
    skipped with one line on stderr (the step and why) and moved to workdir/quarantine/.

    Args:
      abstract_state: ShapeDtypeStructs with shardings (`abstract_like`) of the TrainState.
      data_iter: when given, advanced in place to the saved iterator position.
      step: the step to restore (default: the newest; for 'best', the best one).
      which: 'latest' (ckpt/) or 'best' (best/).

    Returns:
      The TrainState, sharded like `abstract_state`.

    Raises:
      FileNotFoundError: no checkpoint at all.
      CheckpointIntegrityError: no candidate step verifies (the message lists each and why).
    """
    mngr = self.latest if which == 'latest' else self.best
    if step is not None:
      steps = [step]
    elif which == 'best':
      steps = [mngr.best_step()] if mngr.latest_step() is not None else []
    else:
      steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f'no {which} checkpoint under {mngr.directory}')
    failed: list[tuple[int, str]] = []
    for s in steps:
      try:
        state = self._restore_step(mngr, s, abstract_state, data_iter)
      except CheckpointIntegrityError as e:
        failed.append((s, str(e)))
        _say(f'jaxpose: skipping checkpoint {e}')
        continue
      if failed:
        self._quarantine(mngr, [f for f, _ in failed])
        _say(f'jaxpose: resumed from {pathlib.Path(str(mngr.directory)).name}/{s} instead')
      return state
    lines = '\n'.join(f'  {why}' for _, why in failed)
    raise CheckpointIntegrityError(f'no checkpoint under {mngr.directory} verifies:\n{lines}')

  def _restore_step(self, mngr, step: int, abstract_state: PyTree, data_iter: Any) -> PyTree:
    """One step, restored and checked against its integrity record (all processes agree)."""
    step_dir = pathlib.Path(str(mngr.directory)) / str(step)
    args = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None:
      args['data'] = grain.checkpoint.CheckpointRestore(data_iter)
    err = None
    try:
      rec = integrity.read_record(step_dir)
      integrity.check_json_files(step_dir)
      state = _unreadable_as_error(
        step_dir, lambda: mngr.restore(step, args=ocp.args.Composite(**args))
      )
      state = state['state']
      if rec is None:
        _no_record(step_dir)
      else:
        data_state = data_iter.get_state() if data_iter is not None else None
        integrity.verify(
          rec, state, step_dir, data_state=data_state, process_index=jax.process_index()
        )
    except CheckpointIntegrityError as e:
      err = e
    if jax.process_count() > 1:  # one process's failure skips the step on every process
      bad = multihost_utils.process_allgather(np.int32(err is not None))
      if err is None and np.any(bad):
        err = CheckpointIntegrityError(f'{step_dir}: failed to verify on another process')
    if err is not None:
      raise err
    return state

  def _quarantine(self, mngr, steps: list[int]) -> None:
    """Moves skipped steps out of the manager's directory (process 0; all processes reload)."""
    if jax.process_index() == 0:
      dest = self.root / 'quarantine'
      dest.mkdir(exist_ok=True)
      stamp = time.strftime('%Y%m%d-%H%M%S')
      for s in steps:
        src = pathlib.Path(str(mngr.directory)) / str(s)
        if src.exists():
          src.rename(dest / f'{src.parent.name}_{s}_{stamp}')
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('jaxpose_quarantine')
    mngr.reload()

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
  """Restores and verifies params and model_state of a workdir or checkpoint dir to host numpy.

  Args:
    path: a workdir (its newest `which` checkpoint, else ckpt/) or a `.../<step>` directory.
    which: 'best' (best/, falling back to ckpt/) or anything else for ckpt/ only.

  Returns:
    Variables {'params': ..., other collections (e.g. 'batch_stats')} of numpy arrays, ready for
    `model.apply`.

  Raises:
    FileNotFoundError: no checkpoint under `path`.
    CheckpointIntegrityError: the step directory (or, for a workdir, every step) is unreadable or
      fails its integrity record; the message names the directory and the leaf.
  """
  path = pathlib.Path(path).absolute()
  if (path / 'state').exists():
    return _load_step(path)
  subs = [which, 'ckpt'] if which == 'best' else ['ckpt']
  candidates = [
    path / sub / str(s)
    for sub in subs
    for s in sorted(
      (int(p.name) for p in (path / sub).glob('[0-9]*') if p.name.isdigit()), reverse=True
    )
  ]
  if not candidates:
    raise FileNotFoundError(f'no checkpoint under {path} (looked in {" and ".join(subs)}/)')
  failed = []
  for step_dir in candidates:
    try:
      variables = _load_step(step_dir)
    except CheckpointIntegrityError as e:
      failed.append(str(e))
      _say(f'jaxpose: skipping checkpoint {e}')
      continue
    if failed:
      _say(f'jaxpose: loaded {step_dir.parent.name}/{step_dir.name} instead')
    return variables
  lines = '\n'.join(f'  {why}' for why in failed)
  raise CheckpointIntegrityError(f'no checkpoint under {path} verifies:\n{lines}')


def _load_step(step_dir: pathlib.Path) -> dict[str, Any]:
  """One step directory restored to host numpy (no target) and verified."""
  rec = integrity.read_record(step_dir)
  integrity.check_json_files(step_dir)

  def restore():
    ckptr = ocp.PyTreeCheckpointer()
    meta = ckptr.metadata(step_dir / 'state').item_metadata.tree
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    return ckptr.restore(step_dir / 'state', args=ocp.args.PyTreeRestore(restore_args=restore_args))

  tree = _unreadable_as_error(step_dir, restore)
  if rec is None:
    _no_record(step_dir)
  else:
    integrity.verify(rec, tree, step_dir)
  return {'params': tree['params'], **(tree.get('model_state') or {})}


def _unreadable_as_error(step_dir: pathlib.Path, fn):
  """`fn()`, with any error of Orbax or TensorStore reading `step_dir` as one that names it.

  (TensorStore's pending reads of a damaged array may still print 'Event loop is closed'
  tracebacks from their own threads after the error; they are noise.)
  """
  try:
    return fn()
  except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types on damaged files
    first = (str(e).strip().splitlines() or [''])[0][:200]
    raise CheckpointIntegrityError(f'{step_dir}: unreadable ({type(e).__name__}: {first})') from e


def _per_process(crc: int) -> list[int]:
  """Every process's value of `crc`, in process order."""
  if jax.process_count() == 1:
    return [crc]
  gathered = multihost_utils.process_allgather(np.array([crc], np.uint32))
  return [int(c) for c in np.asarray(gathered).reshape(-1)]


_WARNED: set[str] = set()


def _no_record(step_dir: pathlib.Path) -> None:
  if str(step_dir) not in _WARNED:
    _WARNED.add(str(step_dir))
    _say(
      f'jaxpose: {step_dir} has no integrity record (written before jaxpose kept them); not verified'
    )


def _say(line: str) -> None:
  """One line on stderr, from process 0."""
  if jax.process_index() == 0:
    print(line, file=sys.stderr, flush=True)
