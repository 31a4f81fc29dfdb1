"""EpipolarPose network: exact count, official-keyed import checked against a torch PoseResNet."""

import jax
import numpy as np
import pytest

import jaxpose.models as models
from jaxpose.models import epipolarpose


def test_param_counts():
  assert models.param_count('epipolarpose', 'r50') == 34_274_944
  # SimpleBaseline-50 (17 heatmaps) is 33,999,697: the same minus the J*D - J final channels.
  assert models.param_count('epipolarpose', 'r50') - (17 * 64 - 17) * 257 == 33_999_697


def test_output_shapes():
  model = models.build('epipolarpose', 'r18', return_logits=True, width=8, depth_res=16)
  x = models.example_inputs(model, batch=2)
  out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), *x, train=False)[0])
  assert out['pose_norm'].shape == (2, 17, 3)
  assert out['logits'].shape == (2, 17, 16, 64, 64)  # 256 / 32 * 2^3


torch = pytest.importorskip('torch')
refs = pytest.importorskip('tests.models._torch_refs')


def _integral(vol):
  """numpy reference of the official softmax_integral_tensor on (B, J, D, H, W)."""
  b, j, d, h, w = vol.shape
  p = np.exp(vol.reshape(b, j, -1) - vol.reshape(b, j, -1).max(-1, keepdims=True))
  p = (p / p.sum(-1, keepdims=True)).reshape(vol.shape)
  return np.stack(
    [
      (p.sum((2, 3)) * np.arange(w)).sum(-1) / w - 0.5,
      (p.sum((2, 4)) * np.arange(h)).sum(-1) / h - 0.5,
      (p.sum((3, 4)) * np.arange(d)).sum(-1) / d - 0.5,
    ],
    -1,
  )


@pytest.mark.torch
def test_from_torch_matches_torch_pose_resnet():
  j, d = 3, 8
  ref = refs.randomize_(refs.PoseResNet(18, 8, j, d, (16, 16, 16)), seed=7)
  sd = {f'module.{k}': v for k, v in refs.state_dict_numpy(ref).items()}
  module, variables = epipolarpose.from_torch(sd, num_joints=j, depth_res=d, prefix='module.')
  assert (module.depth, module.width, module.num_joints, module.depth_res) == (18, 8, j, d)
  assert tuple(module.deconv_filters) == (16, 16, 16) and not module.deconv_with_bias
  module = module.clone(return_logits=True)
  x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)
  with torch.no_grad():
    vol = ref(refs.to_nchw(x)).numpy()  # (B, J*D, 16, 16)
  out = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x)
  vol = vol.reshape(2, j, d, 16, 16)
  np.testing.assert_allclose(out['logits'], vol, atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(out['pose_norm'], _integral(vol.astype(np.float64)), atol=1e-5)
  with pytest.raises(ValueError, match='num_joints 5'):
    epipolarpose.from_torch(sd, num_joints=5, depth_res=d, prefix='module.')
  with pytest.raises(ValueError, match='unexpected keys'):
    epipolarpose.from_torch(
      {**sd, 'module.depth_fc.weight': np.zeros((2, 2))}, depth_res=d, prefix='module'
    )


@pytest.mark.torch
def test_full_size_official_state_dict_loads_with_exact_count():
  ref = refs.PoseResNet(50, 64, 17, 64, (256, 256, 256))
  shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
  assert shapes['deconv_layers.0.weight'] == (2048, 256, 4, 4)
  assert shapes['final_layer.weight'] == (1088, 256, 1, 1)
  sd = {
    k: np.zeros(s, np.int64 if k.endswith('tracked') else np.float32) for k, s in shapes.items()
  }
  sd['deconv_layers.3.weight'][1, 2, 0, 3] = 1.0  # C_in 1, C_out 2, kH 0, kW 3
  module, variables = epipolarpose.from_torch(sd)
  assert module.num_joints == 17 and module.depth == 50
  n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables['params']))
  assert n == 34_274_944
  kernel = variables['params']['head']['deconv_layers_3']['kernel']  # flipped, (kH, kW, in, out)
  assert kernel.shape == (4, 4, 256, 256) and kernel[3, 0, 1, 2] == 1.0 and kernel.sum() == 1.0
