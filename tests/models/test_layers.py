"""Shared layers: numerics against NumPy/torch references, RNG streams, torch semantics."""

import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.models import layers as L

_erf = np.vectorize(math.erf)


def _rand(*shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _attention_reference(x, p, num_heads, axis, scale=None):
  """NumPy attention: qkv channels [3][H][d], head-major merge, softmax over `axis`."""
  x = np.moveaxis(x, axis, -2)  # (..., L, D)
  dim = x.shape[-1]
  d = dim // num_heads
  qkv = x @ p['qkv']['kernel'] + p['qkv'].get('bias', 0)
  heads = []
  for h in range(num_heads):
    q = qkv[..., h * d : (h + 1) * d]
    k = qkv[..., dim + h * d : dim + (h + 1) * d]
    v = qkv[..., 2 * dim + h * d : 2 * dim + (h + 1) * d]
    logits = q @ np.swapaxes(k, -1, -2) * (scale or d**-0.5)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    heads.append((w / w.sum(-1, keepdims=True)) @ v)
  out = np.concatenate(heads, -1) @ p['proj']['kernel'] + p['proj']['bias']
  return np.moveaxis(out, -2, axis)


@pytest.mark.parametrize('axis', [1, 2, -2, -3])
@pytest.mark.parametrize('qkv_bias', [False, True])
def test_attention_matches_reference_over_any_axis(axis, qkv_bias):
  x = _rand(2, 5, 4, 12)
  attn = L.Attention(num_heads=3, token_axis=axis, qkv_bias=qkv_bias)
  params = attn.init(jax.random.key(0), x, train=False)['params']
  out = attn.apply({'params': params}, x, train=False)
  ref = _attention_reference(x, jax.tree.map(np.asarray, params), 3, axis)
  np.testing.assert_allclose(out, ref, atol=2e-5)
  assert ('bias' in params['qkv']) == qkv_bias


@pytest.mark.parametrize('with_dropout', [False, True])
def test_attend_custom_vjp_equals_autodiff_of_the_plain_expression(with_dropout):
  from jaxpose.models.layers.attention import attend

  rng = np.random.default_rng(3)
  q, k, v, g = (jnp.asarray(rng.standard_normal((2, 3, 5, 4)), jnp.float32) for _ in range(4))
  mult = None
  if with_dropout:
    mult = jnp.asarray((rng.random((2, 3, 5, 5)) > 0.3) / 0.7, jnp.float32)

  def plain(q, k, v):
    p = jax.nn.softmax((q @ jnp.swapaxes(k, -1, -2)) * 0.5, axis=-1)
    return (p if mult is None else p * mult) @ v

  y1, vjp1 = jax.vjp(lambda q, k, v: attend(q, k, v, 0.5, mult), q, k, v)
  y2, vjp2 = jax.vjp(plain, q, k, v)
  np.testing.assert_allclose(y1, y2, rtol=1e-6, atol=1e-6)
  for a, b in zip(vjp1(g), vjp2(g), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_attention_qk_scale_and_out_dim():
  x = _rand(3, 6, 8)
  attn = L.Attention(num_heads=2, qk_scale=0.3, out_dim=5)
  params = attn.init(jax.random.key(1), x, train=False)['params']
  out = attn.apply({'params': params}, x, train=False)
  assert out.shape == (3, 6, 5)
  ref = _attention_reference(x, jax.tree.map(np.asarray, params), 2, 1, scale=0.3)
  np.testing.assert_allclose(out, ref, atol=2e-5)


def test_attention_rejects_channel_axis_and_bad_heads():
  x = jnp.zeros((2, 4, 6))
  with pytest.raises(ValueError, match='token_axis'):
    L.Attention(num_heads=2, token_axis=-1).init(jax.random.key(0), x, train=False)
  with pytest.raises(ValueError, match='divisible'):
    L.Attention(num_heads=4).init(jax.random.key(0), x, train=False)


def test_attention_dropout_uses_dropout_stream():
  x = _rand(2, 6, 8)
  attn = L.Attention(num_heads=2, attn_drop=0.5)
  v = attn.init(jax.random.key(0), x, train=False)
  with pytest.raises(flax.errors.InvalidRngError):
    attn.apply(v, x, train=True)
  a = attn.apply(v, x, train=True, rngs={'dropout': jax.random.key(1)})
  b = attn.apply(v, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(a, b)
  off = lambda k: attn.apply(v, x, train=False, rngs={'dropout': k})  # dropout off in eval
  np.testing.assert_array_equal(off(jax.random.key(1)), off(jax.random.key(2)))


def test_mlp_is_exact_gelu_and_names_fc1_fc2():
  x = _rand(4, 6)
  mlp = L.Mlp(hidden_dim=10, out_dim=3)
  p = jax.tree.map(np.asarray, mlp.init(jax.random.key(0), x, train=False)['params'])
  assert set(p) == {'fc1', 'fc2'}
  h = x @ p['fc1']['kernel'] + p['fc1']['bias']
  ref = (0.5 * h * (1 + _erf(h / np.sqrt(2)))) @ p['fc2']['kernel'] + p['fc2']['bias']
  np.testing.assert_allclose(mlp.apply({'params': p}, x, train=False), ref, atol=1e-5)
  # The tanh approximation differs by more than float error: the test can tell them apart.
  assert np.max(np.abs(np.asarray(L.gelu(h)) - nn.gelu(h, approximate=True))) > 1e-5


def test_exact_gelu_and_its_derivative_match_the_erf_formula():
  x = jnp.linspace(-9.0, 9.0, 2001)
  ref = lambda t: 0.5 * t * (1.0 + jax.scipy.special.erf(t / math.sqrt(2.0)))
  np.testing.assert_allclose(L.gelu(x), ref(x), atol=1e-6)
  np.testing.assert_allclose(L.gelu(x), nn.gelu(x, approximate=False), atol=1e-6)
  grad = jax.vmap(jax.grad(L.gelu))(x)
  np.testing.assert_allclose(grad, jax.vmap(jax.grad(ref))(x), atol=1e-6)
  assert not np.allclose(L.gelu(x), nn.gelu(x, approximate=True), atol=1e-4)  # not the tanh form


@pytest.mark.parametrize('use_bias', [True, False])
def test_linear_custom_vjp_equals_autodiff_of_the_plain_product(use_bias):
  from jaxpose.models.layers.linear import dense

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 3, 5, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((4, 6)), jnp.float32)
  b = jnp.asarray(rng.standard_normal(6), jnp.float32) if use_bias else None
  ct = jnp.asarray(rng.standard_normal((2, 3, 5, 6)), jnp.float32)

  def plain(x, w, b):
    y = jnp.einsum('...i,io->...o', x, w)
    return y if b is None else y + b

  y1, vjp1 = jax.vjp(lambda x, w, b: dense(x, w, b), x, w, b)
  y2, vjp2 = jax.vjp(plain, x, w, b)
  np.testing.assert_allclose(y1, y2, rtol=1e-6, atol=1e-6)
  for g1, g2 in zip(vjp1(ct), vjp2(ct), strict=True):
    if g2 is None:
      assert g1 is None
    else:
      np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-5)


def test_linear_torch_default_init_bounds():
  fan_in = 50
  p = L.Linear(400).init(jax.random.key(0), jnp.zeros((1, fan_in)))['params']
  bound = fan_in**-0.5
  for leaf in (p['kernel'], p['bias']):
    assert np.abs(leaf).max() <= bound
    assert np.abs(leaf).max() > 0.9 * bound  # uniform over the whole range, not lecun-normal
  assert p['kernel'].shape == (fan_in, 400)


@pytest.mark.parametrize('rate', [0.25, 0.75])
def test_drop_path_drops_whole_samples_and_rescales(rate):
  x = jnp.ones((400, 3, 2))
  dp = L.DropPath(rate)
  np.testing.assert_array_equal(dp.apply({}, x, train=False), x)
  y = np.asarray(dp.apply({}, x, train=True, rngs={'dropout': jax.random.key(0)}))
  per_sample = y.reshape(400, -1)
  assert (per_sample == per_sample[:, :1]).all()  # one decision per sample
  assert set(np.unique(per_sample)) <= {0.0, np.float32(1 / (1 - rate))}
  assert abs((per_sample[:, 0] == 0).mean() - rate) < 0.08


def test_drop_path_named_stream_and_rate_one():
  x = jnp.ones((4, 3))
  dp = L.DropPath(0.5, rng_collection='drop_path')
  with pytest.raises(flax.errors.InvalidRngError):
    dp.apply({}, x, train=True, rngs={'dropout': jax.random.key(0)})
  dp.apply({}, x, train=True, rngs={'drop_path': jax.random.key(0)})
  np.testing.assert_array_equal(L.DropPath(1.0).apply({}, x, train=True), jnp.zeros_like(x))


def test_layer_scale():
  x = _rand(2, 3, 4)
  v = L.LayerScale(0.1).init(jax.random.key(0), x)
  np.testing.assert_allclose(v['params']['gamma'], np.full(4, 0.1, np.float32))
  np.testing.assert_allclose(L.LayerScale(0.1).apply(v, x), 0.1 * x, rtol=1e-6)


def test_layer_norm_uses_torch_eps():
  x = 1e-3 * _rand(3, 8)  # variance ~1e-6, where eps 1e-5 vs 1e-6 matters
  y = L.LayerNorm().apply({'params': {'scale': np.ones(8), 'bias': np.zeros(8)}}, x)
  mu = x.mean(-1, keepdims=True)
  ref = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)


