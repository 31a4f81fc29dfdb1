"""The trainer end to end on the embedded deepmimic data (VideoPose3D smoke config: cheap to
compile, and its BatchNorm statistics exercise the model_state path): resume after SIGKILL ends
with the same parameters as an uninterrupted run; NaN stops the run with the last good checkpoint;
a workdir with another config is refused; metrics and logs are written."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import videopose3d
from jaxpose.cli import train as cli
from jaxpose.train import checkpoint, loop, writers

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='session')
def deepmimic_dir(tmp_path_factory):
  from jaxpose.data import build

  d = tmp_path_factory.mktemp('datasets')
  build.ensure_built('deepmimic', data_dir=str(d))
  return str(d)


def _config(data_dir, **train):
  c = videopose3d.get_config('xs,smoke')
  c.data.data_dir = data_dir
  c.train.update(train)
  return c


def _cmd(data_dir, workdir, steps):
  return [
    sys.executable,
    '-m',
    'jaxpose.cli',
    'train',
    '--config=configs/videopose3d.py:xs,smoke',
    f'--workdir={workdir}',
    f'--config.data.data_dir={data_dir}',
    f'--config.train.total_steps={steps}',
    '--config.train.ckpt_every=2',
    '--config.train.log_every=1',
  ]


def _env():
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(JAX_PLATFORMS='cpu', CI='1', PYTHONUNBUFFERED='1')
  return env


def test_resume_after_sigkill_matches_uninterrupted_run(deepmimic_dir, tmp_path):
  steps = 10
  a, b = tmp_path / 'a', tmp_path / 'b'
  subprocess.run(
    _cmd(deepmimic_dir, a, steps), cwd=REPO, env=_env(), check=True, capture_output=True
  )
  proc = subprocess.Popen(
    _cmd(deepmimic_dir, b, steps),
    cwd=REPO,
    env=_env(),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 300
  while time.time() < deadline and not (b / 'ckpt' / '4').exists():
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = max(int(p.name) for p in (b / 'ckpt').iterdir() if p.name.isdigit())
  assert killed_at < steps, 'the run finished before it could be killed'
  subprocess.run(
    _cmd(deepmimic_dir, b, steps), cwd=REPO, env=_env(), check=True, capture_output=True
  )
  pa, pb = checkpoint.load_params(a, 'latest'), checkpoint.load_params(b, 'latest')
  jax.tree.map(np.testing.assert_array_equal, pa, pb)
  rows = writers.read_jsonl(b / 'metrics.jsonl')
  assert max(r['step'] for r in rows) == steps


def test_nan_loss_stops_and_keeps_last_good_checkpoint(deepmimic_dir, tmp_path):
  c = _config(deepmimic_dir, total_steps=6, ckpt_every=1, log_every=1)
  c.optim.update(name='sgd', lr=1e30)
  c.schedule.type = 'constant'
  with pytest.raises(FloatingPointError, match='non-finite loss .* at step (\\d+)'):
    loop.run(c, tmp_path)
  host = checkpoint.load_params(tmp_path, 'latest')
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(host))


def test_refuses_workdir_with_other_config_and_writes_logs(deepmimic_dir, tmp_path):
  c = _config(deepmimic_dir, total_steps=2, ckpt_every=2, log_every=1)
  res = loop.run(c, tmp_path)
  assert np.isfinite(res['mpjpe_mm']) and res['num_frames'] > 0
  assert json.loads((tmp_path / 'config.json').read_text())['optim']['lr'] == c.optim.lr
  rows = writers.read_jsonl(tmp_path / 'metrics.jsonl')
  assert any('compile_time_s' in r for r in rows) and any('eval/mpjpe_mm' in r for r in rows)
  assert list((tmp_path / 'tb').glob('events.out.tfevents.*'))
  c2 = _config(deepmimic_dir, total_steps=2, ckpt_every=2, log_every=1)
  c2.optim.lr = 0.5
  with pytest.raises(ValueError, match='optim.lr'):
    loop.run(c2, tmp_path)
  c2.train.allow_config_change = True
  again = loop.run(c2, tmp_path)  # resumes a finished run: evaluates the same weights
  np.testing.assert_allclose(again['mpjpe_mm'], res['mpjpe_mm'], rtol=1e-5)
  ev = cli.evaluate(c, str(tmp_path), None, None)  # `jaxpose eval`: the best checkpoint
  np.testing.assert_allclose(ev['mpjpe_mm'], res['mpjpe_mm'], rtol=1e-5)
