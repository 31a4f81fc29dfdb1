"""The shared diffusion arithmetic (jaxpose.models.layers.diffusion) against closed forms."""

import math

import numpy as np
import pytest

from jaxpose.models.layers import diffusion


def test_timestep_embedding_is_sin_cos_of_geometric_frequencies():
  t = np.array([0.0, 1.0, 250.0])
  out = np.asarray(diffusion.timestep_embedding(t, 8))
  w = np.exp(-np.arange(4) * math.log(1e4) / 3)  # D // 2 - 1 = 3 intervals
  np.testing.assert_allclose(
    out, np.concatenate([np.sin(t[:, None] * w), np.cos(t[:, None] * w)], 1), rtol=1e-5, atol=1e-6
  )
  odd = np.asarray(diffusion.timestep_embedding(t, 9))
  assert odd.shape == (3, 9) and np.all(odd[:, -1] == 0)
  np.testing.assert_array_equal(odd[:, :8], out)


def test_sinusoid_table_interleaves_and_compute_dtype_matters():
  pe = diffusion.sinusoid_table(10, 8)
  assert pe.dtype == np.float32 and pe.shape == (10, 8)
  np.testing.assert_allclose(pe[3, 0], np.sin(3.0), rtol=1e-6)
  np.testing.assert_allclose(pe[3, 1], np.cos(3.0), rtol=1e-6)
  np.testing.assert_allclose(pe[5, 2], np.sin(5 * np.exp(-2 * np.log(1e4) / 8)), rtol=1e-6)
  wide32 = diffusion.sinusoid_table(5000, 64)
  wide64 = diffusion.sinusoid_table(5000, 64, compute_dtype=np.float64)
  exact = 4999 * np.exp(-2 * np.log(1e4) / 64)  # row 4999, channel 2
  assert abs(wide64[4999, 2] - np.float32(np.sin(exact))) <= abs(wide32[4999, 2] - np.sin(exact))
  assert not np.array_equal(wide32, wide64)


def test_cosine_schedule_closed_form():
  s = diffusion.cosine_schedule(4, s=0.0)
  f = np.cos(np.arange(5) / 4 * np.pi / 2) ** 2
  np.testing.assert_allclose(s['alphas_cumprod'][:3], f[1:4], rtol=1e-12)
  assert s['betas'][-1] == 0.999  # 1 - f(4)/f(3) = 1, clipped
  np.testing.assert_allclose(
    s['alphas_cumprod_prev'], np.concatenate([[1.0], s['alphas_cumprod'][:-1]])
  )


@pytest.mark.parametrize(
  'kind, first, last', [('linear', 1e-4, 1e-3), ('quad', 1e-4, 1e-3), ('const', 1e-3, 1e-3)]
)
def test_beta_schedule_ends_and_cumprod(kind, first, last):
  b = diffusion.beta_schedule(kind, 1e-4, 1e-3, 5)
  assert b.dtype == np.float32
  np.testing.assert_allclose(b[[0, -1]], [first, last], rtol=1e-6)
  np.testing.assert_allclose(
    diffusion.alphas_cumprod(b), np.cumprod(1 - b.astype(np.float64)), rtol=1e-6
  )
  with pytest.raises(ValueError, match="'linear', 'quad' or 'const'"):
    diffusion.beta_schedule('cosine')
