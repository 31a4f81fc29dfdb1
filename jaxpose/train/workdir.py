"""The run directory: created and locked for the life of a run, and the config a resume must match.

  with workdir.locked(path):            # created; workdir/.lock = {pid, host, started}
    workdir.check_config(config, path)  # refuses a workdir whose checkpoints had another config
    ...build the run...
    workdir.write_config(config, path)  # config.json, once the model, data and optimiser exist

Two runs in one workdir corrupt each other (interleaved metrics, crashed Orbax saves), so a run
holds `workdir/.lock` (created with O_EXCL, holding the PID, host and start time); a second run
refuses with the holder's PID and host. A lock left by a dead run on this host (or by this very
process id, as after a container restart) is stale and taken over with a message; a lock held on
another host cannot be checked from here and must be removed by hand if that run is dead. In a
multi-process run process 0 holds the lock for all (the workdir is on a filesystem every process
shares) and the others follow its outcome.

The config check compares against config.json only when the workdir holds a checkpoint: a run that
failed before its first checkpoint (a misspelt model name, an out-of-memory compile) does not block
its corrected command. Keys in `RESUME_FREE` may differ between the run that wrote the workdir and
a resuming one: the ones that depend on the host (paths, the process id and coordinator of a
multi-process run, the data worker count) and the ones that only change what is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

LOCK_NAME = '.lock'

# Keys that may differ between the run that wrote a workdir and a resuming run. `trainer` and
# `model.dtype` were schema keys of older workdirs that nothing read (a method's own loop is
# Method.run; bfloat16 matmuls are train.matmul_precision).
RESUME_FREE = (
  'train.progress',
  'train.allow_config_change',
  'eval.max_batches',
  'trainer',
  'model.dtype',
  # host-dependent: another host (or a restarted VM) resumes the same run
  'mesh.process_id',
  'mesh.coordinator_address',
  'data.data_dir',
  'data.num_workers',  # the iterator state is a batch count: any worker count resumes it
  'init_from.path',  # read at initialisation only; a resume restores the checkpoint
)

# Keys added to the schema after workdirs were written, with the value that reproduces the
# behaviour of a config.json that lacks them: an older workdir resumes under that value.
ADDED_KEYS = {
  'train.matmul_precision': 'float32',
}


class WorkdirError(RuntimeError):
  """A workdir this run cannot use; the message is one line naming the path (or the keys)."""


class WorkdirBusyError(WorkdirError):
  """Another live run holds the workdir's lock."""


class WorkdirConfigError(WorkdirError, ValueError):
  """The workdir's checkpoints were written with another config."""


def has_checkpoint(workdir: pathlib.Path) -> bool:
  """Whether workdir/ckpt holds a completed step directory."""
  ckpt = workdir / 'ckpt'
  return ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())


