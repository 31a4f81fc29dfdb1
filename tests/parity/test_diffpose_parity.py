"""DiffPose parity with the official GCNdiff, GCNpose, training objective and test_hyber sampler.

Every diffpose fixture is tried by every test; a test skips a fixture that lacks its keys (the
denoiser file has `input/x`, the initialiser file `input/uv` and no `param_pose/`, the sampler
file `param_pose/` and `output/<setting>/*`). Models are built from each fixture's meta.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.methods import diffpose as method
from jaxpose.models import diffpose
from jaxpose.models.layers import diffusion
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

FILES = fixture_files('diffpose')


def _pose_params(fx):
  return {k[len('param_pose/') :]: v for k, v in fx.arrays.items() if k.startswith('param_pose/')}


def _schedule(fx):
  d = fx.meta['diffusion']
  return (d['beta_schedule'], d['beta_start'], d['beta_end'], d['num_diffusion_timesteps'])


@pytest.mark.parametrize('path', FILES)
def test_adjacency_matches_official(path):
  fx = Fixture(path)
  adj = diffpose.adjacency(fx.meta['ctor']['config_model']['n_pts'], fx.meta['edges'])
  np.testing.assert_array_equal(adj, fx['input/adj'])


@pytest.mark.parametrize('path', FILES)
def test_gcndiff_matches_official(path):
  fx = Fixture(path)
  if 'input/x' not in fx or 'input/t' not in fx:
    pytest.skip('not a denoiser fixture')
  trunk = diffpose.trunk_from_config(fx.meta['ctor']['config_model'], time_embedding=True)
  v = diffpose.convert_trunk(fx.params, trunk, trunk.out_channels)
  out = trunk.apply(v, fx['input/x'], fx['input/t'], train=False)
  assert_parity(out, fx['output'], name='eps_hat')


@pytest.mark.parametrize('path', FILES)
def test_training_objective_matches_official(path):
  """x_t from stored (x0, eps, noise scale, t), the prediction on it and the summed loss."""
  fx = Fixture(path)
  if 'output/train_loss' not in fx:
    pytest.skip('no training objective in this fixture')
  b = diffusion.beta_schedule(*_schedule(fx))
  np.testing.assert_array_equal(b, fx['input/betas'])
  xt = method.q_sample(
    fx['input/x0'], jnp.asarray(fx['input/t_train']), fx['input/eps'], fx['input/noise_scale'], b
  )
  assert_parity(xt, fx['output/train_xt'], name='x_t')
  trunk = diffpose.trunk_from_config(fx.meta['ctor']['config_model'], time_embedding=True)
  v = diffpose.convert_trunk(fx.params, trunk, trunk.out_channels)
  pred = trunk.apply(v, xt, fx['input/t_train'].astype(np.float32), train=False)
  assert_parity(pred, fx['output/train_pred'], name='train_pred')
  eps = fx['input/eps'] * fx['input/noise_scale']
  loss = method.denoising_loss(eps, pred).mean()
  assert_parity(loss, fx['output/train_loss'], name='train_loss')


@pytest.mark.parametrize('path', FILES)
def test_gcnpose_matches_official(path):
  fx = Fixture(path)
  if 'input/uv' not in fx or _pose_params(fx) or 'output' not in fx:
    pytest.skip('not an initialiser fixture')
  trunk = diffpose.trunk_from_config(fx.meta['ctor']['config_model'], time_embedding=False)
  v = diffpose.convert_trunk(fx.params, trunk, fx['input/uv'].shape[-1])
  assert_parity(trunk.apply(v, fx['input/uv'], train=False), fx['output'], name='xyz')


@pytest.mark.parametrize('path', FILES)
def test_sampler_matches_official(path):
  """The whole test_hyber inference per stored setting (the released deterministic CPN setting
  and eta = 1 with two samples), with the official root "centring" and the stored z draws."""
  fx = Fixture(path)
  if not _pose_params(fx):
    pytest.skip('not a sampler fixture')
  ctor = fx.meta['ctor']
  model, v = diffpose.from_torch(
    fx.params,
    pose_state_dict=_pose_params(fx),
    config_model=ctor['config_model'],
    config_model_pose=ctor['config_model_pose'],
  )
  np.testing.assert_array_equal(diffusion.beta_schedule(*_schedule(fx)), fx['input/betas'])
  uv = fx['input/uv'][:, None]  # (B, T = 1, J, 2)
  b, j, c = fx['input/noise_scale'].shape
  for name, s in fx.meta['settings'].items():
    n, seq = s['test_times'], tuple(s['seq'])
    k = len(seq)
    # noise/<name>/0 is the official's unused draw; 1..K are the per-step z.
    z = np.stack([fx[f'noise/{name}/{i}'] for i in range(1, k + 1)]).reshape(k, n, b, 1, j, c)
    out = method.sample(
      model,
      v,
      uv,
      noise=jnp.asarray(z),
      seq=seq,
      eta=s['eta'],
      num_samples=n,
      schedule=_schedule(fx),
      official_root_centring=True,
      return_chain=True,
    )
    xs = np.asarray(out['xs']).reshape(k + 1, n * b, j, c)
    assert_parity(xs[0], fx[f'output/{name}/init_uvxyz'], name=f'{name}/init_uvxyz')
    assert_parity(xs, fx[f'output/{name}/xs'], name=f'{name}/xs')
    x0s = np.asarray(out['x0s']).reshape(k, n * b, j, c)
    assert_parity(x0s, fx[f'output/{name}/x0_preds'], name=f'{name}/x0_preds')
    assert_parity(out['pose'][:, 0], fx[f'output/{name}/xyz'], name=f'{name}/xyz')
