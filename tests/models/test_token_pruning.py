"""HoT's pruning/recovery blocks: DPC-kNN against a plain NumPy reference, jit/vmap/gradient
behaviour, the tie effect and its explicit randomness, TPC gather, TRA against the official
per-(sample, joint) formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.models.layers import token_pruning as hot

KEY = jax.random.key(0)


def _reference_dpc(x, cluster_num, k, jitter, center=None):
  """Loop-level NumPy DPC-kNN in float32 (exact distances), as the official code computes it: the
  1e-6 jitter is only ~17 float32 ulps of the density, so float64 would break ties float32 keeps."""
  b, n, c = x.shape
  out = []
  for s in range(b):
    d = np.sqrt(((x[s, :, None] - x[s, None]) ** 2).sum(-1)) / np.float32(np.sqrt(c))
    rho = np.exp(-np.mean(np.sort(d, axis=1)[:, :k] ** 2, axis=1)) + jitter[s]
    delta = np.array(
      [min([d[i, j] for j in range(n) if rho[j] > rho[i]], default=d.max()) for i in range(n)]
    )
    score = delta * rho
    if center is not None:
      score[center] = -np.inf
    out.append(np.argsort(-score, kind='stable')[:cluster_num])
  return np.stack(out)


@pytest.mark.parametrize('n,cluster_num,center', [(12, 4, None), (20, 7, None), (15, 5, 7)])
def test_dpc_knn_matches_numpy_reference(n, cluster_num, center):
  rng = np.random.default_rng(n)
  x = rng.normal(size=(3, n, 8)).astype(np.float32)
  jitter = (rng.random((3, n)) * 1e-6).astype(np.float32)
  got = hot.dpc_knn(x, cluster_num, 2, jitter=jitter, center=center)
  want = _reference_dpc(x, cluster_num, 2, jitter, center)
  np.testing.assert_array_equal(np.sort(got.index_down, 1), np.sort(want, 1))
  assert got.index_down.dtype == jnp.int32 and got.idx_cluster.shape == (3, n)
  # Centres are assigned to themselves, every other token to its nearest centre.
  for s in range(3):
    for slot, frame in enumerate(np.asarray(got.index_down[s])):
      assert got.idx_cluster[s, frame] == slot


def test_pairwise_distance_regimes_agree():
  x = jax.random.normal(KEY, (2, 30, 16))
  exact = hot.pairwise_distance(x, 'exact')
  mm = hot.pairwise_distance(x, 'matmul')
  np.testing.assert_allclose(mm, exact, atol=2e-3)  # sqrt of a clamped difference near 0
  np.testing.assert_array_equal(hot.pairwise_distance(x, 'torch'), mm)  # N = 30 > 25
  np.testing.assert_array_equal(hot.pairwise_distance(x[:, :25], 'torch'), exact[:, :25, :25])
  with pytest.raises(ValueError, match='distance'):
    hot.pairwise_distance(x, 'cosine')


def test_dpc_knn_jits_vmaps_and_stops_gradients():
  x = jax.random.normal(KEY, (3, 2, 16, 8))
  jit = jax.random.uniform(jax.random.key(1), (3, 2, 16)) * 1e-6
  run = lambda a, j: hot.dpc_knn(a, 5, jitter=j)
  batched = run(x, jit)
  mapped = jax.jit(jax.vmap(run))(x, jit)
  np.testing.assert_array_equal(mapped.index_down, batched.index_down)
  np.testing.assert_array_equal(mapped.idx_cluster, batched.idx_cluster)
  grad = jax.jit(jax.grad(lambda a: run(a, jit).score.sum()))(x)
  assert not np.any(np.asarray(grad))


def test_mutual_neighbour_ties_are_broken_by_the_jitter():
  """k = 2: a mutual nearest-neighbour pair has exactly equal density; only the jitter orders it,
  and the lower one of the pair gets the small distance to its partner (the official tie effect)."""
  x = np.array([[[0.0], [0.1], [3.0], [7.0], [7.5], [12.0]]], np.float32)
  no_jitter = hot.dpc_knn(x, 2, 2)
  np.testing.assert_array_equal(no_jitter.density[0, 0], no_jitter.density[0, 1])
  first = hot.dpc_knn(x, 2, 2, jitter=np.array([[1e-6, 0, 0, 0, 0, 0]], np.float32))
  second = hot.dpc_knn(x, 2, 2, jitter=np.array([[0, 1e-6, 0, 0, 0, 0]], np.float32))
  assert 0 in np.asarray(first.index_down) and 1 not in np.asarray(first.index_down)
  assert 1 in np.asarray(second.index_down) and 0 not in np.asarray(second.index_down)


def test_select_tokens_sorted_unique_and_centre():
  x = jax.random.normal(KEY, (3, 21, 8))
  jit = hot.density_jitter(jax.random.key(2), (3, 21))
  idx = np.asarray(hot.select_tokens(x, 6, jitter=jit))
  assert idx.shape == (3, 6) and (np.diff(idx, axis=1) > 0).all()
  tpc = np.asarray(hot.select_tokens(x, 6, jitter=jit, keep_center=True))
  assert (np.diff(tpc, axis=1) > 0).all() and (tpc == 10).any(axis=1).all()
  with pytest.raises(ValueError, match='cluster_num'):
    hot.dpc_knn(x, 22)


def _tokens(shape=(2, 12, 5, 16), seed=3):
  return jax.random.normal(jax.random.key(seed), shape)


def test_tpc_randomness_is_explicit():
  """Keys of the 'hot' stream drive the jitter; without one a fixed key is used."""
  x = _tokens()
  tpc = hot.TokenPruningCluster(token_num=4)
  v = tpc.init(KEY, x)
  fixed = [np.asarray(tpc.apply(v, x)[1]) for _ in range(2)]
  np.testing.assert_array_equal(fixed[0], fixed[1])
  keyed = {s: np.asarray(tpc.apply(v, x, rngs={'hot': jax.random.key(s)})[1]) for s in range(8)}
  np.testing.assert_array_equal(keyed[0], tpc.apply(v, x, rngs={'hot': jax.random.key(0)})[1])
  assert len({a.tobytes() for a in keyed.values()}) > 1  # the jitter matters (ties)
  jitter = hot.density_jitter(jax.random.key(5), (2, 12))
  feats = jnp.mean(x, axis=2)
  np.testing.assert_array_equal(
    tpc.apply(v, x, jitter=jitter)[1], hot.select_tokens(feats, 4, jitter=jitter)
  )


def test_tpc_gathers_kept_frames_with_slot_embedding():
  x = _tokens()
  tpc = hot.TokenPruningCluster(token_num=4)
  v = tpc.init(KEY, x)
  pos = jax.random.normal(KEY, (1, 4, 16))
  v = {'params': {'pos_embed_token': pos}}
  index = jnp.array([[0, 3, 5, 11], [1, 2, 8, 9]])
  kept, got_index = tpc.apply(v, x, index=index)
  np.testing.assert_array_equal(got_index, index)
  want = np.stack([np.asarray(x)[b, np.asarray(index[b])] for b in range(2)])
  np.testing.assert_allclose(kept, want + np.asarray(pos)[0][:, None], rtol=1e-6)
  bare = hot.TokenPruningCluster(token_num=4, pos_embed=False)
  assert not bare.init(KEY, x)  # no parameters without the slot embedding
  grad = jax.grad(lambda a: tpc.apply(v, a)[0].sum())(x)
  assert np.asarray(grad).sum() == pytest.approx(4 * 2 * 5 * 16)  # flows through the gather


def test_tra_matches_the_official_per_joint_formula():
  b, k, j, d, f, h = 2, 4, 3, 16, 7, 4
  x = _tokens((b, k, j, d))
  tra = hot.TokenRecoveringAttention(num_frames=f, num_heads=h)
  v = tra.init(KEY, x, train=False)
  v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(a.size), a.shape), v)
  out = jax.jit(lambda v, x: tra.apply(v, x, train=False))(v, x)
  assert out.shape == (b, f, j, d)

  p = jax.tree.map(np.asarray, v['params'])
  ca = p['cross_attention']
  lin = lambda z, n: z @ ca[n]['kernel'] + ca[n]['bias']
  tokens = np.repeat(p['x_token'], b * j, axis=0)  # (B*J, F, D), the official repeat
  kv = np.asarray(x).transpose(0, 2, 1, 3).reshape(b * j, k, d)
  split = lambda z: z.reshape(z.shape[0], z.shape[1], h, d // h).transpose(0, 2, 1, 3)
  q, kk, vv = split(lin(tokens, 'linear_q')), split(lin(kv, 'linear_k')), split(lin(kv, 'linear_v'))
  logits = q @ kk.transpose(0, 1, 3, 2) * (d // h) ** -0.5
  attn = np.exp(logits - logits.max(-1, keepdims=True))
  attn /= attn.sum(-1, keepdims=True)
  y = lin((attn @ vv).transpose(0, 2, 1, 3).reshape(b * j, f, d), 'proj')
  want = (tokens + y).reshape(b, j, f, d).transpose(0, 2, 1, 3)
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
