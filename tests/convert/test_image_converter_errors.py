"""Image/body converters refuse weights of the wrong size with a ValueError that names the key and
both shapes (never a numpy reshape or broadcast error), and read every size they can off the
weights. Tiny synthetic state dicts in torch layout; the PMCE case uses the parity fixture."""

import numpy as np
import pytest

from jaxpose.models import dsr, epipolarpose, perspose, pmce
from tests.parity._fixtures import Fixture, fixture_files

_RNG = np.random.default_rng(0)


def _a(*shape):
  return _RNG.standard_normal(shape).astype(np.float32) * 0.1


def _hmr_head(channels=4, hidden=8):
  """Official `hmr_head` keys (fc1 ... deccam, init_* buffers of shape (1, n))."""
  sd = {
    'fc1.weight': _a(hidden, channels + 144 + 13),
    'fc1.bias': _a(hidden),
    'fc2.weight': _a(hidden, hidden),
    'fc2.bias': _a(hidden),
    'decpose.weight': _a(144, hidden),
    'decpose.bias': _a(144),
    'decshape.weight': _a(10, hidden),
    'decshape.bias': _a(10),
    'deccam.weight': _a(3, hidden),
    'deccam.bias': _a(3),
    'init_pose': _a(1, 144),
    'init_shape': _a(1, 10),
    'init_cam': _a(1, 3),
  }
  return sd


def test_hmr_head_sizes_come_from_the_weights():
  head, variables = dsr.head_from_torch(_hmr_head(channels=5, hidden=6), n_iter=2)
  assert (head.hidden, head.n_iter) == (6, 2)
  out = head.apply(variables, np.zeros((2, 7, 7, 5), np.float32), train=False)
  assert out['body_rotmat'].shape == (2, 24, 3, 3)


def test_hmr_head_wrong_buffer_names_key_and_shapes():
  sd = _hmr_head()
  sd['init_pose'] = _a(1, 100)
  with pytest.raises(ValueError, match=r"'init_pose' has shape \(1, 100\), expected \(144,\)"):
    dsr.head_from_torch(sd)


def test_hmr_head_too_narrow_fc1_names_key():
  sd = _hmr_head()
  sd['fc1.weight'] = _a(8, 100)
  with pytest.raises(ValueError, match=r'fc1.weight has shape \(8, 100\).*expected > 157'):
    dsr.head_from_torch(sd)


def test_hmr_head_wrong_layer_lists_key_and_shapes():
  sd = _hmr_head()
  sd['fc2.weight'] = _a(8, 5)
  with pytest.raises(ValueError, match=r'fc2.weight -> params/fc2/kernel: \(5, 8\) != \(8, 8\)'):
    dsr.head_from_torch(sd)


def _deconv_head(c_in=6, filters=4, kernel=4, joints=2, depth_res=3):
  sd = {}
  c = c_in
  for i in range(2):
    sd[f'deconv_layers.{3 * i}.weight'] = _a(c, filters, kernel, kernel)
    for name in ('weight', 'bias', 'running_mean'):
      sd[f'deconv_layers.{3 * i + 1}.{name}'] = _a(filters)
    sd[f'deconv_layers.{3 * i + 1}.running_var'] = np.ones(filters, np.float32)
    c = filters
  sd['final_layer.weight'] = _a(joints * depth_res, filters, 1, 1)
  sd['final_layer.bias'] = _a(joints * depth_res)
  return sd


def test_deconv_head_reads_layers_and_checks_channels():
  head, _ = epipolarpose.head_from_torch(_deconv_head(kernel=3), 6, num_joints=2, depth_res=3)
  assert head.filters == (4, 4) and head.kernels == (3, 3)
  with pytest.raises(ValueError, match=r'final_layer.weight has 6 channels != num_joints 2 x'):
    epipolarpose.head_from_torch(_deconv_head(), 6, num_joints=2, depth_res=4)
  with pytest.raises(ValueError, match=r'deconv_layers.0.weight -> .*\(4, 4, 6, 4\) != '):
    epipolarpose.head_from_torch(_deconv_head(), 5, num_joints=2, depth_res=3)


def test_perspose_without_pe_layer_names_the_key():
  with pytest.raises(ValueError, match='key cam_layer.weight missing'):
    perspose.from_torch({'hm_layer.weight': _a(25, 48, 1, 1)})


@pytest.mark.parametrize('path', fixture_files('pmce', 'pose_stream*'))
def test_pmce_given_size_that_disagrees_with_the_weights(path):
  fx = Fixture(path)
  j = fx.params['spatial_pos_embed'].shape[1]
  t = fx.params['temporal_pos_embed'].shape[1]
  with pytest.raises(ValueError, match=rf'spatial_pos_embed: \(1, {j}, \d+\) != \(1, {j + 1}, '):
    pmce.from_torch(fx.params, num_joint=j + 1)
  with pytest.raises(ValueError, match=rf'temporal_pos_embed: \(1, {t}, \d+\) != \(1, {t + 1}, '):
    pmce.from_torch(fx.params, seqlen=t + 1)
