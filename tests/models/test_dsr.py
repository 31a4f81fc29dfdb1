"""DSR regressor: the official parameter count, the head against a numpy reference, the mean
parameters and the official checkpoint layouts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpose.models as models
from jaxpose.models import dsr


def test_param_count_equals_the_official_network():
  # Official HMR(backbone='resnet50') instantiated with torch (SMPL files stubbed): backbone
  # 23,508,032 + head 3,469,469; its parameters() adds smplx's 82 unused default-pose parameters.
  assert models.param_count('dsr') == 26_977_501
  assert dsr.PAPER['r50']['params'] == 26_977_501


def _gram_schmidt(x6):
  a = x6.reshape(-1, 3, 2)
  b1 = a[:, :, 0] / np.linalg.norm(a[:, :, 0], axis=-1, keepdims=True)
  a2 = a[:, :, 1] - np.sum(b1 * a[:, :, 1], -1, keepdims=True) * b1
  b2 = a2 / np.linalg.norm(a2, axis=-1, keepdims=True)
  return np.stack([b1, b2, np.cross(b1, b2)], axis=-1)


def _head_reference(sd, feats, n_iter):
  """numpy HMR head on torch-layout weights (eval: dropout off)."""
  xf = feats.mean(axis=(1, 2))
  b = xf.shape[0]
  pose = np.repeat(sd['init_pose'], b, 0)
  shape = np.repeat(sd['init_shape'], b, 0)
  cam = np.repeat(sd['init_cam'], b, 0)

  def lin(name, x):
    return x @ sd[f'{name}.weight'].T + sd[f'{name}.bias']

  for _ in range(n_iter):
    h = lin('fc2', lin('fc1', np.concatenate([xf, pose, shape, cam], 1)))
    pose, shape, cam = lin('decpose', h) + pose, lin('decshape', h) + shape, lin('deccam', h) + cam
  return _gram_schmidt(pose).reshape(b, 24, 3, 3), shape, cam


def _head_state_dict(c, hidden, seed=0):
  rng = np.random.default_rng(seed)
  sd = {}
  for name, (o, i) in {
    'fc1': (hidden, c + 157),
    'fc2': (hidden, hidden),
    'decpose': (144, hidden),
    'decshape': (10, hidden),
    'deccam': (3, hidden),
  }.items():
    sd[f'{name}.weight'] = (rng.normal(size=(o, i)) / np.sqrt(i)).astype(np.float32)
    sd[f'{name}.bias'] = (0.1 * rng.normal(size=(o,))).astype(np.float32)
  mean = dsr.synthetic_mean_params()
  sd['init_pose'] = (mean['pose'] + 0.05 * rng.normal(size=144)).astype(np.float32)[None]
  sd['init_shape'] = (0.1 * rng.normal(size=(1, 10))).astype(np.float32)
  sd['init_cam'] = np.array([[0.9, 0.02, -0.01]], np.float32)
  return sd


@pytest.mark.parametrize('n_iter', [1, 2])
def test_head_matches_numpy_reference(n_iter):
  sd = _head_state_dict(c=12, hidden=20, seed=n_iter)
  head, variables = dsr.head_from_torch(sd, n_iter=n_iter)
  feats = np.random.default_rng(5).normal(size=(3, 2, 2, 12)).astype(np.float32)
  out = head.apply(variables, jnp.asarray(feats), train=False)
  rot, shape, cam = _head_reference({k: v.astype(np.float64) for k, v in sd.items()}, feats, n_iter)
  np.testing.assert_allclose(out['body_rotmat'], rot, atol=2e-5)
  np.testing.assert_allclose(out['body_betas'], shape, atol=2e-5)
  np.testing.assert_allclose(out['cam_weak'], cam, atol=2e-5)
  assert out['pose_6d'].shape == (3, 144)


def test_zero_updates_return_the_mean_parameters_and_dropout_is_stochastic():
  head = dsr.HMRHead(hidden=8, n_iter=3, drop_rate=0.5)
  feats = jnp.ones((2, 5))
  v = jax.jit(lambda k: head.init(k, feats, train=False))(jax.random.key(0, impl='unsafe_rbg'))
  zero = jax.tree.map(jnp.zeros_like, v['params'])
  out = jax.jit(lambda v: head.apply(v, feats, train=False))({**v, 'params': zero})
  mean = dsr.synthetic_mean_params()
  np.testing.assert_allclose(out['cam_weak'], np.stack([mean['cam']] * 2))
  # the synthetic root is a rotation by pi about x; the other joints are the identity
  np.testing.assert_allclose(out['body_rotmat'][:, 0], np.stack([np.diag([1.0, -1, -1])] * 2))
  np.testing.assert_allclose(out['body_rotmat'][:, 1:], np.broadcast_to(np.eye(3), (2, 23, 3, 3)))
  train = jax.jit(lambda k: head.apply(v, feats, train=True, rngs={'dropout': k})['cam_weak'])
  a, b = train(jax.random.key(1, impl='unsafe_rbg')), train(jax.random.key(2, impl='unsafe_rbg'))
  assert not np.allclose(a, b)


def test_mean_params_loader_and_replacement(tmp_path):
  mean = {
    'pose': np.arange(144, dtype=np.float64) / 144,
    'shape': np.ones(10),
    'cam': np.array([0.7, 0.0, 0.1]),
  }
  np.savez(tmp_path / 'smpl_mean_params.npz', **mean)
  loaded = dsr.load_smpl_mean_params(tmp_path / 'smpl_mean_params.npz')
  assert loaded['pose'].dtype == np.float32
  head = dsr.HMRHead(hidden=8)
  v = head.init(jax.random.key(0), jnp.ones((1, 5)), train=False)
  v = dsr.with_mean_params(v, loaded, head=None)
  zero = jax.tree.map(jnp.zeros_like, v['params'])
  out = head.apply({**v, 'params': zero}, jnp.ones((1, 5)), train=False)
  np.testing.assert_allclose(out['pose_6d'][0], mean['pose'], rtol=1e-6)
  np.testing.assert_allclose(out['cam_weak'][0], mean['cam'], rtol=1e-6)

  np.savez(tmp_path / 'bad.npz', pose=np.zeros(72), shape=np.zeros(10), cam=np.zeros(3))
  with pytest.raises(ValueError, match=r"bad.npz: 'pose' has shape \(72,\), expected \(144,\)"):
    dsr.load_smpl_mean_params(tmp_path / 'bad.npz')


torch = pytest.importorskip('torch')
refs = pytest.importorskip('tests.models._torch_refs')


@functools.cache
def _official_like(seed=0):
  """A torchvision ResNet-18 (width 8) backbone + a random head, in the official key layout."""
  net = refs.randomize_(refs.ResNet(18, 8, num_classes=None), seed=seed)
  sd = {f'backbone.{k}': v for k, v in refs.state_dict_numpy(net).items()}
  sd.update({f'head.{k}': v for k, v in _head_state_dict(net.out_channels, 16, seed).items()})
  sd['smpl.smpl.betas'] = np.zeros((1, 10), np.float32)  # smplx layer: ignored
  return net, sd


@pytest.mark.torch
def test_from_torch_matches_torch_backbone_and_numpy_head():
  net, sd = _official_like()
  model, variables = dsr.from_torch(sd, backbone='resnet18', img_res=64)
  assert (model.depth, model.width, model.hidden, model.img_res) == (18, 8, 16, 64)
  x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  with torch.no_grad():
    feats = refs.to_nhwc(net.features(refs.to_nchw(x))).astype(np.float64)
  head_sd = {k[5:]: v.astype(np.float64) for k, v in sd.items() if k.startswith('head.')}
  rot, shape, cam = _head_reference(head_sd, feats, 3)
  np.testing.assert_allclose(out['body_rotmat'], rot, atol=1e-4)
  np.testing.assert_allclose(out['body_betas'], shape, atol=1e-4)
  np.testing.assert_allclose(out['cam_weak'], cam, atol=1e-4)
  np.testing.assert_allclose(out['cam_t'][:, 2], 2 * 5000 / (64 * cam[:, 0] + 1e-9), rtol=1e-4)


@pytest.mark.torch
def test_from_torch_reads_lightning_and_spin_layouts():
  _, sd = _official_like()
  _, ref = dsr.from_torch(sd, backbone='resnet18')
  lightning = {f'model.{k}': v for k, v in sd.items()}
  spin_flat = {k.split('.', 1)[1]: v for k, v in sd.items() if not k.startswith('smpl.')}
  for other in (lightning, spin_flat):
    _, got = dsr.from_torch(other, backbone='resnet18')
    jax.tree.map(np.testing.assert_array_equal, got, ref)

  no_buffers = {k: v for k, v in spin_flat.items() if not k.startswith('init_')}
  with pytest.raises(ValueError, match='pass mean_params'):
    dsr.from_torch(no_buffers, backbone='resnet18')
  _, got = dsr.from_torch(no_buffers, backbone='resnet18', mean_params=dsr.synthetic_mean_params())
  np.testing.assert_array_equal(
    got['buffers']['head']['init_pose'], dsr.synthetic_mean_params()['pose']
  )
  with pytest.raises(ValueError, match='weights are a ResNet-18'):
    dsr.from_torch(sd)  # backbone='resnet50' by default
  with pytest.raises(ValueError, match=r"unexpected keys.*'extra.weight'"):
    dsr.from_torch({**sd, 'extra.weight': np.zeros(1)}, backbone='resnet18')
