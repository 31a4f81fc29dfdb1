"""State-dict conversion helpers and checkpoint reading (jaxpose.convert)."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxpose.convert import extract_state_dict, read_checkpoint, torch_utils
from jaxpose.models.layers import LayerNorm, TorchBatchNorm


class _Net(nn.Module):
  """A torch-like net: blocks.0.{fc, norm}, a conv, a BN, an embedding and a bare parameter."""

  @nn.compact
  def __call__(self, x):
    pos = self.param('pos_embed', nn.initializers.zeros, (1, 4))
    x = nn.Dense(4, name='blocks_0_fc')(x) + pos  # renamed from torch 'blocks.0.fc'
    x = LayerNorm(name='norm')(x)
    x = TorchBatchNorm(name='bn')(x, train=False)
    y = nn.Conv(2, (3,), name='conv')(x[..., None])
    e = nn.Embed(5, 4, name='emb')(jnp.zeros(x.shape[:1], jnp.int32))
    return y.sum() + e.sum()


def _torch_state(rng):
  f = lambda *s: rng.standard_normal(s).astype(np.float32)
  return {
    'pos_embed': f(1, 4),
    'blocks.0.fc.weight': f(4, 3),
    'blocks.0.fc.bias': f(4),
    'norm.weight': f(4),
    'norm.bias': f(4),
    'bn.weight': f(4),
    'bn.bias': f(4),
    'bn.running_mean': f(4),
    'bn.running_var': np.abs(f(4)),
    'bn.num_batches_tracked': np.array(3),
    'conv.weight': f(2, 1, 3),  # Conv1d (O, I, W)
    'conv.bias': f(2),
    'emb.weight': f(5, 4),
  }


def _rename(path):
  return path.replace('blocks.0.fc', 'blocks_0_fc')


def test_convert_state_dict_maps_every_kind_of_leaf():
  state = _torch_state(np.random.default_rng(0))
  ref = jax.eval_shape(lambda: _Net().init(jax.random.key(0), jnp.zeros((2, 3))))
  out = torch_utils.convert_state_dict(state, ref, rename=_rename)
  p, bs = out['params'], out['batch_stats']
  np.testing.assert_array_equal(p['blocks_0_fc']['kernel'], state['blocks.0.fc.weight'].T)
  np.testing.assert_array_equal(p['norm']['scale'], state['norm.weight'])
  np.testing.assert_array_equal(p['bn']['scale'], state['bn.weight'])
  np.testing.assert_array_equal(bs['bn']['var'], state['bn.running_var'])
  np.testing.assert_array_equal(p['conv']['kernel'], state['conv.weight'].transpose(2, 1, 0))
  np.testing.assert_array_equal(p['emb']['embedding'], state['emb.weight'])
  np.testing.assert_array_equal(p['pos_embed'], state['pos_embed'])
  assert jax.tree.structure(out) == jax.tree.structure(jax.tree.map(lambda s: 0, ref))


def test_convert_state_dict_reports_missing_unexpected_and_shapes():
  state = _torch_state(np.random.default_rng(0))
  ref = jax.eval_shape(lambda: _Net().init(jax.random.key(0), jnp.zeros((2, 3))))
  del state['norm.bias']
  state['extra.weight'] = np.zeros(2, np.float32)
  state['conv.bias'] = np.zeros(3, np.float32)
  with pytest.raises(ValueError) as e:
    torch_utils.convert_state_dict(state, ref, rename=_rename)
  msg = str(e.value)
  assert 'params/norm/bias' in msg
  assert 'extra.weight -> params/extra/weight' in msg
  assert 'conv.bias -> params/conv/bias: (3,) != (2,)' in msg


def test_module_paths_and_layout_helpers():
  assert torch_utils.flax_module_path('layers.10.mlp.fc1') == ('layers_10', 'mlp', 'fc1')
  assert torch_utils.flax_module_path('') == ()
  w = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  assert torch_utils.conv_kernel(w).shape == (4, 3, 2)
  assert torch_utils.conv_kernel(np.zeros((2, 3, 4, 5))).shape == (4, 5, 3, 2)
  assert torch_utils.linear(np.zeros((2, 3)), np.zeros(2))['kernel'].shape == (3, 2)
  params, stats = torch_utils.batch_norm(*(np.full(3, i, np.float32) for i in range(4)))
  assert params['bias'][0] == 1 and stats['mean'][0] == 2 and stats['var'][0] == 3


def test_conv_kernel_matches_torch_conv():
  torch = pytest.importorskip('torch')
  conv = torch.nn.Conv2d(3, 4, (3, 2), padding=0)
  x = np.random.default_rng(1).standard_normal((2, 3, 6, 5)).astype(np.float32)
  ref = conv(torch.from_numpy(x)).detach().numpy()
  params = {
    'kernel': torch_utils.conv_kernel(conv.weight.detach().numpy()),
    'bias': conv.bias.detach().numpy(),
  }
  y = nn.Conv(4, (3, 2), padding='VALID').apply({'params': params}, x.transpose(0, 2, 3, 1))
  np.testing.assert_allclose(y, ref.transpose(0, 2, 3, 1), atol=1e-5)


def test_extract_state_dict_finds_and_cleans():
  w = np.ones((2, 2), np.float32)
  ckpt = {'epoch': 3, 'model': {'module.a.weight': w, 'module.b.bias': w[0]}, 'lr': 0.1}
  assert sorted(extract_state_dict(ckpt)) == ['a.weight', 'b.bias']
  both = {'model_pos': {'p.weight': w}, 'model_traj': {'t.weight': w}}
  assert list(extract_state_dict(both)) == ['p.weight']
  assert list(extract_state_dict(both, 'model_traj')) == ['t.weight']
  assert list(extract_state_dict({'x.weight': w})) == ['x.weight']
  with pytest.raises(KeyError, match='checkpoint_key'):
    extract_state_dict({'epoch': 1, 'weights': {'x': w}})


def test_read_checkpoint_torch_file_with_numpy_scalars(tmp_path):
  torch = pytest.importorskip('torch')
  path = tmp_path / 'best_epoch.pth.tr'
  state = {'module.fc.weight': torch.ones(2, 3)}
  torch.save({'model': state, 'epoch': 4, 'min_mpjpe': np.float64(41.5)}, path)
  ckpt = read_checkpoint(path)
  assert float(ckpt['min_mpjpe']) == 41.5
  sd = extract_state_dict(ckpt)
  assert isinstance(sd['fc.weight'], np.ndarray) and sd['fc.weight'].shape == (2, 3)


def test_read_checkpoint_refuses_arbitrary_pickles(tmp_path):
  torch = pytest.importorskip('torch')
  path = tmp_path / 'odd.pth'
  torch.save({'model': {'w': torch.ones(1)}, 'cfg': _Picklable()}, path)
  with pytest.raises(pickle.UnpicklingError, match='trust_pickle'):
    read_checkpoint(path)
  assert 'cfg' in read_checkpoint(path, trust_pickle=True)


class _Picklable:
  pass


def test_read_checkpoint_npz_and_missing(tmp_path):
  path = tmp_path / 'w.npz'
  np.savez(path, **{'a.weight': np.zeros(2)})
  assert list(read_checkpoint(path)) == ['a.weight']
  with pytest.raises(FileNotFoundError):
    read_checkpoint(tmp_path / 'nope.pth')


def test_strip_prefixes_and_conv1d_linear():
  sd = {'module._orig_mod.fc.weight': 1, 'module.fc.bias': 2, 'head.weight': 3}
  assert torch_utils.strip_prefixes(sd) == {'fc.weight': 1, 'fc.bias': 2, 'head.weight': 3}
  w = np.arange(6, dtype=np.float32).reshape(3, 2, 1)  # Conv1d(2 -> 3, kernel_size=1)
  out = torch_utils.linear(w, np.ones(3))
  np.testing.assert_array_equal(out['kernel'], w[..., 0].T)
  assert out['kernel'].shape == (2, 3) and out['bias'].shape == (3,)


def test_convert_for_model_builds_the_reference_and_checks_it():
  import flax.linen as nn

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      return nn.Dense(4, name='fc')(nn.LayerNorm(name='norm')(x))

  sd = {
    'fc.weight': np.ones((4, 3), np.float32),
    'fc.bias': np.zeros(4, np.float32),
    'norm.weight': np.ones(3, np.float32),
    'norm.bias': np.zeros(3, np.float32),
  }
  v = torch_utils.convert_for_model(sd, Net(), (1, 5, 3))
  assert v['params']['fc']['kernel'].shape == (3, 4)
  with pytest.raises(ValueError, match='shape mismatches'):
    torch_utils.convert_for_model(sd, Net(), (1, 5, 2))  # the input width is not the weights'
  ref = torch_utils.abstract_variables(Net(), (1, 5, 3))
  torch_utils.check_variables(v, ref, 'Net')
  bad = {'params': {'fc': v['params']['fc']}}
  with pytest.raises(ValueError, match=r'does not fit Net(?s:.*)missing(?s:.*)params/norm/scale'):
    torch_utils.check_variables(bad, ref, 'Net')
