"""Metric writers: metrics.jsonl (the source of truth), TensorBoard (tensorboardX), tqdm.

Method names follow clu's MetricWriter (write_scalars, write_hparams, flush, close) without
importing clu, whose writers pull in TensorFlow. Only process 0 writes.

A resumed run replays the steps after its checkpoint. So that every step appears once, opening the
writers with `resume_step` (the restored step; None for a fresh run) first drops the rows of
metrics.jsonl after that step (and a half-written last line of a killed run), and tells TensorBoard
to discard the older event files' events after it (tensorboardX `purge_step`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys
import time
from collections.abc import Mapping
from typing import Any

import jax


class JsonlWriter:
  """Appends one JSON line per `write_scalars` to workdir/metrics.jsonl: {'step', 'time' (Unix
  seconds), name: value}; non-finite values are written as null (NaN) or +-Infinity."""

  def __init__(self, workdir: pathlib.Path, resume_step: int | None = None):
    path = workdir / 'metrics.jsonl'
    truncate_jsonl(path, resume_step)
    self._f = open(path, 'a', buffering=1)  # noqa: SIM115 - closed in close()

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """One line for optimiser step `step`; scalars keep the units their names give (`*_mm`)."""
    rec = {'step': int(step), 'time': time.time(), **{k: _num(v) for k, v in scalars.items()}}
    self._f.write(json.dumps(rec) + '\n')

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """Nothing: config.json holds the configuration."""
    del hparams  # config.json holds them

  def flush(self) -> None:
    """Flushes the file."""
    self._f.flush()

  def close(self) -> None:
    """Closes the file."""
    self._f.close()


class TensorBoardWriter:
  """TensorBoard event files under workdir/tb (tensorboardX, no TensorFlow)."""

  def __init__(self, workdir: pathlib.Path, resume_step: int | None = None):
    from tensorboardX import SummaryWriter

    purge = 0 if resume_step is None else resume_step + 1
    self._w = SummaryWriter(str(workdir / 'tb'), purge_step=purge)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """One scalar event per name at optimiser step `step`."""
    for k, v in scalars.items():
      self._w.add_scalar(k, _num(v), int(step))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """The configuration as a text summary (indented JSON)."""
    self._w.add_text('config', '```\n' + json.dumps(dict(hparams), indent=1) + '\n```')

  def flush(self) -> None:
    """Flushes the event file."""
    self._w.flush()

  def close(self) -> None:
    """Closes the event file."""
    self._w.close()


class MultiWriter:
  """metrics.jsonl and (with `tensorboard`) TensorBoard together, on process 0 only (other
  processes get no writers, so every call is a no-op there)."""

  def __init__(
    self, workdir: str | pathlib.Path, tensorboard: bool = True, resume_step: int | None = None
  ):
    workdir = pathlib.Path(workdir)
    self.writers: list[Any] = []
    if jax.process_index() == 0:
      self.writers.append(JsonlWriter(workdir, resume_step))
      if tensorboard:
        self.writers.append(TensorBoardWriter(workdir, resume_step))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """`write_scalars` of every writer (step: optimiser steps; units as the names say)."""
    for w in self.writers:
      w.write_scalars(step, scalars)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """`write_hparams` of every writer."""
    for w in self.writers:
      w.write_hparams(hparams)

  def flush(self) -> None:
    """Flushes every writer."""
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    """Closes every writer."""
    for w in self.writers:
      w.close()


def progress_bar(total: int, initial: int, enabled: bool = True):
  """A tqdm bar over optimiser steps (`total`, starting at `initial`) on process 0; quiet when
  disabled, on CI, or on other processes."""
  from tqdm.auto import tqdm

  quiet = not enabled or jax.process_index() != 0 or bool(os.environ.get('CI'))
  return tqdm(
    total=total, initial=initial, disable=quiet, dynamic_ncols=True, unit='step', file=sys.stderr
  )


def _num(v: Any) -> float | int | None:
  v = float(v)
  return v if math.isfinite(v) else None if math.isnan(v) else v


def truncate_jsonl(path: pathlib.Path, resume_step: int | None) -> None:
  """Keeps the rows of metrics.jsonl a run resumed at `resume_step` will not write again.

  Kept: rows before `resume_step`, and its rows at `resume_step` except `compile_time_s` (the
  resumed run logs its own). None (a fresh run in a used workdir) keeps nothing. A line that does
  not parse (cut by a kill) is dropped. The file is replaced atomically.
  """
  if not path.exists():
    return
  keep = []
  for line in path.read_text().splitlines():
    try:
      row = json.loads(line)
      step = int(row['step'])
    except (ValueError, KeyError, TypeError):
      continue
    if resume_step is not None and (
      step < resume_step or (step == resume_step and 'compile_time_s' not in row)
    ):
      keep.append(line + '\n')
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(''.join(keep))
  os.replace(tmp, path)


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, Any]]:
  """The records of a metrics.jsonl, in file order ({'step', 'time' Unix seconds, name: value})."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
