"""PMCE's training method: losses on hand-made meshes, the 2D noise statistics, stage-2 freezing,
the evaluation metrics on a stub model, and (slow) the smoke config through the default trainer."""

import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpose.methods import pmce
from jaxpose.train import state as state_lib
from jaxpose.train import steps

# A tetrahedron: 4 vertices, 4 outward faces.
TET = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.1]], np.float32)
TET_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
W = {'normal_weight': 0.1, 'edge_weight': 20.0, 'joint_weight': 1e-3}


def _config(arg='smoke', **kwargs):
  c = importlib.import_module('configs.pmce').get_config(arg)
  with c.unlocked():
    c.method.kwargs.update(kwargs)
  return c


def test_mesh_losses_against_hand_computed_values():
  gt = TET[None]
  pred = 2.0 * gt  # scaling keeps every face's plane: normal loss 0, edges double
  gt_lift = np.array([[[0.1, 0.2, 0.3], [0.0, -0.1, 0.05]]], np.float32)  # (1, 2, 3) metres
  out = {
    'mesh': jnp.asarray(pred),
    'evo_pose': jnp.asarray(gt_lift + 0.002),  # 2 mm off on every coordinate
    'pose3d': jnp.asarray(gt_lift * 1000.0 + 3.0),  # 3 mm off
  }
  reg = np.eye(4, dtype=np.float32)[:2]  # joints = the first two vertices
  one = np.ones(1, np.float32)
  got = pmce.mesh_losses(out, jnp.asarray(gt), jnp.asarray(gt_lift), one, one, TET_FACES, reg, W)
  edges = [
    np.linalg.norm(TET[f[i]] - TET[f[j]]) for f in TET_FACES for i, j in ((0, 1), (0, 2), (1, 2))
  ]
  want = {
    'mesh': np.abs(TET).mean(),  # |2x - x|
    'normal': 0.0,
    'edge': 20.0 * np.mean(edges),
    'mesh_joint': 1e-3 * 1000.0 * np.abs(TET[:2]).mean(),
    'evo_joint': 1e-3 * 2.0,
    'lift_joint': 1e-3 * 3.0,
  }
  assert set(got) == set(want)
  for k, v in want.items():
    np.testing.assert_allclose(float(got[k]), v, rtol=1e-5, atol=1e-7, err_msg=k)
  # The edge term waits for edge_start_steps; a mesh without a target counts as zeros.
  off = pmce.mesh_losses(out, gt, gt_lift, one, 0 * one, TET_FACES, reg, W, edge_on=False)
  assert float(off['edge']) == 0.0 and float(off['mesh']) == 0.0 and float(off['mesh_joint']) == 0
  np.testing.assert_allclose(float(off['lift_joint']), 3e-3, rtol=1e-5)


def test_normal_loss_sees_a_bent_face():
  gt = TET[None]
  pred = gt.copy()
  pred[0, 3] = [0.0, 0.0, 0.0005]  # flatten vertex 3 toward the base: faces 1-3 bend
  reg = np.eye(4, dtype=np.float32)[:2]
  one = np.ones(1, np.float32)
  out = {'mesh': pred, 'evo_pose': np.zeros((1, 2, 3)), 'pose3d': np.zeros((1, 2, 3))}
  got = pmce.mesh_losses(out, gt, np.zeros((1, 2, 3)), one, one, TET_FACES, reg, W)
  # Hand value: for each face, |cos| between the predicted unit edges and the GT unit normal.
  cos = []
  for f in TET_FACES:
    n = np.cross(TET[f[1]] - TET[f[0]], TET[f[2]] - TET[f[0]])
    n /= np.linalg.norm(n)
    for i, j in ((0, 1), (0, 2), (1, 2)):
      e = pred[0, f[j]] - pred[0, f[i]]
      cos.append(abs(e @ n) / np.linalg.norm(e))
  np.testing.assert_allclose(float(got['normal']), 0.1 * np.mean(cos), rtol=1e-5)
  assert float(got['normal']) > 1e-3


def test_pose_loss_is_the_masked_l1_in_mm():
  gt = np.zeros((2, 3, 3), np.float32)
  pred = np.full((2, 3, 3), 4.0, np.float32)  # mm
  valid = np.array([1.0, 0.0], np.float32)
  # Row 1 is masked: its entries count as zeros in the mean (official CoordLoss).
  np.testing.assert_allclose(float(pmce.pose_loss(pred, gt, valid)), 2.0, rtol=1e-6)


