"""PMCE: parameter count against the official constructor, quirks, template helpers, errors.

Numerical parity with the official modules is in tests/parity/test_pmce_parity.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import pmce

# sum(p.numel() for p in PMCE(num_joint, 256, 3).parameters()) of the official code (kasvii/PMCE
# 0f4075a, cfg seqlen 16, joint_dim = vertx_dim = 64), counted by instantiating the official
# classes with torch 2.13 + timm 1.0.31 (CUDA and SMPL file loads stubbed), outside the repo.
OFFICIAL_PARAMS = {'3dpw': 103_066_416, 'h36m': 103_064_752}
OFFICIAL_POSE_STREAM_PARAMS_J19 = 3_699_220
OFFICIAL_GRU_PARAMS = 37_773_312

TINY = dict(pmce.TEST_OVERRIDES)


def _key(seed: int) -> jax.Array:
  # rbg compiles much faster than threefry on CPU; the statistics do not matter here.
  return jax.random.key(seed, impl='unsafe_rbg')


def _leaves_count(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


@pytest.mark.parametrize('variant', list(OFFICIAL_PARAMS))
def test_param_count_equals_official_constructor(variant):
  assert models.param_count('pmce', variant) == OFFICIAL_PARAMS[variant]


def test_default_variant_is_3dpw_and_parts_match_official():
  model = models.build('pmce')
  assert (model.num_joints, model.num_frames, model.feat_dim) == (19, 16, 2048)
  shapes = jax.eval_shape(lambda: model.init(_key(0), *models.example_inputs(model), train=False))[
    'params'
  ]
  assert _leaves_count(shapes['pose_lifter']) == OFFICIAL_POSE_STREAM_PARAMS_J19
  assert _leaves_count(shapes['pose_mesh_coevo']['gru_cur']) == OFFICIAL_GRU_PARAMS
  assert shapes['pose_mesh_coevo']['upsample_conv']['kernel'].shape == (3, 431, 6890)


def test_input_kind_and_example_inputs():
  model = models.build('pmce', **TINY)
  assert models.input_kind(model) == 'video'
  pose2d, feat = models.example_inputs(model, batch=3)
  assert pose2d.shape == (3, TINY['num_frames'], TINY['num_joints'], 2)
  assert feat.shape == (3, TINY['num_frames'], TINY['feat_dim'])


@pytest.fixture(scope='module')
def tiny():
  model = models.build('pmce', **TINY, vj_relation=(0, 4, 4, 2, 1, 3))
  rng = np.random.default_rng(0)
  pose2d = rng.normal(size=(2, TINY['num_frames'], TINY['num_joints'], 2)).astype(np.float32)
  feat = rng.normal(size=(2, TINY['num_frames'], TINY['feat_dim'])).astype(np.float32)
  variables = jax.jit(lambda k, *xs: model.init(k, *xs, train=False))(_key(0), pose2d, feat)
  return model, variables, pose2d, feat


def test_output_shapes_and_units(tiny):
  model, variables, pose2d, feat = tiny
  apply = lambda v, *xs: model.apply(v, *xs, train=False, mutable=['intermediates'])
  out, state = jax.jit(apply)(variables, pose2d, feat)
  j, v_out = TINY['num_joints'], TINY['num_out_vertices']
  assert out['pose3d'].shape == (2, j, 3) and out['evo_pose'].shape == (2, j, 3)
  assert out['mesh'].shape == (2, v_out, 3)
  # The decoder reads the pose stream's output in metres (/1000): the initial vertices are joints.
  init = state['intermediates']['pose_mesh_coevo']['verts_init'][0]
  expected = np.asarray(out['pose3d'])[:, [0, 4, 4, 2, 1, 3]] / 1000.0
  np.testing.assert_allclose(init, expected, rtol=1e-6)


def test_decoder_blocks_read_the_original_joints(tiny):
  """Official quirk: only the vertex stream is chained, so everything that only feeds a block's
  joint output (joint cross- and self-attention, the joint head, the vertex-to-joint keys) of every
  block but the last never reaches an output."""
  model, variables, pose2d, feat = tiny

  def loss(params):
    out = model.apply({'params': params}, pose2d, feat, train=False)
    return sum(jnp.sum(jnp.square(o)) for o in out.values())

  grads = jax.jit(jax.grad(loss))(variables['params'])['pose_mesh_coevo']
  dead = ('joint_CA_FFN', 'joint_SA_FFN', 'proj_joint_feat2coor', 'proj_v2j_dim', 'j_Q_embed')
  dead += ('v2j_K_embed',)
  nonzero = lambda tree: any(np.any(g) for g in jax.tree.leaves(tree))
  for k in range(1, model.num_blocks + 1):
    block = grads[f'coevoblock{k}']
    last = k == model.num_blocks
    for name in dead:
      assert nonzero(block[name]) == last, (k, name)
    assert nonzero(block['joint_proj'])  # joint features feed the vertex cross-attention


def test_cross_attentions_read_pre_update_features():
  """The vertex cross-attention's values are the joint features *before* the joint update: zeroing
  the joint cross-attention's output projection must not change the vertex stream."""
  block = pmce.CoevoBlock(joint_dim=8, vertx_dim=8, joint_heads=2, vertx_heads=2)
  rng = np.random.default_rng(1)
  joint, vertx = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 7, 3))
  cond = rng.normal(size=(2, 6))
  variables = jax.jit(lambda k: block.init(k, joint, vertx, cond, train=False))(_key(0))
  params = jax.tree.map(np.asarray, variables['params'])
  j1, v1 = block.apply({'params': params}, joint, vertx, cond, train=False)
  params['joint_CA_FFN']['attn']['proj']['kernel'] = np.zeros_like(
    params['joint_CA_FFN']['attn']['proj']['kernel']
  )
  j2, v2 = block.apply({'params': params}, joint, vertx, cond, train=False)
  assert not np.allclose(j1, j2)
  np.testing.assert_array_equal(v1, v2)


