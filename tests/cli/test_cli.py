"""The command lines help (issue 19, item 6): --help of train/eval/sweep lists the config keys,
a misspelt key gives one clean line in both `--config FILE` spellings, model/method kwargs are
accepted when the constructor (the method's declared settings) takes them and refused with the
valid names otherwise, `data build <name> --help` lists the files, a bad workdir is one line."""

import dataclasses

import pytest

from jaxpose import cli, models
from jaxpose.cli import train as train_cli
from jaxpose.data import build
from jaxpose.methods import _kwargs

VP3D = 'configs/videopose3d.py:xs,smoke'


def _exit(argv):
  """(exit code, message) of a parse that must stop."""
  with pytest.raises(SystemExit) as e:
    train_cli.parse(argv)
  code = e.value.code
  return (code, '') if isinstance(code, int | None) else (1, str(code))


@pytest.mark.parametrize('cmd', ['train', 'eval', 'sweep'])
def test_help_prints_usage_and_the_config_keys(cmd, capsys):
  for argv in ([cmd, '--help'], [cmd, '--config', VP3D, '--help']):
    try:
      rc = cli.main(argv)
    except SystemExit as e:
      rc = e.code
    out = capsys.readouterr().out
    assert rc in (0, None), out
    assert '--workdir' in out and '--config' in out
    assert '--config.optim.lr=' in out and '--config.model.kwargs.<name>' in out
  assert "--config.model.name='videopose3d'" in out  # the given config's own values


@pytest.mark.parametrize('form', ['space', 'equals'])
def test_misspelt_key_is_one_clean_line(form):
  cfg = ['--config', VP3D] if form == 'space' else [f'--config={VP3D}']
  code, msg = _exit(['train', *cfg, '--config.optim.lrr=1e-3'])
  assert code == 1 and '\n' not in msg and '\\' not in msg, msg
  assert msg == (
    "jaxpose train: unknown config key 'optim.lrr' (did you mean 'optim.lr'?); valid keys of "
    'optim: b1, b2, eps, grad_clip, lr, name, weight_decay'
  )
  _, msg = _exit(['train', *cfg, '--config.trian.total_steps=3'])
  assert "(did you mean 'train.total_steps'?)" in msg and 'valid keys of the config:' in msg


def test_model_kwargs_take_every_constructor_argument():
  fields = {f.name for f in dataclasses.fields(models.get_module('videopose3d').Model)} - {
    'parent',
    'name',
  }
  assert {'dropout', 'causal', 'channels'} <= fields
  c = train_cli.parse(
    [
      'train',
      '--config',
      VP3D,
      '--config.model.kwargs.dropout=0.3',
      '--config.model.kwargs.causal',
      'true',
      '--config.model.kwargs.channels=48',
    ]
  )
  assert dict(c.model.kwargs) == {'channels': 48, 'dropout': 0.3, 'causal': True}
  models.build_from_config(c)  # the constructor takes them
  _, msg = _exit(['train', '--config', VP3D, '--config.model.kwargs.bogus=1'])
  assert "model 'videopose3d' takes no argument 'bogus'; valid: " in msg
  assert msg.endswith(', '.join(sorted(fields)))
  _, msg = _exit(['train', '--config', VP3D, '--config.model.kwargs.dropout=lots'])
  assert msg.endswith("--config.model.kwargs.dropout: expected float, got 'lots'")


def test_method_kwargs_take_the_declared_settings():
  declared = _kwargs.declared('d3dp')
  assert declared and 'num_steps' in declared
  c = train_cli.parse(['train', '--config=configs/d3dp.py:smoke', '--config.method.kwargs.eta=0.5'])
  assert c.method.kwargs.eta == 0.5
  _, msg = _exit(['train', '--config=configs/d3dp.py:smoke', '--config.method.kwargs.bogus=1'])
  assert msg.endswith(
    f"method 'd3dp' takes no argument 'bogus'; valid: {', '.join(sorted(declared))}"
  )
  _, msg = _exit(['train', '--config', VP3D, '--config.method.kwargs.num_steps=3'])
  assert msg.endswith("method 'supervised' takes no argument 'num_steps'; valid: none")


def test_sweep_forwards_model_kwargs_and_explains_bad_keys(capsys):
  assert (
    cli.main(
      [
        'sweep',
        '--config',
        VP3D,
        '--workdir',
        '/tmp/s',
        '--print_only',
        '--config.model.kwargs.dropout=0.2',
      ]
    )
    == 0
  )
  lines = capsys.readouterr().out.splitlines()
  assert lines and all('--config.model.kwargs.dropout=0.2' in line for line in lines)
  with pytest.raises(
    SystemExit,
    match=r"jaxpose sweep: unknown config key 'optim\.lrr' \(did you mean 'optim\.lr'\?\)",
  ):
    cli.main(['sweep', '--config', VP3D, '--workdir', '/tmp/s', '--config.optim.lrr=1'])


@pytest.mark.parametrize('name', build.names())
def test_data_build_name_help_lists_the_files(name, capsys):
  assert cli.main(['data', 'build', name, '--help']) == 0
  out = capsys.readouterr().out
  assert f'dataset {name}' in out and 'output: <data_dir>/' in out
  cls = build.builder_class(name)
  for cfg in build.config_names(name):
    assert f'  {cfg} ' in out
  if cls.NEEDS_MANUAL_DIR:
    first = next(
      line.strip() for line in cls.MANUAL_DOWNLOAD_INSTRUCTIONS.splitlines() if line.strip()
    )
    assert 'files (--manual_dir):' in out and first in out
  else:
    assert 'files: none' in out


def test_eval_of_a_missing_workdir_is_one_line(tmp_path, capsys):
  rc = cli.main(['eval', '--config', VP3D, f'--workdir={tmp_path / "nothing"}'])
  err = capsys.readouterr().err.strip()
  assert rc == 1 and '\n' not in err and err.startswith('jaxpose eval: no checkpoint under'), err
