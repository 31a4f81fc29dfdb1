"""PoseDA GPA parity with the README's released `gpa` (poseda__gpa*.npz), incl. the order trap."""

import numpy as np
import pytest

from jaxpose.methods import poseda
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


@pytest.mark.parametrize('path', fixture_files('poseda', 'gpa*'))
def test_gpa(path):
  fx = Fixture(path)
  assert '[fx, fy, cx, cy]' in fx.meta['camera_params_order']
  src, tgt = fx['input/source_3d'], fx['input/target_2d']
  cam, perm = fx['input/camera_params'], fx['input/perm']
  assert_parity(poseda.gpa(src, tgt, cam, perm=perm), fx['output'], name='gpa')
  _, z, uv = poseda.gpa_root(src, tgt, cam, perm=perm)
  assert_parity(z, fx['output/z'], name='z')
  assert_parity(uv, fx['output/uv'], name='uv')


@pytest.mark.parametrize('path', fixture_files('poseda', 'gpa*'))
def test_docstring_order_does_not_match(path):
  """The README docstring's 'cx, cy, fx, fy' order is not what the code reads."""
  fx = Fixture(path)
  src, tgt = fx['input/source_3d'], fx['input/target_2d']
  cam, perm = fx['input/camera_params'], fx['input/perm']
  docstring_cam = cam[:, [2, 3, 0, 1]]  # the same camera written in the docstring's order
  wrong = np.asarray(poseda.gpa(src, tgt, docstring_cam, perm=perm))
  assert np.abs(wrong - fx['output']).max() > 0.1
  # ... and what that order gives is what the released code gave for it (depths collapse).
  assert_parity(wrong, fx['output/docstring_order'], name='docstring order')
  _, z_wrong, _ = poseda.gpa_root(src, tgt, docstring_cam, perm=perm)
  assert np.abs(z_wrong).max() < 0.1 < np.abs(fx['output/z']).min()
