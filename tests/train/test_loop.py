"""The trainer end to end on the embedded deepmimic data (VideoPose3D smoke config: cheap to
compile, and its BatchNorm statistics exercise the model_state path): resume after SIGKILL, and
after SIGTERM (which checkpoints the step it was in and exits 75), ends with the same parameters
as an uninterrupted run and logs every step once; NaN stops the run with the last good
checkpoint; a workdir with another config, or held by a live run, is refused; a failed start
leaves no config.json behind; metrics and logs are written."""

import collections
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
from jaxpose.train import checkpoint, loop, preemption, writers
from jaxpose.train import workdir as workdir_lib

REPO = pathlib.Path(__file__).resolve().parents[2]


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


STEPS = 10


@pytest.fixture(scope='module')
def uninterrupted(deepmimic_dir, tmp_path_factory):
  """The workdir of an uninterrupted STEPS-step run (the reference of the resume tests)."""
  a = tmp_path_factory.mktemp('uninterrupted')
  subprocess.run(
    _cmd(deepmimic_dir, a, STEPS), cwd=REPO, env=_env(), check=True, capture_output=True
  )
  return a


def _each_step_once(workdir):
  rows = writers.read_jsonl(workdir / 'metrics.jsonl')
  seen = collections.Counter((r['step'], k) for r in rows for k in r if k not in ('step', 'time'))
  assert not [k for k, n in seen.items() if n > 1], 'metrics.jsonl repeats steps'
  assert max(r['step'] for r in rows) == STEPS


def _wait_for(pred, proc, what):
  deadline = time.time() + 300
  while time.time() < deadline and not pred():
    assert proc.poll() is None, f'the run ended before {what}'
    time.sleep(0.01)


def test_resume_after_sigkill_matches_uninterrupted_run(deepmimic_dir, uninterrupted, tmp_path):
  b = tmp_path / 'b'
  proc = subprocess.Popen(
    _cmd(deepmimic_dir, b, STEPS),
    cwd=REPO,
    env=_env(),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  _wait_for(lambda: (b / 'ckpt' / '4').exists(), proc, 'ckpt/4')
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = max(int(p.name) for p in (b / 'ckpt').iterdir() if p.name.isdigit())
  assert killed_at < STEPS, 'the run finished before it could be killed'
  assert (b / workdir_lib.LOCK_NAME).exists()  # a stale lock, taken over by the rerun
  subprocess.run(
    _cmd(deepmimic_dir, b, STEPS), cwd=REPO, env=_env(), check=True, capture_output=True
  )
  pa, pb = checkpoint.load_params(uninterrupted, 'latest'), checkpoint.load_params(b, 'latest')
  jax.tree.map(np.testing.assert_array_equal, pa, pb)
  _each_step_once(b)


def test_sigterm_checkpoints_the_current_step_and_rerun_continues(
  deepmimic_dir, uninterrupted, tmp_path
):
  """Evaluating every step (it changes no weights) slows the run so the signal lands mid-run;
  only the stop writes a checkpoint before the end (ckpt_every > STEPS)."""
  b = tmp_path / 'b'
  cmd = [
    *_cmd(deepmimic_dir, b, STEPS),
    '--config.train.ckpt_every=100',
    '--config.train.eval_every=1',
  ]
  proc = subprocess.Popen(
    cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  metrics = b / 'metrics.jsonl'
  _wait_for(lambda: metrics.exists() and 'eval/mpjpe_mm' in metrics.read_text(), proc, 'step 1')
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == preemption.EXIT_CODE, err[-2000:]
  stopped = [int(p.name) for p in (b / 'ckpt').iterdir() if p.name.isdigit()]
  assert len(stopped) == 1 and 1 <= stopped[0] < STEPS, stopped
  assert f'stopped by SIGTERM after step {stopped[0]}; checkpoint {b}/ckpt/{stopped[0]}' in err
  assert not (b / workdir_lib.LOCK_NAME).exists()  # released on the way out
  rows = writers.read_jsonl(metrics)  # writers closed: every row complete, the last one logged
  assert max(r['step'] for r in rows if 'loss' in r) == stopped[0]
  subprocess.run(cmd, cwd=REPO, env=_env(), check=True, capture_output=True)
  pa, pb = checkpoint.load_params(uninterrupted, 'latest'), checkpoint.load_params(b, 'latest')
  jax.tree.map(np.testing.assert_array_equal, pa, pb)
  _each_step_once(b)


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


def test_failed_start_writes_no_config_and_busy_workdir_is_refused(deepmimic_dir, tmp_path):
  bad = _config(deepmimic_dir)
  bad.model.name = 'nosuchmodel'
  with pytest.raises(ValueError, match='nosuchmodel'):
    loop.run(bad, tmp_path)
  assert not (tmp_path / 'config.json').exists()  # the corrected command is not refused
  assert not (tmp_path / workdir_lib.LOCK_NAME).exists()
  (tmp_path / workdir_lib.LOCK_NAME).write_text(
    json.dumps({'pid': os.getppid(), 'host': os.uname().nodename})
  )
  with pytest.raises(workdir_lib.WorkdirBusyError, match=f'in use by PID {os.getppid()}'):
    loop.run(_config(deepmimic_dir), tmp_path)


def test_cli_unusable_workdir_is_one_line(tmp_path, capsys):
  blocker = tmp_path / 'file'
  blocker.write_text('')
  rc = cli.main(['train', '--config=configs/videopose3d.py:xs,smoke', f'--workdir={blocker}/run'])
  err = capsys.readouterr().err.strip()
  assert rc == 1 and err.count('\n') == 0, err
  assert err.startswith(f'jaxpose train: cannot create workdir {blocker}/run')
