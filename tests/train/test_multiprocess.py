"""Multi-process training with JAX's own distributed runtime (issue 19, item 4).

Two processes on this machine (`jax.distributed.initialize` with a localhost coordinator, gloo
collectives, 2 CPU devices each) train the VideoPose3D smoke config in one shared workdir. Process
0 gets SIGTERM mid-run: JAX's preemption service stops both at the same step, both write that
checkpoint and exit 75. The same two commands resume and finish; the parameters must equal those
of one process with 4 devices and the same global batch (8 windows), and the evaluation (every
process gathers the others' rows before scoring) must give the same MPJPE.

Tolerance: max abs 1e-6 and relative L2 1e-5 per leaf. The global batch is the same row for row
(`pipeline.HostRows`), so the only difference is where the partial gradients are summed: in one
process XLA's CPU all-reduce, across processes gloo's, in another order (float32 rounding, measured
6e-8 abs / 9e-7 rel L2 after 6 Adam steps; BatchNorm statistics see the same effect).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import videopose3d
from jaxpose.data import pipeline
from jaxpose.train import checkpoint, preemption, writers

REPO = pathlib.Path(__file__).resolve().parents[2]
STEPS = 6


def test_hosts_hold_contiguous_rows_of_the_one_process_batch(deepmimic_dir):
  """Host p's batch i is rows p*b .. (p+1)*b-1 of the one-process batch i, flips included."""
  c = videopose3d.get_config('xs,smoke')
  c.data.data_dir = deepmimic_dir
  assert c.data.flip_aug
  one = pipeline.train_iterator(c.data, seed=3)
  two = [pipeline.train_iterator(c.data, seed=3, process_index=p, process_count=2) for p in (0, 1)]
  for _ in range(3):
    g, h = next(one), [next(t) for t in two]
    b = len(h[0]['seq_id'])
    for k in g:
      for p in (0, 1):
        np.testing.assert_array_equal(g[k][p * b : (p + 1) * b], h[p][k], err_msg=k)


@pytest.mark.parametrize(
  ('mesh', 'want'),
  [
    (dict(num_processes=1), None),
    (
      dict(num_processes=2, process_id=1, coordinator_address='10.0.0.1:8476'),
      dict(coordinator_address='10.0.0.1:8476', num_processes=2, process_id=1),
    ),
    (dict(num_processes=4), dict(num_processes=4)),  # TPU pod slice: ids detected, not 0 for all
    (dict(num_processes=-1), dict(num_processes=None)),  # Slurm / Open MPI: the count too
  ],
)
def test_distributed_initialisation_arguments(monkeypatch, mesh, want):
  from configs import common
  from jaxpose import sharding

  calls = []
  monkeypatch.setattr(jax.distributed, 'is_initialized', lambda: False)
  monkeypatch.setattr(jax.distributed, 'initialize', lambda **kw: calls.append(kw))
  cfg = common.get_base_config().mesh
  cfg.update(mesh)
  sharding.maybe_initialize_distributed(cfg)
  assert calls == ([] if want is None else [want])


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(devices: int):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(
    JAX_PLATFORMS='cpu',
    CI='1',
    PYTHONUNBUFFERED='1',
    XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
  )
  return env


def _cmd(data_dir, workdir, *extra):
  # Evaluating every step changes no weights; it slows the run so that the signal lands mid-run.
  return [
    sys.executable,
    '-m',
    'jaxpose.cli',
    'train',
    '--config=configs/videopose3d.py:xs,smoke',
    f'--workdir={workdir}',
    f'--config.data.data_dir={data_dir}',
    f'--config.train.total_steps={STEPS}',
    '--config.train.ckpt_every=100',
    '--config.train.eval_every=1',
    '--config.train.log_every=1',
    *extra,
  ]


def _launch(data_dir, workdir, port):
  mesh = ['--config.mesh.num_processes=2', f'--config.mesh.coordinator_address=127.0.0.1:{port}']
  return [
    subprocess.Popen(
      _cmd(data_dir, workdir, *mesh, f'--config.mesh.process_id={i}'),
      cwd=REPO,
      env=_env(2),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in (0, 1)
  ]


def _finish(procs):
  outs = [p.communicate(timeout=600) for p in procs]
  return [p.returncode for p in procs], outs


@pytest.mark.slow
def test_two_processes_preempted_and_resumed_match_one_process(deepmimic_dir, tmp_path):
  t0 = time.time()
  ref = tmp_path / 'one'
  one = subprocess.run(
    _cmd(deepmimic_dir, ref), cwd=REPO, env=_env(4), capture_output=True, text=True, check=True
  )
  t_one = time.time() - t0
  shared = tmp_path / 'two'
  procs = _launch(deepmimic_dir, shared, _free_port())
  metrics = shared / 'metrics.jsonl'
  deadline = time.time() + 600
  while not (metrics.exists() and 'eval/mpjpe_mm' in metrics.read_text()):
    assert time.time() < deadline and all(p.poll() is None for p in procs), _finish(procs)
    time.sleep(0.01)
  procs[0].send_signal(signal.SIGTERM)  # a preemption notice to one host only
  codes, outs = _finish(procs)
  assert codes == [preemption.EXIT_CODE] * 2, outs
  stopped = [int(p.name) for p in (shared / 'ckpt').iterdir() if p.name.isdigit()]
  assert len(stopped) == 1 and stopped[0] < STEPS, stopped
  for _, err in outs:
    assert f'stopped by SIGTERM after step {stopped[0]}' in err
  codes, outs = _finish(_launch(deepmimic_dir, shared, _free_port()))
  assert codes == [0, 0], outs
  t_two = time.time() - t0 - t_one
  a, b = checkpoint.load_params(ref, 'latest'), checkpoint.load_params(shared, 'latest')
  abs_err = max(
    float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  rel_l2 = max(
    float(np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  want = json.loads(one.stdout.strip().splitlines()[-1])
  got = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  print(
    f'\n2 processes x 2 devices vs 1 x 4 after {STEPS} steps (stopped at {stopped[0]}): params '
    f'max abs {abs_err:.2e}, rel L2 {rel_l2:.2e}; MPJPE {got[0]["mpjpe_mm"]:.6f} vs '
    f'{want["mpjpe_mm"]:.6f} mm; wall {t_one:.0f} s (1 process), {t_two:.0f} s (2 processes, 2 runs)'
  )
  assert abs_err <= 1e-6 and rel_l2 <= 1e-5
  for g in got:  # both processes print the gathered evaluation
    assert g['num_frames'] == want['num_frames']
    np.testing.assert_allclose(g['mpjpe_mm'], want['mpjpe_mm'], rtol=1e-5)
    np.testing.assert_allclose(g['p_mpjpe_mm'], want['p_mpjpe_mm'], rtol=1e-5)
  rows = writers.read_jsonl(metrics)  # process 0 alone writes; each step once
  steps = [r['step'] for r in rows if 'loss' in r]
  assert steps == list(range(1, STEPS + 1))
