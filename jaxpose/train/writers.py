"""Metric writers: metrics.jsonl (the source of truth), TensorBoard (tensorboardX), tqdm.

Method names follow clu's MetricWriter (write_scalars, write_hparams, flush, close) without
importing clu, whose writers pull in TensorFlow. Only process 0 writes.
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
  def __init__(self, workdir: pathlib.Path):
    self._f = open(workdir / 'metrics.jsonl', 'a', buffering=1)  # noqa: SIM115 - closed in close()

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    rec = {'step': int(step), 'time': time.time(), **{k: _num(v) for k, v in scalars.items()}}
    self._f.write(json.dumps(rec) + '\n')

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    del hparams  # config.json holds them

  def flush(self) -> None:
    self._f.flush()

  def close(self) -> None:
    self._f.close()


class TensorBoardWriter:
  def __init__(self, workdir: pathlib.Path):
    from tensorboardX import SummaryWriter

    self._w = SummaryWriter(str(workdir / 'tb'))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for k, v in scalars.items():
      self._w.add_scalar(k, _num(v), int(step))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._w.add_text('config', '```\n' + json.dumps(dict(hparams), indent=1) + '\n```')

  def flush(self) -> None:
    self._w.flush()

  def close(self) -> None:
    self._w.close()


class MultiWriter:
  def __init__(self, workdir: str | pathlib.Path, tensorboard: bool = True):
    workdir = pathlib.Path(workdir)
    self.writers: list[Any] = []
    if jax.process_index() == 0:
      self.writers.append(JsonlWriter(workdir))
      if tensorboard:
        self.writers.append(TensorBoardWriter(workdir))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for w in self.writers:
      w.write_scalars(step, scalars)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    for w in self.writers:
      w.write_hparams(hparams)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


def progress_bar(total: int, initial: int, enabled: bool = True):
  """A tqdm bar on process 0; quiet when disabled, on CI, or without a terminal."""
  from tqdm.auto import tqdm

  quiet = not enabled or jax.process_index() != 0 or bool(os.environ.get('CI'))
  return tqdm(
    total=total, initial=initial, disable=quiet, dynamic_ncols=True, unit='step', file=sys.stderr
  )


def _num(v: Any) -> float | int | None:
  v = float(v)
  return v if math.isfinite(v) else None if math.isnan(v) else v


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
