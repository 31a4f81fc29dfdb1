"""Epipolar geometry from 2D keypoints: F (8-point, 7-point, RANSAC, LMedS), E, relative pose, pseudo 3D.

Paper: EpipolarPose, "Self-Supervised Learning of 3D Human Pose using Multi-view Geometry" (Kocabas,
Karagoz, Akbas, CVPR 2019, arXiv 1903.02330), §3.1-3.2. Official repo github.com/mkocabas/EpipolarPose
at commit 299ccb0acd4b0c57ef875aeb77b4e4e177c6accf: `lib/utils/cameras.py`
(`Camera.get_fundamental_matrix`: joints cast to int32, `cv2.findFundamentalMat(FM_LMEDS)`;
`get_essential_matrix`: E = K^T F K with one K for both views) and `lib/utils/triangulation.py`.

**The extrinsics-free pseudo-label pipeline is NOT in the official repo** (issues #17/#19/#26:
`prep_h36m.save_triangulations` raises NotImplementedError; the triangulations were made offline).
`pseudo_label_pose` reconstructs it from the paper: 2D from two views -> F -> E = K2^T F K1 -> the
four (R, t) of E -> cheirality check (points in front of both cameras) -> polynomial (optimal)
triangulation with P1 = K1 [I | 0], P2 = K2 [R | t] -> 3D in camera-1 coordinates at an arbitrary
scale (|t| = 1) -> root-relative targets. The "with R/t" variant (`pseudo_label_pose_extrinsics`)
triangulates with the known projection matrices instead, as the official (dead) `self_supervision`
does with iterative-LS, and gives metric 3D.
`pseudo_label_batch` runs the pipeline over a batch of samples (offline label generation), with
one shared relative pose per static camera pair (`pooled_relative_pose`) or one per sample.

Everything here is host-side numpy float64 (non-differentiable, randomised robust estimation; the
authors also ran it offline). Pixels are undistorted image pixels; F maps view 1 to view 2:
`x2^T F x1 = 0` with x = (u, v, 1).

Estimators and their settings (this module's choices; OpenCV's where we follow it):
  * `fundamental_8point`: Hartley-normalised 8-point (centroid to the origin, mean distance sqrt 2),
    SVD null vector, rank 2 by zeroing the smallest singular value, scaled so F[2,2] = 1 when
    |F[2,2]| > 1.19e-7 (float epsilon; OpenCV's convention), else unit Frobenius norm.
  * `seven_point`: the minimal solver (1 or 3 real solutions), on Hartley-normalised points.
  * `fundamental_lmeds`: least median of squares over random 7-point samples (default 1000, seeded
    numpy Generator). Error per point: max of the squared distances of each point to the other's
    epipolar line. Score: the (n//2)-th smallest error. Inliers: error <= sigma^2 with
    sigma = max(2.5 * 1.4826 * (1 + 5 / (n - 7)) * sqrt(best median), 0.001). The returned F is the
    winning 7-point model, not refitted: this is what OpenCV 5.0's FM_LMEDS returns (checked on the
    fixture: F_official has exactly zero residual on 7 of its 9 inliers). OpenCV's sampling RNG is
    internal, so the same F comes out only when the same sample is drawn; the parity test scores
    every 7-subset of the fixture's inliers instead, which is deterministic.
  * `fundamental_ransac`: RANSAC over minimal 8-point samples, threshold 3 px (OpenCV's default
    `ransacReprojThreshold`) on the same point-to-line distance, confidence 0.99, at most 2000
    iterations (adaptive), then the 8-point refit on all inliers.
  * `recover_pose`: the four (R, t) of E (HZ §9.6.2), each checked by DLT-triangulating the
    normalised correspondences with P1 = [I | 0], P2 = [R | t]; points count when their depth is
    positive and below `max_depth` (50 baselines, OpenCV's `distanceThresh`) in both cameras; the
    first hypothesis with the largest count wins (order: (R1, t), (R1, -t), (R2, t), (R2, -t)).
  * `refine_relative_pose` (not in the paper or the repo): robust (Cauchy, 5 px) least squares of
    the Sampson distance over (R, t), 5 degrees of freedom, with scipy; `pooled_relative_pose` uses
    it by default. For detector keypoints (several px of noise) raise the RANSAC threshold to the
    noise level: 3 px keeps too few inliers on MediaPipe output (experiments/pose2sim_geometry).

Degenerate input (fewer than 8 correspondences, all points identical, points collinear in either
view, a K that is not invertible) raises ValueError naming `where` (pass e.g. "pair (cam01, cam02),
frame 12").
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry import triangulation

FLT_EPSILON = float(np.finfo(np.float32).eps)
RANSAC_THRESHOLD_PX = 3.0
RANSAC_CONFIDENCE = 0.99
RANSAC_MAX_ITERATIONS = 2000
LMEDS_ITERATIONS = 1000
CHEIRALITY_MAX_DEPTH = 50.0
REFINE_LOSS = 'cauchy'
REFINE_SCALE_PX = 5.0


def _ctx(where: str) -> str:
  return f'{where}: ' if where else ''


def _points(u, name: str, where: str) -> np.ndarray:
  u = np.asarray(u, np.float64)
  if u.ndim != 2 or u.shape[1] != 2:
    raise ValueError(f'{_ctx(where)}{name} must be (N, 2) pixels, got shape {u.shape}')
  if not np.isfinite(u).all():
    bad = np.flatnonzero(~np.isfinite(u).all(axis=1))
    raise ValueError(f'{_ctx(where)}{name} has non-finite points at indices {bad.tolist()}')
  return u


def _pair(u1, u2, where: str, minimum: int = 8) -> tuple[np.ndarray, np.ndarray]:
  u1, u2 = _points(u1, 'u1', where), _points(u2, 'u2', where)
  if u1.shape != u2.shape:
    raise ValueError(f'{_ctx(where)}u1 has {u1.shape[0]} points, u2 has {u2.shape[0]}')
  if u1.shape[0] < minimum:
    raise ValueError(f'{_ctx(where)}F needs at least {minimum} correspondences, got {u1.shape[0]}')
  return u1, u2


def _homog(u):
  return np.concatenate([u, np.ones(u.shape[:-1] + (1,))], axis=-1)


def hartley_normalisation(u: ArrayLike, *, where: str = '', name: str = 'points') -> np.ndarray:
  """Similarity T (3, 3) moving (..., N, 2) points to centroid 0 and mean distance sqrt(2).

  Raises:
    ValueError: all points identical (zero spread), naming `where`.
  """
  u = np.asarray(u, np.float64)
  c = u.mean(axis=-2)
  s = np.linalg.norm(u - c[..., None, :], axis=-1).mean(axis=-1)
  if np.any(s < FLT_EPSILON):
    raise ValueError(f'{_ctx(where)}degenerate correspondences: all {name} are identical')
  k = np.sqrt(2.0) / s
  t = np.zeros(u.shape[:-2] + (3, 3))
  t[..., 0, 0] = t[..., 1, 1] = k
  t[..., 0, 2] = -k * c[..., 0]
  t[..., 1, 2] = -k * c[..., 1]
  t[..., 2, 2] = 1.0
  return t


def _design(x1, x2):
  """Rows of the linear system `x2^T F x1 = 0` in F's row-major entries: (..., N, 9)."""
  return np.einsum('...i,...j->...ij', x2, x1).reshape(x1.shape[:-1] + (9,))


