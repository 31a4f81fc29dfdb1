"""UAO method: the uncertainty loss, the test-time optimisation and the uncertainty wrapper."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from jaxpose import models
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import uao as m
from jaxpose.models import motionagformer, uao

SK = skel.get('h36m17')
PERM = jnp.asarray(SK.flip_perm)
# Normalised intrinsics of an H36M camera (fx, fy, cx, cy, k1, k2, k3, p1, p2).
CAM = np.array([2.29, 2.288, 0.025, 0.029, -0.207, 0.248, -0.003, -0.001, -0.0014], np.float32)


def _scene(b: int, t: int = 1, seed: int = 0):
  """Physically consistent inputs: root-relative poses (m) 4-5 m away and their noisy projections."""
  rng = np.random.default_rng(seed)
  rel = rng.normal(0, 0.25, (b, t, 17, 3)).astype(np.float32)
  rel[:, :, 0] = 0
  root = np.stack([rng.uniform(-0.3, 0.3, b), rng.uniform(-0.2, 0.2, b), rng.uniform(4, 5, b)], -1)
  root = np.broadcast_to(root[:, None, None].astype(np.float32), (b, t, 1, 3))
  cam = np.broadcast_to(CAM, (b, 9)).copy()
  kp2d = np.asarray(camera.project_to_2d(rel + root, cam)) + rng.normal(0, 0.003, (b, t, 17, 2))
  return kp2d.astype(np.float32), cam, np.ascontiguousarray(root), rel


@pytest.fixture(scope='module')
def gumlp():
  model = models.build('uao', 'published', **uao.TEST_OVERRIDES)
  x = jnp.zeros((1, 1, 17, 2))
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  return model, variables


def _proj_error(model, variables, z, kp2d, cam, root):
  """Mean 2D error (B,) of f(z) placed at the root and projected, against the observed kp2d."""
  mu = model.apply(variables, z, train=False)
  placed = (mu + root).at[:, :, 0].set(root[:, :, 0])
  return np.linalg.norm(np.asarray(camera.project_to_2d(placed, cam)) - kp2d, axis=-1).mean((1, 2))


def test_uncertainty_nll_values_and_gradient_at_zero():
  mu = jnp.zeros((2, 1, 17, 3))
  gt = mu.at[0, 0, 3].set(jnp.array([3.0, 4.0, 0.0]))  # one joint 5 m off in sample 0
  log_s = jnp.full((2, 1, 17, 1), jnp.log(2.0))
  nll = m.uncertainty_nll(mu, log_s, gt)
  np.testing.assert_allclose(nll, [5 / 2 / 17 + np.log(2.0), np.log(2.0)], rtol=1e-6)
  np.testing.assert_allclose(m.uncertainty_nll(mu, log_s[..., 0], gt), nll)  # (B, T, J) log_s
  g = jax.grad(lambda p: m.uncertainty_nll(p, log_s, gt).sum())(mu)
  assert np.all(np.isfinite(g)) and not np.any(g[1])  # torch's zero gradient at ||.|| = 0


def _tto(model, variables, kp2d, cam, root, **kw):
  """The one TTO configuration most tests share (4 steps, trajectory), so it compiles once."""
  return m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, iters=4, trajectory=True, **kw)


def test_zero_iterations_is_the_flip_test(gumlp):
  model, variables = gumlp
  kp2d, cam, root, _ = _scene(2)
  out = m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, iters=0)
  config = mlc.ConfigDict({'eval': {'flip_test': True}, 'data': {'skeleton': 'h36m17'}})
  ref = m.predict(model, variables, kp2d, config)
  np.testing.assert_allclose(out['pose3d'], ref, atol=1e-6)
  assert not np.any(out['pose3d'][:, :, 0])
  np.testing.assert_array_equal(out['z'], kp2d)


def test_tto_moves_the_input_by_adam_steps_and_fits_the_projection(gumlp):
  model, variables = gumlp
  kp2d, cam, root, _ = _scene(2)
  out = _tto(model, variables, kp2d, cam, root)
  traj = np.asarray(out['z_traj'])
  assert traj.shape == (5, 2, 1, 17, 2)
  np.testing.assert_array_equal(traj[0], kp2d)
  np.testing.assert_array_equal(traj[-1], out['z'])
  np.testing.assert_array_equal(out['z_flip_traj'][0], skel.flip_pose(kp2d, SK))
  step1 = np.abs(traj[1] - traj[0])
  # Adam's first step is lr * sign(g) wherever the gradient is non-negligible.
  assert np.allclose(step1[step1 > 1e-4], 1e-3, rtol=1e-3) and (step1 > 1e-4).mean() > 0.9
  # Without the prior and with larger steps, the TTO fits the 2D evidence.
  before = _proj_error(model, variables, kp2d, kp2d, cam, root)
  fit = _tto(model, variables, kp2d, cam, root, lr=2e-2, w_prior=0.0)
  after = _proj_error(model, variables, fit['z'], kp2d, cam, root)
  assert np.all(after < 0.9 * before), (before, after)


def test_prior_alone_does_not_move_the_input(gumlp):
  """At z0 the prior sits at its minimum (mu(z0) = mu0) with the official zero gradient, so
  without the projection term no step is ever taken, however XLA rounds the two forward passes."""
  model, variables = gumlp
  kp2d, cam, root, _ = _scene(2)
  out = _tto(model, variables, kp2d, cam, root, w_proj=0.0)
  np.testing.assert_array_equal(out['z'], kp2d)
  np.testing.assert_array_equal(out['z_flip'], skel.flip_pose(kp2d, SK))


def test_per_sample_is_independent_of_the_batch_and_batch_mode_agrees(gumlp):
  model, variables = gumlp
  kp2d, cam, root, _ = _scene(2, seed=1)
  full = _tto(model, variables, kp2d, cam, root)
  # One sample at a time (lax.map, chunk 1) gives each sample's optimisation on its own.
  alone = m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, iters=4, chunk_size=1)
  np.testing.assert_allclose(alone['pose3d'], full['pose3d'], atol=1e-5)
  np.testing.assert_allclose(alone['z'], full['z'], atol=1e-5)
  batch = m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, iters=4, mode='batch')
  # Only Adam's eps sees the 1/B scale of the batch-mean gradient.
  np.testing.assert_allclose(batch['z'], full['z'], atol=1e-5)
  with pytest.raises(ValueError, match='mode'):
    m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, mode='sum')
  with pytest.raises(ValueError, match='chunk_size'):
    m.tto(model, variables, kp2d, cam, root, flip_perm=PERM, mode='batch', chunk_size=1)


def test_loss_fn_trains_the_uncertainty_and_not_the_graph(gumlp):
  model, variables = gumlp
  kp2d, _, _, rel = _scene(2)
  batch = {'kp2d_norm': jnp.asarray(kp2d), 'pose3d_cam': jnp.asarray(rel)}
  config = mlc.ConfigDict({'method': {'name': 'uao'}})
  fn = lambda p: m.loss_fn(model, p, {}, batch, jax.random.key(2), config)
  (loss, (scalars, state)), grads = jax.jit(jax.value_and_grad(fn, has_aux=True))(
    variables['params']
  )
  assert np.isfinite(loss) and state == {}
  assert set(scalars) >= {'loss', 'mpjpe', 'log_s_mean'}
  assert not np.any(grads['adj'])
  assert np.any(grads['pred_s_fc5']['kernel']) and np.any(grads['pred_mu_fc5']['kernel'])


def test_predict_batch_runs_the_tto_from_the_batch(gumlp):
  model, variables = gumlp
  kp2d, _, root, _ = _scene(2)
  res_w, res_h = np.array([1000.0, 1000.0]), np.array([1002.0, 1002.0])
  intr_px = np.array([1145.0, 1144.0, 512.5, 515.5, -0.207, 0.248, -0.003, -0.001, -0.0014])
  batch = {
    'kp2d_norm': kp2d,
    'cam_intrinsics': np.broadcast_to(intr_px, (2, 9)).astype(np.float32),
    'res_w': res_w,
    'res_h': res_h,
    'pose3d_root': root,
  }
  tto = dict(tto_iters=4, tto_lr=1e-3, tto_w_prior=0.005, tto_w_proj=1.0, tto_mode='per_sample')
  config = mlc.ConfigDict({'method': {'kwargs': tto}, 'data': {'skeleton': 'h36m17'}})
  pose = m.predict_batch(model, variables, batch, config)
  cam = np.concatenate([intr_px[:2] / 500, [intr_px[2] / 500 - 1, intr_px[3] / 500 - 1.002]])
  ref = _tto(
    model, variables, kp2d, np.broadcast_to(np.concatenate([cam, intr_px[4:]]), (2, 9)), root
  )
  np.testing.assert_allclose(pose, ref['pose3d'], atol=1e-6)
  config.method.kwargs.tto_iters = 0  # TTO off: the plain flip test
  config.eval = {'flip_test': True}
  plain = m.predict_batch(model, variables, batch, config)
  np.testing.assert_array_equal(plain, m.predict(model, variables, kp2d, config))


# --- any lifter: the uncertainty wrapper on MotionAGFormer (seq2seq, 3 input channels) and on
# VideoPose3D (receptive field, centre frame out).


@pytest.fixture(scope='module')
def wrapped_mag():
  lifter = models.build('motionagformer', 'xs', **motionagformer.TEST_OVERRIDES)
  model = uao.WithUncertainty(lifter, hidden=8, rep_layer='head')
  x = models.example_input(model, batch=2)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  return lifter, model, variables


def test_wrapper_keeps_the_lifter_and_adds_log_scale(wrapped_mag):
  lifter, model, variables = wrapped_mag
  t = lifter.n_frames
  assert (model.num_frames, model.num_joints, model.in_channels) == (t, 17, 3)
  x = jax.random.normal(jax.random.key(5), (2, t, 17, 3))
  pose, log_s = model.apply(variables, x, train=False, return_uncertainty=True)
  assert pose.shape == (2, t, 17, 3) and log_s.shape == (2, t, 17, 1)
  lifter_vars = {k: v['lifter'] for k, v in variables.items()}
  np.testing.assert_allclose(pose, lifter.apply(lifter_vars, x, train=False), atol=1e-6)
  # The head reads the representation (the input of the lifter's `head` layer).
  assert variables['params']['uncertainty_fc1']['kernel'].shape[0] == lifter.dim_rep
  with pytest.raises(ValueError, match='rep_layer'):
    uao.WithUncertainty(lifter, rep_layer='nope').apply(variables, x, train=False)


def test_tto_on_motionagformer(wrapped_mag):
  lifter, model, variables = wrapped_mag
  kp2d, cam, root, _ = _scene(2, t=lifter.n_frames, seed=3)
  x = np.concatenate([kp2d, np.full(kp2d.shape[:-1] + (1,), 0.9, np.float32)], -1)
  out = _tto(model, variables, x, cam, root)
  assert out['pose3d'].shape == (2, lifter.n_frames, 17, 3)
  assert out['z'].shape == kp2d.shape and out['z_traj'].shape == (5, *kp2d.shape)
  assert np.all(np.isfinite(out['pose3d']))
  assert 0 < np.abs(out['z'] - kp2d).max() <= 4 * 1e-3 * 1.01  # at most ~lr per Adam step


def test_tto_on_a_receptive_field_lifter_uses_the_centre_frame():
  """VideoPose3D (RF 9 -> 1 frame) with the output-based head: only the centre frame's 2D is
  the projection target, but every input frame may move (they all feed the prediction)."""
  lifter = models.build('videopose3d', 'xs', filter_widths=(3, 3), channels=16)
  model = uao.WithUncertainty(lifter, hidden=8)
  kp2d, cam, root, _ = _scene(2, t=9, seed=4)
  variables = jax.jit(lambda k: model.init(k, kp2d, train=False))(jax.random.key(0))
  assert variables['params']['uncertainty_fc1']['kernel'].shape[0] == 3 + 2  # pose + centre 2D
  out = m.tto(model, variables, kp2d, cam, root[:, 4:5], flip_perm=PERM, iters=2, mode='batch')
  assert out['pose3d'].shape == (2, 1, 17, 3)
  assert np.abs(np.asarray(out['z']) - kp2d).max(axis=(0, 2, 3))[4] > 0


def test_tto_settings_go_through_the_method_kwargs_validator():
  config = mlc.ConfigDict({'method': {'kwargs': {'tto_iters': 2, 'tto_lr': 5e-4}}})
  d = m.settings(config)
  assert d['tto_iters'] == 2 and d['tto_lr'] == 5e-4 and d['tto_w_prior'] == 0.005
  config.method.kwargs.tto_iter = 3  # a typo used to be ignored (prefix matching only)
  with pytest.raises(ValueError, match="Unknown method.kwargs key\\(s\\) \\['tto_iter'\\] for uao"):
    m.settings(config)