def test_ada_layer_norm_uses_unbiased_std_and_eps_on_std():
  x = np.random.default_rng(3).normal(size=(2, 4, 6)).astype(np.float32)
  cond = np.random.default_rng(4).normal(size=(2, 5)).astype(np.float32)
  norm = pmce.AdaLayerNorm(eps=0.5)  # a large eps separates std + eps from sqrt(var + eps)
  variables = norm.init(_key(0), x, cond)
  p = variables['params']
  gamma = cond @ np.asarray(p['mlp_gamma']['kernel']) + np.asarray(p['mlp_gamma']['bias'])
  beta = cond @ np.asarray(p['mlp_beta']['kernel']) + np.asarray(p['mlp_beta']['bias'])
  mean, std = x.mean(-1, keepdims=True), x.std(-1, ddof=1, keepdims=True)
  expected = gamma[:, None] * (x - mean) / (std + 0.5) + beta[:, None]
  np.testing.assert_allclose(norm.apply(variables, x, cond), expected, rtol=1e-5, atol=1e-6)


def test_lift_method_initialises_only_the_pose_stream(tiny):
  model, variables, pose2d, feat = tiny
  stage1 = jax.eval_shape(lambda: model.init(_key(0), pose2d, feat, train=False, method='lift'))
  assert set(stage1['params']) == {'pose_lifter'}
  full = model.apply(variables, pose2d, feat, train=False)
  np.testing.assert_array_equal(
    model.apply(variables, pose2d, feat, train=False, method='lift'), full['pose3d']
  )


def test_dropout_stream_drives_training(tiny):
  model, variables, pose2d, feat = tiny
  model = model.clone(drop_path_rate=0.5, decoder_drop_path=0.5)
  run = jax.jit(lambda k: model.apply(variables, pose2d, feat, train=True, rngs={'dropout': k}))
  a, b = run(_key(1)), run(_key(2))
  assert not np.allclose(a['mesh'], b['mesh'])


def test_nearest_joints_first_minimum_on_ties():
  joints = np.array([[0.0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 5, 0]])
  verts = np.array([[0.4, 0, 0], [0.6, 0, 0], [0, 4, 0], [0.5, 0, 0], [-0.5, 0, 0]])
  assert pmce.nearest_joints(joints, verts) == (0, 1, 3, 0, 0)


def test_coarse_template_regresses_joints_from_the_full_mesh():
  rng = np.random.default_rng(5)
  mean = rng.normal(size=(12, 3)).astype(np.float32)
  d0 = np.zeros((6, 12), np.float32)
  d0[np.arange(6), 2 * np.arange(6)] = 1.0  # keep every other vertex
  d1 = np.full((3, 6), 0.0, np.float32)
  d1[np.arange(3), 2 * np.arange(3)] = 0.5
  d1[np.arange(3), 2 * np.arange(3) + 1] = 0.5  # average pairs
  reg = rng.random((4, 12)).astype(np.float32)
  reg /= reg.sum(1, keepdims=True)
  coarse, vj = pmce.coarse_template(mean, [d0, d1, np.eye(3)], reg)
  expected = 0.5 * (mean[[0, 4, 8]] + mean[[2, 6, 10]])
  np.testing.assert_allclose(coarse, expected, rtol=1e-6)
  joints = reg @ mean
  d2 = ((expected[:, None] - joints[None]) ** 2).sum(-1)
  assert vj == tuple(np.argmin(d2, axis=1))


