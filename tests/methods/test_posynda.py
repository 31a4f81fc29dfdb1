"""PoSynDA method: published parameter counts, refiner encoding modes and causal mask, source
re-distribution geometry, EMA teacher, and a tiny adaptation step (gradients reach only LoRA and
the refiner; the frozen denoiser is untouched; the loss goes down)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpose.geometry import camera
from jaxpose.methods import posynda
from jaxpose.models import _posynda
from jaxpose.models.layers import lora

T = 5
CAM = jnp.asarray([1500.0, 1500.0, 1024.0, 1024.0, 0, 0, 0, 0, 0], jnp.float32)


def test_full_size_parameter_counts():
  _, _, v = _posynda.build(abstract=True)
  n = _posynda.param_counts(v)
  assert n['denoiser'] == 34_835_459
  assert n['lora'] == 196_608
  assert n['refiner'] == 12_627_459
  assert n['total'] == 47_659_526


@pytest.fixture(scope='module')
def tiny_refiner():
  ref = _posynda.Refiner(dim=8, num_heads=2, hidden=16, depth=2, dropout=0.5, max_len=64)
  v = ref.init(jax.random.key(0), jnp.zeros((1, 17, 3)), train=False)
  return ref, v


def test_refiner_default_is_batch_invariant_official_is_not(tiny_refiner):
  ref, v = tiny_refiner
  x = jax.random.normal(jax.random.key(1), (6, 17, 3)) * 100
  perm = np.asarray([3, 0, 5, 1, 2, 4])
  out = ref.apply(v, x, train=False)
  np.testing.assert_allclose(ref.apply(v, x[perm], train=False), out[perm], atol=1e-5)
  off = ref.clone(official_batch_position_encoding=True)
  o2 = off.apply(v, x, train=False)
  assert np.abs(np.asarray(off.apply(v, x[perm], train=False)) - np.asarray(o2)[perm]).max() > 1e-3


def test_refiner_mask_is_causal_over_joints(tiny_refiner):
  ref, v = tiny_refiner
  x = jax.random.normal(jax.random.key(1), (2, 17, 3))
  y = x.at[:, 10].add(1.0)
  a, b = ref.apply(v, x, train=False), ref.apply(v, y, train=False)
  np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-6)
  assert np.abs(np.asarray(a[:, 10:] - b[:, 10:])).max() > 1e-4


def test_redistribute_places_root_under_target_root():
  k1, k2 = jax.random.split(jax.random.key(0))
  src = jax.random.normal(k1, (2, T, 17, 3)) * 300
  src = src - src[..., 14:15, :]
  tgt = 1024 + jax.random.normal(k2, (4, T, 17, 2)) * 100
  out = posynda.redistribute_source(jax.random.key(3), src, tgt, CAM)
  assert out['kp2d_px'].shape == (2, T, 17, 2) and out['root_mm'].shape == (2, T, 1, 3)
  assert np.all(np.asarray(out['root_mm'][..., 2]) > 0)
  # The synthesised root pixel is one of the target clips' root pixels.
  roots = np.asarray(out['kp2d_px'][:, :, 14])
  cands = np.asarray(tgt[:, :, 14])
  for b in range(2):
    assert min(np.abs(roots[b] - c).max() for c in cands) < 1e-2


def test_ema_update():
  t = {'a': jnp.ones(3)}
  s = {'a': jnp.zeros(3)}
  np.testing.assert_allclose(posynda.ema_update(t, s, 0.9)['a'], 0.9)


# The teacher variant goes through the trainer in tests/methods/test_posynda_engine.py; here the
# slow mark keeps one compile of this (large) objective in CI.
@pytest.mark.parametrize(
  'use_teacher', [False, pytest.param(True, marks=pytest.mark.slow)], ids=['official', 'teacher']
)
def test_adaptation_step_trains_only_lora_and_refiner(use_teacher):
  den, ref, v = _posynda.build(
    num_frames=T,
    dim=16,
    depth=1,
    refiner={'dim': 8, 'num_heads': 2, 'hidden': 16, 'depth': 1, 'dropout': 0.0},
  )
  # Non-zero B so the denoiser path depends on the adapters from the first step.
  v['lora'] = jax.tree.map(lambda a: a + 0.01, v['lora'])
  ks = jax.random.split(jax.random.key(5), 4)
  pose = jax.random.normal(ks[0], (2, T, 17, 3)) * 200
  pose = pose - pose[..., 14:15, :]
  root = jnp.broadcast_to(jnp.asarray([0.0, 0.0, 4000.0]), (2, T, 1, 3))
  kp_px = camera.project_to_2d_linear(pose + root, CAM)
  target = {
    'kp2d': camera.normalize_screen_coordinates(kp_px, 2048, 2048),
    'kp2d_px': kp_px,
    'root_mm': root,
    'cam_px': CAM,
    'res': jnp.asarray([2048.0, 2048.0]),
  }
  source = {'pose_mm': jax.random.normal(ks[1], (2, T, 17, 3)) * 200}
  trainable = {'lora': v['lora'], 'refiner': v['refiner']}
  teacher = trainable if use_teacher else None
  tx = optax.adam(1e-3)
  opt = tx.init(trainable)
  base = jax.tree.map(np.asarray, v['denoiser'])

  @jax.jit
  def step(tr, opt, key):
    (l, sc), g = jax.value_and_grad(posynda.adaptation_loss, has_aux=True)(
      tr, den, v['denoiser'], ref, target, source, key, teacher=teacher
    )
    up, opt = tx.update(g, opt)
    return optax.apply_updates(tr, up), opt, sc, g

  tr, losses = trainable, []
  for i in range(4):
    tr, opt, sc, g = step(tr, opt, jax.random.key(0))  # same draws: a deterministic objective
    losses.append(float(sc['loss']))
    if i == 0:
      assert all(np.isfinite(float(x)) for x in sc.values())
      gl = max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g['lora']))
      gr = max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g['refiner']['params']))
      assert gl > 0 and gr > 0
  assert losses[-1] < losses[0]
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, v['denoiser']), base)
  assert len(lora.adapter_paths(tr['lora'])) == 4  # (spatial + temporal) x (qkv, proj)