def _check_spread(u, name, where):
  """Raise if the points are collinear (or identical): the 2x2 scatter has rank < 2."""
  c = u - u.mean(axis=0)
  s = np.linalg.svd(c, compute_uv=False)
  if s[0] < FLT_EPSILON:
    raise ValueError(f'{_ctx(where)}degenerate correspondences: all {name} are identical')
  if s[1] <= 1e-9 * s[0]:
    raise ValueError(f'{_ctx(where)}degenerate correspondences: the {name} are collinear')


def check_correspondences(u1: ArrayLike, u2: ArrayLike, *, where: str = '') -> None:
  """Raises ValueError (naming `where`) for input no F can be estimated from.

  Fewer than 8 correspondences, mismatched counts, non-finite values, identical or collinear points
  in either view, or a rank-deficient 8-point system (< 8 independent constraints).
  """
  u1, u2 = _pair(u1, u2, where)
  _check_spread(u1, 'u1 points', where)
  _check_spread(u2, 'u2 points', where)
  t1, t2 = hartley_normalisation(u1, where=where), hartley_normalisation(u2, where=where)
  a = _design(_homog(u1) @ t1.T, _homog(u2) @ t2.T)
  s = np.linalg.svd(a, compute_uv=False)
  if s[7] <= 1e-10 * s[0]:
    raise ValueError(
      f'{_ctx(where)}degenerate correspondences: the 8-point system has rank < 8 '
      f'(singular values {np.array2string(s, precision=3)})'
    )


def _scale_f(f):
  f = f / np.linalg.norm(f, axis=(-2, -1), keepdims=True)
  f22 = f[..., 2:3, 2:3]
  return np.where(np.abs(f22) > FLT_EPSILON, f / np.where(f22 == 0, 1.0, f22), f)


def _enforce_rank2(f):
  u, s, vt = np.linalg.svd(f)
  s[..., 2] = 0.0
  return (u * s[..., None, :]) @ vt


def fundamental_8point(u1: ArrayLike, u2: ArrayLike, *, where: str = '') -> np.ndarray:
  """Normalised 8-point fundamental matrix (least squares over all N >= 8 correspondences).

  Args:
    u1, u2: (N, 2) pixels in views 1 and 2.
    where: context for error messages (camera pair, frame).

  Returns:
    (3, 3) float64 F of rank 2, `x2^T F x1 = 0`, scaled as in the module docstring.

  Raises:
    ValueError: degenerate correspondences (see `check_correspondences`).
  """
  check_correspondences(u1, u2, where=where)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  t1, t2 = hartley_normalisation(u1), hartley_normalisation(u2)
  a = _design(_homog(u1) @ t1.T, _homog(u2) @ t2.T)
  fn = np.linalg.svd(a)[2][-1].reshape(3, 3)
  f = t2.T @ _enforce_rank2(fn) @ t1
  return _scale_f(f)