def test_noise_statistics_follow_the_official_probabilities():
  """Fixed pose, many draws: how often a joint lands in each radius band of its OKS distances."""
  pose = np.array(
    [
      [0, 0],
      [-0.2, 0],
      [-0.2, 0.4],
      [-0.2, 0.8],
      [0.2, 0],
      [0.2, 0.4],
      [0.2, 0.8],
      [0, -0.3],
      [0, -0.6],
      [0, -0.7],
      [0, -0.8],
      [0.3, -0.6],
      [0.5, -0.4],
      [0.7, -0.2],
      [-0.3, -0.6],
      [-0.5, -0.4],
      [-0.7, -0.2],
    ],
    np.float32,
  )  # (17, 2), image y down, arms out: every partner is far away
  n = 6000
  kp = jnp.broadcast_to(pose, (n, 17, 2))
  noisy = np.asarray(pmce.synthesize_2d_noise(jax.random.key(0), kp, bbox_scale=1.2))
  again = np.asarray(pmce.synthesize_2d_noise(jax.random.key(0), kp, bbox_scale=1.2))
  np.testing.assert_array_equal(noisy, again)
  t = pmce.noise_tables()
  ext = (pose.max(0) - pose.min(0)) * 1.2
  d = lambda ks, j: np.sqrt(-2 * ext.prod() * (2 * t['sigma'][j]) ** 2 * np.log(ks))
  # Pelvis (no partner): jitter in (d85, d50), miss in (d50, d10), good below d85.
  r = np.linalg.norm(noisy[:, 0] - pose[0], axis=-1)
  assert r.max() <= d(0.10, 0) * (1 + 1e-5)
  np.testing.assert_allclose(np.mean(r > d(0.50, 0)), 0.10, atol=0.015)  # miss
  np.testing.assert_allclose(np.mean((r > d(0.85, 0)) & (r < d(0.50, 0))), 0.20, atol=0.02)
  # Left wrist (13): inversions land within d50 of the right wrist (16).
  near = np.linalg.norm(noisy[:, 13] - pose[16], axis=-1) < d(0.50, 13)
  np.testing.assert_allclose(near.mean(), 0.03, atol=0.008)
  # Misses of the left wrist: 1 in 5 around the right wrist (radius in (d50, d10) of it).
  rk = np.linalg.norm(noisy[:, 13] - pose[16], axis=-1)
  around = (rk > d(0.50, 13)) & (rk <= d(0.10, 13))
  np.testing.assert_allclose(around.mean(), 0.10 * 0.2, atol=0.008)


def _batch(c, model, b=2, seed=0):
  rng = np.random.default_rng(seed)
  f, j = c.data.frames, c.data.num_joints
  pose = rng.normal(0, 0.2, (b, 1, j, 3)).astype(np.float32)
  pose -= pose[:, :, :1]
  return {
    'kp2d_norm': rng.normal(0, 0.3, (b, f, j, 2)).astype(np.float32),
    'pose3d_cam': pose,
    'pose3d_cam_window': np.repeat(pose, f, axis=1),
    'valid': np.ones((b, 1), bool),
    'has_smpl': np.ones((b, 1), bool),
    'body_rotmat': np.tile(np.eye(3, dtype=np.float32), (b, 1, 24, 1, 1)),
    'body_betas': np.zeros((b, 1, 10), np.float32),
  }


def _one_step(c, variables):
  model = pmce.METHOD.make_model(c)
  tx = optax.adam(1e-2)
  st = state_lib.create(model, tx, pmce.init_inputs(c, model), 0, variables)
  step = steps.make_train_step(model, pmce.METHOD, tx, c)
  new, scalars = step(st, _batch(c, model))
  return st, new, scalars


@pytest.fixture(scope='module')
def stage1_variables():
  c = _config('smoke,stage=pose')
  model = pmce.METHOD.make_model(c)
  v = pmce.init_variables(c, model, None)
  assert set(v['params']) == {'pose_lifter'}  # stage 1 creates only the pose stream
  return jax.device_get(v)


