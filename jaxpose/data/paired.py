"""Two-domain training data: a target stream that drives the epochs and a cycled source stream.

  it = paired.train_iterator(target_data, source_data, seed=s, process_index=p, process_count=n)
  batch = next(it)   # {'target': per-host batch of target_data, 'source': one of source_data}
  state = it.get_state()   # {'target': ..., 'source': ...}: both positions, checkpointable

Each stream is a `jaxpose.data.pipeline.train_iterator` (its batches are documented there); the
source stream is seeded with seed + 1, and repeats forever like the target (the official
`itertools.cycle`). Used by domain adaptation methods (PoSynDA: 3DHP target, H36M source).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grain

from jaxpose.data import build, pipeline


class PairedIterator(grain.DatasetIterator):
  """{'target': batch, 'source': batch} from two iterators with get_state/set_state.

  The target stream drives the epochs and the source stream is cycled beside it (both repeat
  forever). State = {'target': target state, 'source': source state}.
  """

  def __init__(self, target, source):
    super().__init__()
    self._target, self._source = target, source

  def __next__(self):
    return {'target': next(self._target), 'source': next(self._source)}

  def get_state(self) -> dict[str, Any]:
    """{'target': the target stream's state, 'source': the source stream's}."""
    return {'target': self._target.get_state(), 'source': self._source.get_state()}

  def set_state(self, state: dict[str, Any]) -> None:
    """Restores both streams from `get_state`'s dict."""
    self._target.set_state(state['target'])
    self._source.set_state(state['source'])

  def close(self) -> None:
    """Closes both streams."""
    self._target.close()
    self._source.close()


def train_iterator(
  target: Any, source: Any, *, seed: int, process_index: int = 0, process_count: int = 1
) -> PairedIterator:
  """Pairs the training windows of two data blocks (builds an embedded source dataset if needed).

  Args:
    target: the target-domain data block (config.data): its train_split drives the epochs.
    source: the source-domain data block (ConfigDict or dict, the schema of `config.data`).
    seed: the target stream's seed; the source stream uses seed + 1.
    process_index, process_count: this host and the number of hosts (per-host batches).

  Returns:
    A resumable iterator of {'target': batch, 'source': batch}.
  """
  get = source.get if hasattr(source, 'get') else lambda k, d=None: getattr(source, k, d)
  build.ensure_built(get('name'), get('data_dir') or None, get('config') or None)
  kw = dict(process_index=process_index, process_count=process_count)
  return PairedIterator(
    pipeline.train_iterator(target, seed=seed, **kw),
    pipeline.train_iterator(source, seed=seed + 1, **kw),
  )


def source_block(method: str, source: Any, target: Any, **overrides: Any) -> dict[str, Any]:
  """The source-domain data block of a two-domain method.

  `source` (the method's `method.kwargs.source`) with the target's window length and batch size
  (one source batch per target batch), then `overrides`, and the target's data_dir where the source
  names none.

  Raises:
    ValueError: no source block, naming `method` and the key to set.
  """
  if not source:
    raise ValueError(
      f'{method} needs method.kwargs.source: the source-domain data block, e.g. '
      "common.dataset('h36m', config='cpn_ft_h36m_dbb') in the config file"
    )
  src = dict(source)
  src.update(frames=target.frames, batch_size=target.batch_size, **overrides)
  src['data_dir'] = src.get('data_dir') or target.data_dir
  return src


def method_train_iterator(source_data: Callable[[Any], Mapping[str, Any]]) -> Callable:
  """A `Method.train_iterator`: config.data's training windows paired with those of
  `source_data(config)`, as {'target': batch, 'source': batch}."""

  def iterator(config, *, seed: int, process_index: int = 0, process_count: int = 1):
    return train_iterator(
      config.data,
      source_data(config),
      seed=seed,
      process_index=process_index,
      process_count=process_count,
    )

  return iterator
