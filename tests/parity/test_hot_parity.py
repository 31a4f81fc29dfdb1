"""HoT parity with the official outputs: DPC-kNN selections, HoT-MixSTE, TPC-MixSTE (with its flip
branch) and HoT-MotionBERT, each fed the density jitter the official forward drew.

Fixtures are told apart by layout: a clustering fixture holds `input/jitter_<case>` and
`output/index_down_<case>`; a model fixture holds the state dict (`param/...`), `input/x`,
`input/density_jitter` and `output/index`. Models are built from the state dict and `meta['args']`.
"""

import numpy as np
import pytest

from jaxpose import losses
from jaxpose.models import hot
from jaxpose.models.layers import token_pruning
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _layout(param) -> str:
  path = param.values[0]
  if path is None:
    return 'none'
  with np.load(path) as z:
    return 'model' if any(k.startswith('param/') for k in z.files) else 'clustering'


def _files(layout):
  files = [p for p in fixture_files('hot') if _layout(p) in (layout, 'none')]
  return files or [pytest.param(None, marks=pytest.mark.skip(reason=f'no hot {layout} fixture'))]


def _cases(fx):
  return sorted(k[len('input/jitter_') :] for k in fx.keys() if k.startswith('input/jitter_'))


@pytest.mark.parametrize('path', _files('clustering'))
def test_dpc_knn_matches_official(path):
  """N <= 25 (torch's exact cdist): the same centres in the same top-k order and clusters."""
  fx = Fixture(path)
  x = fx['input/x']
  for case in _cases(fx):
    if fx[f'input/jitter_{case}'].shape[-1] != x.shape[1]:
      continue
    want = fx[f'output/index_down_{case}']
    got = token_pruning.dpc_knn(x, want.shape[1], 2, jitter=fx[f'input/jitter_{case}'])
    np.testing.assert_array_equal(got.index_down, want, err_msg=case)
    np.testing.assert_array_equal(got.idx_cluster, fx[f'output/idx_cluster_{case}'], err_msg=case)
  if 'input/center_jitter' in fx:
    want = fx['output/center_index_down']
    got = token_pruning.dpc_knn(
      x, want.shape[1], 2, jitter=fx['input/center_jitter'], center=(x.shape[1] - 1) // 2
    )
    np.testing.assert_array_equal(got.index_down, want)
    np.testing.assert_array_equal(got.idx_cluster, fx['output/center_idx_cluster'])


@pytest.mark.parametrize('path', _files('clustering'))
def test_dpc_knn_matmul_regime(path):
  """N > 25 (torch's matmul cdist): the same kept set and cluster membership; the official
  top-k order is a valid descending order of our scores (it differs only inside exact ties)."""
  fx = Fixture(path)
  cases = [c for c in _cases(fx) if fx[f'input/jitter_{c}'].shape[-1] > 25]
  if not cases:
    pytest.skip('no fixture input above 25 tokens')
  for case in cases:
    x = fx[f'input/x_{case}']
    want = fx[f'output/index_down_{case}']
    got = token_pruning.dpc_knn(x, want.shape[1], 2, jitter=fx[f'input/jitter_{case}'])
    np.testing.assert_array_equal(np.sort(got.index_down), np.sort(want), err_msg=case)
    ours_centre = np.take_along_axis(np.asarray(got.index_down), np.asarray(got.idx_cluster), 1)
    official_centre = np.take_along_axis(want, fx[f'output/idx_cluster_{case}'], 1)
    np.testing.assert_array_equal(ours_centre, official_centre, err_msg=case)
    scores = np.take_along_axis(np.asarray(got.score), want, 1)
    assert (np.diff(scores, axis=1) <= 0).all(), case


@pytest.mark.parametrize('path', _files('model'))
def test_hot_model_matches_official(path):
  """Our own selection from the official jitter, then the forward; also teacher-forced."""
  fx = Fixture(path)
  model, variables = hot.from_torch(fx.params, **fx.meta.get('args', {}))
  x = fx['input/x']
  out, index = model.apply(
    variables, x, train=False, jitter=fx['input/density_jitter'], return_index=True
  )
  np.testing.assert_array_equal(index, fx['output/index'])
  assert_parity(out, fx['output'], name='output')
  forced = model.apply(variables, x, train=False, index=fx['output/index'])
  assert_parity(forced, fx['output'], name='teacher-forced index')
  if 'input/x_flip' in fx:  # TPC test: the flip pass reuses the plain pass's kept frames
    flip = model.apply(variables, fx['input/x_flip'], train=False, index=index)
    assert_parity(flip, fx['output/flip'], name='flip branch')
  if 'output/loss_total' in fx:
    weights = {'w_mpjpe': 1.0, 'temporal_consistency': 0.5, 'velocity': 2.0}
    total, _ = losses.combine(weights, out, {'pose3d_cam': fx['input/target']})
    np.testing.assert_allclose(total.mean(), fx['output/loss_total'], rtol=1e-5)


@pytest.mark.parametrize('path', _files('model'))
def test_hot_output_depends_on_the_jitter(path):
  """The official inference is stochastic (tie-breaking jitter); ours is a function of it."""
  fx = Fixture(path)
  if not fx.meta.get('output_changes_with_other_jitter'):
    pytest.skip('the fixture does not record a jitter-dependent output')
  model, variables = hot.from_torch(fx.params, **fx.meta.get('args', {}))
  other = np.random.default_rng(0).random(fx['input/density_jitter'].shape, np.float32) * 1e-6
  out = model.apply(variables, fx['input/x'], train=False, jitter=other)
  assert not np.allclose(out, fx['output'], atol=1e-4)