def test_stage2_variables_put_the_frozen_pose_stream_outside_params():
  """Shapes only (fast): with freeze_pose_stream the loaded pose stream sits in `pmce_frozen`,
  which no optimiser sees; without it, in `params`."""
  c1 = _config('smoke,stage=pose')
  loaded = jax.eval_shape(lambda: pmce.init_variables(c1, pmce.METHOD.make_model(c1), None))
  assert set(loaded['params']) == {'pose_lifter'}
  for freeze in (True, False):
    c = _config('smoke,stage=mesh', freeze_pose_stream=freeze)
    model = pmce.METHOD.make_model(c)
    v = jax.eval_shape(lambda x, c=c, model=model: pmce.init_variables(c, model, x), loaded)
    in_params = {'pose_mesh_coevo'} | ({'pose_lifter'} if not freeze else set())
    assert set(v['params']) == in_params
    assert ('pmce_frozen' in v) == freeze
    if freeze:
      assert jax.tree.structure(v['pmce_frozen']['pose_lifter']) == jax.tree.structure(
        loaded['params']['pose_lifter']
      )


@pytest.mark.slow
def test_stage2_freezes_the_loaded_pose_stream(stage1_variables):
  c = _config('smoke,stage=mesh', freeze_pose_stream=True)
  model = pmce.METHOD.make_model(c)
  v = pmce.init_variables(c, model, stage1_variables)
  assert set(v['params']) == {'pose_mesh_coevo'} and 'pose_lifter' in v['pmce_frozen']
  before = jax.device_get(v)
  st, new, scalars = _one_step(c, v)
  assert float(scalars['stage']) == 2.0 and float(scalars['loss/mesh']) > 0
  loaded = stage1_variables['params']['pose_lifter']
  jax.tree.map(
    np.testing.assert_array_equal,
    jax.device_get(new.model_state)['pmce_frozen'],
    {'pose_lifter': loaded},
  )
  moved = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b).max(), new.params, before['params'])
  assert max(jax.tree.leaves(moved)) > 0  # the decoder trains
  assert int(new.model_state['pmce_state']['step']) == 1


@pytest.mark.slow
def test_stage2_trains_the_pose_stream_jointly_by_default(stage1_variables):
  """The official stage 2 optimises every parameter; the loaded pose stream is the start."""
  c = _config('smoke,stage=mesh')
  model = pmce.METHOD.make_model(c)
  v = pmce.init_variables(c, model, stage1_variables)
  loaded = stage1_variables['params']['pose_lifter']
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(v['params']['pose_lifter']), loaded)
  _, new, _ = _one_step(c, v)
  diff = jax.tree.map(
    lambda a, b: np.abs(np.asarray(a) - b).max(), new.params['pose_lifter'], loaded
  )
  assert max(jax.tree.leaves(diff)) > 0


def test_freezing_needs_a_stage1_checkpoint_and_stage_mesh():
  c = _config('smoke,stage=mesh', freeze_pose_stream=True)
  with pytest.raises(ValueError, match='init_from'):
    pmce.init_variables(c, pmce.METHOD.make_model(c), None)
  with pytest.raises(ValueError, match="stage='mesh'"):
    pmce.settings(_config('smoke', freeze_pose_stream=True))


@pytest.mark.slow
def test_stage_both_switches_after_pose_steps():
  c = _config('smoke', pose_steps=1, noise=False)
  model = pmce.METHOD.make_model(c)
  st = state_lib.create(
    model, optax.adam(1e-3), pmce.init_inputs(c, model), 0, pmce.init_variables(c, model, None)
  )
  step = steps.make_train_step(model, pmce.METHOD, optax.adam(1e-3), c)
  batch = _batch(c, model)
  st, s1 = step(st, batch)
  st, s2 = step(st, batch)
  assert float(s1['stage']) == 1.0 and float(s1['loss/mesh']) == 0 and float(s1['loss/pose']) > 0
  assert float(s2['stage']) == 2.0 and float(s2['loss/pose']) == 0 and float(s2['loss/mesh']) > 0


def test_make_model_checks_the_window_length():
  c = _config('smoke')
  with c.unlocked():
    c.data.frames = 5
  with pytest.raises(ValueError, match='data.frames=5 must be model num_frames=4'):
    pmce.make_model(c)


class _StubModel:
  """Returns the ground-truth mesh for the supervised window (offset 1, read from the input whose
  frame t holds the value t) and the mesh scaled by 0.9 for the windows shifted by one frame."""

  num_frames, feat_dim = 4, 8

  def __init__(self, mesh):
    self.mesh = mesh

  def apply(self, variables, pose2d, feat, *, train, method=None):
    offset = pose2d[:, 0, 0, 0]  # (B,)
    scale = jnp.where(offset == 1, 1.0, 0.9)[:, None, None]
    return {'pose3d': None, 'evo_pose': None, 'mesh': self.mesh * scale}


