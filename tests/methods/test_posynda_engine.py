"""PoSynDA through the default trainer: `configs/posynda.py:smoke,teacher` adapts on two domains
(deepmimic standing in for 3DHP and H36M), checkpoints both data streams, keeps the frozen
denoiser bit-identical, updates the EMA teacher, evaluates, and resumes. Plus the engine-facing
helpers: per-clip target cameras in the source re-distribution, frame weights in the losses,
config errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.geometry import camera
from jaxpose.methods import posynda
from jaxpose.models import _posynda
from jaxpose.train import checkpoint, loop

pytestmark = pytest.mark.xdist_group('posynda_engine')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  from jaxpose.data import build

  d = tmp_path_factory.mktemp('datasets')
  build.ensure_built('deepmimic', data_dir=str(d))
  return str(d)


def _config(data_dir, steps, **train):
  from configs import posynda as cfg

  c = cfg.get_config('smoke,teacher')
  c.data.data_dir = data_dir
  with c.method.kwargs.unlocked():
    c.method.kwargs.source.data_dir = data_dir
  c.train.update(total_steps=steps, ckpt_every=2, log_every=1, **train)
  c.eval.max_batches = 1
  return c


def _metrics(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


def test_smoke_adapts_two_domains_evaluates_and_resumes(data_dir, tmp_path):
  c = _config(data_dir, 2)
  model = posynda.make_model(c)
  with pytest.warns(UserWarning, match='randomly initialised'):  # no init_from in smoke
    init = posynda.init_variables(c, model)
  res = loop.run(c, tmp_path)
  assert res['num_frames'] > 0 and np.isfinite(res['mpjpe_mm'])
  rows = [r for r in _metrics(tmp_path) if 'loss' in r]
  assert [r['step'] for r in rows] == [1, 2]
  for r in rows:
    for k in ('target_2d', 'target_3d', 'source_2d', 'source_3d', 'grad_norm'):
      assert np.isfinite(r[k]) and r[k] > 0, (k, r)
  saved = checkpoint.load_params(tmp_path / 'ckpt' / '2')
  # Only the adapters and the refiner train; the frozen denoiser is bit-identical.
  jax.tree.map(np.testing.assert_array_equal, saved['denoiser'], jax.device_get(init['denoiser']))
  changed = lambda a, b: any(
    not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  assert changed(saved['params']['refiner'], jax.device_get(init['params']['refiner']))
  assert changed(saved['params']['lora'], jax.device_get(init['params']['lora']))
  # The EMA teacher moved from its start (= the student at init) by (1 - decay) of the change.
  assert changed(saved['teacher'], jax.device_get(init['teacher']))
  data = json.loads((tmp_path / 'ckpt' / '2' / 'data' / 'process_0-of-1.json').read_text())
  assert data['target']['batches'] == 2 and data['source']['batches'] == 2
  # A killed-and-restarted run continues from step 2 with both streams where they stopped.
  c3 = _config(data_dir, 3, allow_config_change=True)
  res3 = loop.run(c3, tmp_path)
  assert np.isfinite(res3['mpjpe_mm'])
  assert [r['step'] for r in _metrics(tmp_path) if 'loss' in r] == [1, 2, 3]
  data = json.loads((tmp_path / 'ckpt' / '3' / 'data' / 'process_0-of-1.json').read_text())
  assert data['target']['batches'] == 3 and data['source']['batches'] == 3


def test_redistribute_uses_each_partner_clips_camera():
  t = 4
  src = jax.random.normal(jax.random.key(0), (3, t, 17, 3)) * 300
  src = src - src[..., 14:15, :]
  cams = jnp.asarray(
    [
      [1500.0, 1500.0, 1017.0, 1043.0, 0, 0, 0, 0, 0],
      [1684.0, 1684.0, 940.0, 560.0, 0, 0, 0, 0, 0],
      [1200.0, 1300.0, 700.0, 500.0, 0, 0, 0, 0, 0],
    ]
  )
  tgt = cams[:, None, None, 2:4] + jax.random.normal(jax.random.key(1), (3, t, 17, 2)) * 80
  out = posynda.redistribute_source(jax.random.key(2), src, tgt, cams)
  pick = np.asarray(out['pick'])
  assert sorted(pick.tolist()) == [0, 1, 2]
  np.testing.assert_array_equal(out['cam_px'], cams[pick])
  # Root pixel = the partner's root pixel; the 2D is the partner camera's projection.
  np.testing.assert_allclose(out['kp2d_px'][:, :, 14], tgt[pick][:, :, 14], atol=1e-2)
  np.testing.assert_allclose(
    out['kp2d_px'], camera.project_to_2d_linear(out['pose_mm'], cams[pick]), atol=1e-3
  )


def test_frame_weights_exclude_padded_frames():
  k1, k2 = jax.random.split(jax.random.key(0))
  t = 3
  pred = jax.random.normal(k1, (2, 1, 3, t, 17, 3)) * 100
  pred = pred.at[..., 14, :].set(0.0)
  root = jnp.broadcast_to(jnp.asarray([0.0, 0.0, 4000.0]), (2, t, 1, 3))
  cam = jnp.asarray([1500.0, 1500.0, 1024.0, 1024.0, 0, 0, 0, 0, 0])
  kp = 1024 + jax.random.normal(k2, (2, t, 17, 2)) * 50
  weight = jnp.asarray([[1, 1, 0], [1, 0, 0]], jnp.float32)
  a = posynda.target_losses(pred, kp, root, cam, weight=weight)
  b = posynda.target_losses(
    pred.at[:, :, :, 2].add(500.0), kp.at[:, 2].add(300.0), root, cam, weight=weight
  )
  np.testing.assert_allclose(a['loss'], b['loss'], rtol=1e-6)
  c = posynda.target_losses(pred, kp, root, cam)  # unweighted: the official plain mean
  assert abs(float(c['loss']) - float(a['loss'])) > 1e-3


def test_config_errors_name_the_key(data_dir):
  c = _config(data_dir, 1)
  with c.method.kwargs.unlocked():
    c.method.kwargs.num_hypothesis = 3
  with pytest.raises(ValueError, match='num_hypothesis.*valid:.*num_hypotheses'):
    posynda.settings(c)
  c = _config(data_dir, 1)
  with c.method.kwargs.unlocked():
    c.method.kwargs.source = None
  with pytest.raises(ValueError, match='method.kwargs.source'):
    posynda.source_data(c)


def test_denoiser_skeleton_converts_in_and_out():
  """A denoiser trained in H36M order applied to 3DHP-ordered data: the 2D goes in as H36M, the
  hypotheses come back in 3DHP order before the refiner, the 3DHP root (14) is zeroed."""
  from jaxpose.geometry import skeleton as skel
  from jaxpose.methods import d3dp

  t = 5
  den, ref, v = _posynda.build(
    num_frames=t,
    dim=16,
    depth=1,
    refiner={'dim': 8, 'num_heads': 2, 'hidden': 16, 'depth': 1, 'dropout': 0.0},
  )
  dv = posynda.merged_variables(v['denoiser'], v['lora'])
  kp = jax.random.normal(jax.random.key(0), (2, t, 17, 2)) * 0.3
  noise = jax.random.normal(jax.random.key(1), (1, 2, 1, t, 17, 3))
  got = posynda.sample_poses(
    den, dv, ref, v['refiner'], kp, noise, skeleton='mpi3dhp17', root=14, denoiser_skeleton='h36m17'
  )
  x0 = d3dp.sample(den, dv, skel.convert(kp, 'mpi3dhp17', 'h36m17'), None, noise, skeleton='h36m17')
  x0 = skel.convert(x0, 'h36m17', 'mpi3dhp17') * 1000.0
  want = ref.apply(v['refiner'], x0.reshape(-1, 17, 3), train=False).reshape(x0.shape)
  want = want.at[..., 14, :].set(0.0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
  plain = posynda.sample_poses(den, dv, ref, v['refiner'], kp, noise, skeleton='mpi3dhp17', root=14)
  assert np.abs(np.asarray(plain) - np.asarray(got)).max() > 1e-2  # the layout matters
