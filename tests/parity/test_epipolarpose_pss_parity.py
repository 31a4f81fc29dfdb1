"""Parity with the PSS re-implementation fixture `epipolarpose__pss.npz` (PSS is not in the official
repo, issue #45): pose normalisation, assignment to the fixture's fixed centres, PSS@k."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.metrics.pss import assign_clusters, fit_pss_centers, normalize_pose, pss
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

FILES = fixture_files('epipolarpose', 'pss*')


@pytest.fixture(scope='module', params=FILES)
def fx(request):
  return Fixture(request.param)


def test_normalisation_assignment_and_score(fx):
  centers = fx['input/centers']
  assert centers.shape[0] == fx.meta['k']
  for key in ('pred', 'gt'):
    poses = fx[f'input/{key}']
    assert_parity(normalize_pose(poses), fx[f'output/{key}_normalized'], name=f'{key}_normalized')
    np.testing.assert_array_equal(assign_clusters(poses, centers), fx[f'output/assign_{key}'])
  per_sample = pss(fx['input/pred'], fx['input/gt'], centers)
  assert per_sample.shape == (fx['input/pred'].shape[0],)
  assert float(per_sample.mean()) == pytest.approx(float(fx['output/pss']), abs=1e-12)


def test_jit_float32_matches(fx):
  f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
  out = jax.jit(pss)(f32(fx['input/pred']), f32(fx['input/gt']), f32(fx['input/centers']))
  assert out.dtype == jnp.float32
  assert float(out.mean()) == pytest.approx(float(fx['output/pss']), abs=1e-6)


def test_kmeans_fit_reaches_a_comparable_optimum(fx):
  """The fit is context only (centres are fixed inputs); ours must land near sklearn's inertia."""
  centers, inertia = fit_pss_centers(fx['input/train_poses'], fx.meta['k'], seed=0)
  assert centers.shape == fx['input/centers'].shape
  ref = fx.meta['sklearn_inertia']
  assert ref * 0.99 <= inertia <= ref * 1.01, (inertia, ref)
  x = normalize_pose(fx['input/train_poses'])
  d = ((x[:, None] - centers[None]) ** 2).sum(-1).min(1).sum()
  assert d == pytest.approx(inertia, rel=1e-9)
  assert json.dumps(fx.meta)  # meta is JSON (k, notes)
