"""`layers.rnn.TorchGRU` against torch.nn.GRU and against a NumPy reading of torch's equations."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxpose.models.layers.rnn import TorchGRU


def _numpy_gru(x, params, hidden, num_layers, bidirectional):
  """torch.nn.GRU's documented equations, step by step, batch-first, float64."""
  sig = lambda a: 1.0 / (1.0 + np.exp(-a))
  suffixes = ('', '_reverse') if bidirectional else ('',)
  for layer in range(num_layers):
    outs = []
    for s in suffixes:
      w_ih, w_hh = params[f'weight_ih_l{layer}{s}'], params[f'weight_hh_l{layer}{s}']
      b_ih, b_hh = params[f'bias_ih_l{layer}{s}'], params[f'bias_hh_l{layer}{s}']
      h = np.zeros((x.shape[0], hidden))
      out = np.zeros((x.shape[0], x.shape[1], hidden))
      steps = range(x.shape[1] - 1, -1, -1) if s else range(x.shape[1])
      for t in steps:
        gi, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = sig(gi[:, :hidden] + gh[:, :hidden])
        z = sig(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
        n = np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
        h = (1 - z) * n + z * h
        out[:, t] = h
      outs.append(out)
    x = np.concatenate(outs, axis=-1)
  return x


@pytest.mark.parametrize('bidirectional', [False, True])
def test_gru_matches_numpy_equations(bidirectional):
  gru = TorchGRU(5, num_layers=2, bidirectional=bidirectional)
  x = np.random.default_rng(0).normal(size=(3, 6, 4)).astype(np.float32)
  variables = gru.init(jax.random.key(0), x, train=False)
  params = {k: np.asarray(v, np.float64) for k, v in variables['params'].items()}
  expected = _numpy_gru(x.astype(np.float64), params, 5, 2, bidirectional)
  out = gru.apply(variables, x, train=False)
  assert out.shape == (3, 6, 10 if bidirectional else 5)
  np.testing.assert_allclose(out, expected, atol=2e-6)


def test_gru_parameter_names_shapes_and_torch_init_bounds():
  gru = TorchGRU(8, num_layers=2, bidirectional=True)
  params = gru.init(jax.random.key(1), np.zeros((1, 2, 3), np.float32), train=False)['params']
  assert params['weight_ih_l0'].shape == (24, 3)
  assert params['weight_ih_l1_reverse'].shape == (24, 16)  # layer 2 reads (fwd, bwd)
  assert params['bias_hh_l1'].shape == (24,)
  assert len(params) == 16
  bound = 8**-0.5
  assert all(float(np.abs(p).max()) <= bound for p in params.values())


def test_gru_matches_torch_module():
  torch = pytest.importorskip('torch')
  torch.manual_seed(0)
  ref = torch.nn.GRU(input_size=4, hidden_size=6, num_layers=2, bidirectional=True)
  x = np.random.default_rng(2).normal(size=(2, 7, 4)).astype(np.float32)
  with torch.no_grad():
    expected = ref(torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))))[0].numpy()
  params = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  out = TorchGRU(6, num_layers=2, bidirectional=True).apply({'params': params}, x, train=False)
  np.testing.assert_allclose(out, expected.transpose(1, 0, 2), atol=2e-6)


def test_gru_interlayer_dropout_uses_dropout_stream():
  gru = TorchGRU(4, num_layers=2, dropout=0.5)
  x = np.ones((2, 3, 4), np.float32)
  variables = gru.init(jax.random.key(0), x, train=False)
  a = gru.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  b = gru.apply(variables, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(
    gru.apply(variables, x, train=False), gru.apply(variables, x, train=False)
  )
