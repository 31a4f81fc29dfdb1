"""HRNet: exact counts, official-keyed import (real key/shape lists), numerics vs a torch reference.

`data/*_state_dict_shapes.json` hold {key: shape} of state dicts produced by the official
constructors (pose_hrnet.py W32 COCO; PersPose's HRNet_hybrik W48 with the classification head),
facts only, generated once with torch from the fetched repositories.
"""

import json
import pathlib

import jax
import numpy as np
import pytest

import jaxpose.models as models
from jaxpose.models import hrnet

DATA = pathlib.Path(__file__).parent / 'data'


@pytest.mark.parametrize(
  'variant,count', [('w32', 28_536_113), ('w48', 63_595_745), ('w48_perspose', 75_420_864)]
)
def test_param_counts(variant, count):
  assert models.param_count('hrnet', variant) == count


def _synthetic(name):
  spec = json.loads((DATA / name).read_text())
  shapes = spec['shapes']
  sd = {
    k: np.zeros(s, np.int64 if k.endswith('num_batches_tracked') else np.float32)
    for k, s in shapes.items()
  }
  return spec['meta'], sd


def _n_params(variables):
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables['params']))


def test_official_w32_state_dict_loads():
  meta, sd = _synthetic('hrnet_w32_state_dict_shapes.json')
  module, variables = hrnet.from_torch(sd)
  assert (module.width, module.num_joints, module.cls_head) == (32, 17, False)
  assert tuple(module.num_modules) == (1, 4, 3) and module.num_blocks == 4
  assert _n_params(variables) == meta['params'] == 28_536_113
  bs = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables['batch_stats']))
  assert bs == 2 * sum(
    s[0]
    for k, s in json.loads((DATA / 'hrnet_w32_state_dict_shapes.json').read_text())[
      'shapes'
    ].items()
    if k.endswith('running_mean')
  )
  fuse = variables['params']['stage4_2']['fuse_layers_0_3_0']['kernel']
  assert fuse.shape == (1, 1, 256, 32)
  del sd['stage3.1.fuse_layers.2.0.1.0.weight']
  with pytest.raises(ValueError, match='stage3_1/fuse_layers_2_0_1_0/kernel'):
    hrnet.from_torch(sd)


def test_official_perspose_w48_state_dict_loads_under_a_prefix():
  meta, sd = _synthetic('perspose_hrnet_w48_state_dict_shapes.json')
  sd = {f'backbone.{k}': v for k, v in sd.items()}
  sd['hm_layer.weight'] = np.zeros((25, 48, 1, 1), np.float32)  # a PersPose head key: ignored
  module, variables = hrnet.from_torch(sd, prefix='backbone.')
  assert (module.width, module.num_joints, module.cls_head, module.feat_dim) == (48, 0, True, 2048)
  assert _n_params(variables) == meta['params'] == models.param_count('hrnet', 'w48_perspose')
  assert 'bias' in variables['params']['downsamp_modules_2_0']


torch = pytest.importorskip('torch')
refs = pytest.importorskip('tests.models._torch_refs')

_TINY = {'width': 4, 'blocks': 1, 'head_width': 4, 'feat_dim': 16, 'stem': 8}


def _compare(out, expected):
  assert set(out) == set(expected)
  for k, e in expected.items():
    e = e.numpy() if e.ndim == 2 else refs.to_nhwc(e)
    assert out[k].shape == e.shape
    np.testing.assert_allclose(out[k], e, atol=1e-4, rtol=1e-4, err_msg=k)


@pytest.mark.torch
def test_tiny_pose_hrnet_with_cam_info_matches_torch_reference():
  # Two stage-4 modules: a multi-scale one, then the last one that keeps only branch 0.
  ref = refs.randomize_(refs.HRNet(num_joints=5, modules=(1, 1, 2), **_TINY), seed=11)
  module, variables = hrnet.from_torch(refs.state_dict_numpy(ref))
  assert tuple(module.num_modules) == (1, 1, 2) and module.stem_width == 8
  x = np.random.default_rng(2).standard_normal((2, 64, 96, 3)).astype(np.float32)
  cam = np.random.default_rng(4).standard_normal((2, 16, 24, 32)).astype(np.float32)
  hook = ref.layer1.register_forward_hook(lambda m, i, o: o + refs.to_nchw(cam))
  with torch.no_grad():
    expected = ref(refs.to_nchw(x))
  hook.remove()
  out = jax.jit(lambda v, x, c: module.apply(v, x, c, train=False))(variables, x, cam)
  _compare(out, expected)


@pytest.mark.torch
def test_tiny_cls_head_hrnet_matches_torch_reference():
  ref = refs.randomize_(refs.HRNet(num_joints=0, modules=(1, 1, 1), cls_head=True, **_TINY), 12)
  module, variables = hrnet.from_torch(refs.state_dict_numpy(ref))
  assert module.cls_head and module.num_joints == 0
  x = np.random.default_rng(3).standard_normal((2, 64, 64, 3)).astype(np.float32)
  with torch.no_grad():
    expected = ref(refs.to_nchw(x))
  _compare(jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x), expected)