def test_load_template_reads_the_official_file_layout(tmp_path):
  sparse = pytest.importorskip('scipy.sparse')
  rng = np.random.default_rng(6)
  mean = rng.normal(size=(10, 3)).astype(np.float32)
  d0 = sparse.random(5, 10, density=0.4, random_state=1, format='csc')
  d1 = sparse.random(3, 5, density=0.6, random_state=2, format='csc')
  reg = rng.random((4, 10))
  np.save(tmp_path / 'mean.npy', mean)
  np.save(tmp_path / 'reg.npy', reg)
  mats = np.empty(2, dtype=object)
  mats[0], mats[1] = d0, d1
  np.savez(tmp_path / 'down.npz', A=mats, U=mats, D=mats)
  coarse, vj = pmce.load_template(
    tmp_path / 'mean.npy', tmp_path / 'down.npz', tmp_path / 'reg.npy'
  )
  ref_coarse, ref_vj = pmce.coarse_template(mean, [d0.toarray(), d1.toarray()], reg)
  np.testing.assert_allclose(coarse, ref_coarse, rtol=1e-6)
  assert vj == ref_vj and len(vj) == 3


@functools.cache
def _tiny_decoder_state_dict():
  """A torch-layout decoder state dict made from our own tiny decoder (names and layouts only)."""
  dec = pmce.CoevoDecoder(
    num_frames=4,
    num_joints=5,
    feat_dim=8,
    gru_hidden=4,
    num_vertices=6,
    num_out_vertices=10,
    joint_dim=8,
    vertx_dim=8,
    joint_heads=2,
    num_blocks=2,
  )
  x = (jnp.zeros((1, 5, 3)), jnp.zeros((1, 4, 8)))
  params = jax.jit(lambda k: dec.init(k, *x, train=False))(_key(0))['params']
  sd = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    keys = [p.key for p in path]
    leaf = np.asarray(leaf)
    if keys[-1] == 'kernel':
      keys[-1] = 'weight'
      leaf = leaf.T if leaf.ndim == 2 else np.transpose(leaf, (2, 1, 0))
    elif keys[-1] == 'scale':
      keys[-1] = 'weight'
    sd['.'.join(keys)] = leaf
  sd['init_vertices'] = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  return dec, params, sd


def test_from_torch_decoder_vj_relation_from_joints_template():
  dec, params, sd = _tiny_decoder_state_dict()
  joints_template = np.random.default_rng(1).normal(size=(5, 3))
  model, variables = pmce.from_torch(sd, seqlen=4, joints_template=joints_template)
  assert isinstance(model, pmce.CoevoDecoder)
  assert model.vj_relation == pmce.nearest_joints(joints_template, sd['init_vertices'])
  assert (model.num_vertices, model.num_out_vertices, model.gru_hidden) == (6, 10, 4)
  jax.tree.map(np.testing.assert_array_equal, variables['params'], jax.device_get(params))


def test_from_torch_errors_name_the_problem():
  _, _, sd = _tiny_decoder_state_dict()
  with pytest.raises(ValueError, match='vj_relation'):
    pmce.from_torch(sd, seqlen=4)
  with pytest.raises(ValueError, match='not a PMCE'):
    pmce.from_torch({'head.weight': np.zeros((3, 4))})
  bad = dict(sd)
  bad['coevoblock2.joint_proj.weight'] = np.zeros((8, 4), np.float32)
  with pytest.raises(ValueError, match='coevoblock2.joint_proj.weight'):
    pmce.from_torch(bad, seqlen=4, vj_relation=[0] * 6)
  with pytest.raises(ValueError, match='num_vertices=6'):
    pmce.from_torch(sd, seqlen=4, vj_relation=[0] * 5)


def test_bad_inputs_raise_with_expected_shapes(tiny):
  model, variables, pose2d, feat = tiny
  with pytest.raises(ValueError, match=r'pose2d must be \(B, 4, 5, 2\)'):
    model.apply(variables, pose2d[:, :3], feat, train=False)
  with pytest.raises(ValueError, match='img_feat must be'):
    model.apply(variables, pose2d, feat[..., :3], train=False)
