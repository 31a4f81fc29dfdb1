"""ResNet: exact torchvision parameter counts, torchvision-keyed import checked number for number."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpose.models as models
from jaxpose.models import resnet


@pytest.mark.parametrize(
  'variant,count', [('50', 25_557_032), ('18', 11_689_512), ('34', 21_797_672)]
)
def test_param_counts_match_torchvision(variant, count):
  assert models.param_count('resnet', variant) == count  # eval_shape: nothing is compiled


def test_stage_shapes_and_feature_backbone():
  net = resnet.ResNet(depth=50, width=4)
  x = jnp.zeros((2, 64, 96, 3))
  shapes = jax.eval_shape(
    lambda: net.init_with_output(jax.random.key(0), x, train=False, return_stages=True)[0]
  )
  got = {k: v.shape for k, v in shapes.items()}
  assert got == {
    'stem': (2, 16, 24, 4),
    'layer1': (2, 16, 24, 16),
    'layer2': (2, 8, 12, 32),
    'layer3': (2, 4, 6, 64),
    'layer4': (2, 2, 3, 128),
  }
  assert net.out_channels == 128
  with pytest.raises(ValueError, match='depth must be one of'):
    jax.eval_shape(lambda: resnet.ResNet(depth=20).init(jax.random.key(0), x, train=False))


torch = pytest.importorskip('torch')
refs = pytest.importorskip('tests.models._torch_refs')


@functools.cache
def _apply(module):
  return jax.jit(lambda v, x: module.apply(v, x, train=False, return_stages=True))


@pytest.mark.torch
@pytest.mark.parametrize('depth,width', [(18, 8), (50, 4)])
def test_from_torch_matches_torch_reference(depth, width):
  ref = refs.randomize_(refs.ResNet(depth, width, num_classes=7), seed=depth)
  module, variables = resnet.from_torch(refs.state_dict_numpy(ref))
  assert (module.depth, module.width, module.num_classes) == (depth, width, 7)
  x = np.random.default_rng(0).standard_normal((2, 48, 40, 3)).astype(np.float32)
  with torch.no_grad():
    feats = refs.to_nhwc(ref.features(refs.to_nchw(x)))
    logits = ref(refs.to_nchw(x)).numpy()
  out = _apply(module)(variables, x)
  np.testing.assert_allclose(out['layer4'], feats, atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(out['logits'], logits, atol=1e-4, rtol=1e-4)


@pytest.mark.torch
def test_backbone_only_state_dict_with_prefix():
  ref = refs.randomize_(refs.ResNet(18, 8, num_classes=None), seed=3)
  sd = {f'backbone.{k}': v for k, v in refs.state_dict_numpy(ref).items()}
  sd['head.weight'] = np.zeros((3, 3), np.float32)  # outside the prefix: ignored
  module, variables = resnet.from_torch(sd, prefix='backbone')
  assert module.num_classes is None and 'fc' not in variables['params']
  x = np.random.default_rng(1).standard_normal((1, 32, 32, 3)).astype(np.float32)
  with torch.no_grad():
    expected = refs.to_nhwc(ref(refs.to_nchw(x)))
  np.testing.assert_allclose(module.apply(variables, x, train=False), expected, atol=1e-4)
  # The same weights through the embedding helper, as a model with other keys would use it.
  net = resnet.ResNet(18, 8)
  bb = resnet.backbone_variables(sd, net, prefix='backbone.')
  np.testing.assert_allclose(net.apply(bb, x, train=False), expected, atol=1e-4)


@pytest.mark.torch
def test_full_size_resnet50_state_dict_loads_with_exact_count():
  ref = refs.ResNet(50, 64, num_classes=1000)
  shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
  # The torchvision resnet50 key set: 53 convs, 53 BNs x 5 entries, fc weight + bias.
  assert len(shapes) == 320 and shapes['layer4.2.bn3.num_batches_tracked'] == ()
  assert shapes['layer3.0.downsample.0.weight'] == (1024, 512, 1, 1)
  sd = {
    k: np.zeros(s, np.int64 if k.endswith('tracked') else np.float32) for k, s in shapes.items()
  }
  module, variables = resnet.from_torch(sd, num_classes=1000)
  assert module.depth == 50 and module.num_classes == 1000
  n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables['params']))
  assert n == 25_557_032
  k = variables['params']['layer1_0']['conv2']['kernel']
  assert k.shape == (3, 3, 64, 64)
  with pytest.raises(ValueError, match='missing'):
    resnet.from_torch({k: v for k, v in sd.items() if k != 'layer2.1.bn2.weight'})
  with pytest.raises(ValueError, match='num_classes=10'):
    resnet.from_torch(sd, num_classes=10)


def test_infer_config_rejects_unknown_structures():
  with pytest.raises(ValueError, match='conv1.weight'):
    resnet.infer_config({'fc.weight': np.zeros((2, 2))})
  sd = {'conv1.weight': np.zeros((8, 3, 7, 7)), 'layer1.0.conv1.weight': np.zeros((8, 8, 3, 3))}
  with pytest.raises(ValueError, match='no torchvision ResNet'):
    resnet.infer_config(sd)