def seven_point(u1: ArrayLike, u2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Minimal 7-point solver, batched over samples.

  det(a F1 + (1 - a) F2) = 0 is a cubic in a, where F1, F2 span the 2-D null space of the 7
  constraints (on Hartley-normalised points); each real root gives a rank-2 F.

  Args:
    u1, u2: (S, 7, 2) pixels.

  Returns:
    F: (S, 3, 3, 3) up to three solutions per sample (scaled as `fundamental_8point`).
    valid: (S, 3) bool, which solutions exist (real roots of a non-degenerate sample).
  """
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  if u1.shape != u2.shape or u1.shape[-2:] != (7, 2):
    raise ValueError(f'seven_point needs (S, 7, 2) points, got {u1.shape} and {u2.shape}')
  n_s = u1.shape[0]
  out = np.zeros((n_s, 3, 3, 3))
  valid = np.zeros((n_s, 3), bool)
  spread1 = np.linalg.norm(u1 - u1.mean(-2, keepdims=True), axis=-1).mean(-1)
  spread2 = np.linalg.norm(u2 - u2.mean(-2, keepdims=True), axis=-1).mean(-1)
  ok = (spread1 > FLT_EPSILON) & (spread2 > FLT_EPSILON)
  if not ok.any():
    return out, valid
  idx = np.flatnonzero(ok)
  t1, t2 = hartley_normalisation(u1[idx]), hartley_normalisation(u2[idx])
  x1 = np.einsum('sij,snj->sni', t1, _homog(u1[idx]))
  x2 = np.einsum('sij,snj->sni', t2, _homog(u2[idx]))
  a = _design(x1, x2)  # (S, 7, 9)
  _, s, vt = np.linalg.svd(a, full_matrices=True)
  f1, f2 = vt[:, -1].reshape(-1, 3, 3), vt[:, -2].reshape(-1, 3, 3)
  rank_ok = s[:, 6] > 1e-10 * s[:, 0]
  # The determinant is a cubic in a: fit it exactly through four samples.
  grid = np.array([0.0, 1.0, -1.0, 2.0])
  dets = np.linalg.det(grid[:, None, None, None] * f1 + (1 - grid[:, None, None, None]) * f2).T
  coef = np.linalg.solve(np.vander(grid, 4), dets.T).T  # (S, 4), highest power first
  for k, s_i in enumerate(idx):
    if not rank_ok[k]:
      continue
    c = np.trim_zeros(coef[k], 'f')
    if c.size < 2:
      continue
    roots = np.roots(c)
    real = roots[np.abs(roots.imag) <= 1e-8 * (1.0 + np.abs(roots.real))].real
    for j, r in enumerate(real[:3]):
      fn = r * f1[k] + (1 - r) * f2[k]
      out[s_i, j] = t2[k].T @ fn @ t1[k]
      valid[s_i, j] = True
  out[valid] = _scale_f(out[valid])
  return out, valid


def epipolar_errors(f: ArrayLike, u1: ArrayLike, u2: ArrayLike) -> np.ndarray:
  """Squared point-to-epipolar-line distance, the larger of the two views (OpenCV's F error).

  Args:
    f: (..., 3, 3) one or several F (leading axes broadcast against the points' leading axes).
    u1, u2: (..., N, 2) pixels.

  Returns:
    (..., N) squared pixels: max(d(u2, F x1)^2, d(u1, F^T x2)^2).
  """
  f = np.asarray(f, np.float64)
  x1, x2 = _homog(np.asarray(u1, np.float64)), _homog(np.asarray(u2, np.float64))
  l2 = np.einsum('...ij,...nj->...ni', f, x1)  # epipolar lines in view 2
  l1 = np.einsum('...ji,...nj->...ni', f, x2)  # epipolar lines in view 1
  r = np.sum(x2 * l2, axis=-1)
  with np.errstate(divide='ignore', invalid='ignore'):
    d2 = r * r / (l2[..., 0] ** 2 + l2[..., 1] ** 2)
    d1 = r * r / (l1[..., 0] ** 2 + l1[..., 1] ** 2)
  return np.maximum(d1, d2)


def sampson_errors(f: ArrayLike, u1: ArrayLike, u2: ArrayLike) -> np.ndarray:
  """First-order geometric (Sampson) error per correspondence, squared pixels: (..., N)."""
  f = np.asarray(f, np.float64)
  x1, x2 = _homog(np.asarray(u1, np.float64)), _homog(np.asarray(u2, np.float64))
  l2 = np.einsum('...ij,...nj->...ni', f, x1)
  l1 = np.einsum('...ji,...nj->...ni', f, x2)
  r = np.sum(x2 * l2, axis=-1)
  return r * r / (l2[..., 0] ** 2 + l2[..., 1] ** 2 + l1[..., 0] ** 2 + l1[..., 1] ** 2)


@dataclasses.dataclass(frozen=True)
class FundamentalEstimate:
  """A robust F estimate.

  Attributes:
    F: (3, 3) float64, `x2^T F x1 = 0`.
    inliers: (N,) bool over the input correspondences.
    score: LMedS: the best median squared error (px^2); RANSAC: the inlier count.
    iterations: samples drawn.
  """

  F: np.ndarray
  inliers: np.ndarray
  score: float
  iterations: int


def lmeds_sigma(median: float, n: int) -> float:
  """LMedS robust standard deviation (Rousseeuw) for n correspondences and a 7-point model, pixels."""
  return max(2.5 * 1.4826 * (1.0 + 5.0 / (n - 7)) * np.sqrt(median), 0.001)


def lmeds_select(candidates: ArrayLike, u1: ArrayLike, u2: ArrayLike) -> tuple[int, float]:
  """Index and median of the candidate F with the least median error over all correspondences.

  Args:
    candidates: (M, 3, 3) fundamental matrices.
    u1, u2: (N, 2) pixels.

  Returns:
    (index of the best candidate (first on ties), its median squared error in px^2). The median is
    the (N//2)-th smallest error, as OpenCV.
  """
  err = epipolar_errors(np.asarray(candidates), u1, u2)  # (M, N)
  err = np.where(np.isnan(err), np.inf, err)
  med = np.partition(err, err.shape[1] // 2, axis=1)[:, err.shape[1] // 2]
  best = int(np.argmin(med))
  return best, float(med[best])


def _draw_subsets(rng: np.random.Generator, n: int, size: int, count: int) -> np.ndarray:
  """(count, size) index sets, each without repetition."""
  keys = rng.random((count, n))
  return np.argpartition(keys, size - 1, axis=1)[:, :size]


def fundamental_lmeds(
  u1: ArrayLike,
  u2: ArrayLike,
  *,
  seed: int | np.random.Generator = 0,
  iterations: int = LMEDS_ITERATIONS,
  subsets: ArrayLike | None = None,
  refit: bool = False,
  where: str = '',
) -> FundamentalEstimate:
  """Least-median-of-squares F over random 7-point samples (settings in the module docstring).

  Args:
    u1, u2: (N, 2) pixels, N >= 8.
    seed: seed or numpy Generator for the samples.
    iterations: random samples to draw (ignored when `subsets` is given).
    subsets: optional (S, 7) explicit sample index sets (e.g. all 7-subsets, for exhaustive search).
    refit: refit the 8-point F on the inliers (not what OpenCV returns).
    where: context for error messages.

  Returns:
    FundamentalEstimate with score = best median squared error, px^2.

  Raises:
    ValueError: degenerate correspondences, or no sample gave a model.
  """
  check_correspondences(u1, u2, where=where)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  n = u1.shape[0]
  if subsets is None:
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    subsets = _draw_subsets(rng, n, 7, iterations)
  subsets = np.asarray(subsets)
  fs, valid = seven_point(u1[subsets], u2[subsets])
  cands = fs[valid]
  if cands.shape[0] == 0:
    raise ValueError(f'{_ctx(where)}LMedS: no 7-point sample gave a fundamental matrix')
  best, med = lmeds_select(cands, u1, u2)
  f = cands[best]
  inliers = epipolar_errors(f, u1, u2) <= lmeds_sigma(med, n) ** 2
  if refit and inliers.sum() >= 8:
    f = fundamental_8point(u1[inliers], u2[inliers], where=where)
  return FundamentalEstimate(f, inliers, med, int(subsets.shape[0]))


def fundamental_official(
  u1: ArrayLike, u2: ArrayLike, *, seed: int | np.random.Generator = 0, where: str = ''
) -> FundamentalEstimate:
  """The official `Camera.get_fundamental_matrix`: joints cast to int32 (truncation), then LMedS.

  The repo calls `cv2.findFundamentalMat(int32 joints, FM_LMEDS)`; this is our LMedS with the same
  scoring and inlier rule on the same truncated coordinates. The random samples differ from
  OpenCV's internal RNG, so the F matches OpenCV's only when the same winning sample is drawn. The
  spec (epipolarpose.md §3) found this estimator unstable on 17 joints; prefer `fundamental_8point`
  on float coordinates, or pooling frames (`pooled_relative_pose`).

  Args: as `fundamental_lmeds`.

  Returns:
    FundamentalEstimate over the truncated coordinates.
  """
  i1 = np.asarray(u1, np.float64).astype(np.int32).astype(np.float64)
  i2 = np.asarray(u2, np.float64).astype(np.int32).astype(np.float64)
  return fundamental_lmeds(i1, i2, seed=seed, where=where)


def fundamental_ransac(
  u1: ArrayLike,
  u2: ArrayLike,
  *,
  seed: int | np.random.Generator = 0,
  threshold_px: float = RANSAC_THRESHOLD_PX,
  confidence: float = RANSAC_CONFIDENCE,
  max_iterations: int = RANSAC_MAX_ITERATIONS,
  where: str = '',
) -> FundamentalEstimate:
  """RANSAC around the normalised 8-point algorithm.

  Minimal samples of 8 correspondences; a correspondence is an inlier when `epipolar_errors` <=
  threshold_px^2; the iteration count adapts to the best inlier ratio so far
  (log(1 - confidence) / log(1 - w^8)); the best model is refitted with the 8-point algorithm on
  its inliers and the inliers recomputed.

  Args:
    u1, u2: (N, 2) pixels, N >= 8.
    seed: seed or numpy Generator.
    threshold_px: inlier distance, pixels (default 3, OpenCV's).
    confidence: desired probability of drawing one outlier-free sample.
    max_iterations: cap on the number of samples.
    where: context for error messages.

  Returns:
    FundamentalEstimate with score = inlier count.
  """
  check_correspondences(u1, u2, where=where)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  n = u1.shape[0]
  rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
  thr2 = threshold_px**2
  best_count, best_inl, needed, it = -1, None, max_iterations, 0
  while it < min(needed, max_iterations):
    it += 1
    idx = _draw_subsets(rng, n, 8, 1)[0]
    try:
      f = fundamental_8point(u1[idx], u2[idx])
    except ValueError:
      continue  # degenerate sample
    inl = epipolar_errors(f, u1, u2) <= thr2
    count = int(inl.sum())
    if count > best_count:
      best_count, best_inl = count, inl
      w = count / n
      if w >= 1.0:
        needed = it
      else:
        denom = np.log1p(-(w**8))  # 0 when w**8 underflows: keep the cap
        needed = max_iterations if denom == 0 else int(np.ceil(np.log1p(-confidence) / denom))
  if best_inl is None or best_count < 8:
    raise ValueError(
      f'{_ctx(where)}RANSAC: fewer than 8 inliers at {threshold_px} px (best {best_count} of {n})'
    )
  f = fundamental_8point(u1[best_inl], u2[best_inl], where=where)
  inl = epipolar_errors(f, u1, u2) <= thr2
  if inl.sum() >= 8:
    f = fundamental_8point(u1[inl], u2[inl], where=where)
    inl = epipolar_errors(f, u1, u2) <= thr2
  return FundamentalEstimate(f, inl, float(inl.sum()), it)


def essential_from_fundamental(
  f: ArrayLike, k1: ArrayLike, k2: ArrayLike | None = None, *, where: str = ''
) -> np.ndarray:
  """E = K2^T F K1 (the repo's `get_essential_matrix` is the same-K form K^T F K: pass k2=None).

  Args:
    f: (3, 3) F, `x2^T F x1 = 0` in pixels.
    k1: (3, 3) intrinsics of view 1, pixels.
    k2: (3, 3) intrinsics of view 2; None = k1.
    where: context for error messages.

  Returns:
    (3, 3) float64 E (same scale as F), `y2^T E y1 = 0` for normalised coordinates y = K^-1 x.

  Raises:
    ValueError: a K that is not invertible, naming the view.
  """
  k1 = np.asarray(k1, np.float64)
  k2 = k1 if k2 is None else np.asarray(k2, np.float64)
  triangulation.check_intrinsics(np.stack([k1, k2]), where=where, names=['view 1', 'view 2'])
  return k2.T @ np.asarray(f, np.float64) @ k1


def decompose_essential(e: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """The four (R, t) of an essential matrix (HZ Result 9.19).

  Args:
    e: (3, 3) essential matrix.

  Returns:
    R: (4, 3, 3) proper rotations; t: (4, 3) unit translations, in the order (R1, t), (R1, -t),
    (R2, t), (R2, -t), with R1 = U W V^T, R2 = U W^T V^T, t = U[:, 2].
  """
  u, _, vt = np.linalg.svd(np.asarray(e, np.float64))
  if np.linalg.det(u) < 0:
    u = -u
  if np.linalg.det(vt) < 0:
    vt = -vt
  w = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  r1, r2 = u @ w @ vt, u @ w.T @ vt
  t = u[:, 2] / np.linalg.norm(u[:, 2])
  return np.stack([r1, r1, r2, r2]), np.stack([t, -t, t, -t])


def _normalised(u, k):
  return (np.linalg.inv(k) @ _homog(u).T).T[:, :2]


def cheirality_counts(
  r: ArrayLike,
  t: ArrayLike,
  y1: ArrayLike,
  y2: ArrayLike,
  *,
  max_depth: float = CHEIRALITY_MAX_DEPTH,
) -> tuple[np.ndarray, np.ndarray]:
  """Points in front of both cameras for each (R, t) hypothesis.

  Args:
    r: (H, 3, 3); t: (H, 3) with camera 2 = [R | t] and camera 1 = [I | 0].
    y1, y2: (N, 2) normalised image coordinates (K^-1 x).
    max_depth: points farther than this (in units of |t|) count as at infinity, i.e. not in front.

  Returns:
    counts: (H,) int; masks: (H, N) bool.
  """
  r, t = np.asarray(r, np.float64), np.asarray(t, np.float64)
  p1 = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
  p2 = np.concatenate([r, t[:, :, None]], axis=2)  # (H, 3, 4)
  kp = np.stack([y1, y2])  # (2, N, 2)
  proj = np.stack([np.broadcast_to(p1, p2.shape), p2], axis=1)  # (H, 2, 3, 4)
  x = triangulation.triangulate_dlt(np.broadcast_to(kp, (len(r),) + kp.shape), proj)  # (H, N, 3)
  z1 = x[..., 2]
  z2 = np.einsum('hij,hnj->hni', r, x)[..., 2] + t[:, None, 2]
  mask = (z1 > 0) & (z1 < max_depth) & (z2 > 0) & (z2 < max_depth)
  mask &= np.isfinite(x).all(axis=-1)
  return mask.sum(axis=1), mask


def recover_pose(
  e: ArrayLike,
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  max_depth: float = CHEIRALITY_MAX_DEPTH,
  where: str = '',
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Relative pose of camera 2 w.r.t. camera 1 from E by the cheirality check.

  Args:
    e: (3, 3) essential matrix.
    u1, u2: (N, 2) pixels (the correspondences to test; e.g. the inliers).
    k1, k2: (3, 3) intrinsics (k2 None = k1).
    max_depth: see `cheirality_counts`.
    where: context for error messages.

  Returns:
    R: (3, 3), t: (3,) unit norm (translation known only up to scale) with
    `X_cam2 = R X_cam1 + t`, and in_front: (N,) bool for the chosen hypothesis.
  """
  k1 = np.asarray(k1, np.float64)
  k2 = k1 if k2 is None else np.asarray(k2, np.float64)
  triangulation.check_intrinsics(np.stack([k1, k2]), where=where, names=['view 1', 'view 2'])
  y1 = _normalised(_points(u1, 'u1', where), k1)
  y2 = _normalised(_points(u2, 'u2', where), k2)
  rs, ts = decompose_essential(e)
  counts, masks = cheirality_counts(rs, ts, y1, y2, max_depth=max_depth)
  best = int(np.argmax(counts))
  return rs[best], ts[best], masks[best]


def _rodrigues(w):
  theta = np.linalg.norm(w)
  if theta < 1e-12:
    return np.eye(3)
  k = w / theta
  kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
  return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def _skew(t):
  return np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])


def refine_relative_pose(
  r: ArrayLike,
  t: ArrayLike,
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  loss: str = REFINE_LOSS,
  scale_px: float = REFINE_SCALE_PX,
  max_nfev: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
  """Robust non-linear refinement of (R, t) on the Sampson distance (5 degrees of freedom).

  Minimises sum rho(sqrt(Sampson error)) over all correspondences with F = K2^-T [t]_x R K1^-1,
  R updated by an axis-angle increment and t kept on the unit sphere, with
  `scipy.optimize.least_squares` (scipy is a dependency of jax) and a robust loss (default Cauchy
  with a 5 px scale: detections with swapped left/right joints lie tens to hundreds of pixels off
  their epipolar line and get almost no weight). Not part of the paper; use it after a RANSAC /
  LMedS initialisation, e.g. for pooled static pairs.

  Args:
    r: (3, 3), t: (3,) initial relative pose (`X_cam2 = R X_cam1 + t`).
    u1, u2: (N, 2) pixels.
    k1, k2: (3, 3) intrinsics (k2 None = k1).
    loss: a `least_squares` loss ('linear', 'huber', 'soft_l1', 'cauchy', 'arctan').
    scale_px: the loss's soft inlier scale, pixels.
    max_nfev: cap on function evaluations.

  Returns:
    (R (3, 3), t (3,) unit norm).
  """
  from scipy.optimize import least_squares

  r0 = np.asarray(r, np.float64)
  t0 = np.asarray(t, np.float64) / np.linalg.norm(t)
  k1 = np.asarray(k1, np.float64)
  k1i = np.linalg.inv(k1)
  k2i = k1i if k2 is None else np.linalg.inv(np.asarray(k2, np.float64))
  tangent = np.linalg.svd(t0[None])[2][1:]  # (2, 3) orthonormal basis of t0's tangent plane
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)

  def unpack(p):
    tt = t0 + p[3:] @ tangent
    return _rodrigues(p[:3]) @ r0, tt / np.linalg.norm(tt)

  def residuals(p):
    rr, tt = unpack(p)
    return np.sqrt(sampson_errors(k2i.T @ _skew(tt) @ rr @ k1i, u1, u2))

  res = least_squares(residuals, np.zeros(5), loss=loss, f_scale=scale_px, max_nfev=max_nfev)
  return unpack(res.x)


def relative_pose_from_extrinsics(
  r1: ArrayLike, t1: ArrayLike, r2: ArrayLike, t2: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
  """Camera-1 -> camera-2 transform from world -> camera extrinsics (`X_cam = R X_world + t`).

  Returns:
    R = R2 R1^T (3, 3), t = t2 - R t1 (3,) in the unit of t1, t2.
  """
  r1, r2 = np.asarray(r1, np.float64), np.asarray(r2, np.float64)
  r = r2 @ r1.T
  return r, np.asarray(t2, np.float64) - r @ np.asarray(t1, np.float64)


def rotation_angle_deg(ra: ArrayLike, rb: ArrayLike) -> float:
  """Geodesic angle between two rotations, degrees."""
  m = np.asarray(ra, np.float64).T @ np.asarray(rb, np.float64)
  return float(np.degrees(np.arccos(np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0))))


@dataclasses.dataclass(frozen=True)
class RelativePose:
  """Relative pose estimated from 2D correspondences.

  Attributes:
    R: (3, 3), t: (3,) unit norm; `X_cam2 = R X_cam1 + t` (t up to scale).
    F: (3, 3) fundamental matrix; E: (3, 3) essential matrix.
    inliers: (N,) bool, the correspondences the robust estimator kept (all True for '8point').
    in_front: (N,) bool, inliers in front of both cameras for (R, t).
  """

  R: np.ndarray
  t: np.ndarray
  F: np.ndarray
  E: np.ndarray
  inliers: np.ndarray
  in_front: np.ndarray


ESTIMATORS = ('8point', 'ransac', 'lmeds', 'official')


def estimate_fundamental(
  u1: ArrayLike,
  u2: ArrayLike,
  *,
  estimator: str = '8point',
  seed: int | np.random.Generator = 0,
  threshold_px: float = RANSAC_THRESHOLD_PX,
  where: str = '',
) -> FundamentalEstimate:
  """Dispatch to one of ESTIMATORS ('official' = int32 cast + LMedS, as the repo).

  `threshold_px` is RANSAC's inlier distance (ignored by the others).
  """
  if estimator == '8point':
    f = fundamental_8point(u1, u2, where=where)
    n = np.asarray(u1).shape[0]
    return FundamentalEstimate(f, np.ones(n, bool), float(n), 1)
  if estimator == 'ransac':
    return fundamental_ransac(u1, u2, seed=seed, threshold_px=threshold_px, where=where)
  if estimator == 'lmeds':
    return fundamental_lmeds(u1, u2, seed=seed, where=where)
  if estimator == 'official':
    return fundamental_official(u1, u2, seed=seed, where=where)
  raise ValueError(f'unknown estimator {estimator!r}; valid: {", ".join(ESTIMATORS)}')


def relative_pose(
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  estimator: str = '8point',
  seed: int | np.random.Generator = 0,
  threshold_px: float = RANSAC_THRESHOLD_PX,
  refine: bool = False,
  where: str = '',
) -> RelativePose:
  """F -> E -> (R, t) from 2D correspondences of one camera pair.

  Args:
    u1, u2: (N, 2) pixels (undistorted).
    k1, k2: (3, 3) intrinsics (k2 None = k1, the repo's same-K form).
    estimator: one of ESTIMATORS.
    seed: for the robust estimators.
    threshold_px: RANSAC inlier distance, pixels.
    refine: follow with `refine_relative_pose` over all correspondences; F and E are then
      recomputed from the refined pose and in_front re-checked.
    where: context for error messages.

  Returns:
    RelativePose.
  """
  est = estimate_fundamental(
    u1, u2, estimator=estimator, seed=seed, threshold_px=threshold_px, where=where
  )
  e = essential_from_fundamental(est.F, k1, k2, where=where)
  k1 = np.asarray(k1, np.float64)
  k2 = k1 if k2 is None else np.asarray(k2, np.float64)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  if estimator == 'official':  # the repo keeps the int32 inliers
    u1, u2 = u1.astype(np.int32).astype(np.float64), u2.astype(np.int32).astype(np.float64)
  r, t, front = recover_pose(e, u1[est.inliers], u2[est.inliers], k1, k2, where=where)
  f = est.F
  if refine:
    r, t = refine_relative_pose(r, t, u1, u2, k1, k2)
    e = _skew(t) @ r
    f = _scale_f(np.linalg.inv(k2).T @ e @ np.linalg.inv(k1))
    y1, y2 = _normalised(u1[est.inliers], k1), _normalised(u2[est.inliers], k2)
    front = cheirality_counts(r[None], t[None], y1, y2)[1][0]
  in_front = np.zeros_like(est.inliers)
  in_front[est.inliers] = front
  return RelativePose(r, t, f, e, est.inliers, in_front)


@dataclasses.dataclass(frozen=True)
class PseudoLabel:
  """Pseudo 3D target from two views.

  Attributes:
    pose3d_cam1: (J, 3) camera-1 coordinates (arbitrary scale without extrinsics, |t| = 1;
      the extrinsics' unit with them).
    pose3d_rel: (J, 3) root-relative `pose3d_cam1`.
    R, t: camera 1 -> camera 2 (`X_cam2 = R X_cam1 + t`).
    pose: the RelativePose (F, E, inliers) without extrinsics; None with them.
  """

  pose3d_cam1: np.ndarray
  pose3d_rel: np.ndarray
  R: np.ndarray
  t: np.ndarray
  pose: RelativePose | None = None


def pseudo_label_pose(
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  estimator: str = '8point',
  root: int = 0,
  seed: int | np.random.Generator = 0,
  relative: RelativePose | None = None,
  where: str = '',
) -> PseudoLabel:
  """EpipolarPose pseudo 3D labels without extrinsics (reconstructed from the paper, §3.2).

  Not in the official repo (see the module docstring). Steps: F from the 2D joints (estimator),
  E = K2^T F K1, (R, t) by the cheirality check, polynomial triangulation of all J joints with
  P1 = K1 [I | 0], P2 = K2 [R | t] (|t| = 1, so the scale is arbitrary: evaluate with N-MPJPE),
  then root-relative.

  Args:
    u1, u2: (J, 2) joints in pixels in views 1 and 2 (e.g. the 2D teacher's output).
    k1, k2: (3, 3) intrinsics (k2 None = k1).
    estimator: F estimator, one of ESTIMATORS ('8point' on float coordinates is the stable choice).
    root: root joint index for the root-relative pose.
    seed: for the robust estimators.
    relative: a precomputed RelativePose (e.g. `pooled_relative_pose` of a static camera pair);
      then F/E/(R, t) are not re-estimated from this frame.
    where: context for error messages (pair, frame).

  Returns:
    PseudoLabel with pose3d_cam1 at arbitrary scale.
  """
  u1 = _points(u1, 'u1', where)
  u2 = _points(u2, 'u2', where)
  k1 = np.asarray(k1, np.float64)
  k2 = k1 if k2 is None else np.asarray(k2, np.float64)
  rel = relative or relative_pose(u1, u2, k1, k2, estimator=estimator, seed=seed, where=where)
  p1 = triangulation.projection_matrix(k1, np.eye(3), np.zeros(3))
  p2 = triangulation.projection_matrix(k2, rel.R, rel.t)
  x = triangulation.triangulate_polynomial(u1, p1, u2, p2, where=where)
  return PseudoLabel(x, x - x[root], rel.R, rel.t, rel)


def pseudo_label_pose_extrinsics(
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  r1: ArrayLike,
  t1: ArrayLike,
  k2: ArrayLike,
  r2: ArrayLike,
  t2: ArrayLike,
  *,
  method: str = 'iterative_ls',
  root: int = 0,
  where: str = '',
) -> tuple[PseudoLabel, np.ndarray]:
  """EpipolarPose pseudo 3D labels "with R/t": triangulate with the known calibration.

  The official (dead-code) `self_supervision` triangulates with iterative-LS and P = K [R | -R T];
  here `t = -R T` in the OpenCV convention `X_cam = R X_world + t`.

  Args:
    u1, u2: (J, 2) pixels.
    k1, r1, t1, k2, r2, t2: intrinsics (3, 3), world -> camera rotations (3, 3), translations (3,).
    method: 'iterative_ls' (official), 'polynomial', 'dlt' or 'linear_ls'.
    root: root joint index.
    where: context for error messages.

  Returns:
    (PseudoLabel in camera-1 coordinates, metric in the unit of t; pose3d_world (J, 3)).
  """
  u1, u2 = _points(u1, 'u1', where), _points(u2, 'u2', where)
  p1 = triangulation.projection_matrix(np.asarray(k1, np.float64), r1, np.asarray(t1, np.float64))
  p2 = triangulation.projection_matrix(np.asarray(k2, np.float64), r2, np.asarray(t2, np.float64))
  kp, proj = np.stack([u1, u2]), np.stack([p1, p2])
  if method == 'iterative_ls':
    xw, _ = triangulation.triangulate_iterative_ls(kp, proj, where=where)
  elif method == 'polynomial':
    xw = triangulation.triangulate_polynomial(u1, p1, u2, p2, where=where)
  elif method == 'dlt':
    xw = triangulation.triangulate_dlt(kp, proj, where=where)
  elif method == 'linear_ls':
    xw = triangulation.triangulate_linear_ls(kp, proj, where=where)
  else:
    raise ValueError(f'unknown method {method!r}; valid: iterative_ls, polynomial, dlt, linear_ls')
  r1 = np.asarray(r1, np.float64)
  x1 = xw @ r1.T + np.asarray(t1, np.float64)
  r, t = relative_pose_from_extrinsics(r1, t1, r2, t2)
  return PseudoLabel(x1, x1 - x1[root], r, t, None), xw


def pooled_relative_pose(
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  valid: ArrayLike | None = None,
  estimator: str = 'ransac',
  seed: int | np.random.Generator = 0,
  threshold_px: float = RANSAC_THRESHOLD_PX,
  refine: bool = True,
  pair: Sequence[str] | None = None,
) -> RelativePose:
  """One relative pose for a static camera pair from the correspondences of many frames.

  The spec's suggestion (epipolarpose.md §3; the paper does not say whether it was done): a fixed
  pair of cameras (H36M, Pose2Sim) has one E, and pooling T frames x J joints makes its estimation
  well-posed, unlike 17 joints of one frame. Use the result as `relative=` in `pseudo_label_pose`.

  Args:
    u1, u2: (T, J, 2) pixels in views 1 and 2.
    k1, k2: (3, 3) intrinsics (k2 None = k1).
    valid: optional (T, J) bool, correspondences to use (e.g. confident detections in both views).
    estimator: one of ESTIMATORS (default 'ransac': pooled 2D has outliers).
    seed: for the robust estimators.
    threshold_px: RANSAC inlier distance; raise it to the detector's noise (the experiment
      experiments/pose2sim_geometry uses 10 px for MediaPipe keypoints).
    refine: robust Sampson refinement of (R, t) over all pooled correspondences (default on: it
      also makes the result independent of the RANSAC seed in practice).
    pair: optional (name1, name2) for error messages.

  Returns:
    RelativePose over the flattened valid correspondences (inliers/in_front are (T*J,) masks).

  Raises:
    ValueError: frame counts that disagree, or degenerate pooled correspondences, naming the pair.
  """
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  where = f'pair ({pair[0]}, {pair[1]})' if pair else 'camera pair'
  if u1.ndim != 3 or u1.shape[-1] != 2 or u2.ndim != 3:
    raise ValueError(f'{where}: u1, u2 must be (T, J, 2), got {u1.shape} and {u2.shape}')
  if u1.shape != u2.shape:
    raise ValueError(
      f'{where}: views disagree: view 1 has {u1.shape[0]} frames x {u1.shape[1]} joints, '
      f'view 2 has {u2.shape[0]} x {u2.shape[1]}'
    )
  m = np.ones(u1.shape[:2], bool) if valid is None else np.asarray(valid, bool)
  m = m & np.isfinite(u1).all(-1) & np.isfinite(u2).all(-1)
  where = f'{where}, frames 0-{u1.shape[0] - 1} pooled ({int(m.sum())} correspondences)'
  rel = relative_pose(
    u1[m],
    u2[m],
    k1,
    k2,
    estimator=estimator,
    seed=seed,
    threshold_px=threshold_px,
    refine=refine,
    where=where,
  )
  full_in, full_front = np.zeros(m.size, bool), np.zeros(m.size, bool)
  full_in[np.flatnonzero(m.ravel())] = rel.inliers
  full_front[np.flatnonzero(m.ravel())] = rel.in_front
  return dataclasses.replace(rel, inliers=full_in, in_front=full_front)


def all_subsets(indices: ArrayLike, size: int = 7) -> np.ndarray:
  """Every `size`-subset of `indices`: (C(n, size), size) int (for exhaustive LMedS)."""
  idx = np.asarray(indices)
  return np.array(list(itertools.combinations(idx.tolist(), size)), dtype=np.int64)


def pseudo_label_batch(
  u1: ArrayLike,
  u2: ArrayLike,
  k1: ArrayLike,
  k2: ArrayLike | None = None,
  *,
  relative: RelativePose | None = None,
  estimator: str = '8point',
  root: int = 0,
  seed: int = 0,
  names: Sequence[str] | None = None,
  skip_degenerate: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
  """`pseudo_label_pose` over a batch of synchronised two-view samples (offline label generation).

  With `relative` (one pose per static pair, e.g. `pooled_relative_pose`) every sample shares the
  same |t| = 1 scale; without it each sample estimates its own F and gets its own arbitrary scale.

  Args:
    u1, u2: (B, J, 2) pixels in views 1 and 2 (e.g. the 2D teacher's joints).
    k1, k2: (3, 3) intrinsics (k2 None = k1), or (B, 3, 3) per sample.
    relative: shared relative pose of the pair, or None to estimate per sample.
    estimator: F estimator for per-sample estimation (ESTIMATORS).
    root: root joint index.
    seed: base seed; sample i uses seed + i.
    names: optional B sample names (sequence / frame) for error messages.
    skip_degenerate: mark degenerate samples invalid (NaN poses) instead of raising.

  Returns:
    pose3d_rel (B, J, 3) float64 root-relative, camera-1 frame, arbitrary scale; valid (B,) bool.

  Raises:
    ValueError: a degenerate sample (naming it) unless skip_degenerate.
  """
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  if u1.ndim != 3 or u1.shape != u2.shape or u1.shape[-1] != 2:
    raise ValueError(f'u1, u2 must be matching (B, J, 2), got {u1.shape} and {u2.shape}')
  b = u1.shape[0]
  k1 = np.broadcast_to(np.asarray(k1, np.float64), (b, 3, 3))
  k2 = k1 if k2 is None else np.broadcast_to(np.asarray(k2, np.float64), (b, 3, 3))
  out = np.full(u1.shape[:2] + (3,), np.nan)
  valid = np.zeros(b, bool)
  for i in range(b):
    where = f'sample {names[i]}' if names is not None else f'sample {i}'
    try:
      lab = pseudo_label_pose(
        u1[i],
        u2[i],
        k1[i],
        k2[i],
        estimator=estimator,
        root=root,
        seed=seed + i,
        relative=relative,
        where=where,
      )
    except ValueError:
      if not skip_degenerate:
        raise
      continue
    out[i], valid[i] = lab.pose3d_rel, np.isfinite(lab.pose3d_rel).all()
  return out, valid
