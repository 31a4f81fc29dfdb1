"""HoT wrapper: published sizes, backbone reuse (same tree, same function when nothing is pruned),
mode shapes, explicit jitter, validation, and (slow) MACs against the paper's thop counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import models
from jaxpose.models import hot

KEY = jax.random.key(0)
TINY = {
  'mixste': ({'num_frames': 9, 'dim': 16, 'depth': 3}, 2),
  'motionbert': ({'maxlen': 9, 'dim_feat': 16, 'dim_rep': 8, 'depth': 3}, 3),
  'motionagformer': ({'n_frames': 9, 'n_layers': 3, 'dim_feat': 16, 'dim_rep': 8}, 3),
}
VARIANT = {'mixste': '243', 'motionbert': 'lite', 'motionagformer': 'b'}


def _variables(model, x, seed=0):
  """Random variables of the init shapes (an abstract init: compiling a real one is slow on CPU)."""
  shapes = jax.eval_shape(lambda: model.init(KEY, x, train=False))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    value = rng.normal(0.0, 0.1, s.shape).astype(np.float32)
    return np.abs(value) + 1.0 if name in ('scale', 'var') else value

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _apply(model, variables, x, **kw):
  return jax.jit(lambda v, x: model.apply(v, x, train=False, **kw))(variables, x)


def _build(backbone, **kw):
  bb_kwargs, in_ch = TINY[backbone]
  model = hot.Model(
    backbone=backbone, backbone_variant=VARIANT[backbone], backbone_kwargs=bb_kwargs, **kw
  )
  x = jax.random.normal(jax.random.key(1), (2, 9, 17, in_ch))
  return model, x


@pytest.mark.parametrize(
  'variant,params',
  [('hot_mixste', 35_000_323), ('tpc_mixste', 33_783_811), ('hot_motionbert', 16_347_661)],
)
def test_published_parameter_counts(variant, params):
  assert models.param_count('hot', variant) == params == hot.PAPER[variant]['params']


@pytest.mark.parametrize('backbone', list(TINY))
def test_tpc_keeping_every_frame_is_the_backbone(backbone):
  """token_num = T without a slot embedding keeps all frames in order: exactly the backbone."""
  model, x = _build(backbone, token_num=9, layer_index=1, mode='tpc')
  variables = _variables(model, x)
  base = models.get_module(backbone).Model(
    **hot.backbone_config(backbone, VARIANT[backbone], TINY[backbone][0])
  )
  base_vars = {k: v['backbone'] for k, v in variables.items()}
  assert set(variables['params']) == {'backbone'}  # TPC adds no parameters
  ref = jax.eval_shape(lambda: base.init(KEY, x, train=False))
  assert jax.tree.map(jnp.shape, ref) == jax.tree.map(jnp.shape, base_vars)
  out, index = _apply(model, variables, x, return_index=True)
  np.testing.assert_array_equal(index, np.tile(np.arange(9), (2, 1)))
  np.testing.assert_allclose(out, _apply(base, base_vars, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('backbone', list(TINY))
def test_hot_shapes_and_selection(backbone):
  model, x = _build(backbone, token_num=4, layer_index=1)
  variables = _variables(model, x)
  params = variables['params']
  d = TINY[backbone][0].get('dim', TINY[backbone][0].get('dim_feat'))
  assert params['tpc']['pos_embed_token'].shape == (1, 4, d)
  assert params['tra']['x_token'].shape == (1, 9, d)
  out, index = _apply(model, variables, x, return_index=True)
  assert out.shape == (2, 9, 17, 3) and index.shape == (2, 4)
  assert (np.diff(np.asarray(index), axis=1) > 0).all()
  assert np.isfinite(np.asarray(out)).all()


def test_tpc_predicts_the_kept_frames_with_the_centre():
  model, x = _build('mixste', token_num=4, layer_index=2, mode='tpc')
  variables = _variables(model, x)
  out, index = _apply(model, variables, x, return_index=True)
  assert out.shape == (2, 4, 17, 3)
  assert (np.asarray(index) == 4).any(axis=1).all()


def test_jitter_stream_and_teacher_forcing():
  """Kept frames follow the 'hot' key (ties), and the output is a function of the kept frames."""
  model, x = _build('mixste', token_num=3, layer_index=1)
  variables = _variables(model, x)

  @jax.jit
  def run(v, key, index):
    keyed = model.apply(v, x, train=False, return_index=True, rngs={'hot': key})
    return keyed, model.apply(v, x, train=False, index=index)

  runs = [run(variables, jax.random.key(s), jnp.array([[0, 4, 8], [1, 2, 3]])) for s in range(6)]
  assert len({np.asarray(r[0][1]).tobytes() for r in runs}) > 1  # the jitter decides ties
  again = run(variables, jax.random.key(0), runs[0][0][1])
  np.testing.assert_array_equal(again[0][0], runs[0][0][0])  # same key, same output
  np.testing.assert_array_equal(again[1], runs[0][0][0])  # teacher-forcing its index too
  for r in runs[1:]:
    np.testing.assert_array_equal(r[1], runs[0][1])


def test_validation_errors():
  model, x = _build('mixste', token_num=4, layer_index=0)
  with pytest.raises(ValueError, match='layer_index'):
    _variables(model, x)
  with pytest.raises(ValueError, match='layer_index'):
    _build('mixste', token_num=4, layer_index=3)[0].init(KEY, x, train=False)
  with pytest.raises(ValueError, match='token_num'):
    _build('mixste', token_num=10, layer_index=1)[0].init(KEY, x, train=False)
  with pytest.raises(ValueError, match='mode'):
    _build('mixste', token_num=4, layer_index=1, mode='prune')[0].init(KEY, x, train=False)
  with pytest.raises(ValueError, match='valid: .*num_frames'):
    hot.Model(backbone_kwargs={'frames': 9}).backbone_model()
  with pytest.raises(ValueError, match='unknown backbone'):
    hot.Model(backbone='mhformer').backbone_model()
  with pytest.raises(ValueError, match='T = 9'):
    model = _build('mixste', token_num=4, layer_index=1)[0]
    model.init(KEY, jnp.zeros((1, 8, 17, 2)), train=False)


def test_input_shape_follows_the_backbone():
  assert hot.input_shape(models.build('hot', 'hot_mixste')) == (243, 17, 2)
  assert hot.input_shape(models.build('hot', 'hot_motionbert')) == (243, 17, 3)
  assert hot.input_shape(models.build('hot', 'hot_motionagformer')) == (243, 17, 3)


# thop counts the TRA query projection once per (sample, joint); ours projects the shared queries
# once, so the official count is ours + (J - 1) * T * D^2 at B = 1.
def _official_query_macs(model):
  net = model.backbone_model(parent=None)
  d = getattr(net, 'dim', None) or net.dim_feat
  t, j, _ = hot.input_shape(model)
  return (j - 1) * t * d * d if model.mode == 'hot' else 0


@pytest.mark.slow
@pytest.mark.parametrize('variant', list(hot.PAPER))
def test_macs_and_reduction_match_the_paper(variant):
  from jaxpose.bench.flops import model_flops

  paper = hot.PAPER[variant]
  model = models.build('hot', variant)
  ours = model_flops(model, xla=False)
  extra = _official_query_macs(model)
  assert ours['params'] == paper['params']
  assert ours['macs_linear'] + extra == pytest.approx(paper['macs_linear'], rel=0.02)
  assert ours['macs_all'] + extra == pytest.approx(paper['macs_all'], rel=0.02)
  backbone, bb_variant = hot.BACKBONE_OF[variant]
  base = model_flops(models.build(backbone, bb_variant), xla=False)
  assert base['params'] == paper['backbone_params']
  ours_cut = 1 - (ours['macs_linear'] + extra) / base['macs_linear']
  paper_cut = 1 - paper['macs_linear'] / paper['backbone_macs_linear']
  assert ours_cut == pytest.approx(paper_cut, abs=0.01)
