"""Torch-semantics conv layers and the integral soft-argmax, against torch and numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.models.layers import conv as C
from jaxpose.models.layers.integral import channels_to_volume, softmax_integral_3d

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.torch


def _rand(*shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize(
  'k,s,p,q',
  [
    (4, 2, 1, 0),
    (3, 2, 1, 1),
    (2, 2, 0, 0),
    (3, 1, 1, 0),
    (5, 3, 2, 2),
    ((3, 4), (2, 1), (1, 0), 0),
  ],
)
def test_conv_transpose_matches_torch(k, s, p, q):
  x = _rand(2, 5, 4, 6)
  ref = torch.nn.ConvTranspose2d(6, 7, k, s, p, q, bias=True)
  w, b = ref.weight.detach().numpy(), ref.bias.detach().numpy()
  layer = C.ConvTranspose2d(7, k, s, p, q)
  out = layer.apply({'params': {'kernel': C.conv_transpose_kernel(w), 'bias': b}}, x)
  expected = _nhwc(ref(_nchw(x)))
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, atol=1e-5)
  # The Conv2d-form weight converts to the same kernel through the generic conv path.
  np.testing.assert_array_equal(
    C.conv_kernel(C.conv_transpose_as_conv_weight(w)), C.conv_transpose_kernel(w)
  )


@pytest.mark.parametrize('k,s,p,bias', [(3, 2, 1, False), (7, 2, 3, False), (1, 1, 0, True)])
def test_conv_matches_torch(k, s, p, bias):
  x = _rand(2, 9, 7, 5, seed=1)
  ref = torch.nn.Conv2d(5, 4, k, s, p, bias=bias)
  v = {'kernel': C.conv_kernel(ref.weight.detach().numpy())}
  if bias:
    v['bias'] = ref.bias.detach().numpy()
  out = C.Conv2d(4, k, s, p, use_bias=bias).apply({'params': v}, x)
  np.testing.assert_allclose(out, _nhwc(ref(_nchw(x))), atol=1e-5)


def test_default_inits_have_torch_bounds():
  x = jnp.zeros((1, 4, 4, 6))
  conv = C.Conv2d(8, 3).init(jax.random.key(0), x)['params']
  bound = 1 / np.sqrt(6 * 9)
  assert np.abs(conv['kernel']).max() <= bound and np.abs(conv['kernel']).max() > 0.8 * bound
  assert np.abs(conv['bias']).max() <= bound
  deconv = C.ConvTranspose2d(5, 4, 2, 1).init(jax.random.key(0), x)['params']
  bound = 1 / np.sqrt(5 * 16)  # torch's fan_in of a transposed conv weight is C_out k k
  assert np.abs(deconv['kernel']).max() <= bound and np.abs(deconv['kernel']).max() > 0.8 * bound


def test_batchnorm2d_train_and_eval_match_torch():
  x = _rand(3, 5, 4, 6, seed=2) * 2 + 1
  ref = torch.nn.BatchNorm2d(6, momentum=0.1)
  with torch.no_grad():
    ref.weight.copy_(torch.linspace(0.5, 1.5, 6))
    ref.bias.copy_(torch.linspace(-1, 1, 6))
  bn = C.BatchNorm2d()
  v = bn.init(jax.random.key(0), x, train=False)
  v = {**v, 'params': {'scale': ref.weight.detach().numpy(), 'bias': ref.bias.detach().numpy()}}
  out, upd = bn.apply(v, x, train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(out, _nhwc(ref.train()(_nchw(x))), atol=1e-5)
  np.testing.assert_allclose(upd['batch_stats']['mean'], ref.running_mean.numpy(), atol=1e-6)
  np.testing.assert_allclose(upd['batch_stats']['var'], ref.running_var.numpy(), atol=1e-6)
  v = {**v, **upd}
  np.testing.assert_allclose(bn.apply(v, x, train=False), _nhwc(ref.eval()(_nchw(x))), atol=1e-5)


def test_max_pool_and_upsample_match_torch():
  x = _rand(2, 7, 6, 3, seed=3)
  np.testing.assert_array_equal(
    C.max_pool2d(jnp.asarray(x), 3, 2, 1), _nhwc(torch.nn.MaxPool2d(3, 2, 1)(_nchw(x)))
  )
  up = torch.nn.Upsample(scale_factor=4, mode='nearest')(_nchw(x))
  np.testing.assert_array_equal(C.upsample_nearest(jnp.asarray(x), 4), _nhwc(up))


def _integral_reference(vol):
  """numpy soft-argmax over D*H*W, index/size - 0.5, from the (B, J, D, H, W) volume."""
  b, j, d, h, w = vol.shape
  flat = vol.reshape(b, j, -1).astype(np.float64)
  p = np.exp(flat - flat.max(-1, keepdims=True))
  p = (p / p.sum(-1, keepdims=True)).reshape(vol.shape)
  iz, iy, ix = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
  return np.stack(
    [
      (p * ix).sum((2, 3, 4)) / w - 0.5,
      (p * iy).sum((2, 3, 4)) / h - 0.5,
      (p * iz).sum((2, 3, 4)) / d - 0.5,
    ],
    -1,
  )


def test_integral_matches_reference_and_channel_order():
  rng = np.random.default_rng(4)
  j, d, h, w = 3, 5, 6, 7
  nchw = rng.standard_normal((2, j * d, h, w)).astype(np.float32) * 3
  vol = channels_to_volume(jnp.asarray(nchw.transpose(0, 2, 3, 1)), j)
  np.testing.assert_array_equal(vol, nchw.reshape(2, j, d, h, w))  # torch's reshape order
  np.testing.assert_allclose(
    softmax_integral_3d(vol), _integral_reference(np.asarray(vol)), atol=1e-6
  )


def test_integral_of_a_peak_is_its_index_without_half_voxel_offset():
  vol = np.full((1, 1, 4, 8, 16), -1e4, np.float32)
  vol[0, 0, 3, 2, 5] = 0.0
  np.testing.assert_allclose(
    softmax_integral_3d(jnp.asarray(vol))[0, 0], [5 / 16 - 0.5, 2 / 8 - 0.5, 3 / 4 - 0.5]
  )


@pytest.mark.parametrize(
  'k,s,p,q',
  [
    ((4, 4), (2, 2), (1, 1), (0, 0)),
    ((3, 5), (2, 3), (1, 2), (1, 2)),
    ((2, 1), (3, 1), (0, 0), (2, 0)),
  ],
)
def test_subpixel_conv_transpose_equals_the_dilated_form_with_gradients(k, s, p, q):
  """The layer's sub-pixel form is the dilated convolution exactly: outputs and both gradients."""
  x = jnp.asarray(_rand(2, 5, 4, 3, seed=3))
  w = jnp.asarray(_rand(*k, 3, 4, seed=4))
  probe = jnp.asarray(_rand(*C.conv_transpose_dilated(x, w, s, p, q).shape, seed=5))

  def loss(fn):
    return lambda x, w: jnp.sum(fn(x, w, s, p, q) * probe)

  ref = jax.value_and_grad(loss(C.conv_transpose_dilated), argnums=(0, 1))(x, w)
  out = jax.value_and_grad(loss(C.conv_transpose_subpixel), argnums=(0, 1))(x, w)
  np.testing.assert_allclose(out[0], ref[0], rtol=1e-5, atol=1e-4)
  for a, b in zip(out[1], ref[1]):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
