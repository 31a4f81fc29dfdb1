"""Sequence records from a built TFDS dataset, read with `tfds.data_source` (no TensorFlow).

`SequenceStore` wraps one split. It opens the array_record files lazily, decodes a sequence on
request and can keep it (keypoint datasets are small: all of H36M is about 0.5 GB decoded), and
pickles without its reader or cache, so grain workers reopen the files themselves. Text features
come back as `str`. Stores are shared per process through `get_store`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from jaxpose.data import build

# Per-sequence fields kept in the index (everything but the per-frame arrays).
META_KEYS = ('subject', 'action', 'camera', 'source', 'num_frames', 'res_w', 'res_h', 'fps')


def _decode(ex: dict[str, Any]) -> dict[str, Any]:
  out = {}
  for k, v in ex.items():
    if isinstance(v, bytes):
      v = v.decode('utf-8')
    elif isinstance(v, np.ndarray) and v.dtype.kind in 'SO' and v.ndim == 0:
      v = v.item().decode('utf-8') if isinstance(v.item(), bytes) else v.item()
    out[k] = v
  return out


def open_source(name: str, config: str | None, split: str, data_dir: str | None):
  """`tfds.data_source(name/config, split, download=False)`.

  Raises:
    NotBuiltError: the dataset is not built in data_dir (message has the build command).
    ValueError: unknown split (message lists the splits).
  """
  import tensorflow_datasets as tfds

  ref = build.dataset_ref(name, config)
  data_dir = build.resolve_data_dir(data_dir)
  if not build.is_built(name, config, data_dir):
    raise build.NotBuiltError(
      f'dataset {ref} is not built in {data_dir}; build it with:\n  '
      f'{build.build_command(name, config, data_dir)}'
    )
  splits = build.get_builder(name, config, data_dir).info.splits
  if split not in splits:
    raise ValueError(f'dataset {ref} has no split {split!r}; splits: {", ".join(splits)}')
  return tfds.data_source(ref, split=split, data_dir=data_dir, download=False)


class SequenceStore:
  """Random access to the decoded sequences of one split, cached per process.

  Attributes:
    name, config, split, data_dir: what the store reads.
    meta: list of per-sequence dicts (META_KEYS plus seq_id), index = seq_id.
    metadata: the dataset's `info.metadata` (layout_2d, layout_3d, fps, pose3d_units, notes).
  """

  def __init__(self, name: str, config: str | None, split: str, data_dir: str | None):
    self.name, self.config, self.split = name, config or '', split
    self.data_dir = build.resolve_data_dir(data_dir)
    self._src = open_source(name, config, split, self.data_dir)
    self._cache: dict[int, dict[str, Any]] = {}
    self._lock = threading.Lock()
    info = build.get_builder(name, config, self.data_dir).info
    self.metadata = dict(info.metadata or {})
    self.meta = []
    for i in range(len(self._src)):  # reads every sequence once: the index needs their lengths
      ex = self.read(i, cache=False)
      self.meta.append({'seq_id': i, **{k: ex[k] for k in META_KEYS}})

  def __len__(self) -> int:
    return len(self.meta)

  @property
  def lengths(self) -> np.ndarray:
    """(S,) int64 frames per sequence, indexed by seq_id."""
    return np.array([m['num_frames'] for m in self.meta], np.int64)

  def __getitem__(self, seq_id: int) -> dict[str, Any]:
    return self.read(seq_id)

  def read(self, seq_id: int, cache: bool = True) -> dict[str, Any]:
    """The decoded record of a sequence; kept for later reads if `cache` (the input pipeline
    keeps its own prepared copy instead, so it reads with cache=False).

    Returns:
      The builder's features of one sequence of L frames: kp2d_px (L, J2, 2) pixels, kp2d_conf
      (L, J2), pose3d_cam (L, J3, 3) camera frame (unit: `metadata['pose3d_units']`, metres
      unless noted), cam_intrinsics (9,) pixels, res_w/res_h pixels, subject, action, camera,
      source (str), num_frames L, fps (Hz), and any extra features of the dataset.
    """
    seq_id = int(seq_id)
    ex = self._cache.get(seq_id)
    if ex is None:
      if self._src is None:
        with self._lock:
          if self._src is None:
            self._src = open_source(self.name, self.config, self.split, self.data_dir)
      ex = _decode(self._src[seq_id])
      if cache:
        self._cache[seq_id] = ex
    return ex

  def __getstate__(self) -> dict[str, Any]:
    state = self.__dict__.copy()
    state.update(_src=None, _cache={}, _lock=None)
    return state

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._lock = threading.Lock()


_STORES: dict[tuple[str, str, str, str], SequenceStore] = {}


def get_store(name: str, config: str | None, split: str, data_dir: str | None) -> SequenceStore:
  """The process-wide store of name/config/split (created on first use)."""
  key = (name, config or '', split, build.resolve_data_dir(data_dir))
  if key not in _STORES:
    _STORES[key] = SequenceStore(name, config, split, data_dir)
  return _STORES[key]


def clear_stores() -> None:
  """Drops the cached stores (tests; after rebuilding a dataset)."""
  _STORES.clear()