def _say(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def _alive(pid: int) -> bool:
  """Whether process `pid` runs on this host (a zombie does not count)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  try:
    return pathlib.Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
  except (OSError, IndexError):
    return True


class WorkdirLock:
  """The lock file of one workdir (`acquire` / `release`)."""

  def __init__(self, workdir: pathlib.Path):
    self.path = workdir / LOCK_NAME
    self.me = {'pid': os.getpid(), 'host': socket.gethostname(), 'started': time.ctime()}
    self.held = False

  def _holder(self) -> dict[str, Any] | None:
    try:
      holder = json.loads(self.path.read_text())
      return holder if isinstance(holder, dict) and 'pid' in holder else None
    except (OSError, ValueError):
      return None  # empty or half-written: a run killed while creating it

  def acquire(self) -> None:
    """Takes the lock, taking over a stale one with a message.

    Raises:
      WorkdirBusyError: a live run (or one on another host) holds it; names its PID and host.
      WorkdirError: the workdir cannot be written.
    """
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      self._take_over()
    except OSError as e:
      raise WorkdirError(f'cannot write to workdir {self.path.parent}: {e.strerror}') from None
    else:
      with os.fdopen(fd, 'w') as f:
        json.dump(self.me, f)
    self.held = True

  def _take_over(self) -> None:
    holder = self._holder()
    if holder is not None:
      pid, host = int(holder['pid']), str(holder.get('host', '?'))
      if host != self.me['host']:
        raise WorkdirBusyError(
          f'workdir {self.path.parent} is locked by PID {pid} on host {host} (since '
          f'{holder.get("started", "?")}); if that run is dead, delete {self.path}'
        )
      if pid != self.me['pid'] and _alive(pid):
        raise WorkdirBusyError(
          f'workdir {self.path.parent} is in use by PID {pid} on host {host} (since '
          f'{holder.get("started", "?")}); stop that run or use another --workdir'
        )
      _say(
        f'jaxpose: taking over the stale lock of {self.path.parent} (PID {pid} on {host} is gone)'
      )
    else:
      _say(f'jaxpose: taking over the unreadable lock file {self.path}')
    tmp = self.path.with_name(f'{LOCK_NAME}.{os.getpid()}')
    tmp.write_text(json.dumps(self.me))
    os.replace(tmp, self.path)

  def release(self) -> None:
    """Removes the lock file if this run still holds it."""
    if self.held and (self._holder() or {}).get('pid') == self.me['pid']:
      self.path.unlink(missing_ok=True)
    self.held = False


def create(workdir: pathlib.Path) -> None:
  """Creates `workdir` (and its parents).

  Raises:
    WorkdirError: one line naming the path and the reason.
  """
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'cannot create workdir {workdir}: {e.strerror or e}') from None
  if not workdir.is_dir():
    raise WorkdirError(f'cannot use workdir {workdir}: it is not a directory')


@contextlib.contextmanager
def locked(workdir: pathlib.Path) -> Iterator[WorkdirLock]:
  """Creates and locks `workdir` for the block (process 0 locks; every process follows it).

  Raises:
    WorkdirError: the workdir cannot be created or written, or another run holds it.
  """
  lock, err = WorkdirLock(workdir), None
  try:
    create(workdir)
    if jax.process_index() == 0:
      lock.acquire()
  except WorkdirError as e:
    err = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    failed = multihost_utils.broadcast_one_to_all(np.int32(err is not None))
    if int(failed) and err is None:
      err = WorkdirBusyError(f'process 0 could not lock workdir {workdir} (see its log)')
  if err is not None:
    raise err
  try:
    yield lock
  finally:
    lock.release()


def _flat(d: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  out: dict[str, Any] = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def check_config(config: mlc.ConfigDict, workdir: pathlib.Path) -> None:
  """Refuses to resume a workdir whose checkpoints were written with a different config.

  Keys in `RESUME_FREE` may differ; with train.allow_config_change any may. A key in `ADDED_KEYS`
  that the workdir's config lacks counts as its listed value. A workdir without a checkpoint is not
  compared (its config.json is rewritten once this run starts).

  Raises:
    WorkdirConfigError: listing every differing key with the workdir's and this run's values.
  """
  path = workdir / 'config.json'
  if not path.exists() or not has_checkpoint(workdir) or config.train.allow_config_change:
    return
  old, new = {**ADDED_KEYS, **_flat(json.loads(path.read_text()))}, _flat(config.to_dict())
  diff = {
    k: (old.get(k), new.get(k))
    for k in sorted(set(old) | set(new))
    if old.get(k) != new.get(k) and k not in RESUME_FREE
  }
  if diff:
    lines = '\n'.join(f'  {k}: workdir has {a!r}, this run has {b!r}' for k, (a, b) in diff.items())
    raise WorkdirConfigError(
      f'{workdir} holds a run with a different config:\n{lines}\nUse another '
      f'--workdir, or pass --config.train.allow_config_change=True to resume anyway.'
    )


def write_config(config: mlc.ConfigDict, workdir: pathlib.Path) -> None:
  """Writes workdir/config.json (process 0; atomically, so a kill never leaves half of it)."""
  if jax.process_index() == 0:
    tmp = workdir / 'config.json.tmp'
    tmp.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str))
    os.replace(tmp, workdir / 'config.json')
