"""PoseDA GPA: normalisation conversions and geometric properties (parity: tests/parity)."""

import jax
import numpy as np
import pytest

from jaxpose.geometry import camera
from jaxpose.methods import poseda

RNG = np.random.default_rng(0)
W, H = 1920.0, 1080.0  # 3DHP TS5-6: non-square, where the two conventions differ
K = np.array([[1500.0, 0, 950.0], [0, 1495.0, 545.0], [0, 0, 1]])
N, J = 5, 17


def _source():
  x = RNG.normal(size=(N, J, 3)).astype(np.float32) * 0.3
  x[..., 2] += 4.0
  return x


def _target_px():
  centre = RNG.uniform([300, 200], [1600, 900], (N, 1, 2))
  return (centre + RNG.normal(size=(N, J, 2)) * 80).astype(np.float32)


def test_conversion_between_screen_normalisations():
  px = _target_px()
  jp = camera.normalize_screen_coordinates(px, W, H)
  pd = poseda.poseda_normalize(px, W, H)
  np.testing.assert_allclose(poseda.jaxpose_to_poseda(jp, W, H), pd, atol=1e-5)
  np.testing.assert_allclose(poseda.poseda_to_jaxpose(pd, W, H), jp, atol=1e-5)
  k9 = np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2], 0, 0, 0, 0, 0])
  cam_jp = camera.intrinsics_px_to_norm(k9, W, H)[:4]
  np.testing.assert_allclose(
    poseda.jaxpose_to_poseda(cam_jp, W, H, camera=True), poseda.poseda_camera(K, W, H), atol=1e-6
  )


def test_gpa_keeps_the_shape_and_puts_the_root_on_the_paired_target():
  src, px = _source(), _target_px()
  tgt = poseda.poseda_normalize(px, W, H)
  cam = np.tile(poseda.poseda_camera(K, W, H), (N, 1)).astype(np.float32)
  perm = np.array([3, 0, 4, 1, 2])
  out = np.asarray(poseda.gpa(src, tgt, cam, perm=perm))
  np.testing.assert_allclose(out - out[:, :1], src - src[:, :1], atol=1e-5)
  np.testing.assert_allclose(np.asarray(poseda.project(out, cam))[:, 0], tgt[perm, 0], atol=1e-5)
  # the projected size matches: z = (fx dx + fy dy) / (2 s) in the normalised screen
  p = tgt[perm]
  s = ((p.max(1) - p.min(1)).sum(-1)) / 2
  ext = src.max(1) - src.min(1)
  z = (cam[0, 0] * ext[:, 0] + cam[0, 1] * ext[:, 1]) / (2 * s)
  np.testing.assert_allclose(out[:, 0, 2], z, rtol=1e-5)


def test_the_convention_matters_on_non_square_images():
  src, px = _source(), _target_px()
  perm = np.arange(N)
  official = poseda.gpa(
    src,
    poseda.poseda_normalize(px, W, H),
    np.tile(poseda.poseda_camera(K, W, H), (N, 1)),
    perm=perm,
  )
  tgt_jp = camera.normalize_screen_coordinates(px, W, H)
  k9 = np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2], 0, 0, 0, 0, 0])
  cam_jp = np.tile(camera.intrinsics_px_to_norm(k9, W, H)[:4], (N, 1))
  converted = poseda.gpa_jaxpose(src, tgt_jp, cam_jp, W, H, perm=perm)
  np.testing.assert_allclose(converted, official, rtol=1e-5, atol=1e-5)
  naive = poseda.gpa(src, tgt_jp, cam_jp, perm=perm)  # jaxpose's convention fed in directly
  assert np.abs(np.asarray(naive) - np.asarray(official))[..., 2].max() > 0.05


def test_pairing_comes_from_the_key():
  src, tgt = _source(), poseda.poseda_normalize(_target_px(), W, H)
  cam = np.tile(poseda.poseda_camera(K, W, H), (N, 1))
  a = poseda.gpa(src, tgt, cam, key=jax.random.key(0))
  b = poseda.gpa(src, tgt, cam, key=jax.random.key(0))
  np.testing.assert_array_equal(a, b)
  perm = np.asarray(jax.random.permutation(jax.random.key(0), N))
  np.testing.assert_array_equal(a, poseda.gpa(src, tgt, cam, perm=perm))
  outs = {
    tuple(np.asarray(poseda.gpa(src, tgt, cam, key=jax.random.key(i)))[:, 0, 2]) for i in range(6)
  }
  assert len(outs) > 1


def test_errors_name_the_problem():
  src, tgt = _source(), np.zeros((N, J, 2), np.float32)
  with pytest.raises(ValueError, match='key or an explicit perm'):
    poseda.gpa(src, tgt, np.ones((N, 4)))
  with pytest.raises(ValueError, match=r'\(N, 4\)'):
    poseda.gpa(src, tgt, np.ones((N, 9)), perm=np.arange(N))
  with pytest.raises(ValueError, match='differ'):
    poseda.gpa(src, tgt[:, :3], np.ones((N, 4)), perm=np.arange(N))
  z = np.asarray(poseda.gpa(src, tgt, np.ones((N, 4)), perm=np.arange(N), min_box=1e-3))
  assert np.isfinite(z).all()  # collapsed targets: finite with the opt-in clamp
