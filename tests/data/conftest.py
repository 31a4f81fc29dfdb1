"""The pipeline tests' data block over the synthetic h36m/gt build (`data_dir`, tests/conftest.py)."""

import pytest


@pytest.fixture
def cfg(data_dir):
  """A data block (plain dict) over the synthetic h36m/gt build."""
  return dict(
    name='h36m',
    config='gt',
    data_dir=str(data_dir),
    frames=9,
    stride=4,
    mode='seq2seq',
    use_conf=True,
    flip_aug=True,
    batch_size=8,
    eval_batch_size=8,
    num_workers=0,
    skeleton='h36m17',
    num_joints=17,
  )
