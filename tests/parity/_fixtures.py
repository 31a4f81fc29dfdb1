"""Helpers for parity tests: discover fixture files of a family and read them.

The parity directory defaults to ../shared/fixtures/parity and is overridden by the environment
variable JAXPOSE_PARITY_DIR. Tests parametrise over every `<family>__*.npz` found there and skip
cleanly when the directory is absent. Every such test carries the `parity` mark; the end of a pytest
run prints one line with the directory and how many parity tests ran (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np
import pytest

_REPO = pathlib.Path(__file__).resolve().parents[2]


def parity_dir() -> pathlib.Path:
  default = _REPO.parent / 'shared' / 'fixtures' / 'parity'
  return pathlib.Path(os.environ.get('JAXPOSE_PARITY_DIR', default))


def fixture_files(family: str, case_glob: str = '*') -> list:
  """pytest params, one per fixture file of `family`; a single skip param when none exist."""
  files = sorted(parity_dir().glob(f'{family}__{case_glob}.npz'))
  if not files:
    skip = pytest.mark.skip(reason=f'no {family} fixtures in {parity_dir()}')
    return [pytest.param(None, marks=[pytest.mark.parity, skip])]
  return [pytest.param(f, id=f.stem, marks=pytest.mark.parity) for f in files]


class Fixture:
  """A loaded parity fixture: `.meta` (dict), `.params` (torch state_dict as numpy), `[key]`."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    with np.load(path, allow_pickle=False) as z:
      self.arrays = {k: z[k] for k in z.files}
    self.meta = json.loads(str(self.arrays.pop('meta')))
    self.params = {k[len('param/') :]: v for k, v in self.arrays.items() if k.startswith('param/')}

  def __getitem__(self, key: str) -> np.ndarray:
    return self.arrays[key]

  def __contains__(self, key: str) -> bool:
    return key in self.arrays

  def keys(self):
    return self.arrays.keys()

  def setting(self, key: str, pattern: str | None = None, cast=int):
    """A setting of the run that made the fixture: `meta[key]` when recorded, else the first group
    of the regex `pattern` searched in `meta['notes']` (the image-half fixtures record sizes such
    as the iteration count or the patch size only there), converted with `cast`.

    Raises:
      KeyError: naming the fixture, the key and the pattern, when neither gives a value.
    """
    if key in self.meta:
      return cast(self.meta[key])
    found = re.search(pattern, self.meta.get('notes', '')) if pattern else None
    if found is None:
      raise KeyError(
        f'{self.path}: meta has no {key!r}'
        + (f' and meta["notes"] does not match {pattern!r}' if pattern else '')
      )
    return cast(found.group(1))

  def call_kwargs(self, callee: str) -> dict:
    """Keyword arguments of the constructor call `callee(k=v, ...)` written in `meta['notes']`
    (numbers only), e.g. the pose stream's `GraphormerNet(num_frames=16, ..., num_heads=8, ...)`;
    an empty dict when the notes hold no such call."""
    found = re.search(re.escape(callee) + r'\(([^)]*)\)', self.meta.get('notes', ''))
    if found is None:
      return {}
    out = {}
    for item in found.group(1).split(','):
      name, sep, value = (part.strip() for part in item.partition('='))
      if not sep:
        raise ValueError(f'{self.path}: cannot read {item!r} of {callee}(...) in meta["notes"]')
      out[name] = float(value) if any(c in value for c in '.e') else int(value)
    return out


def assert_parity(actual, expected, *, atol: float = 1e-4, rtol_l2: float = 1e-5, name: str = ''):
  """DESIGN.md parity contract: max abs error <= atol and relative L2 error <= rtol_l2."""
  a = np.asarray(actual, np.float64)
  e = np.asarray(expected, np.float64)
  assert a.shape == e.shape, f'{name}: shape {a.shape} != expected {e.shape}'
  max_abs = float(np.max(np.abs(a - e))) if a.size else 0.0
  rel = float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-12))
  assert max_abs <= atol and rel <= rtol_l2, (
    f'{name}: max abs err {max_abs:.3e} (tol {atol}), rel L2 err {rel:.3e} (tol {rtol_l2})'
  )
  return max_abs, rel
