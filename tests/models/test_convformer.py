"""ConvFormer (reconstruction): sizes against MixSTE, the convolutional attention against a loop
reference, the joints profile's neighbourhood, and the lifter contract."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import convformer as cf

TINY = dict(cf.TEST_OVERRIDES)


def _variables(module, *args, **kwargs):
  """Random variables of the init shapes without compiling init (its RNG code is slow on CPU)."""
  rng = np.random.default_rng(0)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape), jnp.float32), shapes)


def test_marked_as_a_reconstruction_without_checkpoint_import():
  assert cf.RECONSTRUCTED_FROM_PAPER is True
  assert not hasattr(cf, 'from_torch') and not hasattr(cf, 'PAPER')


@pytest.mark.parametrize('variant', list(cf.MEASURED))
def test_measured_sizes_are_current(variant):
  assert models.param_count('convformer', variant) == cf.MEASURED[variant]['params']


def test_markedly_smaller_than_mixste_at_equal_depth():
  mixste = models.param_count('mixste', '243')  # depth 8, D 512
  ours = models.build('convformer', '243')
  assert ours.depth == models.build('mixste', '243').depth
  assert cf.MEASURED['243']['params'] < mixste / 3
  assert cf.MEASURED['243_d512']['params'] < 0.85 * mixste  # equal width too
  assert cf.MEASURED['243']['macs_all'] < 147_422_633_472 / 3  # MixSTE's, same walker


def test_neighbours_are_zero_padded_same_windows():
  x = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3) + 1
  nb = np.asarray(cf.neighbours(x, 3, axis=1))
  assert nb.shape == (2, 5, 3, 3)
  np.testing.assert_array_equal(nb[:, 2, 0], x[:, 1])
  np.testing.assert_array_equal(nb[:, 2, 2], x[:, 3])
  np.testing.assert_array_equal(nb[:, 0, 0], 0)
  np.testing.assert_array_equal(nb[:, 4, 2], 0)


def _reference_attention(x, p, heads, k):
  """Loop implementation of DynamicConvAttention on (L, D) from its definition."""
  x = np.asarray(x, np.float64)
  n, d_model = x.shape
  d = d_model // heads
  w, b = np.asarray(p['qkv_kernel'], np.float64), np.asarray(p['qkv_bias'], np.float64)
  gate = x @ np.asarray(p['gate']['kernel']) + np.asarray(p['gate']['bias'])
  gate = gate.reshape(n, 3, heads, k)
  gate = np.exp(gate - gate.max(-1, keepdims=True))
  gate /= gate.sum(-1, keepdims=True)
  qkv = np.zeros((n, 3, heads, d))
  for l in range(n):
    for h in range(heads):
      for s in range(3):
        acc = b[s, h].copy()
        for t in range(k):
          src = l + t - k // 2
          if 0 <= src < n:
            acc += gate[l, s, h, t] * (
              x[src, h * d : (h + 1) * d] @ w[t, h][:, s * d : (s + 1) * d]
            )
        qkv[l, s, h] = acc
  out = np.zeros((n, d_model))
  for h in range(heads):
    q, kk, v = qkv[:, 0, h], qkv[:, 1, h], qkv[:, 2, h]
    logits = q @ kk.T / np.sqrt(d)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    out[:, h * d : (h + 1) * d] = a @ v
  return out @ np.asarray(p['proj']['kernel']) + np.asarray(p['proj']['bias'])


def test_dynamic_conv_attention_matches_a_loop_reference_on_any_token_axis():
  attn = cf.DynamicConvAttention(num_heads=2, kernel_size=3, token_axis=-2)
  x = jax.random.normal(jax.random.key(0), (1, 4, 6, 8))  # (B, T, J, D)
  v = _variables(attn, x, train=False)
  p = v['params']
  assert p['qkv_kernel'].shape == (3, 2, 4, 12)  # K taps x heads x (d -> 3d): grouped by head
  apply = jax.jit(
    lambda v, x, axis: attn.clone(token_axis=axis).apply(v, x, train=False), static_argnums=2
  )
  out = apply(v, x, -2)
  for t in (0, 3):
    np.testing.assert_allclose(out[0, t], _reference_attention(x[0, t], p, 2, 3), atol=1e-5)
  temporal = apply(v, x, 1)  # attend over frames
  for j in (0, 5):
    np.testing.assert_allclose(
      temporal[0, :, j], _reference_attention(x[0, :, j], p, 2, 3), atol=1e-5
    )


def test_joints_profile_mixes_all_frames_of_neighbouring_joints_only():
  tjp = cf.TemporalJointsProfile(joint_kernel=3)
  x = jax.random.normal(jax.random.key(0), (1, 5, 9, 4))
  v = _variables(tjp, x)
  assert v['params']['kernel'].shape == (3, 5, 5)
  delta = np.asarray(tjp.apply(v, x.at[0, 0, 4].add(1.0)) - tjp.apply(v, x))
  changed = np.abs(delta).max(axis=(0, 1, 3)) > 1e-6  # per joint, over every frame
  np.testing.assert_array_equal(np.flatnonzero(changed), [3, 4, 5])
  assert (np.abs(delta[0, :, 4]).max(-1) > 1e-6).all()  # every frame of the joint


def test_spatial_blocks_stay_within_frames_temporal_blocks_do_not():
  x = jax.random.normal(jax.random.key(0), (1, 5, 17, 16))
  for axis, profile, mixes in ((-2, False, False), (-3, True, True)):
    block = cf.ConvFormerBlock(axis, profile, num_heads=2)
    v = _variables(block, x, train=False)
    bump = jax.random.normal(jax.random.key(2), x.shape[2:])  # not a constant: LN removes those
    apply = jax.jit(lambda x: block.apply(v, x, train=False))
    delta = apply(x.at[0, 0].add(bump)) - apply(x)
    assert bool(np.abs(delta[0, 1:]).max() > 1e-6) == mixes


@pytest.fixture(scope='module')
def tiny():
  model = cf.Model(**TINY)
  x = jax.random.uniform(jax.random.key(1), (2, 9, 17, 2), minval=-1, maxval=1)
  variables = _variables(model, x, train=False)
  return model, variables, x


def test_initialisation_follows_torch_defaults():
  attn = cf.DynamicConvAttention(num_heads=2, kernel_size=3)
  p = attn.init(jax.random.key(0), jnp.zeros((1, 4, 64)), train=False)['params']
  bound = 1 / np.sqrt(3 * 32)  # grouped Conv1d: fan_in = K * D / H
  assert np.abs(p['qkv_kernel']).max() <= bound and np.abs(p['qkv_kernel']).max() > 0.9 * bound
  assert np.abs(p['proj']['kernel']).max() <= 1 / 8


def test_lifter_contract_jit_and_gradients(tiny):
  model, variables, x = tiny
  assert models.example_input(model).shape == (1, 9, 17, 2)

  @jax.jit
  def step(params, key):
    def loss(p):
      out = model.apply({'params': p}, x, train=True, rngs={'dropout': key})
      return jnp.mean(out**2), out

    return jax.grad(loss, has_aux=True)(params)

  grads, out = step(variables['params'], jax.random.key(2))
  assert out.shape == (2, 9, 17, 3)
  flat = flax.traverse_util.flatten_dict(grads, sep='/')
  assert [k for k, g in flat.items() if not np.any(np.asarray(g))] == []
  _, other = step(variables['params'], jax.random.key(3))
  assert not np.allclose(out, other)  # stochastic depth in training
  evaluate = jax.jit(lambda v, x, k: model.apply(v, x, train=False, rngs={'dropout': k}))
  a = evaluate(variables, x, jax.random.key(2))  # the keys that changed the training output
  np.testing.assert_array_equal(a, evaluate(variables, x, jax.random.key(3)))  # no depth drop


def test_rejects_wrong_shapes(tiny):
  model, variables, _ = tiny
  with pytest.raises(ValueError, match='9, 17, 2'):
    jax.eval_shape(lambda: model.apply(variables, jnp.zeros((1, 9, 16, 2)), train=False))
  with pytest.raises(ValueError, match='divisible'):
    cf.DynamicConvAttention(num_heads=3).init(jax.random.key(0), jnp.zeros((1, 4, 8)), train=False)
