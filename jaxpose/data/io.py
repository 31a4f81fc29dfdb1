"""Host-side readers for the official benchmark files, with errors that say what is wrong where.

Every reader raises `DataFormatError` (a ValueError) naming the file, the key path inside it, what was
expected and what was found, so a user with a slightly different copy of a file knows exactly which
entry to look at. These files are pickles (VideoPose3D `.npz` files hold a pickled dict in a 0-d
object array; MotionBERT and 3DPW ship plain pickles): loading them runs the unpickler on
user-supplied data, so only build datasets from files you trust.
"""

from __future__ import annotations

import pathlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class DataFormatError(ValueError):
  """A benchmark file does not have the documented structure.

  Attributes:
    file: path of the offending file.
    key: key path inside the file, e.g. "positions_2d['S1']['Walking'][2]".
    expected: what the format requires.
    actual: what was found.
  """

  def __init__(self, file: str | pathlib.Path, key: str, expected: str, actual: str):
    self.file, self.key, self.expected, self.actual = str(file), key, expected, actual
    where = f'{self.file}: {key}' if key else self.file
    super().__init__(f'{where}: expected {expected}, got {actual}')


class ManualDirError(FileNotFoundError):
  """The manual download directory or a file inside it is missing."""


def type_name(x: Any) -> str:
  """Short description of a value for error messages."""
  if isinstance(x, np.ndarray):
    return f'ndarray dtype={x.dtype} shape={x.shape}'
  if isinstance(x, Mapping):
    keys = list(x)[:8]
    return f'{type(x).__name__} with keys {keys}{" ..." if len(x) > 8 else ""}'
  if isinstance(x, list | tuple):
    return f'{type(x).__name__} of length {len(x)}'
  return type(x).__name__


def require_file(
  manual_dir: str | pathlib.Path | None, relpath: str, instructions: str = ''
) -> pathlib.Path:
  """Returns manual_dir/relpath, or raises ManualDirError naming the missing path.

  Args:
    manual_dir: directory the user placed the official files in.
    relpath: file (or folder) name expected inside it.
    instructions: the builder's MANUAL_DOWNLOAD_INSTRUCTIONS, appended to the message.
  """
  tail = f'\n{instructions.strip()}' if instructions else ''
  if manual_dir is None or not str(manual_dir):
    raise ManualDirError(f'no manual_dir given; {relpath} must be placed in one.{tail}')
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise ManualDirError(f'manual_dir {root} does not exist (needed for {relpath}).{tail}')
  path = root / relpath
  if not path.exists():
    present = sorted(p.name for p in root.iterdir())[:20]
    raise ManualDirError(
      f'missing file {path} (manual_dir {root} holds {present or "nothing"}).{tail}'
    )
  return path


def load_npz_dict(path: str | pathlib.Path, key: str) -> dict[str, Any]:
  """Loads `np.load(path, allow_pickle=True)[key].item()`, the VideoPose3D npz convention.

  Raises:
    DataFormatError: not an npz, key missing, or the key does not hold a pickled dict.
  """
  path = pathlib.Path(path)
  try:
    npz = np.load(path, allow_pickle=True)
  except Exception as e:  # np.load raises several types for garbage input
    raise DataFormatError(path, '', 'an .npz archive', f'unreadable file ({e})') from e
  if not hasattr(npz, 'files'):
    raise DataFormatError(path, '', 'an .npz archive', type_name(npz))
  with npz:
    if key not in npz.files:
      raise DataFormatError(path, f'npz key {key!r}', f'key {key!r}', f'keys {npz.files}')
    arr = npz[key]
  if arr.dtype != object or arr.ndim != 0:
    raise DataFormatError(
      path, f'npz key {key!r}', 'a 0-d object array holding a dict', type_name(arr)
    )
  value = arr.item()
  if not isinstance(value, Mapping):
    raise DataFormatError(path, f'npz key {key!r}', 'a pickled dict', type_name(value))
  return dict(value)


def load_pickle(path: str | pathlib.Path) -> Any:
  """Unpickles a file (latin1 so Python 2 pickles such as 3DPW's load)."""
  path = pathlib.Path(path)
  try:
    with path.open('rb') as f:
      return pickle.load(f, encoding='latin1')
  except Exception as e:
    raise DataFormatError(path, '', 'a pickle file', f'unreadable file ({e})') from e


def get_key(mapping: Any, key: Any, file: str | pathlib.Path, where: str) -> Any:
  """mapping[key] with an error naming the file and key path when absent.

  Args:
    mapping: the container read so far.
    key: key to fetch.
    file: file the container came from.
    where: key path of `mapping` inside the file (e.g. "positions_3d['S1']").
  """
  path = f'{where}[{key!r}]'
  if not isinstance(mapping, Mapping):
    raise DataFormatError(file, where, f'a dict containing {key!r}', type_name(mapping))
  if key not in mapping:
    keys = sorted(map(str, mapping))[:12]
    raise DataFormatError(file, path, f'key {key!r} to be present', f'keys {keys}')
  return mapping[key]


def as_array(
  x: Any,
  file: str | pathlib.Path,
  key: str,
  shape: Sequence[int | None],
  *,
  dtype: type = np.float32,
  finite: bool = True,
) -> np.ndarray:
  """Checks rank, shape and numeric type of an entry and returns it cast to `dtype`.

  Args:
    x: the entry.
    file: file it came from.
    key: its key path inside the file.
    shape: expected shape; None entries accept any size.
    dtype: dtype of the returned array.
    finite: reject NaN and infinities (their first index is reported).

  Raises:
    DataFormatError: not an array, wrong rank or shape, non-numeric, or non-finite.
  """
  want = '(' + ', '.join('*' if d is None else str(d) for d in shape) + ')'
  try:
    a = np.asarray(x)
  except Exception as e:
    raise DataFormatError(file, key, f'a numeric array of shape {want}', type_name(x)) from e
  if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
    raise DataFormatError(file, key, f'a numeric array of shape {want}', type_name(x))
  if a.ndim != len(shape) or any(d is not None and d != s for d, s in zip(shape, a.shape)):
    raise DataFormatError(file, key, f'shape {want}', f'shape {a.shape} (dtype {a.dtype})')
  a = a.astype(dtype, copy=False)
  if finite and np.issubdtype(a.dtype, np.floating):
    bad = ~np.isfinite(a)
    if bad.any():
      first = tuple(int(i) for i in np.argwhere(bad)[0])
      raise DataFormatError(
        file, key, 'finite values', f'{int(bad.sum())} NaN/inf values, the first at index {first}'
      )
  return a
