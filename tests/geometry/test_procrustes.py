"""Batched Procrustes against a float64 per-pose numpy reference."""

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.geometry import procrustes

_align = jax.jit(procrustes.align)


def _reference(pred, gt):
  """Umeyama similarity alignment, float64, one pose at a time (no code shared with the port)."""
  out = []
  for p, g in zip(pred.astype(np.float64), gt.astype(np.float64)):
    mp, mg = p.mean(0), g.mean(0)
    pc, gc = p - mp, g - mg
    cov = gc.T @ pc / len(p)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
      s[2, 2] = -1
    r = u @ s @ vt  # g ~ c * r @ p + t
    c = np.trace(np.diag(d) @ s) / (pc**2).sum(1).mean()
    out.append(c * pc @ r.T + mg)
  return np.stack(out)


@given(st.integers(0, 2**31 - 1))
def test_matches_float64_reference(seed):
  rng = np.random.default_rng(seed)
  gt = rng.normal(size=(6, 17, 3)).astype(np.float32)
  pred = (gt + 0.3 * rng.normal(size=gt.shape)).astype(np.float32)
  pred[0] = gt[0] * [-1, 1, 1]  # a mirror image: the best fit must stay a proper rotation
  np.testing.assert_allclose(_align(pred, gt), _reference(pred, gt), atol=2e-5)


def test_proper_rotation_and_exact_recovery():
  rng = np.random.default_rng(1)
  gt = rng.normal(size=(3, 17, 3)).astype(np.float32)
  q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  q *= np.sign(np.linalg.det(q))
  pred = 0.7 * gt @ q + [1.0, -2.0, 0.5]
  s, r, t = procrustes.similarity_transform(pred, gt)
  np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-5)
  np.testing.assert_allclose(s, 1 / 0.7, rtol=1e-5)
  np.testing.assert_allclose(procrustes.align(pred, gt), gt, atol=1e-5)
  mirrored = gt * [-1, 1, 1]
  _, r, _ = procrustes.similarity_transform(mirrored, gt)
  np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-5)
  assert np.abs(np.asarray(procrustes.align(mirrored, gt)) - gt).max() > 0.1


def test_rigid_mode_keeps_scale():
  rng = np.random.default_rng(2)
  gt = rng.normal(size=(17, 3)).astype(np.float32)
  out = procrustes.align(2.0 * gt, gt, scale=False)
  np.testing.assert_allclose(
    np.linalg.norm(out - out.mean(0)), 2 * np.linalg.norm(gt - gt.mean(0)), rtol=1e-5
  )
