"""The workdir: exclusive lock (PID + host, stale take-over), one-line errors for a workdir that
cannot be used, the config comparison of a resume and metrics.jsonl truncation (issue 19, items
2, 3, 4 and 6)."""

import json
import os
import socket
import subprocess

import pytest

from configs import common
from jaxpose.train import workdir, writers


def _lock(path, pid, host=None):
  (path / workdir.LOCK_NAME).write_text(
    json.dumps({'pid': pid, 'host': host or socket.gethostname(), 'started': 'earlier'})
  )


def _dead_pid() -> int:
  proc = subprocess.Popen(['true'])
  proc.wait()
  return proc.pid


def test_lock_is_exclusive_and_released(tmp_path):
  with workdir.locked(tmp_path):
    held = json.loads((tmp_path / workdir.LOCK_NAME).read_text())
    assert held['pid'] == os.getpid() and held['host'] == socket.gethostname()
    other = workdir.WorkdirLock(tmp_path)
    other.me['pid'] = os.getppid()  # another live process on this host
    with pytest.raises(workdir.WorkdirBusyError, match=f'in use by PID {os.getpid()} on host'):
      other.acquire()
  assert not (tmp_path / workdir.LOCK_NAME).exists()


def test_live_holder_refuses_with_pid_and_host(tmp_path):
  _lock(tmp_path, os.getppid())
  with pytest.raises(
    workdir.WorkdirBusyError, match=f'PID {os.getppid()} on host {socket.gethostname()}'
  ):
    with workdir.locked(tmp_path):
      pass
  assert json.loads((tmp_path / workdir.LOCK_NAME).read_text())['pid'] == os.getppid()


def test_other_host_refuses_and_names_the_file(tmp_path):
  _lock(tmp_path, 1, host='tpu-vm-7')
  with pytest.raises(workdir.WorkdirBusyError, match='PID 1 on host tpu-vm-7.*delete .*\\.lock'):
    with workdir.locked(tmp_path):
      pass


@pytest.mark.parametrize('holder', ['dead', 'self', 'garbage'])
def test_stale_lock_is_taken_over_with_a_message(tmp_path, capsys, holder):
  if holder == 'garbage':
    (tmp_path / workdir.LOCK_NAME).write_text('{"pi')  # a run killed while writing it
  else:
    _lock(tmp_path, _dead_pid() if holder == 'dead' else os.getpid())
  with workdir.locked(tmp_path):
    assert json.loads((tmp_path / workdir.LOCK_NAME).read_text())['started'] != 'earlier'
  assert 'taking over the' in capsys.readouterr().err
  assert not (tmp_path / workdir.LOCK_NAME).exists()


def test_unusable_workdir_is_one_line(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('')
  for path in (blocker, blocker / 'run'):
    with pytest.raises(workdir.WorkdirError) as e:
      with workdir.locked(path):
        pass
    assert str(path) in str(e.value) and '\n' not in str(e.value)


def _config(**kw):
  c = common.get_base_config()
  for k, v in kw.items():
    block, key = k.split('__')
    c[block][key] = v
  return c


def test_config_is_compared_only_against_a_run_with_checkpoints(tmp_path):
  workdir.write_config(_config(model__name='nosuchmodel'), tmp_path)
  workdir.check_config(_config(), tmp_path)  # the failed start wrote no checkpoint: no comparison
  (tmp_path / 'ckpt' / '4').mkdir(parents=True)
  with pytest.raises(workdir.WorkdirConfigError, match="model.name: workdir has 'nosuchmodel'"):
    workdir.check_config(_config(), tmp_path)


def test_host_dependent_keys_are_resume_free(tmp_path):
  """Host 1 of a multi-process run (and a restarted VM with other paths) resumes host 0's run."""
  workdir.write_config(_config(mesh__num_processes=2), tmp_path)
  (tmp_path / 'ckpt' / '4').mkdir(parents=True)
  other = _config(
    mesh__num_processes=2,
    mesh__process_id=1,
    mesh__coordinator_address='10.0.0.2:8476',
    data__data_dir='/mnt/other',
    data__num_workers=4,
  )
  workdir.check_config(other, tmp_path)
  with pytest.raises(workdir.WorkdirConfigError, match='mesh.num_processes'):
    workdir.check_config(_config(), tmp_path)


def test_workdir_from_an_older_schema_resumes(tmp_path):
  old = _config().to_dict()
  del old['train']['matmul_precision']
  old['model']['dtype'] = 'float32'  # a key older schemas declared and nothing read
  (tmp_path / 'config.json').write_text(json.dumps(old))
  (tmp_path / 'ckpt' / '4').mkdir(parents=True)
  workdir.check_config(_config(), tmp_path)
  with pytest.raises(
    workdir.WorkdirConfigError, match="train.matmul_precision: workdir has 'float32'"
  ):
    workdir.check_config(_config(train__matmul_precision='bfloat16'), tmp_path)


def test_metrics_rows_after_the_restored_step_are_dropped(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  rows = [
    {'step': 0, 'compile_time_s': 3.0},
    {'step': 2, 'loss': 1.0},
    {'step': 2, 'eval/mpjpe_mm': 90.0},
    {'step': 3, 'loss': 0.9},
    {'step': 2, 'compile_time_s': 2.0},  # an earlier resume at step 2
    {'step': 3, 'loss': 0.9},
  ]
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + '{"step": 4, "lo')
  w = writers.JsonlWriter(tmp_path, resume_step=2)
  w.write_scalars(2, {'compile_time_s': 1.0})
  w.write_scalars(3, {'loss': 0.8})
  w.close()
  got = [(r['step'], sorted(set(r) - {'step', 'time'})) for r in writers.read_jsonl(path)]
  assert got == [
    (0, ['compile_time_s']),
    (2, ['loss']),
    (2, ['eval/mpjpe_mm']),
    (2, ['compile_time_s']),
    (3, ['loss']),
  ]
  writers.JsonlWriter(tmp_path, resume_step=None).close()  # a fresh run in a used workdir
  assert path.read_text() == ''
