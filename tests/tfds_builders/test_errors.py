"""Bad input fails loudly (file, key, expected and actual) and never leaves a readable dataset."""

import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxpose.cli import data as cli
from jaxpose.data import build, io, sources, synthetic
from tfds_builders import _common

# (dataset, config, writer kwargs): one malformed copy of each format per defect.
FORMATS = {
  'h36m': ('h36m', 'gt', synthetic.write_h36m_vp3d, {'sources': ('gt',)}),
  'h36m_sh': ('h36m', 'sh', synthetic.write_h36m_sh, {}),
  'mpi_inf_3dhp': ('mpi_inf_3dhp', None, synthetic.write_mpi_inf_3dhp, {}),
  'mpi_inf_3dhp_ori': ('mpi_inf_3dhp', 'annot3', synthetic.write_mpi_inf_3dhp, {'ori': True}),
  'humaneva': ('humaneva', 'gt', synthetic.write_humaneva, {'sources': ('gt',)}),
  'pw3d': ('pw3d', None, synthetic.write_3dpw, {}),
}
# What the message must name for each defect (besides the file).
EXPECT = {
  'npz_key': r'key|expected',
  'structure': r'expected (a list|a dict|\[)',
  'joints': r'shape \(\*, \d+, [23]\)|shape \(\d+, 72\)|expected .*(17|15|24|72)',
  'nan': r'NaN/inf',
}


@pytest.mark.parametrize('defect', synthetic.DEFECTS)
@pytest.mark.parametrize('fmt', sorted(FORMATS))
def test_malformed_file_errors_name_file_and_key(tmp_path, fmt, defect):
  name, config, writer, kw = FORMATS[fmt]
  writer(tmp_path / 'manual', defect=defect, **kw)
  data_dir = tmp_path / 'data'
  with pytest.raises(io.DataFormatError) as err:
    build.build(name, config, tmp_path / 'manual', data_dir)
  msg = str(err.value)
  assert re.search(r'\.(npz|pkl)', msg), msg
  assert re.search(EXPECT[defect], msg), msg
  assert 'expected' in msg and 'got' in msg
  assert not build.is_built(name, config, data_dir)
  with pytest.raises(build.NotBuiltError, match='jaxpose data build'):
    sources.open_source(name, config, 'train', data_dir)


def test_missing_manual_dir_and_file(tmp_path):
  with pytest.raises(io.ManualDirError, match='needs --manual_dir'):
    build.build('h36m', 'gt', None, tmp_path / 'data')
  with pytest.raises(io.ManualDirError, match='does not exist'):
    build.build('h36m', 'gt', tmp_path / 'nope', tmp_path / 'data')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(io.ManualDirError, match='(?s)is empty.*data_3d_h36m.npz'):
    build.build('h36m', 'gt', tmp_path / 'empty', tmp_path / 'data')
  synthetic.write_h36m_vp3d(tmp_path / 'm', sources=('gt',))
  with pytest.raises(io.ManualDirError, match=r'missing file .*data_2d_h36m_cpn_ft_h36m_dbb\.npz'):
    build.build('h36m', 'cpn_ft_h36m_dbb', tmp_path / 'm', tmp_path / 'data')
  assert (
    cli.main(
      [
        'data',
        'build',
        'h36m',
        '--manual_dir',
        str(tmp_path / 'nope'),
        '--data_dir',
        str(tmp_path / 'data'),
      ]
    )
    == 1
  )


def test_mpi_inf_3dhp_missing_file_names_the_config_file(tmp_path):
  """Each config asks for its own files: P-STMO's do not satisfy annot3, and vice versa."""
  synthetic.write_mpi_inf_3dhp(tmp_path / 'm')
  with pytest.raises(io.ManualDirError, match=r'missing file \S*data_train_3dhp_ori\.npz \('):
    build.build('mpi_inf_3dhp', 'annot3', tmp_path / 'm', tmp_path / 'data')
  (tmp_path / 'm' / 'data_test_3dhp.npz').unlink()
  synthetic.write_mpi_inf_3dhp(tmp_path / 'm', ori=True)
  (tmp_path / 'm' / 'data_test_3dhp_ori.npz').unlink()
  with pytest.raises(io.ManualDirError, match=r'missing file \S*data_test_3dhp_ori\.npz \('):
    build.build('mpi_inf_3dhp', 'annot3', tmp_path / 'm', tmp_path / 'data')
  with pytest.raises(io.ManualDirError, match=r'missing file \S*data_test_3dhp\.npz \('):
    build.build('mpi_inf_3dhp', 'gt', tmp_path / 'm', tmp_path / 'data')
  assert not build.is_built('mpi_inf_3dhp', 'annot3', tmp_path / 'data')


def test_wrong_type_in_npz(tmp_path):
  np.savez(tmp_path / 'data_3d_h36m.npz', positions_3d=np.zeros(3))
  with pytest.raises(io.DataFormatError, match=r'positions_3d.*0-d object array.*shape=\(3,\)'):
    io.load_npz_dict(tmp_path / 'data_3d_h36m.npz', 'positions_3d')


def test_failure_while_writing_leaves_no_dataset(tmp_path, monkeypatch):
  """A crash after some records were written: TFDS' incomplete dir is removed, nothing readable."""
  synthetic.write_h36m_vp3d(tmp_path / 'm', sources=('gt',))

  def crashing(self, examples):
    yield next(iter(examples))
    raise RuntimeError('disk full')

  monkeypatch.setattr(_common.SequenceBuilder, '_generate_examples', crashing)
  with pytest.raises(RuntimeError, match='disk full'):
    build.build('h36m', 'gt', tmp_path / 'm', tmp_path / 'data')
  leftovers = [p for p in (tmp_path / 'data').rglob('*') if 'incomplete' in p.name]
  assert not leftovers
  assert not build.is_built('h36m', 'gt', tmp_path / 'data')
  with pytest.raises(Exception, match='not built|not been generated|empty'):
    tfds.data_source('h36m/gt', split='train', data_dir=str(tmp_path / 'data'), download=False)


def test_not_built_error_has_the_command(tmp_path):
  with pytest.raises(build.NotBuiltError) as err:
    build.ensure_built('h36m', tmp_path / 'data', config='gt')
  assert 'jaxpose data build h36m --config gt --manual_dir' in str(err.value)
  assert str(tmp_path / 'data') in str(err.value)


def test_cli_build_and_list(tmp_path, capsys):
  synthetic.write_mpi_inf_3dhp(tmp_path / 'm')
  argv = [
    'data',
    'build',
    'mpi_inf_3dhp',
    '--manual_dir',
    str(tmp_path / 'm'),
    '--data_dir',
    str(tmp_path / 'data'),
  ]
  assert cli.main(argv) == 0
  assert build.is_built('mpi_inf_3dhp', None, tmp_path / 'data')
  assert cli.main(['data', 'list', '--data_dir', str(tmp_path / 'data')]) == 0
  assert re.search(r'mpi_inf_3dhp/gt\s+built', capsys.readouterr().out)
