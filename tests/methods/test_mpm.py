"""MPM pre-training: masks, MAE-style encoding, pretext losses, encoder transfer, completion."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from jaxpose.methods import mpm as method
from jaxpose.models import mpm
from tests.models.test_mpm import _variables

T, J = 9, 17
NET = dict(
  num_frames=T,
  num_joints=J,
  layers=1,
  channel=16,
  d_hid=32,
  dropout=0.0,
  mlp_dropout=0.0,
  spatial_mask_num=2,
  temporal_mask_rate=0.5,
)


def test_sample_masks_counts_and_sharing():
  m = mpm.sample_masks(
    jax.random.key(0), num_frames=T, num_joints=J, spatial_mask_num=3, num_masked=4
  )
  assert set(m) == set(mpm.MASK_KEYS)
  assert m['spatial_mask_2d'].shape == (T, J) and m['temporal_mask_3d'].shape == (T,)
  np.testing.assert_array_equal(m['spatial_mask_2d'].sum(-1), 3)
  assert int(m['temporal_mask_2d'].sum()) == 4
  assert not np.array_equal(m['spatial_mask_2d'], m['spatial_mask_3d'])  # independent draws
  per = mpm.sample_masks(
    jax.random.key(1), num_frames=T, num_joints=J, spatial_mask_num=3, num_masked=4, batch_size=5
  )
  assert per['spatial_mask_3d'].shape == (5, T, J) and per['temporal_mask_2d'].shape == (5, T)
  np.testing.assert_array_equal(per['temporal_mask_2d'].sum(-1), 4)
  assert len({tuple(np.asarray(r)) for r in per['temporal_mask_2d']}) > 1


@pytest.fixture(scope='module')
def net():
  model = mpm.PretrainNet(**NET)
  k = jax.random.split(jax.random.key(0), 4)
  x2d = jax.random.uniform(k[0], (2, T, J, 2), minval=-1, maxval=1)
  x3d = jax.random.normal(k[1], (2, T, J, 3)).at[:, :, 0].set(0.0) * 0.3
  variables = _variables(model, x2d, train=False)  # every weight and statistic random
  masks = mpm.sample_masks(k[3], num_frames=T, num_joints=J, spatial_mask_num=2, num_masked=4)

  @jax.jit
  def evaluate(x2d, x3d, masks):
    return model.apply(variables, x2d, x3d, train=False, masks=masks)

  return model, variables, x2d, x3d, masks, evaluate


def test_init_creates_both_branches_and_the_tokens(net):
  model, variables = net[:2]
  p = variables['params']
  assert {'encoder2d', 'encoder3d', 'decoder2d', 'decoder3d', 'fcn_dec2d', 'fcn_dec3d'} <= set(p)
  assert p['spatial_mask_token2d'].shape == (1, 1, 2)
  assert p['spatial_mask_token3d'].shape == (1, 1, 3)
  assert p['temporal_mask_token'].shape == (1, 1, 16)
  assert 'pos_embedding' not in p['decoder2d'] and 'layers_1' not in p['decoder2d']
  assert model.num_masked_frames == 4


def test_masked_joints_and_frames_do_not_reach_the_outputs(net):
  _, _, x2d, x3d, masks, evaluate = net
  out = evaluate(x2d, x3d, masks)
  assert out['out2d'].shape == (2, T, J, 2) and out['out3d_lift'].shape == (2, T, J, 3)
  hidden2d = masks['spatial_mask_2d'] | masks['temporal_mask_2d'][:, None]
  hidden3d = masks['spatial_mask_3d'] | masks['temporal_mask_3d'][:, None]
  noise = lambda x, hidden: x + jnp.where(hidden[..., None], 5.0, 0.0)
  same = evaluate(noise(x2d, hidden2d), noise(x3d, hidden3d), masks)
  for k in out:
    np.testing.assert_allclose(same[k], out[k], atol=1e-5, err_msg=k)
  seen = evaluate(noise(x2d, ~hidden2d), x3d, masks)
  assert not np.allclose(seen['out2d'], out['out2d'])
  np.testing.assert_allclose(seen['out3d'], out['out3d'], atol=1e-5)  # branches are separate


def _batch(x2d, x3d, masks=None):
  b = {'kp2d_norm': x2d, 'pose3d_cam': x3d, 'valid': jnp.ones(x2d.shape[:2], bool)}
  return {**b, **(masks or {})}


def test_loss_fn_weights_explicit_masks_and_the_mask_stream(net):
  model, variables, x2d, x3d, masks, _ = net
  params, state = variables['params'], {'batch_stats': variables['batch_stats']}
  cfg = mlc.ConfigDict({'method': {'name': 'mpm'}})

  @jax.jit
  def run(batch, rng):
    return method.loss_fn(model, params, state, batch, rng, cfg)

  loss, (scalars, new_state) = run(_batch(x2d, x3d, masks), jax.random.key(1))
  np.testing.assert_allclose(
    loss, 5 * scalars['loss/mask2d'] + 2 * scalars['loss/mask3d'], rtol=1e-6
  )
  assert 'loss/lift' not in scalars  # weight 0 in the 17-joint H36M recipe
  assert not np.allclose(
    new_state['batch_stats']['encoder3d']['bn_1']['mean'],
    state['batch_stats']['encoder3d']['bn_1']['mean'],
  )
  # Explicit masks: the mask stream is unused (dropout is 0 here).
  again = run(_batch(x2d, x3d, masks), jax.random.key(2))[0]
  np.testing.assert_allclose(again, loss, rtol=1e-6)
  # Drawn masks: other keys, other masks, other losses.
  drawn = [float(run(_batch(x2d, x3d), jax.random.key(i))[0]) for i in (1, 2)]
  assert drawn[0] != drawn[1]


def test_pretext_gradients_reach_every_part(net):
  model, variables, x2d, x3d, masks, _ = net
  state = {'batch_stats': variables['batch_stats']}
  cfg = mlc.ConfigDict(
    {'method': {'kwargs': {'pretext_weights': method.PRETEXT_WEIGHTS['poseaug16']}}}
  )
  grad_fn = jax.jit(
    jax.grad(
      lambda p: method.loss_fn(model, p, state, _batch(x2d, x3d, masks), jax.random.key(0), cfg)[0]
    )
  )
  g = grad_fn(variables['params'])
  for name in (
    'encoder2d',
    'encoder3d',
    'shared_layers_spatial',
    'decoder2d',
    'decoder3d',
    'spatial_mask_token2d',
    'spatial_mask_token3d',
    'temporal_mask_token',
    'dec_pos_embedding',
    'encoder_LN',
  ):
    assert any(np.any(np.asarray(a)) for a in jax.tree.leaves(g[name])), name
  # The temporal encoder's own final norm is unused, as officially.
  assert not np.any(np.asarray(g['shared_layers_temporal']['norm']['a_2']))


def test_load_pretrained_encoder_transfers_the_shared_encoder(net):
  model, variables, x2d, *_ = net
  lifter = mpm.Model(num_frames=T, layers=1, channel=16, d_hid=32, stride_num=(3, 3))
  fine = _variables(lifter, x2d, train=False)
  loaded = method.load_pretrained_encoder(fine, variables)
  for col in ('params', 'batch_stats'):
    for name in ('encoder2d', 'shared_layers_spatial'):
      jax.tree.map(np.testing.assert_array_equal, loaded[col][name], variables[col][name])
    jax.tree.map(np.testing.assert_array_equal, loaded[col]['fcn'], fine[col]['fcn'])
  np.testing.assert_array_equal(
    loaded['params']['shared_layers_temporal']['pos_embedding'],
    variables['params']['shared_layers_temporal']['pos_embedding'],
  )
  # The lifter's encoder now computes the pre-training network's unmasked 2D features.
  feats = lifter.apply(loaded, x2d, train=False, method=mpm.Model.encode)
  no_mask = method._no_masks(model)
  _, inter = model.apply(
    variables,
    x2d,
    train=False,
    masks=no_mask,
    num_masked=0,
    capture_intermediates=True,
    mutable=['intermediates'],
  )
  pre = inter['intermediates']['shared_layers_temporal']['__call__'][0]  # 2D branch first
  np.testing.assert_allclose(feats, pre, atol=1e-5)
  # Params-only trees work too; another window length does not fit.
  only = method.load_pretrained_encoder(fine['params'], variables['params'])
  assert only['encoder2d'] is variables['params']['encoder2d']
  other = mpm.Model(num_frames=27, layers=1, channel=16, d_hid=32)
  other_shapes = jax.eval_shape(
    lambda: other.init(jax.random.key(0), jnp.zeros((1, 27, J, 2)), train=False)
  )
  with pytest.raises(ValueError, match='shared_layers_temporal'):
    method.load_pretrained_encoder(other_shapes, variables)


def test_finetune_loss_is_vte_plus_centre_mpjpe():
  lifter = mpm.Model(
    num_frames=T, layers=1, channel=16, d_hid=32, stride_num=(3, 3), dropout=0.0, mlp_dropout=0.0
  )
  k = jax.random.split(jax.random.key(0), 3)
  x = jax.random.uniform(k[0], (2, T, J, 2))
  y = jax.random.normal(k[1], (2, T, J, 3))
  v = _variables(lifter, x, train=False)
  batch = {'kp2d_norm': x, 'pose3d_cam': y}
  loss, (scalars, _) = method.loss_fn(  # dispatches on the lifter
    lifter, v['params'], {'batch_stats': v['batch_stats']}, batch, k[0], None
  )
  (c, vte), _ = lifter.apply(v, x, train=True, return_all=True, mutable=['batch_stats'])
  target = np.asarray(y).copy()
  target[:, :, 0] = 0
  ref_c = np.linalg.norm(np.asarray(c) - target[:, T // 2 : T // 2 + 1], axis=-1).mean()
  ref_v = np.linalg.norm(np.asarray(vte) - target, axis=-1).mean()
  np.testing.assert_allclose(loss, ref_c + ref_v, rtol=1e-5)
  np.testing.assert_allclose(scalars['loss/centre'], ref_c, rtol=1e-5)


def test_complete_pose_keeps_observed_entries_and_fills_the_rest(net):
  model, variables, x2d, x3d, *_ = net
  joint_mask = np.zeros((2, 1, J), bool)
  joint_mask[:, :, [1, 2, 3]] = True  # a limb tube (official comp tasks)
  frame_mask = np.zeros(T, bool)
  frame_mask[[2, 5]] = True
  out = method.complete_pose(model, variables, x2d, joint_mask=joint_mask, frame_mask=frame_mask)
  assert out['pose3d'].shape == (2, T, J, 3)
  hidden = joint_mask | frame_mask[None, :, None]
  np.testing.assert_array_equal(np.asarray(out['pose2d'])[~hidden], np.asarray(x2d)[~hidden])
  np.testing.assert_array_equal(
    np.asarray(out['pose2d'])[hidden], np.asarray(out['pose2d_pred'])[hidden]
  )
  out3 = method.complete_pose(model, variables, x3d, joint_mask=joint_mask)
  np.testing.assert_array_equal(np.asarray(out3['pose3d'])[:, :, 0], np.asarray(x3d)[:, :, 0])
  assert not np.allclose(out3['pose3d'][:, :, 1:4], x3d[:, :, 1:4])
  with pytest.raises(ValueError, match='frame_mask'):
    method.complete_pose(model, variables, x2d, frame_mask=np.zeros(T + 1, bool))


def test_make_model_and_predict_follow_the_stage():
  cfg = mlc.ConfigDict(
    {
      'model': {'name': 'mpm', 'variant': 'h36m_f27', 'kwargs': {'channel': 16, 'd_hid': 32}},
      'method': {'name': 'mpm'},
      'data': {'mode': 'seq2seq', 'skeleton': 'h36m17'},
      'eval': {'flip_test': True},
    }
  )
  net = method.make_model(cfg)
  assert isinstance(net, mpm.PretrainNet)
  assert (net.num_frames, net.layers, net.channel, net.spatial_mask_num) == (27, 3, 16, 5)
  assert net.num_masked_frames == 16  # int(27 * 0.6)
  x = jnp.zeros((1, 27, J, 3))  # a confidence channel is dropped
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), x, train=False))
  out = jax.eval_shape(lambda v: method.predict(net, v, x, cfg), shapes)
  assert out.shape == (1, 27, J, 3)
  cfg.data.mode = 'center'
  lifter = method.make_model(cfg)
  assert isinstance(lifter, mpm.Model) and lifter.channel == 16
  shapes = jax.eval_shape(lambda: lifter.init(jax.random.key(0), x[..., :2], train=False))
  # The lifter's centre frame, flip-averaged like `supervised.predict`.
  assert jax.eval_shape(lambda v: method.predict(lifter, v, x, cfg), shapes).shape == (1, 1, J, 3)


def test_masking_settings_reach_the_network_through_method_kwargs():
  """method.kwargs.spatial_mask_num=2 on the command line must reach PretrainNet (it used to be
  read from config.method.spatial_mask_num, which the locked schema rejects, so the network
  silently stayed at 5)."""
  from jaxpose.cli import train as cli

  base = ['train', '--config=configs/mpm.py:pretrain,smoke']
  default = method.make_model(cli.parse(base))
  assert (default.spatial_mask_num, default.temporal_mask_rate, default.decoder_layers) == (
    5,
    0.6,
    1,
  )
  cfg = cli.parse(
    [
      *base,
      '--config.method.kwargs.spatial_mask_num=2',
      '--config.method.kwargs.temporal_mask_rate=0.5',
      '--config.method.kwargs.decoder_layers=2',
    ]
  )
  net = method.make_model(cfg)
  assert (net.spatial_mask_num, net.temporal_mask_rate, net.decoder_layers) == (2, 0.5, 2)
  # The drawn masks follow: 2 joints per frame in both branches.
  masks = mpm.sample_masks(
    jax.random.key(0),
    num_frames=net.num_frames,
    num_joints=net.num_joints,
    spatial_mask_num=net.spatial_mask_num,
    num_masked=net.num_masked_frames,
  )
  np.testing.assert_array_equal(np.asarray(masks['spatial_mask_2d']).sum(-1), 2)
  with pytest.raises(SystemExit, match='spatial_mask_num'):  # a typo on the command line
    cli.parse([*base, '--config.method.kwargs.spatial_mask_nm=2'])
  from configs import common

  typo = common.apply_overrides(cli.parse(base), {'method.kwargs.spatial_mask_nm': 2})  # a sweep
  with pytest.raises(ValueError, match='valid: spatial_mask_num, temporal_mask_rate'):
    method.make_model(typo)
