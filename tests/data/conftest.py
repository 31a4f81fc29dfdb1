"""Small built datasets for the pipeline tests (synthetic files in the official formats)."""

import pathlib

import pytest
import tensorflow_datasets as tfds

from jaxpose.data import build, synthetic


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory) -> pathlib.Path:
  """h36m/gt, h36m/sh and mpi_inf_3dhp built from synthetic files."""
  tfds.disable_progress_bar()
  manual = tmp_path_factory.mktemp('manual')
  synthetic.write_h36m_vp3d(manual, sources=('gt',), num_frames=40)
  synthetic.write_h36m_sh(manual)
  synthetic.write_mpi_inf_3dhp(manual, num_frames=30)
  out = tmp_path_factory.mktemp('tfds')
  build.build('h36m', 'gt', manual, out)
  build.build('h36m', 'sh', manual, out)
  build.build('mpi_inf_3dhp', None, manual, out)
  return out


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
