"""Platypose parity with the official MDM denoiser, the energy-guided DDIM sampler and its metrics.

The denoiser test runs on every platypose fixture (both hold an MDM state dict and `meta`); the
sampler test runs on fixtures with `noise/0` and replays every stored energy scale: the main run
(`output/*`, meta['call']['energy_scale']) and each `output/es<scale>/*` run, where the plateau
rule cuts the lr inside every step (the vectorised scheduler's reductions are tested there).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.methods import platypose as method
from jaxpose.metrics import sampling
from jaxpose.models import platypose
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

FILES = fixture_files('platypose')
CAMERA_KEYS = (
  'intrinsic_matrix',
  'rotation_matrix',
  'translation_vector',
  'tangential_distortion',
  'radial_distortion',
)


def _model(fx, num_frames=1):
  return platypose.from_torch(
    fx.params, **fx.meta['ctor']['pipeline_config'], num_frames=num_frames
  )


@pytest.mark.parametrize('path', FILES)
def test_schedule_matches_official(path):
  fx = Fixture(path)
  s = method.spaced_schedule(
    fx.meta['spaced']['original_num_steps'], fx.meta['spaced']['num_timesteps']
  )
  np.testing.assert_array_equal(s['timestep_map'], fx['output/timestep_map'])
  np.testing.assert_allclose(s['alphas_cumprod'], fx['output/alphas_cumprod_spaced'], rtol=1e-12)


@pytest.mark.parametrize('path', FILES)
def test_mdm_matches_official(path):
  fx = Fixture(path)
  if 'input/x' not in fx:
    pytest.skip('no denoiser input in this fixture')
  n, f, _ = fx['input/x'].shape
  model, v = _model(fx, f)
  x = fx['input/x'].reshape(n, f, -1, 3)
  run = jax.jit(lambda v, x, t: model.apply(v, x, train=False, t=t))
  assert_parity(run(v, x, fx['input/t']).reshape(n, f, -1), fx['output'], name='x0_hat')
  t_orig = fx['output/timestep_map'][fx['input/t_spaced']]  # the `_wrap_model` mapping
  assert_parity(run(v, x, t_orig).reshape(n, f, -1), fx['output/wrapped'], name='wrapped')


def _observation(fx):
  c = fx['input/x_2d'].shape[0]
  cams = {k: np.stack([fx[f'input/camera/{i}/{k}'] for i in range(c)]) for k in CAMERA_KEYS}
  x3d = fx['input/x_3d'][0]  # (T, J, 3) world, absolute
  obs = {
    'root': x3d[:, :1],
    'x2d': fx['input/x_2d'][:, 0],
    'weights': fx['input/scale'][:, 0],
    'cameras': cams,
  }
  return x3d, obs


def _runs(fx):
  """(output prefix, noise prefix, energy scale) of every stored run."""
  runs = [('output/', 'noise/', float(fx.meta['call']['energy_scale']))]
  for key in fx.keys():
    m = re.fullmatch(r'output/(es(\d+(?:\.\d+)?))/x', key)
    if m:
      runs.append((f'output/{m[1]}/', f'noise/{m[1]}/', float(m[2])))
  return runs


@pytest.mark.parametrize('path', FILES)
def test_projection_and_official_weights(path):
  fx = Fixture(path)
  if 'input/x_3d' not in fx:
    pytest.skip('not a sampler fixture')
  x3d, obs = _observation(fx)
  proj = jax.vmap(lambda cam: method.project(jnp.asarray(x3d), cam))(obs['cameras'])
  assert_parity(proj, fx['input/x_2d_proj_gt'][:, 0], name='proj2D')
  built = method.official_observation(jnp.asarray(x3d), jnp.asarray(obs['x2d']), obs['cameras'])
  assert_parity(built['x2d'], obs['x2d'], name='x2d with the projected GT root')
  # w = clip(1 / (80 |err|), 0, 2) amplifies float32 differences of small errors: 1e-4 relative.
  np.testing.assert_allclose(built['weights'], obs['weights'], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('path', FILES)
def test_guided_sampler_matches_official(path):
  fx = Fixture(path)
  if 'noise/0' not in fx:
    pytest.skip('not a sampler fixture')
  call = fx.meta['call']
  n, f = call['num_samples'], call['num_frames']
  model, v = _model(fx, f)
  x3d, obs = _observation(fx)
  obs = jax.tree.map(lambda a: jnp.asarray(a)[None], obs)
  steps = fx.meta['spaced']['num_timesteps'] - call['skip_timesteps']
  for out_p, noise_p, scale in _runs(fx):
    z = np.stack([fx[f'{noise_p}{i}'] for i in range(steps + 1)]).reshape(1, steps + 1, n, f, -1, 3)
    out = method.sample(
      model,
      v,
      obs,
      noise=jnp.asarray(z),
      energy_scale=scale,
      num_samples=n,
      num_substeps=call['num_substeps'],
      skip_timesteps=call['skip_timesteps'],
      num_steps=fx.meta['spaced']['num_timesteps'],
      num_timesteps=fx.meta['spaced']['original_num_steps'],
      eta=call['eta'],
      return_chain=True,
    )
    flat = lambda a: np.asarray(a)[0].reshape(steps, n, f, -1)
    assert_parity(flat(out['x0_before']), fx[f'{out_p}pred_xstart_before'], name=f'{out_p}before')
    assert_parity(np.asarray(out['energy'])[0], fx[f'{out_p}energy'], name=f'{out_p}energy')
    assert_parity(flat(out['x0']), fx[f'{out_p}pred_xstart'], name=f'{out_p}pred_xstart')
    assert_parity(flat(out['x']), fx[f'{out_p}x'], name=f'{out_p}x')
    if out_p == 'output/':
      assert_parity(np.asarray(out['samples'])[0].reshape(n, f, -1), fx['output'], name='output')


@pytest.mark.parametrize('path', FILES)
def test_metrics_match_official(path):
  """minMPJPE and the calibration coverage of the stored final samples (root zeroed)."""
  fx = Fixture(path)
  if 'output/sample_root0' not in fx:
    pytest.skip('no metrics in this fixture')
  samples = fx['output/sample_root0']
  x3d = fx['input/x_3d'][0]
  gt = x3d - x3d[:, :1]
  per = sampling.per_sample_mpjpe(samples * 1000, gt * 1000)
  assert_parity(per, fx['output/mpjpe_per_sample_mm'], rtol_l2=1e-6, name='mpjpe per sample')
  assert_parity(
    sampling.min_mpjpe(samples * 1000, gt * 1000), fx['output/min_mpjpe_mm'], name='minMPJPE'
  )
  q = fx['output/calibration_quantiles']
  np.testing.assert_allclose(q, sampling.QUANTILES, atol=1e-12)
  cov = sampling.calibration_coverage(samples, gt, q)
  np.testing.assert_array_equal(np.asarray(cov), fx['output/calibration_v'])
