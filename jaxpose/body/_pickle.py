"""Read and write the official SMPL pickles without chumpy or scipy.

The SMPL `.pkl` files are Python 2 pickles (protocol 2, read with `encoding='latin1'`) holding numpy
arrays, `chumpy.ch.Ch` objects (usually `shapedirs`, sometimes more) and a `scipy.sparse.csc_matrix`
(`J_regressor`). GraphCMR's `mesh_downsampling.npz` holds object arrays of pickled scipy sparse
matrices. Both need only plain numbers, so:

* `ShimUnpickler` maps every `chumpy.*` class to `ChumpyShim` and every `scipy.sparse.*` matrix class
  to `SparseShim`. Both keep the pickled state; `to_array` turns either into a dense numpy array
  (a `Ch`'s value is its `x` entry, chumpy's `__getstate__` being the instance `__dict__`). numpy's
  old module paths (`numpy.core.*`) are mapped to the current ones.
* `ForeignPickler` writes such files: `Foreign(module, name, state)` is pickled as an instance of
  `module.name` with that state (the `object.__reduce_ex__(2)` layout: class, empty args, NEWOBJ,
  BUILD), and numpy arrays reference `numpy.core.multiarray._reconstruct` as old numpy wrote it, so
  files written here load with chumpy + scipy + numpy 1.x as the official ones do.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np


class ChumpyShim:
  """Stand-in for any chumpy class; the pickled state is kept in `state`."""

  chumpy_class = 'chumpy.ch.Ch'

  def __setstate__(self, state: Any) -> None:
    self.state = state

  def to_array(self) -> np.ndarray:
    state = getattr(self, 'state', None)
    if isinstance(state, dict) and 'x' in state:
      return to_array(state['x'])
    keys = sorted(state) if isinstance(state, dict) else type(state).__name__
    raise ValueError(
      f'cannot evaluate a pickled {self.chumpy_class} object without chumpy: its state has no '
      f"value 'x' (state keys: {keys}); re-save the model with numpy arrays"
    )


class SparseShim:
  """Stand-in for scipy.sparse matrices (csc, csr, coo); `to_array` densifies."""

  sparse_class = 'csc_matrix'

  def __setstate__(self, state: Any) -> None:
    self.state = state

  def to_array(self) -> np.ndarray:
    s = self.state
    shape = tuple(int(n) for n in s.get('_shape', s.get('shape')))
    fmt = self.sparse_class[:3]
    data = np.asarray(s['data'])
    out = np.zeros(shape, dtype=data.dtype)
    if fmt in ('csc', 'csr'):
      indptr, indices = np.asarray(s['indptr']), np.asarray(s['indices'])
      major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
      rows, cols = (indices, major) if fmt == 'csc' else (major, indices)
    elif fmt == 'coo':
      rows = np.asarray(s['row'] if 'row' in s else s['coords'][0])
      cols = np.asarray(s['col'] if 'col' in s else s['coords'][1])
    else:
      raise ValueError(f'unsupported pickled scipy.sparse class {self.sparse_class!r}')
    np.add.at(out, (rows, cols), data)  # duplicates add up, as scipy's todense does
    return out


def to_array(obj: Any) -> np.ndarray:
  """numpy array from a numpy array, a shim object, or a nested list."""
  if isinstance(obj, ChumpyShim | SparseShim):
    return obj.to_array()
  return np.asarray(obj)


_SPARSE_CLASSES = ('csc_matrix', 'csr_matrix', 'coo_matrix', 'csc_array', 'csr_array', 'coo_array')


class ShimUnpickler(pickle.Unpickler):
  """Unpickler that needs neither chumpy nor scipy (see module docstring)."""

  def find_class(self, module: str, name: str) -> Any:
    if module == 'chumpy' or module.startswith('chumpy.'):
      return type(name, (ChumpyShim,), {'chumpy_class': f'{module}.{name}'})
    if module.startswith('scipy.sparse'):
      if name not in _SPARSE_CLASSES:
        raise pickle.UnpicklingError(f'unsupported pickled scipy.sparse class {module}.{name}')
      return type(name, (SparseShim,), {'sparse_class': name})
    if module == 'numpy.core' or module.startswith('numpy.core.'):
      module = 'numpy._core' + module[len('numpy.core') :]
    return super().find_class(module, name)


def load_pickle(fp) -> Any:
  """Loads a (possibly Python 2) pickle from a binary file object with the shims."""
  return ShimUnpickler(fp, encoding='latin1').load()


class Foreign:
  """An object to pickle as an instance of `module.name` with `state` (see `ForeignPickler`)."""

  def __init__(self, module: str, name: str, state: dict):
    self.module, self.name, self.state = module, name, state


def chumpy_ch(x: np.ndarray) -> Foreign:
  """A `chumpy.ch.Ch` wrapping `x`, with the attributes a freshly built Ch pickles."""
  state = {
    '_dirty_vars': set(),
    '_itr': None,
    '_depends_on_deps': {},
    '_make_dense': False,
    '_make_sparse': False,
    'x': np.asarray(x, np.float64),
  }
  return Foreign('chumpy.ch', 'Ch', state)


def scipy_csc(dense: np.ndarray) -> Foreign:
  """A `scipy.sparse.csc_matrix` (old module path `scipy.sparse.csc`) holding `dense`'s nonzeros."""
  dense = np.asarray(dense)
  rows, cols = np.nonzero(dense.T)  # column-major order: (col, row) pairs sorted by column
  cols, rows = rows, cols
  indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=dense.shape[1]))])
  state = {
    '_shape': tuple(int(n) for n in dense.shape),
    'maxprint': 50,
    'indptr': indptr.astype(np.int32),
    'indices': rows.astype(np.int32),
    'data': dense[rows, cols],
  }
  return Foreign('scipy.sparse.csc', 'csc_matrix', state)


class ForeignPickler(pickle._Pickler):  # the pure-Python pickler lets us emit GLOBAL opcodes
  """Protocol-2 pickler for `Foreign` objects and numpy arrays with old-numpy module paths."""

  dispatch = dict(pickle._Pickler.dispatch)

  def _global(self, module: str, name: str) -> None:
    self.write(pickle.GLOBAL + f'{module}\n{name}\n'.encode('ascii'))

  def save_foreign(self, obj: Foreign) -> None:
    self._global(obj.module, obj.name)
    self.save(())
    self.write(pickle.NEWOBJ)
    self.memoize(obj)
    self.save(obj.state)
    self.write(pickle.BUILD)

  def save_ndarray(self, obj: np.ndarray) -> None:
    func, args, state = obj.__reduce__()
    if func.__name__ != '_reconstruct':  # pragma: no cover - numpy keeps this layout since 1.0
      raise pickle.PicklingError(f'unexpected numpy reduce function {func!r}')
    self._global('numpy.core.multiarray', '_reconstruct')
    self.save(args)
    self.write(pickle.REDUCE)
    self.memoize(obj)
    self.save(state)
    self.write(pickle.BUILD)

  dispatch[Foreign] = save_foreign
  dispatch[np.ndarray] = save_ndarray


def dumps(obj: Any) -> bytes:
  """Pickles `obj` (dicts, lists, numpy arrays, `Foreign`) with protocol 2."""
  buf = io.BytesIO()
  ForeignPickler(buf, protocol=2).dump(obj)
  return buf.getvalue()
