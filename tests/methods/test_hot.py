"""The 'hot' method: the TPC loss on the kept frames and the centre-frame prediction."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from jaxpose.geometry import skeleton
from jaxpose.methods import hot

KEY = jax.random.key(0)


def _tiny(mode):
  from jaxpose.models import build

  return build(
    'hot',
    'tpc_mixste' if mode == 'tpc' else 'hot_mixste',
    backbone_kwargs={'num_frames': 9, 'dim': 16, 'depth': 2},
    token_num=4,
    layer_index=1,
  )


def _config():
  c = mlc.ConfigDict()
  c.method = {'loss': {'mpjpe': 1.0, 'velocity': 0.5}}
  c.eval = {'flip_test': True}
  c.data = {'skeleton': 'h36m17'}
  return c


def test_tpc_loss_uses_the_kept_frames_and_predict_the_centre():
  model = _tiny('tpc')
  x = jax.random.normal(KEY, (2, 9, 17, 2))
  y = jax.random.normal(jax.random.key(1), (2, 9, 17, 3))
  v = jax.jit(lambda x: model.init(KEY, x, train=False))(x)
  batch = {'kp2d_norm': x, 'pose3d_cam': y, 'valid': jnp.ones((2, 9), bool)}
  rng = jax.random.key(7)
  drop, path, hot_key = jax.random.split(rng, 3)
  rngs = {'dropout': drop, 'drop_path': path, 'hot': hot_key}

  @jax.jit
  def run(v):
    loss, (scalars, _) = hot.loss_fn(model, v['params'], {}, batch, rng, _config())
    train = model.apply(v, x, train=True, rngs=rngs, return_index=True)
    centre = hot.predict(model, v, x, _config())
    plain, index = model.apply(v, x, train=False, return_index=True)
    flipped = model.apply(v, skeleton.flip_pose(x, 'h36m17'), train=False, index=index)
    return (
      loss,
      scalars,
      train,
      centre,
      0.5 * (plain + skeleton.flip_pose(flipped, 'h36m17')),
      index,
    )

  loss, scalars, (pred, index), centre, both, eval_index = jax.tree.map(np.asarray, run(v))
  target = np.stack([np.asarray(y)[b, index[b]] for b in range(2)])
  mpjpe = np.linalg.norm(pred - target, axis=-1).mean()
  vel = np.linalg.norm(np.diff(pred, axis=1) - np.diff(target, axis=1), axis=-1).mean()
  assert float(scalars['loss/mpjpe']) == pytest.approx(mpjpe, rel=1e-5)
  assert float(loss) == pytest.approx(mpjpe + 0.5 * vel, rel=1e-5)
  assert centre.shape == (2, 1, 17, 3)
  slot = np.argmax(eval_index == 4, axis=1)
  np.testing.assert_allclose(centre[:, 0], both[np.arange(2), slot], rtol=1e-5, atol=1e-6)


def test_hot_method_on_a_seq2seq_model():
  model = _tiny('hot')
  x = jax.random.normal(KEY, (2, 9, 17, 2))
  v = jax.jit(lambda x: model.init(KEY, x, train=False))(x)
  batch = {'kp2d_norm': x, 'pose3d_cam': jnp.zeros((2, 9, 17, 3))}

  @jax.jit
  def run(v):
    loss, _ = hot.loss_fn(model, v['params'], {}, batch, KEY, _config())
    return loss, hot.predict(model, v, x, _config())

  loss, pred = run(v)
  assert np.isfinite(float(loss)) and pred.shape == (2, 9, 17, 3)
