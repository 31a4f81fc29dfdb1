"""MPM / P-STMO lifter: published sizes and MACs, the custom LayerNorm, contract, refine, import."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.bench import flops
from jaxpose.models import mpm
from jaxpose.models.layers.pstmo_norm import PstmoLayerNorm

TINY = dict(num_frames=27, layers=1, channel=16, d_hid=32)


def _variables(module, *args, **kwargs):
  """Random variables of the init shapes (BatchNorm variances positive) without compiling init."""
  rng = np.random.default_rng(0)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))

  def leaf(path, s):
    a = rng.normal(0, 0.3, s.shape)
    is_var = jax.tree_util.keystr(path).endswith("['var']")
    return jnp.asarray(np.abs(a) + 1 if is_var else a, jnp.float32)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


@pytest.mark.parametrize(
  'variant, params, refine',
  [
    ('h36m_f243', 7_009_382, 140_322),
    ('h36m_f243_l3', 6_482_278, 140_322),
    ('3dhp_f243', 6_479_712, 132_128),
    ('h36m_f81', 5_527_142, 140_322),
    ('h36m_f27', 4_682_598, 140_322),
  ],
)
def test_param_counts_match_the_official_model(variant, params, refine):
  assert models.param_count('mpm', variant) == params == mpm.PAPER[variant]['params']
  with_refine = models.param_count('mpm', variant, refine=True)
  assert with_refine - params == refine == mpm.PAPER[variant]['params_refine']


@pytest.mark.parametrize(
  'variant, macs_fcm',
  [('h36m_f243', 1_021_536_768), ('h36m_f81', 259_737_600), ('3dhp_f243', 863_465_472)],
)
def test_macs_equal_the_official_flop_counter(variant, macs_fcm):
  assert mpm.PAPER[variant]['macs_all'] == macs_fcm == mpm.PAPER[variant]['macs_measured_fcm']


@pytest.mark.parametrize('kw', [TINY, dict(TINY, num_frames=9, layers=2), dict(TINY, refine=True)])
def test_macs_formula_agrees_with_the_jaxpr_walker(kw):
  model = mpm.Model(**kw)
  rep = flops.model_flops(model, xla=False)
  formula = mpm.macs(
    kw['num_frames'], 17, kw['layers'], kw['channel'], kw['d_hid'], refine=kw.get('refine', False)
  )
  assert rep['macs_linear'] == formula['linear']
  assert rep['macs_all'] == formula['all']


def test_default_strides_follow_the_official_table():
  assert mpm.default_strides(243) == (3, 3, 3, 3, 3)
  assert mpm.default_strides(9) == (1, 3, 3)
  assert mpm.default_strides(729) == (3,) * 6
  with pytest.raises(ValueError, match='stride_num'):
    mpm.default_strides(100)


def test_pstmo_layer_norm_is_unbiased_with_eps_on_the_std():
  x = jax.random.normal(jax.random.key(0), (3, 5, 8)) * 3 + 1
  ln = PstmoLayerNorm(epsilon=0.5)
  variables = ln.init(jax.random.key(1), x)
  assert set(variables['params']) == {'a_2', 'b_2'}
  xn = np.asarray(x, np.float64)
  ref = (xn - xn.mean(-1, keepdims=True)) / (xn.std(-1, ddof=1, keepdims=True) + 0.5)
  np.testing.assert_allclose(ln.apply(variables, x), ref, rtol=1e-5, atol=1e-6)
  # Not torch's LayerNorm: the biased variance with eps inside the square root differs.
  torch_ln = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 0.5)
  assert np.abs(ref - torch_ln).max() > 1e-2


@pytest.fixture(scope='module')
def tiny():
  """A tiny model, its variables, an input and two shared compiled functions."""
  model = mpm.Model(**TINY)
  x = jax.random.uniform(jax.random.key(1), (2, 27, 17, 2), minval=-1, maxval=1)
  variables = _variables(model, x, train=False)

  @jax.jit
  def evaluate(variables, x):
    return model.apply(variables, x, train=False, return_all=True)

  @jax.jit
  def grad(params):  # eval mode: dropout's RNG code would dominate compile time
    def loss(params):
      c, v = model.apply({**variables, 'params': params}, x, train=False, return_all=True)
      return jnp.sum(c**2) + jnp.sum(v**2)

    return jax.grad(loss)(params)

  return model, variables, x, evaluate, grad


def test_contract_shapes_and_both_outputs(tiny):
  model, variables, x, evaluate, _ = tiny
  centre, vte = evaluate(variables, x)
  assert centre.shape == (2, 1, 17, 3) and vte.shape == (2, 27, 17, 3)
  shape = jax.eval_shape(lambda: model.apply(variables, x, train=False)).shape
  assert shape == (2, 1, 17, 3)
  assert set(variables) == {'params', 'batch_stats'}
  assert variables['params']['shared_layers_temporal']['pos_embedding'].shape == (1, 27, 16)
  assert models.example_input(model).shape == (1, 27, 17, 2)


def test_positional_embeddings_are_standard_normal():
  vte = mpm.VanillaTransformer(num_layers=0, d_ff=8, length=64)
  pos = vte.init(jax.random.key(0), jnp.zeros((1, 64, 32)), train=False)['params']['pos_embedding']
  assert 0.9 < float(jnp.std(pos)) < 1.1


def test_only_the_unused_encoder_norms_get_zero_gradient(tiny):
  _, variables, _, _, grad = tiny
  grads = flax.traverse_util.flatten_dict(grad(variables['params']), sep='/')
  zero = sorted(k for k, g in grads.items() if not np.any(np.asarray(g)))
  assert zero == [
    'shared_layers_temporal/norm/a_2',
    'shared_layers_temporal/norm/b_2',
    'transformer_reduce/norm/a_2',
    'transformer_reduce/norm/b_2',
  ]


def test_train_mode_uses_batch_statistics_and_updates_them(tiny):
  model, variables, x, evaluate, _ = tiny
  no_drop = model.clone(dropout=0.0, mlp_dropout=0.0)
  out, stats = jax.jit(lambda v: no_drop.apply(v, x, train=True, mutable=['batch_stats']))(
    variables
  )
  assert not np.allclose(out, evaluate(variables, x)[0])
  old = variables['batch_stats']['encoder2d']['bn_1']['mean']
  assert not np.allclose(stats['batch_stats']['encoder2d']['bn_1']['mean'], old)


@pytest.mark.parametrize(
  'layer, shape',
  [(mpm.Simplemlp(8, dropout=0.5), (2, 5, 6)), (mpm.EncoderLayer(8, 2, dropout=0.5), (2, 5, 4))],
)
def test_dropout_is_active_in_training_only(layer, shape):
  x = jnp.ones(shape)
  v = layer.init(jax.random.key(0), x, train=False)
  run = lambda k: layer.apply(v, x, train=True, rngs={'dropout': k}, mutable=['batch_stats'])[0]
  assert not np.allclose(run(jax.random.key(1)), run(jax.random.key(2)))
  off = lambda k: layer.apply(v, x, train=False, rngs={'dropout': k})  # dropout off in eval
  np.testing.assert_array_equal(off(jax.random.key(1)), off(jax.random.key(2)))


def test_centre_frame_sees_the_whole_window_and_strides_shrink_it(tiny):
  model, variables, x, evaluate, _ = tiny
  centre, vte = evaluate(variables, x)
  moved, moved_vte = evaluate(variables, x.at[:, 0].add(1.0))
  assert not np.allclose(moved, centre)
  assert not np.allclose(moved_vte[:, -1], vte[:, -1])  # the VTE attends over all frames
  shape = jax.eval_shape(
    lambda: model.clone(stride_num=(3, 3)).apply(variables, x, train=False)
  ).shape
  assert shape == (2, 3, 17, 3)  # 27 -> 9 -> 3 frames left


def test_rejects_wrong_window(tiny):
  model, variables = tiny[:2]
  with pytest.raises(ValueError, match='27, 17, 2'):
    jax.eval_shape(lambda: model.apply(variables, jnp.zeros((1, 9, 17, 2)), train=False))


def test_refine_module_mixes_xy_and_keeps_z():
  refine = mpm.PostRefine(hidden=8)
  k = jax.random.split(jax.random.key(0), 3)
  pred = jax.random.normal(k[0], (2, 1, 17, 3))
  xyz = jax.random.normal(k[1], (2, 1, 17, 3))
  v = refine.init(k[2], pred, xyz, train=False)
  assert v['params']['fc1']['kernel'].shape == (6 * 17, 8)
  np.testing.assert_allclose(refine.apply(v, pred, pred, train=False), pred, atol=1e-6)
  out = refine.apply(v, pred, xyz, train=False)
  np.testing.assert_array_equal(out[..., 2], pred[..., 2])
  s = (out[..., :2] - xyz[..., :2]) / (pred[..., :2] - xyz[..., :2])  # out = s p + (1 - s) xyz
  assert np.all((s > 0) & (s < 1))
  assert models.param_count('mpm', 'h36m_f27', refine=True) > models.param_count('mpm', 'h36m_f27')


def test_uvd_to_xyz_inverts_the_pinhole_projection():
  key = jax.random.split(jax.random.key(0), 3)
  root = jnp.array([[0.1, -0.2, 4.0]])[:, None]  # (B, T, 3)
  rel = jax.random.normal(key[0], (1, 1, 17, 3)) * 0.3
  rel = rel.at[..., 0, :].set(0.0)
  cam = jnp.array([[1.1, 1.2, 0.05, -0.02]])
  p = rel + root[:, :, None]
  uv = p[..., :2] / p[..., 2:] * cam[:, None, None, :2] + cam[:, None, None, 2:4]
  xyz = mpm.uvd_to_xyz(uv, rel[..., 2], root, cam)
  np.testing.assert_allclose(xyz, rel, atol=1e-5)


# --- official checkpoint import (torch-written files) ---------------------------------------

from tests.parity._fixtures import Fixture, fixture_files  # noqa: E402


def _save_like_dataparallel(torch, state_dict, path):
  """torch.save of a state dict with nn.DataParallel's `module.` prefix, as the official scripts."""
  torch.save({f'module.{k}': torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, path)


def _fixtures(pretrain: bool):
  out = []
  for p in fixture_files('mpm'):
    if p.values[0] is None:
      return [p]
    with np.load(p.values[0]) as z:
      if ('param/dec_pos_embedding' in z.files) == pretrain:
        out.append(p)
  return out


@pytest.mark.torch
@pytest.mark.parametrize('path', _fixtures(pretrain=False))
def test_load_official_reads_the_finetune_and_refine_checkpoints(path, tmp_path):
  torch = pytest.importorskip('torch')
  from jaxpose.convert import load_official

  fx = Fixture(path)
  # trainer.py saves model['trans'] and model['refine'] (DataParallel) with torch.save(state_dict).
  _save_like_dataparallel(torch, fx.params, tmp_path / 'no_refine_12_4500.pth')
  refine = mpm.PostRefine()
  rv = refine.init(
    jax.random.key(0), jnp.zeros((1, 1, 17, 3)), jnp.zeros((1, 1, 17, 3)), train=False
  )['params']
  refine_sd = {}
  for i, name in ((0, 'fc1'), (3, 'fc2')):  # nn.Sequential(Linear, ReLU, Dropout, Linear, Sigmoid)
    refine_sd[f'post_refine.{i}.weight'] = np.asarray(rv[name]['kernel']).T
    refine_sd[f'post_refine.{i}.bias'] = np.asarray(rv[name]['bias'])
  _save_like_dataparallel(torch, refine_sd, tmp_path / 'refine_12_4500.pth')

  model, variables = load_official('mpm', tmp_path / 'no_refine_12_4500.pth')  # all inferred
  ref_model, ref = mpm.from_torch(fx.params, **fx.meta['constructor_args'])
  assert model == ref_model
  jax.tree.map(np.testing.assert_array_equal, variables, ref)  # outputs: tests/parity

  from jaxpose.convert import read_checkpoint

  rsd = {k: np.asarray(v) for k, v in read_checkpoint(tmp_path / 'refine_12_4500.pth').items()}
  model_r, variables_r = load_official(
    'mpm', tmp_path / 'no_refine_12_4500.pth', refine_state_dict=rsd, **fx.meta['constructor_args']
  )
  assert model_r == ref_model.clone(refine=True)
  jax.tree.map(np.testing.assert_array_equal, variables_r['params']['post_refine'], rv)


@pytest.mark.torch
@pytest.mark.parametrize('path', _fixtures(pretrain=True))
def test_load_official_reads_the_pretrain_checkpoint(path, tmp_path):
  torch = pytest.importorskip('torch')
  from jaxpose.convert import load_official

  fx = Fixture(path)
  _save_like_dataparallel(torch, fx.params, tmp_path / 'pretrain_30.pth')
  masked = fx.meta['constructor_args']['spatial_mask_num']
  net, variables = load_official('mpm', tmp_path / 'pretrain_30.pth', spatial_mask_num=masked)
  decoder_layers = len(
    {k.split('.')[3] for k in fx.params if k.startswith('decoder2d.model.layers.')}
  )
  assert isinstance(net, mpm.PretrainNet) and net.decoder_layers == decoder_layers
  assert net.spatial_mask_num == masked
  ref_net, ref = mpm.pretrain_from_torch(fx.params, **fx.meta['constructor_args'])
  assert net == ref_net
  jax.tree.map(np.testing.assert_array_equal, variables, ref)  # outputs: tests/parity


def test_from_torch_names_what_does_not_fit():
  path = _fixtures(pretrain=False)[0].values[0]
  if path is None:
    pytest.skip('no mpm fixture')
  sd = dict(Fixture(path).params)
  args = dict(Fixture(path).meta['constructor_args'])
  with pytest.raises(ValueError, match='stride_num'):
    mpm.from_torch(sd, **{**args, 'stride_num': (*args['stride_num'], 3)})  # one stride too many
  sd['shared_layers_temporal.model.layers.0.feed_forward.w_2.bias'] = np.zeros(7, np.float32)
  with pytest.raises(ValueError, match='shape mismatches'):
    mpm.from_torch(sd, **args)