def test_eval_metrics_on_a_stub_model():
  c = _config('smoke')
  s = pmce.settings(c)
  b, f = 2, c.data.frames
  rng = np.random.default_rng(1)
  rot = np.tile(np.eye(3, dtype=np.float32), (b, 1, 24, 1, 1))
  aa = rng.normal(0, 0.3, (b, 24, 3))
  from jaxpose.data import bodies

  rot[:, 0] = bodies.axis_angle_to_rotmat(aa.reshape(-1, 3)).reshape(b, 24, 3, 3)
  batch = {'body_rotmat': rot, 'body_betas': np.zeros((b, 1, 10), np.float32)}
  gt = pmce.gt_mesh(s, batch)
  _, reg, _ = pmce.body_setup('synthetic:small')
  joints = np.einsum('kv,bvc->bkc', reg, np.asarray(gt))
  joints = joints - joints[:, :1]
  batch['kp2d_norm'] = np.broadcast_to(
    np.arange(f, dtype=np.float32)[None, :, None, None], (b, f, 17, 2)
  ).copy()
  # GT window: joints scaled linearly in time (no acceleration, distinct frames); sample 1's
  # first two frames are equal (the clamped start of a sequence).
  window = joints[:, None] * (1.0 + 0.05 * np.arange(f))[None, :, None, None]
  window[1, : f // 2] = window[1, f // 2]
  batch['pose3d_cam_window'] = window.astype(np.float32)
  batch['pose3d_cam'] = window[:, f // 2 : f // 2 + 1]
  out = jax.jit(lambda b: pmce.eval_metrics(_StubModel(gt), {'params': {}}, b, c))(batch)
  assert set(out) == {'mpvpe_mm', 'pa_mpvpe_mm', 'mpjpe14_mm', 'pmpjpe14_mm', 'accel_mm'}
  assert all(v.shape == (b, 1) for v in out.values())
  for k in ('mpvpe_mm', 'pa_mpvpe_mm', 'mpjpe14_mm', 'pmpjpe14_mm'):
    np.testing.assert_allclose(np.asarray(out[k]), 0.0, atol=1e-3, err_msg=k)
  # Predictions (x0.9, x1, x0.9) of the centre joints against a GT without acceleration: the
  # second difference is -0.2 x the centre joints; the clamped sample scores 0 (official padding).
  ev = list(pmce.EVAL_JOINTS)
  root_pred = np.einsum('kv,bvc->bkc', reg, np.asarray(gt))
  rel = (root_pred - root_pred[:, :1])[:, ev]
  want = np.linalg.norm(0.2 * rel[0], axis=-1).mean() * 1000.0
  np.testing.assert_allclose(float(out['accel_mm'][0, 0]), want, rtol=1e-3)
  assert float(out['accel_mm'][1, 0]) == 0.0


@pytest.mark.slow
def test_smoke_config_trains_both_stages_and_reports_mesh_metrics(tmp_path, monkeypatch):
  """`configs/pmce.py:smoke` on a two-clip deepmimic_smpl (run = train, walk = test)."""
  from jaxpose.data import build, pipeline
  from jaxpose.train import loop
  from tfds_builders.deepmimic_smpl import deepmimic_smpl_dataset_builder as dm

  full = dm.read_sequences
  monkeypatch.setattr(dm, 'read_sequences', lambda: full(('walk', 'run'), 'small'))
  build.ensure_built('deepmimic_smpl', data_dir=str(tmp_path / 'data'))
  c = _config('smoke')
  c.data.data_dir = str(tmp_path / 'data')
  res = loop.run(c, tmp_path / 'run')
  keys = {
    'mpjpe_mm',
    'p_mpjpe_mm',
    'mpjpe14_mm',
    'pmpjpe14_mm',
    'mpvpe_mm',
    'pa_mpvpe_mm',
    'accel_mm',
  }
  assert keys <= set(res) and all(np.isfinite(res[k]) for k in keys)
  table = pipeline.sequence_table(c.data, 'test')
  assert res['num_frames'] == sum(r['num_frames'] for r in table) and len(table) == 4
  assert set(res['per_group']) == {'walk'}
  logs = [
    json.loads(line)
    for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().split('\n')
    if line
  ]
  stages = [r['stage'] for r in logs if 'stage' in r]
  assert stages[0] == 1.0 and stages[-1] == 2.0
