"""VideoPose3D: variants, the strided single-frame form, MAC counts, BatchNorm semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import videopose3d

TINY = {'filter_widths': (3, 3, 3), 'channels': 16}


@pytest.mark.parametrize(
  'variant, rf, params', [('xs', 27, 8_555_571), ('s', 81, 12_753_971), ('b', 243, 16_952_371)]
)
def test_published_param_counts(variant, rf, params):
  assert (
    models.param_count('videopose3d', variant) == params == videopose3d.PAPER[variant]['params']
  )
  assert (
    models.build('videopose3d', variant).receptive_field
    == rf
    == videopose3d.PAPER[variant]['frames']
  )


def test_paper_macs_per_frame_is_the_published_16_9m():
  assert round(videopose3d.PAPER['b']['macs_per_frame'] / 1e6, 1) == 16.9


def _init(model, t):
  x = jax.random.normal(jax.random.key(1), (2, t, 17, 2))
  return x, model.init(jax.random.key(0), x, train=False)


@pytest.mark.parametrize('causal', [False, True])
def test_single_frame_form_shares_weights_and_agrees_with_dilated(causal):
  dilated = videopose3d.Model(**TINY, causal=causal)
  strided = dilated.clone(single_frame=True)
  rf = dilated.receptive_field
  x, variables = _init(dilated, 2 * rf)
  strided_vars = strided.init(jax.random.key(0), x, train=False)
  assert jax.tree.map(jnp.shape, strided_vars) == jax.tree.map(jnp.shape, variables)
  # Perturb the BatchNorm statistics so that every term matters.
  variables = jax.tree.map(
    lambda a: a + 0.1 * jnp.abs(jnp.sin(jnp.arange(a.size).reshape(a.shape))), variables
  )
  full = dilated.apply(variables, x, train=False)
  one = strided.apply(variables, x, train=False)
  assert full.shape == (2, rf + 1, 17, 3) and one.shape == (2, 2, 17, 3)
  np.testing.assert_allclose(one, full[:, ::rf], atol=1e-5)


def test_causal_changes_alignment_only():
  model = videopose3d.Model(**TINY)
  x, variables = _init(model, 40)
  causal = model.clone(causal=True).apply(variables, x, train=False)
  assert causal.shape == model.apply(variables, x, train=False).shape
  assert model.clone(causal=True).total_causal_shift == 13 and model.total_causal_shift == 0
  assert not np.allclose(causal, model.apply(variables, x, train=False))


@pytest.mark.parametrize('single_frame', [False, True])
def test_macs_match_the_convolutions_that_run(single_frame):
  model = videopose3d.Model(filter_widths=(3, 5), channels=8, single_frame=single_frame)
  x, variables = _init(model, 45)
  _, state = model.apply(variables, x, train=False, capture_intermediates=True)
  inter = state['intermediates']
  total = 0
  for name, p in variables['params'].items():
    if 'kernel' in p:
      out = inter[name]['__call__'][0]
      total += out.shape[1] * p['kernel'].size  # frames x (width * in * out)
  assert total == videopose3d.macs((3, 5), channels=8, num_frames=45, single_frame=single_frame)


def test_train_mode_updates_running_stats_with_torch_momentum():
  model = videopose3d.Model(**TINY, dropout=0.5)
  x, variables = _init(model, 27)
  out, updates = model.apply(
    variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(2)}
  )
  kernel = variables['params']['expand_conv']['kernel']
  conv = jax.lax.conv_general_dilated(
    x.reshape(2, 27, 34), kernel, (1,), 'VALID', dimension_numbers=('NWC', 'WIO', 'NWC')
  )
  # running = (1 - 0.1) * running + 0.1 * batch, from running mean 0.
  stats = updates['batch_stats']['expand_bn']
  np.testing.assert_allclose(stats['mean'], 0.1 * conv.mean(axis=(0, 1)), rtol=1e-4, atol=1e-6)
  # torch keeps the unbiased batch variance in running_var (from 1).
  unbiased = conv.reshape(-1, conv.shape[-1]).var(axis=0, ddof=1)
  np.testing.assert_allclose(stats['var'], 0.9 + 0.1 * unbiased, rtol=1e-4)
  again = model.apply(
    variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(3)}
  )[0]
  assert out.shape == (2, 1, 17, 3) and not np.allclose(out, again)


def test_rejects_wrong_input_layout():
  model = videopose3d.Model(**TINY)
  with pytest.raises(ValueError, match='17, 2'):
    model.init(jax.random.key(0), jnp.zeros((1, 27, 16, 2)), train=False)
  with pytest.raises(ValueError, match='odd'):
    model.clone(filter_widths=(3, 2)).init(
      jax.random.key(0), jnp.zeros((1, 27, 17, 2)), train=False
    )


def test_dense_ablation_uses_undilated_wide_kernels():
  model = videopose3d.Model(**TINY, dense=True)
  x, variables = _init(model, 30)
  assert model.apply(variables, x, train=False).shape == (2, 4, 17, 3)
  # Block 2 of (3, 3, 3): dilation 9, so width 2 * 9 + 1.
  assert variables['params']['layers_conv_2']['kernel'].shape == (19, 16, 16)
