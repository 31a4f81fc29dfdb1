"""Integrity records: a checksum of every array of a checkpoint, checked on every restore.

Orbax checks the structure of what it reads, not the bytes: a checkpoint whose OCDBT data file was
partly zeroed restored without error to parameters off by 2e37 (issue 19). So every save also
writes `<step>/integrity/metadata`, a JSON record of

  leaves   {'params/Dense_0/kernel': [crc32, shape, dtype], ...}: zlib CRC-32 of each leaf's bytes
           in C order, with the shape and dtype it was saved with (every leaf of the TrainState);
  data     per process, CRC-32 of its data iterator's state (canonical JSON of `get_state()`);
  meta     CRC-32 of the config JSON saved beside it (`<step>/meta/metadata`);

and `verify` recomputes them after a restore. A mismatch, a missing leaf, an unreadable record or
JSON file raises `CheckpointIntegrityError` naming the step directory and the leaf or file.
CRC-32 (zlib, in the standard library) detects every burst error up to 32 bits and any other
corruption with probability 1 - 2^-32; it is a guard against damage, not against tampering.
Checkpoints written before the record existed restore with a warning (nothing to check against).
"""

from __future__ import annotations

import json
import pathlib
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np

FORMAT = 1
RECORD_ITEM = 'integrity'  # the Orbax composite item (a JSON file: <step>/integrity/metadata)


class CheckpointIntegrityError(ValueError):
  """A checkpoint step that is unreadable or whose contents differ from its integrity record."""


def leaf_name(path: tuple[Any, ...]) -> str:
  """A key path as 'params/Dense_0/kernel' (the same for a TrainState and its restored dict)."""
  parts = []
  for k in path:
    for attr in ('key', 'name', 'idx'):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return '/'.join(parts)


def _crc(data: bytes) -> int:
  return zlib.crc32(data) & 0xFFFFFFFF


def array_crc(x: Any) -> list[Any]:
  """[CRC-32 of the bytes in C order, shape, dtype name] of one array (host or device)."""
  a = np.ascontiguousarray(np.asarray(jax.device_get(x)))
  return [_crc(a.tobytes()), list(a.shape), a.dtype.name]


def json_crc(obj: Any) -> int:
  """CRC-32 of the canonical JSON of `obj` (sorted keys, no spaces; non-JSON values by repr)."""
  text = json.dumps(obj, sort_keys=True, separators=(',', ':'), default=repr)
  return _crc(text.encode())


def leaf_crcs(tree: Any) -> dict[str, list[Any]]:
  """{leaf name: [crc32, shape, dtype]} of every array leaf of `tree`."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {leaf_name(path): array_crc(x) for path, x in flat}


def record(state: Any, config: Any = None, data_crcs: list[int] | None = None) -> dict[str, Any]:
  """The integrity record of a checkpoint of `state` (a TrainState; replicated device arrays or
  host arrays), the config dict saved beside it and each process's data iterator state CRC
  (`json_crc(it.get_state())`, in process order; every process keeps its own iterator)."""
  return {
    'format': FORMAT,
    'algorithm': 'crc32',
    'leaves': leaf_crcs(state),
    'data': data_crcs,
    'meta': None if config is None else json_crc(config),
  }


def read_record(step_dir: pathlib.Path) -> dict[str, Any] | None:
  """The record of `step_dir`, or None for a checkpoint written before records existed.

  Raises:
    CheckpointIntegrityError: the record exists but is not valid JSON of this format.
  """
  path = step_dir / RECORD_ITEM / 'metadata'
  if not path.exists():
    if (step_dir / RECORD_ITEM).exists():
      raise CheckpointIntegrityError(f'{step_dir}: integrity record {path} is missing')
    return None
  try:
    rec = json.loads(path.read_bytes())
    if rec.get('format') != FORMAT or not isinstance(rec.get('leaves'), dict):
      raise ValueError(f'format {rec.get("format")!r}, expected {FORMAT}')
  except (ValueError, AttributeError, UnicodeDecodeError) as e:
    raise CheckpointIntegrityError(f'{step_dir}: unreadable integrity record {path} ({e})') from e
  return rec


def check_json_files(step_dir: pathlib.Path) -> None:
  """Every JSON file Orbax and jaxpose write in `step_dir` parses (truncation, zeroed bytes).

  Raises:
    CheckpointIntegrityError: naming the first file that does not parse.
  """
  names = ('_CHECKPOINT_METADATA', '_METADATA', '_sharding', 'metadata', 'metrics', 'process_*')
  for pattern in names:
    for path in sorted(step_dir.rglob(pattern)):
      if path.is_file() and path.parent.name != 'd':
        try:
          json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
          raise CheckpointIntegrityError(f'{step_dir}: {path.name} is not valid JSON ({e})') from e


def verify(
  rec: Mapping[str, Any],
  tree: Any,
  step_dir: pathlib.Path,
  *,
  data_state: Any = None,
  process_index: int = 0,
  required: Iterable[str] = ('',),
) -> None:
  """Checks a restored `tree` (and data iterator state) against the record `rec`.

  Args:
    rec: `read_record(step_dir)`.
    tree: the restored TrainState, or its dict form (`load_params`).
    step_dir: the checkpoint step directory (for the messages; the meta JSON is read from it).
    data_state: the restored data iterator's `get_state()`, when one was restored.
    process_index: this process (each process checks its own iterator's state).
    required: leaf-name prefixes that must all be present in `tree` ('' = every recorded leaf).

  Raises:
    CheckpointIntegrityError: naming `step_dir` and the first leaf (or the data iterator state,
      or the meta JSON) that differs from the record, or a required leaf that is missing.
  """
  got = leaf_crcs(tree)
  want = rec['leaves']
  for name, (crc, shape, dtype) in want.items():
    if name not in got:
      if any(name.startswith(p) for p in required):
        raise CheckpointIntegrityError(f'{step_dir}: leaf {name} missing from the restored state')
      continue
    g = got[name]
    if g[1:] != [shape, dtype]:
      raise CheckpointIntegrityError(
        f'{step_dir}: leaf {name} restored as {g[2]}{g[1]}, saved as {dtype}{shape}'
      )
    if g[0] != crc:
      raise CheckpointIntegrityError(
        f'{step_dir}: leaf {name} fails its checksum (crc32 {g[0]:08x}, saved {crc:08x}): '
        'the checkpoint files are damaged'
      )
  extra = sorted(set(got) - set(want))
  if extra:
    raise CheckpointIntegrityError(f'{step_dir}: leaves {extra[:5]} are not in the record')
  crcs = rec.get('data')
  if data_state is not None and crcs is not None:
    if process_index >= len(crcs) or json_crc(data_state) != crcs[process_index]:
      raise CheckpointIntegrityError(f'{step_dir}: the data iterator state fails its checksum')
  if rec.get('meta') is not None:
    meta = step_dir / 'meta' / 'metadata'
    try:
      ok = json_crc(json.loads(meta.read_bytes())) == rec['meta']
    except (OSError, ValueError, UnicodeDecodeError):
      ok = False
    if not ok:
      raise CheckpointIntegrityError(f'{step_dir}: {meta} (the config) fails its checksum')
