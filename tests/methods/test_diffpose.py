"""DiffPose method: schedule, skip grids, GMM targets, the training loss and the DDIM sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import diffpose as recipe
from jaxpose import models
from jaxpose.methods import diffpose as m
from jaxpose.models import diffpose
from jaxpose.models.layers import diffusion


def test_schedule_and_skip_grids():
  b = diffusion.beta_schedule()
  assert b.dtype == np.float32 and b.shape == (51,)
  np.testing.assert_allclose(b[[0, -1]], [1e-4, 1e-3], rtol=1e-6)
  ac = diffusion.alphas_cumprod(b)
  np.testing.assert_allclose(ac, np.cumprod(1 - b.astype(np.float64)), rtol=1e-6)
  assert m.skip_grid(24, 2) == (0, 12)
  assert m.skip_grid(12, 2) == (0, 6)
  assert m.skip_grid(6, 1) == (0,)
  assert m.skip_grid(24, 4, 'quad') == tuple(int(s) for s in np.linspace(0, np.sqrt(19.2), 4) ** 2)
  with pytest.raises(ValueError, match='skip_type'):
    m.skip_grid(24, 2, 'cosine')


def test_ddim_last_step_returns_x0_and_eta0_is_deterministic():
  co = m.ddim_coefficients((0, 12), diffusion.beta_schedule(), eta=0.0)
  np.testing.assert_array_equal(co['t'], [12, 0])
  assert co['sqrt_a_next'][-1] == 1 and co['c2'][-1] == 0 and np.all(co['c1'] == 0)
  co1 = m.ddim_coefficients((0, 12), diffusion.beta_schedule(), eta=1.0)
  assert co1['c1'][0] > 0 and co1['c1'][-1] == 0


def test_antithetic_timesteps_pair_up():
  t = np.asarray(m.antithetic_timesteps(jax.random.key(0), 9, 51))
  assert t.shape == (9,) and t.min() >= 0 and t.max() <= 50
  np.testing.assert_array_equal(t[:4] + t[5:9], 50)


def test_gmm_targets_follow_the_weights():
  w = jnp.array([0.2, 0.8, 0.0])
  comp = jnp.stack(
    [w, jnp.array([1.0, 2.0, 3.0]), jnp.zeros(3), jnp.array([0.1, 0.2, 0.3]), jnp.ones(3)], -1
  )  # (K, 5)
  gmm = jnp.broadcast_to(comp, (4000, 17, 3, 5))
  uv, s = m.gmm_targets(jax.random.key(1), gmm)
  assert uv.shape == s.shape == (4000, 17, 2)
  u = np.asarray(uv[..., 0])
  assert not np.any(u == 3.0)  # zero weight never drawn
  np.testing.assert_allclose(np.mean(u == 2.0), 0.8, atol=0.02)
  np.testing.assert_array_equal(np.asarray(s[..., 0])[u == 1.0], np.float32(0.1))


def test_centring_modes():
  pose = jnp.arange(2 * 17 * 3, dtype=jnp.float32).reshape(2, 17, 3) + 1
  off = m.centre_root(pose, official=True)
  fix = m.centre_root(pose)
  np.testing.assert_array_equal(off[:, 1:], pose[:, 1:])  # the released aliasing: joint 0 only
  np.testing.assert_array_equal(off[:, 0], 0)
  np.testing.assert_allclose(fix, pose - pose[:, :1])


@pytest.fixture(scope='module')
def setup():
  config = recipe.get_config('frame,smoke')
  model = models.build('diffpose', 'frame', **config.model.kwargs)
  kp2d = jax.random.uniform(jax.random.key(0), (3, 1, 17, 2), minval=-1, maxval=1)
  variables = jax.jit(lambda: model.init(jax.random.key(1), kp2d, train=False))()
  return config, model, variables, kp2d


def _batch(kp2d, gmm=False):
  b = {
    'kp2d_norm': kp2d,
    'pose3d_cam': jax.random.normal(jax.random.key(3), (*kp2d.shape[:-1], 3)),
    'valid': jnp.ones(kp2d.shape[:2], bool),
  }
  if gmm:
    w = jnp.broadcast_to(jnp.array([0.5, 0.5, 0.0]), (*kp2d.shape[:-1], 3))
    mu = jnp.broadcast_to(kp2d[..., None, :], (*kp2d.shape[:-1], 3, 2))
    b['kp2d_gmm'] = jnp.concatenate([w[..., None], mu, jnp.full_like(mu, 0.05)], -1)
  return b


def test_loss_trains_both_networks(setup):
  config, model, variables, kp2d = setup
  grad_fn = jax.jit(jax.grad(lambda p, b: m.loss_fn(model, p, {}, b, jax.random.key(4), config)[0]))
  g = grad_fn(variables['params'], _batch(kp2d, gmm=True))
  for part in ('pose', 'diff'):
    leaves = jax.tree.leaves(g[part])
    assert all(np.isfinite(x).all() for x in leaves)
    assert any(np.any(x != 0) for x in leaves), part


def test_loss_without_mixtures_uses_the_constant_scale(setup):
  config, model, variables, kp2d = setup
  f = jax.jit(lambda p, b: m.loss_fn(model, p, {}, b, jax.random.key(4), config))
  loss, (scalars, _) = f(variables['params'], _batch(kp2d))
  assert {'loss', 'loss/denoise', 'loss/pose'} <= set(scalars)
  np.testing.assert_allclose(loss, scalars['loss/denoise'] + scalars['loss/pose'], rtol=1e-5)
  assert np.isfinite(loss) and loss > 0


def test_sampler_samples_and_noise(setup):
  config, model, variables, kp2d = setup
  det = m.sample(model, variables, kp2d, seq=(0, 12), num_samples=2)
  assert det['samples'].shape == (2, 3, 1, 17, 3) and det['pose'].shape == (3, 1, 17, 3)
  np.testing.assert_allclose(det['samples'][0], det['samples'][1], atol=1e-6)  # eta 0: equal
  np.testing.assert_allclose(det['pose'][..., 0, :], 0, atol=1e-6)
  sto = m.sample(model, variables, kp2d, jax.random.key(5), seq=(0, 12), eta=1.0, num_samples=2)
  assert not np.allclose(sto['samples'][0], sto['samples'][1], atol=1e-6)
  np.testing.assert_allclose(sto['pose'], sto['samples'].mean(0), atol=1e-5)
  with pytest.raises(ValueError, match='needs a key'):
    m.sample(model, variables, kp2d, seq=(0, 12), eta=1.0, num_samples=2)


def test_predict_uses_the_config_grid(setup):
  config, model, variables, kp2d = setup
  out = jax.jit(lambda v, x: m.predict(model, v, x, config))(variables, kp2d)
  ref = m.sample(model, variables, kp2d, seq=(0, 12))['pose']
  np.testing.assert_allclose(out, ref, atol=1e-6)


def test_unknown_kwargs_raise(setup):
  config = recipe.get_config('frame,smoke')
  with config.method.kwargs.unlocked():
    config.method.kwargs.stepz = 3
  with pytest.raises(ValueError, match='stepz'):
    m.settings(config)


def test_video_recipe_settings():
  c = recipe.get_config('video')
  d = m.settings(c)
  assert m.skip_grid(d['test_num_timesteps'], d['test_steps']) == (0,)
  assert d['flip_init'] and not d['centre_init']
  assert c.model.variant == 'video' and c.data.frames == 243
  assert diffpose.VARIANTS['video']['initialiser'] == 'mixste'


def test_eval_metrics_best_of_samples(setup):
  config, model, variables, kp2d = setup
  batch = {
    'kp2d_norm': kp2d,
    'pose3d_cam': jax.random.normal(jax.random.key(6), (3, 1, 17, 3)),
    'scale_2_5d': jnp.ones((3, 1)),
  }
  assert m.eval_metrics(model, variables, batch, config) == {}  # one sample: nothing to add
  c = recipe.get_config('frame,smoke')
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(num_samples=3, eta=1.0)
  out = jax.jit(lambda v, b: m.eval_metrics(model, v, b, c))(variables, batch)
  assert out['best_of_s_mpjpe_mm'].shape == (3, 1)
  s = m.sample_from_config(model, variables, kp2d, jax.random.key(0), c)['samples']
  gt = batch['pose3d_cam'] - batch['pose3d_cam'][..., :1, :]
  per = np.linalg.norm(1000 * (np.asarray(s) - np.asarray(gt)), axis=-1).mean(-1)  # (S, B, T)
  np.testing.assert_allclose(out['best_of_s_mpjpe_mm'], per.min(0), rtol=1e-4)
