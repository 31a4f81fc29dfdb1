"""PoseDA's adaptation (reconstructed): GPA placement of lifter windows against the released GPA,
a loss that never reads the target's 3D, LPA's adversarial schedule, and the default trainer on
`configs/poseda.py:3dhp,smoke` (two domains, checkpoint, evaluation, resume)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.geometry import camera
from jaxpose.methods import poseda

pytestmark = pytest.mark.xdist_group('poseda_engine')
RNG = np.random.default_rng(1)
B, J = 8, 17


def _cams(n, fx, w, h):
  k = np.zeros((n, 9), np.float32)
  k[:, 0], k[:, 1], k[:, 2], k[:, 3] = fx, fx * 1.01, w / 2 + 7, h / 2 - 5
  return k


def _pose3d(n, t=1):
  x = RNG.normal(size=(n, t, J, 3)).astype(np.float32) * 0.25
  return x - x[:, :, :1]


def _target(n=B, w=1088, h=1920, t=1, fx=1680.0):
  px = RNG.uniform([200, 400], [900, 1500], (n, t, 1, 2)) + RNG.normal(size=(n, t, J, 2)) * 60
  cam = _cams(n, fx, w, h)
  if n > 1:
    cam[1::2, :2] *= 0.7  # two cameras in the batch
  return {
    'kp2d_norm': camera.normalize_screen_coordinates(px, w, h).astype(np.float32),
    'cam_intrinsics': cam,
    'res_w': np.full((n,), w, np.int32),
    'res_h': np.full((n,), h, np.int32),
    'pose3d_cam': _pose3d(n, t),
    'valid': np.ones((n, t), bool),
  }


def _source(n=B, t=1):
  x = _pose3d(n, t)
  root = np.tile(np.array([0.1, -0.2, 5.0], np.float32), (n, t, 1, 1))
  cam = _cams(n, 1145.0, 1000, 1002)
  px = (x + root)[..., :2] / (x + root)[..., 2:] * cam[:, None, None, :2] + cam[:, None, None, 2:4]
  return {
    'pose3d_cam': x,
    'pose3d_root': root,
    'kp2d_norm': camera.normalize_screen_coordinates(px, 1000, 1002).astype(np.float32),
    'cam_intrinsics': cam,
    'res_w': np.full((n,), 1000, np.int32),
    'res_h': np.full((n,), 1002, np.int32),
    'valid': np.ones((n, t), bool),
  }


def test_placement_matches_the_released_gpa_with_one_camera():
  w, h = 1088.0, 1920.0
  tgt = _target(w=int(w), h=int(h))
  tgt['cam_intrinsics'][:] = tgt['cam_intrinsics'][0]  # one camera: released semantics
  src = _pose3d(B)
  key = jax.random.PRNGKey(3)
  out = poseda.place_on_target(key, jnp.asarray(src), tgt, normalisation='poseda', min_box=0.0)
  pick = np.asarray(out['pick'])
  assert sorted(pick.tolist()) == list(range(B))
  k = tgt['cam_intrinsics'][0]
  cam_jp = camera.intrinsics_px_to_norm(k, w, h)[:4]
  expect = poseda.gpa_jaxpose(
    src[:, 0], tgt['kp2d_norm'][pick, 0], np.tile(cam_jp, (B, 1)), w, h, perm=np.arange(B)
  )
  np.testing.assert_allclose(np.asarray(out['placed'])[:, 0], np.asarray(expect), atol=1e-4)
  # the placed root projects onto the partner's root; the projections are the 2D input
  np.testing.assert_allclose(
    np.asarray(out['kp2d_norm'])[:, 0, 0], tgt['kp2d_norm'][pick, 0, 0], atol=1e-5
  )


def test_mixed_cameras_use_each_partners_own_camera():
  tgt = _target(t=3)
  src = _pose3d(B, 3)
  out = poseda.place_on_target(
    jax.random.PRNGKey(0), jnp.asarray(src), tgt, normalisation='jaxpose'
  )
  pick, placed = np.asarray(out['pick']), np.asarray(out['placed'])
  np.testing.assert_allclose(placed - placed[:, :, :1], src, atol=1e-5)
  np.testing.assert_allclose(
    np.asarray(out['kp2d_norm'])[:, :, 0], tgt['kp2d_norm'][pick][:, :, 0], atol=1e-5
  )
  # depth: fx dx + fy dy over (w2d + h2d) in pixels with the partner's focal length
  px = camera.image_coordinates(tgt['kp2d_norm'][pick], 1088, 1920)
  s = (px.max(2) - px.min(2)).sum(-1) / 2
  ext = src.max(2) - src.min(2)
  f = tgt['cam_intrinsics'][pick]
  z = (f[:, None, 0] * ext[..., 0] + f[:, None, 1] * ext[..., 1]) / (2 * s)
  np.testing.assert_allclose(placed[:, :, 0, 2], z, rtol=1e-4)


@pytest.fixture(scope='module')
def smoke():
  from configs import poseda as cfg

  c = cfg.get_config('3dhp,smoke')
  model = poseda.make_model(c)
  variables = poseda.init_variables(c, model)
  params = variables.pop('params')

  @jax.jit
  def step(params, state, batch, rng):
    return poseda.loss_fn(model, params, state, batch, rng, c)

  return c, model, params, variables, step


def test_loss_reads_target_2d_but_never_target_3d(smoke):
  c, model, params, state, step = smoke
  batch = {'target': _target(), 'source': _source()}
  key = jax.random.PRNGKey(0)
  loss, (scalars, _) = step(params, state, batch, key)
  assert np.isfinite(float(loss)) and float(scalars['loss/augmented']) > 0
  blind = {**batch, 'target': {**batch['target'], 'pose3d_cam': batch['target']['pose3d_cam'] + 1}}
  assert float(step(params, state, blind, key)[0]) == float(loss)
  moved = dict(batch['target'])
  moved['kp2d_norm'] = moved['kp2d_norm'] * 0.5
  assert abs(float(step(params, state, {**batch, 'target': moved}, key)[0]) - float(loss)) > 1e-6


def test_adversarial_schedule_updates_generator_every_step_discriminators_every_other(smoke):
  c, model, params, state, step = smoke
  batch = {'target': _target(), 'source': _source()}
  changed = lambda a, b: float(  # noqa: E731
    max(jnp.abs(x - y).max() for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  )
  s0 = state
  _, (sc, s1) = step(params, s0, batch, jax.random.PRNGKey(1))
  _, (_, s2) = step(params, s1, batch, jax.random.PRNGKey(2))
  assert int(s1['lpa']['step']) == 1 and int(s2['lpa']['step']) == 2
  assert changed(s0['lpa']['gen'], s1['lpa']['gen']) > 0
  assert changed(s1['lpa']['gen'], s2['lpa']['gen']) > 0
  assert changed(s0['lpa']['disc3d'], s1['lpa']['disc3d']) > 0  # step 0: d_every = 2 divides it
  assert changed(s1['lpa']['disc3d'], s2['lpa']['disc3d']) == 0
  assert changed(s1['lpa']['disc2d'], s2['lpa']['disc2d']) == 0
  for k in ('lpa/g_loss', 'lpa/d_3d', 'lpa/d_2d'):
    assert np.isfinite(float(sc[k])) and float(sc[k]) > 0, k
  # the lifter's gradient does not reach LPA's networks
  grads = jax.grad(lambda p: step(p, s0, batch, jax.random.PRNGKey(1))[0])(params)
  assert jax.tree.structure(grads) == jax.tree.structure(params)


def test_without_gpa_the_source_pairs_are_used_as_they_are():
  """gpa = False: the lifter sees the source 2D (target 2D unused by the lifter's loss); LPA's
  augmented poses go back to the source roots and cameras (`place_on_source`)."""
  src = _source()
  kp = np.asarray(poseda.place_on_source(jnp.asarray(src['pose3d_cam']), src))
  np.testing.assert_allclose(kp, src['kp2d_norm'], atol=1e-5)
  from configs import common
  from configs import poseda as cfg

  c = common.apply_overrides(cfg.get_config('3dhp,smoke'), {'method.kwargs.lpa': False})
  c = common.apply_overrides(c, {'method.kwargs.gpa': False})
  model = poseda.make_model(c)
  v = poseda.init_variables(c, model)
  assert 'lpa' not in v
  params = v.pop('params')
  batch = {'target': _target(), 'source': src}
  loss, _ = poseda.loss_fn(model, params, v, batch, jax.random.PRNGKey(0), c)
  moved = {**batch['target'], 'kp2d_norm': batch['target']['kp2d_norm'] * 0.5}
  loss2, _ = poseda.loss_fn(model, params, v, {**batch, 'target': moved}, jax.random.PRNGKey(0), c)
  assert np.isfinite(float(loss)) and float(loss) == float(loss2)


def test_settings_reject_unknown_keys_and_normalisations():
  from configs import poseda as cfg

  c = cfg.get_config('3dhp,smoke')
  with c.method.kwargs.unlocked():
    c.method.kwargs.gpa_normalisation = 'pixels'
  with pytest.raises(ValueError, match="'poseda' or 'jaxpose'"):
    poseda.settings(c)
  with c.method.kwargs.unlocked():
    c.method.kwargs.gpa_normalisation = 'poseda'
    c.method.kwargs.lpa_rate = 1
  with pytest.raises(ValueError, match='lpa_rate'):
    poseda.settings(c)


@pytest.mark.slow
def test_trainer_smoke_two_domains_checkpoint_and_resume(tmp_path):
  from configs import poseda as cfg
  from jaxpose.data import build
  from jaxpose.train import checkpoint, loop

  data = tmp_path / 'data'
  build.ensure_built('deepmimic', data_dir=str(data))
  c = cfg.get_config('3dhp,smoke')
  c.data.data_dir = str(data)
  with c.method.kwargs.unlocked():
    c.method.kwargs.source.data_dir = str(data)
  c.train.update(total_steps=2, ckpt_every=2, log_every=1, allow_config_change=True)
  c.eval.max_batches = 1
  res = loop.run(c, tmp_path / 'run')
  assert np.isfinite(res['mpjpe_mm']) and res['num_frames'] > 0
  rows = [json.loads(x) for x in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  rows = [r for r in rows if 'loss' in r]
  assert [r['step'] for r in rows] == [1, 2]
  assert all(np.isfinite(r['lpa/g_loss']) for r in rows)
  c.train.total_steps = 3
  loop.run(c, tmp_path / 'run')
  saved = checkpoint.load_params(tmp_path / 'run' / 'ckpt' / '3')
  assert int(np.asarray(saved['lpa']['step'])) == 3
