"""Host-side input checks for pose arrays, shared by data, eval and CLI entry points.

Jitted code cannot raise on values, so arrays are checked once at the host boundary: every error is a
ValueError that names the argument and gives the expected and actual shape (or the bad values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry import skeleton as _skeleton


def _fmt_shape(shape: Sequence[int | None]) -> str:
  dims = ', '.join('*' if d is None else str(d) for d in shape)
  return f'({dims}{"," if len(shape) == 1 else ""})'


def validate_poses(
  name: str,
  arr: ArrayLike,
  joints: int | str | _skeleton.Skeleton | None = None,
  *,
  channels: int | Sequence[int] | None = None,
  shape: Sequence[int | None] | None = None,
  finite: bool = True,
) -> np.ndarray:
  """Checks a pose array and returns it as numpy.

  Args:
    name: argument name used in the error message, e.g. 'pred'.
    arr: (..., J, C) poses.
    joints: expected J, as an int or a layout name / Skeleton; None accepts any.
    channels: expected C (an int or allowed values); None accepts any.
    shape: expected full shape, None entries are wildcards (use it to match another array's shape).
    finite: reject NaN and infinities.

  Returns:
    np.ndarray view of `arr`.

  Raises:
    ValueError: wrong rank, joint count, channel count or shape, or non-finite values; the message
      names `name` and gives the expected and actual shape.
  """
  a = np.asarray(arr)
  if not np.issubdtype(a.dtype, np.number):
    raise ValueError(f'{name}: expected a numeric array, got dtype {a.dtype}')
  if joints is not None and not isinstance(joints, int | np.integer):
    joints = _skeleton.get(joints).num_joints
  if isinstance(channels, int | np.integer):
    channels = (int(channels),)
  c_txt = '|'.join(map(str, channels)) if channels else 'C'
  want = f'(..., {joints if joints is not None else "J"}, {c_txt})'
  if a.ndim < 2:
    raise ValueError(f'{name}: expected shape {want}, got {a.shape}')
  if joints is not None and a.shape[-2] != joints:
    raise ValueError(f'{name}: expected {joints} joints, shape {want}, got {a.shape}')
  if channels and a.shape[-1] not in channels:
    raise ValueError(f'{name}: expected {c_txt} channels, shape {want}, got {a.shape}')
  if shape is not None:
    ok = len(shape) == a.ndim and all(d is None or d == s for d, s in zip(shape, a.shape))
    if not ok:
      raise ValueError(f'{name}: expected shape {_fmt_shape(shape)}, got {a.shape}')
  if finite and np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
    bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    raise ValueError(f'{name}: {bad} non-finite values (NaN/inf) in array of shape {a.shape}')
  return a


def validate_same_shape(**arrays: ArrayLike) -> None:
  """Checks that all keyword arrays have the same shape; the error lists every name and shape."""
  shapes = {k: np.shape(v) for k, v in arrays.items()}
  if len(set(shapes.values())) > 1:
    listing = ', '.join(f'{k} {s}' for k, s in shapes.items())
    raise ValueError(f'shape mismatch, expected equal shapes: {listing}')