def _bn_step(bn, variables, x, train):
  y, upd = bn.apply(variables, x, train=train, mutable=['batch_stats'])
  return y, {**variables, **upd}


def test_torch_batch_norm_semantics_numpy():
  x = _rand(6, 5, 4) * 3 + 1
  bn = L.TorchBatchNorm(axis=1, momentum=0.1)
  v = bn.init(jax.random.key(0), x, train=False)
  assert v['batch_stats']['mean'].shape == (5,)
  y, v2 = _bn_step(bn, v, x, True)
  mean = x.mean((0, 2))
  var = x.var((0, 2))
  ref = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5)
  np.testing.assert_allclose(y, ref, atol=1e-5)
  n = x.shape[0] * x.shape[2]
  np.testing.assert_allclose(v2['batch_stats']['mean'], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(v2['batch_stats']['var'], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)
  # Eval uses the running statistics.
  ye = bn.apply(v2, x, train=False)
  rs = v2['batch_stats']
  ref_e = (x - rs['mean'][:, None]) / np.sqrt(rs['var'][:, None] + 1e-5)
  np.testing.assert_allclose(ye, ref_e, atol=1e-5)


def test_torch_batch_norm_matches_torch_module():
  torch = pytest.importorskip('torch')
  x = _rand(4, 3, 5, 6, seed=3) * 2 - 0.5  # (N, C, H, W) for BatchNorm2d; channels-last for flax
  tbn = torch.nn.BatchNorm2d(3, momentum=0.2)
  with torch.no_grad():
    tbn.weight.uniform_(0.5, 1.5)
    tbn.bias.uniform_(-0.5, 0.5)
  bn = L.TorchBatchNorm(axis=-1, momentum=0.2)
  xl = np.moveaxis(x, 1, -1)
  v = {
    'params': {'scale': tbn.weight.detach().numpy(), 'bias': tbn.bias.detach().numpy()},
    'batch_stats': {'mean': np.zeros(3, np.float32), 'var': np.ones(3, np.float32)},
  }
  tbn.train()
  for step in range(2):
    xs = xl * (step + 1)
    y, v = _bn_step(bn, v, xs, True)
    yt = tbn(torch.from_numpy(np.ascontiguousarray(np.moveaxis(xs, -1, 1)))).detach().numpy()
    np.testing.assert_allclose(y, np.moveaxis(yt, 1, -1), atol=1e-5)
  np.testing.assert_allclose(v['batch_stats']['mean'], tbn.running_mean.numpy(), rtol=1e-5)
  np.testing.assert_allclose(v['batch_stats']['var'], tbn.running_var.numpy(), rtol=1e-5)
  tbn.eval()
  yt = tbn(torch.from_numpy(x)).detach().numpy()
  np.testing.assert_allclose(bn.apply(v, xl, train=False), np.moveaxis(yt, 1, -1), atol=1e-5)


def test_adjacency_helpers():
  adj = L.adjacency_from_neighbours([(1,), (0, 2), ()])
  np.testing.assert_array_equal(adj, [[0, 1, 0], [1, 0, 1], [0, 0, 0]])
  chain = L.chain_adjacency(4, 2)
  np.testing.assert_array_equal(chain, [[1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]])


@given(st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_normalize_digraph_equals_matrix_form(n, seed):
  rng = np.random.default_rng(seed)
  adj = (rng.random((2, n, n)) < 0.5).astype(np.float32)
  adj[:, np.arange(n), rng.integers(0, n, n)] = 1  # every row has an edge
  dm = np.stack([np.diag(a.sum(-1) ** -0.5) for a in adj])
  np.testing.assert_allclose(L.normalize_digraph(jnp.asarray(adj)), dm @ adj @ dm, rtol=1e-5)


@pytest.mark.parametrize('k', [1, 2, 3, 4, 6])
def test_kth_largest_equals_top_k_with_repeated_values(k):
  rng = np.random.default_rng(k)
  x = rng.integers(0, 4, size=(5, 7, 9)).astype(np.float32)  # many ties
  x[0, 0] = 2.0  # a row of identical values
  expected = np.sort(x, axis=-1)[..., ::-1][..., k - 1 : k]
  np.testing.assert_array_equal(np.asarray(L.kth_largest(jnp.asarray(x), k)), expected)


def test_topk_similarity_adjacency_counts_and_ties():
  z = _rand(3, 9, 4, seed=1)
  adj = np.asarray(L.topk_similarity_adjacency(z, 2))
  sim = z @ np.swapaxes(z, -1, -2)
  order = np.argsort(-sim, -1)
  expected = np.zeros_like(adj)
  np.put_along_axis(expected, order[..., :2], 1.0, -1)
  np.testing.assert_array_equal(adj, expected)
  # Duplicate frames tie: a row may get more than k neighbours.
  tied = np.stack([z[0, 0]] * 3 + [z[0, 1]], 0)[None]
  assert np.asarray(L.topk_similarity_adjacency(tied, 2)).sum(-1).max() >= 3


def _gcn_reference(x, p, stats, adj_norm, node_axis):
  v = x @ p['V']['kernel'] + p['V']['bias']
  u = x @ p['U']['kernel'] + p['U']['bias']
  if node_axis == 2:
    agg = np.einsum('...ij,btjc->btic', adj_norm, v)
  else:
    agg = np.einsum('bjts,bsjc->btjc', adj_norm, v)
  z = agg + u
  shape = [1, 1, 1, 1]
  shape[node_axis] = -1
  bn = p['batch_norm']
  z = (z - stats['mean'].reshape(shape)) / np.sqrt(stats['var'].reshape(shape) + 1e-5)
  z = z * bn['scale'].reshape(shape) + bn['bias'].reshape(shape)
  return np.maximum(x + z, 0)


def _perturbed(variables, seed=0):
  leaves, tree = jax.tree.flatten(variables)
  rng = np.random.default_rng(seed)
  leaves = [
    np.asarray(v) + 0.3 * np.abs(rng.standard_normal(v.shape)).astype(np.float32) for v in leaves
  ]
  return jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize('mode', ['spatial', 'temporal', 'temporal_chain'])
def test_gcn_matches_reference(mode):
  x = _rand(2, 6, 4, 5)
  neighbours = ((1,), (0, 2), (3,), (2, 0))
  if mode == 'spatial':
    gcn = L.GCN(mode='spatial', num_nodes=4, neighbours=neighbours)
  else:
    gcn = L.GCN(
      mode='temporal',
      num_nodes=6,
      neighbour_num=2,
      use_temporal_similarity=mode == 'temporal',
      temporal_connection_len=2,
    )
  v = _perturbed(gcn.init(jax.random.key(0), x, train=False))
  node_axis = 2 if mode == 'spatial' else 1
  assert v['batch_stats']['batch_norm']['mean'].shape == (x.shape[node_axis],)
  if mode == 'spatial':
    adj = L.adjacency_from_neighbours(neighbours)
  elif mode == 'temporal':
    adj = np.asarray(L.topk_similarity_adjacency(np.swapaxes(x, 1, 2), 2))
  else:
    adj = np.broadcast_to(L.chain_adjacency(6, 2), (2, 4, 6, 6))
  d = adj.sum(-1) ** -0.5
  adj_norm = adj * d[..., :, None] * d[..., None, :]
  ref = _gcn_reference(x, v['params'], v['batch_stats']['batch_norm'], adj_norm, node_axis)
  np.testing.assert_allclose(gcn.apply(v, x, train=False), ref, atol=1e-5)


def test_gcn_rejects_wrong_node_count():
  gcn = L.GCN(mode='temporal', num_nodes=7)
  with pytest.raises(ValueError, match='7 nodes'):
    gcn.init(jax.random.key(0), jnp.zeros((1, 6, 4, 5)), train=False)


def _tcn_reference_torch(torch, x, p, s, dilations=(1, 2), k=5):
  """torch.nn.functional MS-TCN on (B, C, T, J) from converted flax variables."""
  F = torch.nn.functional
  t = lambda a: torch.from_numpy(np.asarray(a))

  def conv(z, pp, dil=1, ksize=1):
    w = t(pp['kernel']).permute(3, 2, 0, 1)  # (k, 1, I, O) -> (O, I, k, 1)
    pad = (ksize + (ksize - 1) * (dil - 1) - 1) // 2
    return F.conv2d(z, w, t(pp['bias']), padding=(pad, 0), dilation=(dil, 1))

  def bn(z, name, sub=None):
    pp, ss = (p[name], s[name]) if sub is None else (p[name][sub], s[name][sub])
    return F.batch_norm(z, t(ss['mean']), t(ss['var']), t(pp['scale']), t(pp['bias']), False)

  outs = []
  for i, d in enumerate(dilations):
    y = F.relu(bn(conv(x, p[f'branches_{i}_0']), f'branches_{i}_1'))
    y = conv(y, p[f'branches_{i}_3']['conv'], d, k)
    outs.append(bn(y, f'branches_{i}_3', 'bn'))
  i = len(dilations)
  y = F.relu(bn(conv(x, p[f'branches_{i}_0']), f'branches_{i}_1'))
  y = F.max_pool2d(y, (3, 1), stride=1, padding=(1, 0))
  outs.append(bn(y, f'branches_{i}_4'))
  outs.append(bn(conv(x, p[f'branches_{i + 1}_0']), f'branches_{i + 1}_1'))
  return torch.cat(outs, 1) + x


def test_multiscale_tcn_matches_torch_functional():
  torch = pytest.importorskip('torch')
  x = _rand(2, 9, 3, 8)  # (B, T, J, C)
  tcn = L.MultiScaleTCN()
  v = _perturbed(tcn.init(jax.random.key(0), x, train=False))
  out = tcn.apply(v, x, train=False)
  with torch.no_grad():
    ref = _tcn_reference_torch(
      torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), v['params'], v['batch_stats']
    )
  np.testing.assert_allclose(out, ref.numpy().transpose(0, 2, 3, 1), atol=1e-5)
  with pytest.raises(ValueError, match='divisible'):
    tcn.init(jax.random.key(0), x[..., :6], train=False)
