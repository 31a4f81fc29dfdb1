"""D3DP method: schedule and DDIM grid, sampler contract (keys, injected noise, one compile per
(H, K), any lifter), flip equivariance, JPMA, and the engine entry points on a tiny denoiser."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import d3dp as d3dp_config
from jaxpose import models
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import d3dp
from jaxpose.metrics import multihyp_protocols as mp
from jaxpose.models.layers import diffusion

B, T, J = 2, 5, 17
LIFTER_OVERRIDES = {
  'mixste': (('dim', 32), ('depth', 2)),
  'motionagformer': (('n_layers', 1), ('dim_feat', 16), ('dim_rep', 8), ('num_heads', 2)),
}


def _denoiser(lifter):
  model = models.build(
    'd3dp',
    num_frames=T,
    lifter=lifter,
    lifter_kwargs=LIFTER_OVERRIDES[lifter],
    lifter_variant='xs' if lifter == 'motionagformer' else '',
  )
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, T, J, 5)), train=False))
  variables = init(jax.random.key(0))
  return model, variables


@pytest.fixture(scope='module')
def tiny():
  return _denoiser('mixste')


@pytest.fixture(scope='module')
def kp2d():
  return jax.random.uniform(jax.random.key(1), (B, T, J, 2), minval=-0.5, maxval=0.5)


@pytest.mark.parametrize(
  'k, expected',
  [
    (1, [999, -1]),
    (3, [999, 665, 332, -1]),
    (5, [999, 799, 599, 399, 199, -1]),
    (10, [999, 899, 799, 699, 599, 499, 399, 299, 199, 99, -1]),
    (20, [999, *range(949, 48, -50), -1]),
  ],
)
def test_ddim_grid_is_the_official_one(k, expected):
  np.testing.assert_array_equal(d3dp.ddim_timesteps(k), expected)


def test_schedule_and_ddim_coefficients():
  s = diffusion.cosine_schedule(1000)
  ac = s['alphas_cumprod']
  assert ac.dtype == np.float64 and ac.shape == (1000,)
  assert np.all(np.diff(ac) < 0) and 0 < ac[-1] < ac[0] < 1
  assert s['betas'].max() <= 0.999
  co = d3dp.ddim_coefficients(5)
  ab_next = co['sqrt_ab_next'].astype(np.float64) ** 2
  np.testing.assert_allclose(co['c'][:-1] ** 2 + co['sigma'][:-1] ** 2, 1 - ab_next[:-1], atol=1e-6)
  assert (co['sqrt_ab_next'][-1], co['c'][-1], co['sigma'][-1]) == (1.0, 0.0, 0.0)
  assert np.all(d3dp.ddim_coefficients(5, eta=0.0)['sigma'] == 0)  # deterministic DDIM


def test_q_sample_noise_free_and_clamped():
  x0 = jax.random.uniform(jax.random.key(0), (3, T, J, 3), minval=-2.0, maxval=2.0)
  t = jnp.array([0, 500, 999])
  sqrt_ab = np.sqrt(diffusion.cosine_schedule()['alphas_cumprod'][np.asarray(t)])
  xt = d3dp.q_sample(x0, t, jnp.zeros_like(x0), scale=2.0)
  expected = np.clip(sqrt_ab[:, None, None, None] * 2.0 * np.asarray(x0), -2.2, 2.2) / 2.0
  np.testing.assert_allclose(xt, expected, atol=1e-6)
  big = d3dp.q_sample(x0, t, 100.0 * jnp.ones_like(x0))
  assert float(jnp.abs(big).max()) == pytest.approx(1.1)


def test_sampler_keys_and_injected_noise(tiny, kp2d):
  model, variables = tiny
  h, k = 2, 3
  run = lambda key: d3dp.sample(model, variables, kp2d, key, num_hypotheses=h, num_steps=k)
  out = run(jax.random.key(7))
  assert out.shape == (B, k, h, T, J, 3) and bool(jnp.isfinite(out).all())
  np.testing.assert_array_equal(out, run(jax.random.key(7)))
  assert not np.allclose(out, run(jax.random.key(8)))
  assert not np.allclose(out[:, :, 0], out[:, :, 1])  # independent hypotheses
  # The documented draw order: key -> K keys; x_T from the first, z_k from key k.
  keys = jax.random.split(jax.random.key(7), k)
  noise = jnp.stack([jax.random.normal(kk, (B, h, T, J, 3)) for kk in keys])
  injected = d3dp.sample(model, variables, kp2d, noise=noise, num_hypotheses=h, num_steps=k)
  np.testing.assert_allclose(injected, out, atol=1e-6)
  with pytest.raises(ValueError, match='noise must be'):
    d3dp.sample(model, variables, kp2d, noise=noise[:2], num_hypotheses=h, num_steps=k)


def test_sampler_traces_once_per_h_and_k(tiny, kp2d):
  model, variables = tiny
  counted = jax.jit(
    chex.assert_max_traces(d3dp.sample.__wrapped__, n=1), static_argnames=d3dp._SAMPLE_STATIC
  )
  for seed in range(3):  # new keys and inputs, same (H, K): no retrace
    counted(model, variables, kp2d + seed, jax.random.key(seed), num_hypotheses=2, num_steps=2)
  with pytest.raises(AssertionError):  # the counter can fail: a new H is a new trace
    counted(model, variables, kp2d, jax.random.key(0), num_hypotheses=1, num_steps=2)


@pytest.mark.parametrize('lifter', ['mixste', 'motionagformer'])
def test_sampler_wraps_any_lifter(lifter, kp2d, tiny):
  model, variables = tiny if lifter == 'mixste' else _denoiser(lifter)
  assert set(variables['params']) == {'lifter', 'time_mlp_1', 'time_mlp_3'}
  x = jnp.concatenate([kp2d, jnp.ones((B, T, J, 3))], axis=-1)
  apply = jax.jit(lambda t: model.apply(variables, x, train=False, t=t))
  y0, y1 = apply(jnp.zeros(B, jnp.int32)), apply(jnp.full(B, 500, jnp.int32))
  assert not np.allclose(y0, y1), f'{lifter}: the timestep does not reach the lifter'
  # (H, K) chosen at inference with the same weights (mixste also runs (2, 3) above).
  for h, k in [(1, 1), (3, 2)] if lifter == 'mixste' else [(3, 2)]:
    out = d3dp.sample(model, variables, kp2d, jax.random.key(0), num_hypotheses=h, num_steps=k)
    assert out.shape == (B, k, h, T, J, 3) and bool(jnp.isfinite(out).all())


def test_lifter_without_token_hook_uses_its_named_embedding(kp2d):
  kw = dict(num_frames=T, lifter='convformer', lifter_kwargs=(('dim', 16), ('depth', 1)))
  x = jnp.concatenate([kp2d, jnp.ones((B, T, J, 3))], axis=-1)
  init = lambda m: jax.eval_shape(lambda: m.init(jax.random.key(0), x, train=False))
  with pytest.raises(ValueError, match='has no token_hook'):
    init(models.build('d3dp', **kw))
  with pytest.raises(ValueError, match='0 times'):  # a wrong name would drop the timestep
    init(models.build('d3dp', embed='nope', **kw))
  model = models.build('d3dp', embed='joint_embed', **kw)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  apply = jax.jit(lambda t: model.apply(variables, x, train=False, t=t))
  assert not np.allclose(apply(jnp.zeros(B, jnp.int32)), apply(jnp.full(B, 500, jnp.int32)))


def test_flip_averaged_prediction_is_flip_equivariant(tiny, kp2d):
  model, variables = tiny
  perm = skel.get('h36m17').flip_perm
  x = jax.random.normal(jax.random.key(3), (B, 2, T, J, 3))
  t = jnp.array([10, 700])

  @jax.jit
  def both(u, x):
    kw = dict(sqrt_ab=0.5, sqrt_one_minus_ab=0.8)
    tta = d3dp.denoise(model, variables, u, x, t, flip_perm=perm, **kw)
    return tta, d3dp.denoise(model, variables, u, x, t, flip_perm=None, **kw)[0]

  (x0, eps), _ = both(kp2d, x)
  (x0_f, eps_f), plain_f = both(d3dp._flip(kp2d, perm), d3dp._flip(x, perm))
  np.testing.assert_allclose(x0_f, d3dp._flip(x0, perm), atol=1e-5)
  np.testing.assert_allclose(eps_f, d3dp._flip(eps, perm), atol=1e-5)
  assert not np.allclose(plain_f, d3dp._flip(x0, perm), atol=1e-5)  # without TTA it is not


def _intrinsics_px():
  return np.array([1145.0, 1144.0, 512.0, 515.0, -0.2, 0.24, -0.0017, -0.0009, -0.0029], np.float32)


def test_jpma_picks_the_hypothesis_nearest_in_2d():
  rng = np.random.default_rng(0)
  gt = rng.normal(0, 0.2, (1, T, J, 3)).astype(np.float32)
  gt[..., 0, :] = 0
  root = np.array([0.1, -0.2, 5.0], np.float32) * np.ones((1, T, 1, 3), np.float32)
  k = _intrinsics_px()
  cam = camera.normalize_intrinsics(k[:2], k[2:4], k[4:7], k[7:], 1000, 1002)
  kp2d = np.asarray(camera.project_to_2d(gt + root, cam))
  # Three hypotheses: the truth shifted by 1, 5 and 10 cm per joint, with the best one varying by
  # joint; JPMA must recover the per-joint order.
  shift = np.array([0.01, 0.05, 0.10], np.float32)
  order = np.stack([rng.permutation(3) for _ in range(J)], axis=-1)  # (3, J)
  hyps = gt[:, None] + shift[order][None, :, None, :, None] * np.array([1.0, 1.0, 0.0], np.float32)
  hyps[..., 0, :] = 0
  out = d3dp.jpma(hyps[:, None], kp2d, root, cam)  # K = 1
  best = np.argmin(order, axis=0)  # hypothesis with the 1 cm shift, per joint
  np.testing.assert_array_equal(
    np.asarray(out['index'])[0, 0, :, 1:], np.broadcast_to(best, (T, J))[:, 1:]
  )
  chosen = np.take_along_axis(hyps[0], best[None, None, :, None], axis=0)[0]
  np.testing.assert_allclose(out['pose'][0, 0, :, 1:], chosen[:, 1:], atol=1e-7)


def _batch():
  rng = np.random.default_rng(1)
  pose = rng.normal(0, 0.2, (B, T, J, 3)).astype(np.float32)
  pose[..., 0, :] = 0
  root = np.array([0.0, 0.1, 4.5], np.float32) * np.ones((B, T, 1, 3), np.float32)
  k = np.tile(_intrinsics_px(), (B, 1))
  batch = {
    'pose3d_cam': pose,
    'pose3d_root': root,
    'cam_intrinsics': k,
    'res_w': np.full(B, 1000, np.int32),
    'res_h': np.full(B, 1002, np.int32),
    'valid': np.ones((B, T), bool),
    'scale_2_5d': np.ones((B, T), np.float32),
  }
  cam = np.asarray(camera.intrinsics_px_to_norm(k, batch['res_w'], batch['res_h']))
  batch['kp2d_norm'] = np.asarray(camera.project_to_2d(pose + root, cam), np.float32)
  return {k: jnp.asarray(v) for k, v in batch.items()}


def test_engine_entry_points(tiny):
  model, variables = tiny
  config = d3dp_config.get_config('smoke')
  assert config.method.name == 'd3dp' and not config.data.use_conf
  batch = _batch()

  def loss(params, rng):
    return d3dp.loss_fn(model, params, {}, batch, rng, config)

  step = jax.jit(jax.value_and_grad(loss, has_aux=True))
  (value, (scalars, _)), grads = step(variables['params'], jax.random.key(0))
  assert np.isfinite(float(value)) and float(value) > 0 and 'loss/mpjpe' in scalars
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
  assert any(bool((g != 0).any()) for g in jax.tree.leaves(grads['time_mlp_1']))
  assert not np.isclose(float(value), float(step(variables['params'], jax.random.key(1))[0][0]))

  pred = d3dp.predict(model, variables, batch['kp2d_norm'], config)
  assert pred.shape == (B, T, J, 3) and bool((pred[..., 0, :] == 0).all())
  np.testing.assert_array_equal(pred, d3dp.predict(model, variables, batch['kp2d_norm'], config))

  out = jax.jit(lambda v, b, k: d3dp.evaluate(model, v, b, k, config))(
    variables, batch, jax.random.key(0)
  )
  assert out['hyps'].shape == (B, 1, 1, T, J, 3) and out['jpma_index'].shape == (B, 1, T, J)
  numbers = mp.reduce_protocols({k: out[k] for k in mp.KEYS}, batch['valid'])
  assert all(v.shape == (1,) and np.isfinite(v).all() for v in numbers.values())
  # H = 1: the four protocols coincide (mm).
  np.testing.assert_allclose(numbers['J_Agg'], numbers['P_Agg'], rtol=1e-6)
  np.testing.assert_allclose(numbers['J_Best'], numbers['P_Best'], rtol=1e-6)


def test_unknown_diffusion_setting_is_rejected():
  import ml_collections as mlc

  config = mlc.ConfigDict({'method': {'kwargs': {'num_hypothesis': 5}}})
  with pytest.raises(ValueError, match='num_hypotheses'):
    d3dp.settings(config)


@pytest.mark.parametrize('arg', ['smoke', 'lifter=motionagformer,smoke'])
def test_smoke_configs_build_a_denoiser(arg):
  c = d3dp_config.get_config(arg)
  model = models.build(c.model.name, c.model.variant, **c.model.kwargs)
  x = models.example_input(model)
  assert x.shape[-1] == 5
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  assert set(shapes['params']) == {'lifter', 'time_mlp_1', 'time_mlp_3'}
