"""Platypose method: the plateau-scheduled guidance, projection, augmentation, loss and predict."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import platypose as recipe
from jaxpose import models
from jaxpose.methods import platypose as m


def _plateau_reference(x0, energy, grad, s, lr0, factor=0.1, thr=1e-4):
  """ReduceLROnPlateau(min, patience 0, rel threshold, eps 1e-8) stepped with the mean energy
  before every SGD update, written out in Python (the torch semantics, research §3.3)."""
  x, lr, best, es = x0.copy(), lr0, np.inf, []
  for _ in range(s):
    e = energy(x)
    es.append(e)
    mean = float(e.mean())
    if mean < best * (1 - thr):
      best = mean
    elif lr - lr * factor > 1e-8:
      lr = lr * factor
    x = x - lr * grad(x)
  return x, np.stack(es)


def test_guidance_matches_the_plateau_rule_and_couples_samples():
  # E_n = a_n (x_n - 1)^2 per sample: a large lr overshoots and the energy rises.
  a = np.array([1.0, 0.05], np.float32)
  energy_np = lambda x: a * ((x - 1) ** 2).sum(-1)
  grad_np = lambda x: 2 * a[:, None] * (x - 1)
  energy = lambda x: a * jnp.sum((x - 1) ** 2, -1)
  x0 = np.zeros((2, 3), np.float32)
  ref_x, ref_e = _plateau_reference(x0, energy_np, grad_np, 5, 3.0)
  x, e = m.guide(jnp.asarray(x0), energy, num_substeps=5, energy_scale=3.0)
  np.testing.assert_allclose(x, ref_x, rtol=1e-5)
  np.testing.assert_allclose(e, ref_e, rtol=1e-5)
  # independent schedules differ: the slow sample is not slowed by the other's overshoot
  xi, _ = m.guide(
    jnp.asarray(x0), energy, num_substeps=5, energy_scale=3.0, independent_samples=True
  )
  r1, _ = _plateau_reference(
    x0[1:],
    lambda x: energy_np(np.tile(x, (2, 1)))[1:],
    lambda x: grad_np(np.tile(x, (2, 1)))[1:],
    5,
    3.0,
  )
  np.testing.assert_allclose(xi[1], r1[0], rtol=1e-5)
  assert not np.allclose(xi[1], x[1])


def test_guidance_stops_on_nan():
  def energy(x):  # decreasing in x, NaN once the total passes 2.5
    return -jnp.sum(x, -1) + jnp.where(jnp.sum(x) > 2.5, jnp.nan, 0.0)

  x, e = m.guide(jnp.ones((2, 1)), energy, num_substeps=4, energy_scale=1.0)
  np.testing.assert_allclose(x, [[2.0], [2.0]])  # one step of lr 1, then frozen
  assert np.isfinite(np.asarray(e)[0]).all() and np.isnan(np.asarray(e)[1:]).all()


def test_projection_pinhole_and_distortion():
  cam = m.nominal_camera(2.0, 1)
  cam = jax.tree.map(lambda a: a[0, 0], cam)
  p = jnp.array([[0.5, -0.25, 2.0]])
  np.testing.assert_allclose(m.project(p, cam), [[0.5, -0.25]], rtol=1e-6)
  cam_d = dict(cam, radial_distortion=jnp.array([[0.1, 0.0, 0.0]]))
  r2 = 0.25**2 + 0.125**2
  np.testing.assert_allclose(
    m.project(p, cam_d), [[0.5 * (1 + 0.1 * r2), -0.25 * (1 + 0.1 * r2)]], rtol=1e-6
  )


def test_monocular_observation_projects_its_root_onto_the_2d_root():
  kp = jax.random.uniform(jax.random.key(0), (2, 3, 17, 2), minval=-0.5, maxval=0.5)
  obs = m.monocular_observation(kp, 2.29, 5.0)
  cam = jax.tree.map(lambda a: a[0, 0], obs['cameras'])
  np.testing.assert_allclose(m.project(obs['root'][0], cam)[:, 0], kp[0, :, 0], atol=1e-6)
  assert obs['x2d'].shape == (2, 1, 3, 17, 2) and float(obs['weights'].min()) == 1.0


@pytest.mark.parametrize('up_axis', [1, 2])
def test_augment_keeps_bone_lengths_and_the_vertical(up_axis):
  pose = jax.random.normal(jax.random.key(2), (16, 4, 17, 3))
  out = m.augment(jax.random.key(3), pose, up_axis=up_axis)
  length = lambda p: jnp.linalg.norm(p[..., 1:, :] - p[..., :1, :], axis=-1)
  np.testing.assert_allclose(jnp.sort(length(out), -1), jnp.sort(length(pose), -1), rtol=1e-4)
  np.testing.assert_allclose(
    jnp.sort(out[..., up_axis], -1), jnp.sort(pose[..., up_axis], -1), rtol=1e-5, atol=1e-6
  )


def test_centre_pose_keeps_the_trajectory():
  pose = jax.random.normal(jax.random.key(4), (2, 3, 17, 3))
  c = m.centre_pose(pose)
  np.testing.assert_allclose(c[..., 0, :], pose[..., 0, :])
  np.testing.assert_allclose(c[..., 1:, :], pose[..., 1:, :] - pose[..., :1, :], atol=1e-6)


@pytest.fixture(scope='module')
def setup():
  config = recipe.get_config('h36m_256,smoke')
  model = models.build('platypose', config.model.variant, **config.model.kwargs)
  x = jnp.zeros((1, config.data.frames, 17, 3))
  variables = jax.jit(lambda: model.init(jax.random.key(0), x, train=False))()
  return config, model, variables


def test_loss_gradients(setup):
  config, model, variables = setup
  t = config.data.frames
  batch = {
    'pose3d_cam': jax.random.normal(jax.random.key(5), (2, t, 17, 3)) * 0.2,
    'pose3d_root': jnp.ones((2, t, 1, 3)),
    'valid': jnp.ones((2, t), bool),
  }
  state = {'buffers': variables['buffers']}
  f = jax.jit(
    jax.value_and_grad(lambda p: m.loss_fn(model, p, state, batch, jax.random.key(6), config)[0])
  )
  loss, g = f(variables['params'])
  assert np.isfinite(loss) and loss > 0
  leaves = jax.tree.leaves(g)
  assert all(np.isfinite(x).all() for x in leaves) and any(np.any(x != 0) for x in leaves)


def test_predict_and_sample_shapes(setup):
  config, model, variables = setup
  kp = jax.random.uniform(
    jax.random.key(7), (2, config.data.frames, 17, 3), minval=-0.3, maxval=0.3
  )
  out = jax.jit(lambda v, x: m.predict(model, v, x, config))(variables, kp)
  assert out.shape == (2, config.data.frames, 17, 3) and np.isfinite(np.asarray(out)).all()
  np.testing.assert_allclose(np.asarray(out)[..., 0, :], 0.0)
  with pytest.raises(ValueError, match='needs a key'):
    m.sample(model, variables, m.monocular_observation(kp, 2.0, 5.0), num_samples=2)


def test_unknown_kwargs_raise():
  c = recipe.get_config('h36m')
  assert m.settings(c)['energy_scale'] == 30.0
  assert m.settings(recipe.get_config('h36m,data=mpi_inf_3dhp'))['energy_scale'] == 10.0
  with c.method.kwargs.unlocked():
    c.method.kwargs.scale = 1.0
  with pytest.raises(ValueError, match='scale'):
    m.settings(c)


def _camera_batch(t, b=2):
  k = jnp.array([1145.0, 1144.0, 512.0, 515.0, 0.0, 0.0, 0.0, 0.0, 0.0])
  pose = jax.random.normal(jax.random.key(8), (b, t, 17, 3)) * 0.2
  return {
    'pose3d_cam': pose - pose[..., :1, :],
    'pose3d_root': jnp.broadcast_to(jnp.array([0.1, -0.2, 5.0]), (b, t, 1, 3)),
    'cam_intrinsics': jnp.broadcast_to(k, (b, 9)),
    'res_w': jnp.full((b,), 1000, jnp.int32),
    'res_h': jnp.full((b,), 1002, jnp.int32),
    'scale_2_5d': jnp.ones((b, t)),
  }


def test_batch_cameras_project_like_videopose3d_without_distortion():
  from jaxpose.geometry import camera

  batch = _camera_batch(2)
  pts = batch['pose3d_cam'] + batch['pose3d_root']
  cam = jax.tree.map(lambda a: a[0, 0], m.batch_cameras(batch))
  k = camera.intrinsics_px_to_norm(batch['cam_intrinsics'], batch['res_w'], batch['res_h'])
  vp3d = camera.project_to_2d(pts[0], k[0])
  np.testing.assert_allclose(m.project(pts[0], cam), vp3d, atol=1e-5)


def test_eval_metrics_on_a_camera_frame_batch(setup):
  config, model, variables = setup
  batch = _camera_batch(config.data.frames)
  cam = jax.tree.map(lambda a: a[:, 0], m.batch_cameras(batch))
  pts = batch['pose3d_cam'] + batch['pose3d_root']
  batch['kp2d_norm'] = jax.vmap(m.project)(pts, cam) + 0.01
  out = jax.jit(lambda v, b: m.eval_metrics(model, v, b, config))(variables, batch)
  assert set(out) == {'min_mpjpe_mm', 'min_p_mpjpe_mm', 'best_mpjve_mm'}
  for v in out.values():
    assert v.shape == (2, config.data.frames) and np.isfinite(np.asarray(v)).all()
  assert np.all(np.asarray(out['min_p_mpjpe_mm']) <= np.asarray(out['min_mpjpe_mm']) + 1e-3)
