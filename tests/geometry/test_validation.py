"""Host-side pose validation messages name the argument and the expected and actual shapes."""

import numpy as np
import pytest

from jaxpose.geometry.validation import validate_poses, validate_same_shape


def test_accepts_and_returns_numpy():
  a = validate_poses('pred', np.zeros((2, 17, 3)), 'h36m17', channels=3)
  assert isinstance(a, np.ndarray)


@pytest.mark.parametrize(
  'arr, kwargs, pattern',
  [
    (
      np.zeros((2, 16, 3)),
      {'joints': 17},
      r'pred: expected 17 joints.*\(\.\.\., 17, C\).*\(2, 16, 3\)',
    ),
    (np.zeros((2, 17, 4)), {'channels': (2, 3)}, r'pred: expected 2\|3 channels.*\(2, 17, 4\)'),
    (np.zeros(17), {}, r'pred: expected shape .*got \(17,\)'),
    (
      np.zeros((2, 17, 3)),
      {'shape': (3, None, 3)},
      r'pred: expected shape \(3, \*, 3\), got \(2, 17, 3\)',
    ),
    (np.array([[[np.nan, 0, 0]]]), {}, 'pred: 1 non-finite'),
    (np.array([['a', 'b']]), {}, 'pred: expected a numeric array'),
    (np.zeros((2, 15, 3)), {'joints': 'mpi3dhp17'}, 'expected 17 joints'),
  ],
)
def test_rejects(arr, kwargs, pattern):
  with pytest.raises(ValueError, match=pattern):
    validate_poses('pred', arr, **kwargs)


def test_unknown_layout_and_same_shape():
  with pytest.raises(ValueError, match='unknown skeleton'):
    validate_poses('pred', np.zeros((1, 17, 3)), 'nope')
  with pytest.raises(ValueError, match=r'pred \(2, 17, 3\), gt \(2, 16, 3\)'):
    validate_same_shape(pred=np.zeros((2, 17, 3)), gt=np.zeros((2, 16, 3)))
  validate_same_shape(pred=np.zeros((2, 17, 3)), gt=np.ones((2, 17, 3)))
