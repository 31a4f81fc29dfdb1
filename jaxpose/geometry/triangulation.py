"""Triangulation of 2D keypoints from N >= 2 calibrated views: DLT, linear-LS, iterative-LS, optimal.

Paper context: EpipolarPose, "Self-Supervised Learning of 3D Human Pose using Multi-view Geometry"
(Kocabas, Karagoz, Akbas, CVPR 2019, arXiv 1903.02330); official repo github.com/mkocabas/EpipolarPose
at commit 299ccb0acd4b0c57ef875aeb77b4e4e177c6accf, `lib/utils/triangulation.py` (itself taken from
Multiple-Quadrotor-SLAM). The algorithms are the textbook ones (Hartley & Zisserman, "Multiple View
Geometry", 2nd ed., ch. 12; Hartley & Sturm, "Triangulation", CVIU 1997), written here from the
maths; parity with the official two-view functions is tested on `epipolarpose__geometry.npz`.

Conventions:
  * Projection matrices `P = K [R | t]`, shape (..., V, 3, 4), world -> pixels, OpenCV convention
    `X_cam = R X_world + t` (H36M's `X_cam = R (X_world - T)` is `t = -R T`). The 3D unit is the unit
    of `t` (mm for the EpipolarPose fixtures, metres for Pose2Sim).
  * 2D keypoints `kp2d_px` have shape (..., V, J, 2) (the view-major layout of the multi-view image
    records), undistorted pixels. Per-view confidences `weights` are (..., V, J); a weight of 0 drops
    that view for that joint. Results are (..., J, 3).
  * Leading axes broadcast between `kp2d_px`, `P` and `weights` (e.g. (T, V, J, 2) keypoints with a
    fixed (V, 3, 4) rig).

Array dispatch: numpy in -> numpy out (float64 kept; use this for parity and for pixel/mm-scale
problems, whose projection matrices have entries up to ~1e7), jax in -> jnp (jit/vmap friendly:
DLT, linear-LS, iterative-LS and `triangulate_best_subset`). The optimal two-view (polynomial)
triangulation is host-side numpy (root finding per point).

Deviations from the official code (all documented at the function):
  * Every method takes N >= 2 views and optional per-view confidence weights (official: 2 views).
  * Iterative-LS: the official loop rescales the rows *cumulatively* (after k iterations a view's
    rows carry 1/(d_1 ... d_k)); that is reproduced (`cumulative=True`, default) with the common
    factor renormalised away (mathematically identical, avoids float32 underflow). `cumulative=False`
    gives textbook Hartley-Sturm weights 1/d_k. The official status code 0 ("not converged") can
    never occur there (`i < 10` is always true after `range(10)`); `flag_nonconverged=True` enables it.
  * Optimal (polynomial) triangulation corrects the matches with Hartley-Sturm's 6th-degree
    polynomial written here in numpy (the official code calls `cv2.correctMatches`), then DLT.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

# Hartley & Sturm suggest at most 10 iterations; the official tolerance is on the projective depth.
ITERATIVE_LS_MAX_ITER = 10
ITERATIVE_LS_TOLERANCE = 3e-5


def _where(where: str) -> str:
  return f'{where}: ' if where else ''


def check_views(kp2d_px, proj, weights=None, *, where: str = '') -> int:
  """Checks the view axes of a triangulation problem; returns V.

  Shapes are static, so this also runs (at trace time) under jit. For numpy inputs it also checks
  that the projection matrices are finite.

  Args:
    kp2d_px: (..., V, J, 2) keypoints.
    proj: (..., V, 3, 4) projection matrices.
    weights: optional (..., V, J) confidences.
    where: context for error messages (sequence, frame, ...).

  Raises:
    ValueError: fewer than two views, or arrays that disagree in their view count (named).
  """
  kp2d_px, proj = namespace(kp2d_px).asarray(kp2d_px), namespace(proj).asarray(proj)
  if kp2d_px.ndim < 3 or kp2d_px.shape[-1] != 2:
    raise ValueError(f'{_where(where)}kp2d_px must be (..., V, J, 2), got shape {kp2d_px.shape}')
  if proj.ndim < 3 or proj.shape[-2:] != (3, 4):
    raise ValueError(f'{_where(where)}P must be (..., V, 3, 4), got shape {proj.shape}')
  v = kp2d_px.shape[-3]
  if v < 2:
    raise ValueError(f'{_where(where)}triangulation needs at least 2 views, got {v}')
  if proj.shape[-3] != v:
    raise ValueError(
      f'{_where(where)}views disagree: kp2d_px has {v} views (axis -3), P has {proj.shape[-3]}'
    )
  if weights is not None:
    w = namespace(weights).asarray(weights)
    if w.ndim < 2 or w.shape[-2:] != kp2d_px.shape[-3:-1]:
      raise ValueError(
        f'{_where(where)}weights must be (..., V, J) = (..., {v}, {kp2d_px.shape[-2]}), '
        f'got shape {w.shape}'
      )
  if isinstance(proj, np.ndarray):
    bad = ~np.isfinite(proj).reshape(-1, v, 12).all(axis=(0, 2))
    if bad.any():
      raise ValueError(f'{_where(where)}P of view {int(np.argmax(bad))} is not finite')
  return v


def check_intrinsics(k: ArrayLike, *, where: str = '', names: Sequence[str] | None = None) -> None:
  """Raises ValueError naming the view when an intrinsics matrix is not finite or not invertible.

  Args:
    k: (3, 3) or (V, 3, 3) intrinsics (numpy; a host-side check).
    where: context for the message.
    names: optional view names for the message (default: the view index).
  """
  k = np.asarray(k, np.float64)
  ks = k.reshape(-1, 3, 3)
  for i, ki in enumerate(ks):
    name = f'view {names[i]!r}' if names is not None else f'view {i}'
    if not np.isfinite(ki).all():
      raise ValueError(f'{_where(where)}K of {name} is not finite: {ki.tolist()}')
    s = np.linalg.svd(ki, compute_uv=False)
    if s[-1] <= 1e-12 * max(s[0], 1e-300):
      raise ValueError(
        f'{_where(where)}K of {name} is not invertible (singular values {s.tolist()})'
      )


def projection_matrix(k: ArrayLike, r: ArrayLike, t: ArrayLike) -> ArrayLike:
  """`P = K [R | t]`.

  Args:
    k: (..., 3, 3) intrinsics, pixels.
    r: (..., 3, 3) world -> camera rotation.
    t: (..., 3) world -> camera translation (`X_cam = R X_world + t`), any length unit.

  Returns:
    (..., 3, 4) projection matrices (numpy in -> numpy; jax in -> jnp).

  Raises:
    ValueError: (numpy inputs) a K that is not invertible, naming the view index.
  """
  xp = namespace(k, r, t)
  k, r, t = xp.asarray(k), xp.asarray(r), xp.asarray(t)
  if xp is np:
    check_intrinsics(k)
  rt = xp.concatenate([r, t[..., :, None]], axis=-1)
  return k @ rt


def project(points: ArrayLike, proj: ArrayLike) -> ArrayLike:
  """Pinhole projection of (..., J, 3) points through (..., V, 3, 4) matrices -> (..., V, J, 2) px."""
  xp = namespace(points, proj)
  x, p = xp.asarray(points), xp.asarray(proj)
  xh = xp.concatenate([x, xp.ones_like(x[..., :1])], axis=-1)  # (..., J, 4)
  uvw = xp.einsum('...vij,...nj->...vni', p, xh)
  return uvw[..., :2] / uvw[..., 2:3]


def reprojection_errors(points: ArrayLike, proj: ArrayLike, kp2d_px: ArrayLike) -> ArrayLike:
  """Pixel distance between the projection of (..., J, 3) points and (..., V, J, 2) keypoints.

  Returns:
    (..., V, J) pixels.
  """
  xp = namespace(points, proj, kp2d_px)
  d = project(points, proj) - xp.asarray(kp2d_px)
  return xp.sqrt(xp.sum(d * d, axis=-1))


def _system(xp, kp2d_px, proj, weights):
  """Rows (u P3 - P1, v P3 - P2) per view and joint: (..., J, 2V, 4)."""
  p = proj[..., :, None, :, :]  # (..., V, 1, 3, 4)
  rows = kp2d_px[..., :, None] * p[..., 2:3, :] - p[..., 0:2, :]  # (..., V, J, 2, 4)
  if weights is not None:
    rows = rows * weights[..., None, None]
  rows = xp.moveaxis(rows, -4, -3)  # (..., J, V, 2, 4)
  return rows.reshape(rows.shape[:-3] + (-1, 4))


def _prepare(kp2d_px, proj, weights, where):
  xp = namespace(kp2d_px, proj, weights)
  check_views(kp2d_px, proj, weights, where=where)
  kp2d_px, proj = xp.asarray(kp2d_px), xp.asarray(proj)
  dtype = xp.result_type(kp2d_px.dtype, proj.dtype, xp.float32)
  kp2d_px, proj = kp2d_px.astype(dtype), proj.astype(dtype)
  if weights is not None:
    weights = xp.asarray(weights).astype(dtype)
  return xp, kp2d_px, proj, weights


def triangulate_dlt(
  kp2d_px: ArrayLike,
  proj: ArrayLike,
  weights: ArrayLike | None = None,
  *,
  where: str = '',
) -> ArrayLike:
  """Direct linear transform (linear-eigen) triangulation from V >= 2 views.

  Solves `A X = 0` for the homogeneous point by SVD (right singular vector of the smallest singular
  value), with two rows `w (u P_3 - P_1)`, `w (v P_3 - P_2)` per view. With two views and unit
  weights this is what `cv2.triangulatePoints` (the official `linear_eigen_triangulation`) computes.
  No data normalisation (as OpenCV); prefer float64 numpy for pixel/mm-scale matrices.

  Args:
    kp2d_px: (..., V, J, 2) undistorted pixels.
    proj: (..., V, 3, 4) projection matrices.
    weights: optional (..., V, J) confidences (0 drops a view for that joint).
    where: context for error messages.

  Returns:
    (..., J, 3) points in the world frame and unit of `proj`. Points at infinity give inf/NaN.

  Raises:
    ValueError: fewer than two views or mismatched view counts (at trace time under jit).
  """
  xp, kp2d_px, proj, weights = _prepare(kp2d_px, proj, weights, where)
  a = _system(xp, kp2d_px, proj, weights)
  _, _, vt = xp.linalg.svd(a, full_matrices=False)
  xh = vt[..., -1, :]
  return xh[..., :3] / xh[..., 3:4]


def _lstsq(xp, a, b):
  """Minimum-norm least squares through the SVD (what `cv2.solve(DECOMP_SVD)` computes)."""
  return (xp.linalg.pinv(a) @ b[..., None])[..., 0]


def triangulate_linear_ls(
  kp2d_px: ArrayLike,
  proj: ArrayLike,
  weights: ArrayLike | None = None,
  *,
  where: str = '',
) -> ArrayLike:
  """Linear least-squares triangulation: the inhomogeneous system with X = (x, y, z, 1).

  The official `linear_LS_triangulation` (two views, `cv2.solve(..., DECOMP_SVD)`), for V >= 2
  views with optional per-view weights.

  Args: as `triangulate_dlt`.

  Returns:
    (..., J, 3) points in the world frame and unit of `proj`.
  """
  xp, kp2d_px, proj, weights = _prepare(kp2d_px, proj, weights, where)
  rows = _system(xp, kp2d_px, proj, weights)
  return _lstsq(xp, rows[..., :3], -rows[..., 3])


def view_depths(points: ArrayLike, proj: ArrayLike) -> ArrayLike:
  """Projective depth `P_3 . (X, 1)` of (..., J, 3) points in each of (..., V, 3, 4) views: (..., V, J).

  Positive in front of the camera when `P = K [R | t]` with K's last row (0, 0, 1).
  """
  xp = namespace(points, proj)
  x, p = xp.asarray(points), xp.asarray(proj)
  return xp.einsum('...vj,...nj->...vn', p[..., 2, :3], x) + p[..., 2, 3:4]


def triangulate_iterative_ls(
  kp2d_px: ArrayLike,
  proj: ArrayLike,
  weights: ArrayLike | None = None,
  *,
  tolerance: float = ITERATIVE_LS_TOLERANCE,
  max_iter: int = ITERATIVE_LS_MAX_ITER,
  cumulative: bool = True,
  flag_nonconverged: bool = False,
  where: str = '',
) -> tuple[ArrayLike, ArrayLike]:
  """Iterative (reweighted) linear-LS triangulation of Hartley & Sturm (1997), official semantics.

  Each iteration solves the weighted linear-LS system, computes every view's projective depth d_v,
  and stops when all |d_v - d_v_prev| <= tolerance (d starts at 1); otherwise it divides the view's
  rows by d_v and repeats, at most `max_iter` solves. The loop is unrolled with per-point freezing,
  so it runs vectorised in numpy and under jit.

  Status codes (official, generalised to V views): 1 = in front of every camera; otherwise
  `int(ok) - sum(2**v for views v with d_v <= 0)`, i.e. for two views -1 = behind the first camera
  only, -2 = behind the second only, -3 = behind both. `ok` is "in front of all" (and "converged"
  when `flag_nonconverged`, which makes 0 = converged-free point in front of every camera; the
  official code can never produce 0, see the module docstring).

  Args:
    kp2d_px: (..., V, J, 2) undistorted pixels.
    proj: (..., V, 3, 4) projection matrices.
    weights: optional (..., V, J) initial confidences.
    tolerance: convergence tolerance on the projective depth (unit of `proj`'s depth; official 3e-5).
    max_iter: maximum number of solves (official 10).
    cumulative: official cumulative reweighting (True) or textbook 1/d weights (False).
    flag_nonconverged: give status 0 to points that did not converge (not official).
    where: context for error messages.

  Returns:
    points: (..., J, 3) in the world frame and unit of `proj`.
    status: (..., J) int32 codes as above.
  """
  xp, kp2d_px, proj, weights = _prepare(kp2d_px, proj, weights, where)
  rows = _system(xp, kp2d_px, proj, None)  # (..., J, 2V, 4)
  v = kp2d_px.shape[-3]
  w0 = xp.ones(kp2d_px.shape[:-1], rows.dtype) if weights is None else weights  # (..., V, J)
  w0 = xp.moveaxis(w0, -2, -1)  # (..., J, V)
  a0, b0 = rows[..., :3], -rows[..., 3]
  batch = rows.shape[:-2]
  scale = xp.ones(batch + (v,), rows.dtype)  # accumulated 1/d factors
  d_prev = xp.ones(batch + (v,), rows.dtype)
  done = xp.zeros(batch, bool)
  x = xp.zeros(batch + (3,), rows.dtype)
  d_last = xp.ones(batch + (v,), rows.dtype)
  p3 = xp.moveaxis(proj[..., 2, :], -2, -1)  # (..., 4, V)
  for _ in range(max_iter):
    wr = xp.repeat(w0 * scale, 2, axis=-1)  # (..., J, 2V)
    xi = _lstsq(xp, a0 * wr[..., None], b0 * wr)
    di = xp.einsum('...nk,...kv->...nv', xp.concatenate([xi, xp.ones_like(xi[..., :1])], -1), p3)
    x = xp.where(done[..., None], x, xi)
    d_last = xp.where(done[..., None], d_last, di)
    conv = xp.all(xp.abs(di - d_prev) <= tolerance, axis=-1)
    update = ~done & ~conv
    new_scale = scale / di if cumulative else 1.0 / di
    # Only the ratio between views matters for the LS solution: renormalise the common factor.
    new_scale = new_scale / xp.max(xp.abs(new_scale), axis=-1, keepdims=True)
    scale = xp.where(update[..., None], new_scale, scale)
    d_prev = xp.where(update[..., None], di, d_prev)
    done = done | conv
  behind = d_last <= 0
  bits = xp.sum(behind.astype(xp.int32) * (2 ** xp.arange(v, dtype=xp.int32)), axis=-1)
  ok = ~xp.any(behind, axis=-1)
  if flag_nonconverged:
    ok = ok & done
  return x, (ok.astype(xp.int32) - bits).astype(xp.int32)


def triangulate_best_subset(
  kp2d_px: ArrayLike,
  proj: ArrayLike,
  weights: ArrayLike | None = None,
  *,
  num_views: int,
  where: str = '',
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
  """DLT from the best `num_views`-subset of the V views, chosen per point.

  Every subset of `num_views` views is triangulated with `triangulate_dlt`; each point keeps the
  subset with the lowest mean reprojection error over its own views (the "best 3 of 4 views" check
  of real_data.md §3). Subsets are static, so this works under jit.

  Args:
    kp2d_px: (..., V, J, 2) undistorted pixels.
    proj: (..., V, 3, 4).
    weights: optional (..., V, J) confidences used inside each DLT.
    num_views: views per subset, 2 <= num_views <= V.
    where: context for error messages.

  Returns:
    points: (..., J, 3).
    used: (..., V, J) bool, the views of the chosen subset.
    error_px: (..., J) mean reprojection error over the chosen views, pixels.
  """
  xp, kp2d_px, proj, weights = _prepare(kp2d_px, proj, weights, where)
  v = kp2d_px.shape[-3]
  if not 2 <= num_views <= v:
    raise ValueError(f'{_where(where)}num_views must be in [2, {v}], got {num_views}')
  subsets = list(itertools.combinations(range(v), num_views))
  pts, errs = [], []
  for s in subsets:
    idx = np.asarray(s)
    sw = None if weights is None else weights[..., idx, :]
    x = triangulate_dlt(kp2d_px[..., idx, :, :], proj[..., idx, :, :], sw, where=where)
    pts.append(x)
    errs.append(reprojection_errors(x, proj[..., idx, :, :], kp2d_px[..., idx, :, :]).mean(-2))
  pts, errs = xp.stack(pts), xp.stack(errs)  # (S, ..., J, 3), (S, ..., J)
  errs = xp.where(xp.isnan(errs), xp.inf, errs)
  best = xp.argmin(errs, axis=0)  # (..., J)
  points = xp.take_along_axis(pts, best[None, ..., None], axis=0)[0]
  error = xp.take_along_axis(errs, best[None], axis=0)[0]
  members = xp.asarray(np.array([[i in s for i in range(v)] for s in subsets]))  # (S, V)
  used = xp.moveaxis(members[best], -1, -2)  # (..., V, J)
  return points, used, error


def fundamental_from_projections(p1: ArrayLike, p2: ArrayLike) -> np.ndarray:
  """Fundamental matrix of a camera pair, `x2^T F x1 = 0` (HZ eq. 9.1: F = [e2]_x P2 P1^+).

  Args:
    p1, p2: (3, 4) projection matrices (pixels).

  Returns:
    (3, 3) float64 F with unit Frobenius norm.
  """
  p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
  centre = np.linalg.svd(p1)[2][-1]  # camera-1 centre, homogeneous
  e2 = p2 @ centre
  ex = np.array([[0.0, -e2[2], e2[1]], [e2[2], 0.0, -e2[0]], [-e2[1], e2[0], 0.0]])
  f = ex @ p2 @ np.linalg.pinv(p1)
  return f / np.linalg.norm(f)


def _to_origin_rotation(e):
  """Rotation taking the epipole e (3,) to (1, 0, e3) after normalising e1^2 + e2^2 = 1."""
  e = e / np.hypot(e[0], e[1])
  return np.array([[e[0], e[1], 0.0], [-e[1], e[0], 0.0], [0.0, 0.0, 1.0]]), e


def _correct_one(f, x1, x2):
  """Hartley-Sturm optimal correction (HZ Algorithm 12.1) of one correspondence; NaN if degenerate."""
  t1 = np.array([[1.0, 0.0, -x1[0]], [0.0, 1.0, -x1[1]], [0.0, 0.0, 1.0]])
  t2 = np.array([[1.0, 0.0, -x2[0]], [0.0, 1.0, -x2[1]], [0.0, 0.0, 1.0]])
  ft = np.linalg.inv(t2).T @ f @ np.linalg.inv(t1)
  _, _, vt = np.linalg.svd(ft)
  e1 = vt[-1]
  e2 = np.linalg.svd(ft.T)[2][-1]
  if np.hypot(e1[0], e1[1]) == 0 or np.hypot(e2[0], e2[1]) == 0:
    return np.full(2, np.nan), np.full(2, np.nan)
  r1, e1 = _to_origin_rotation(e1)
  r2, e2 = _to_origin_rotation(e2)
  fr = r2 @ ft @ r1.T
  f1, f2 = e1[2], e2[2]
  a, b, c, d = fr[1, 1], fr[1, 2], fr[2, 1], fr[2, 2]
  # g(t) = t((at+b)^2 + f2^2(ct+d)^2)^2 - (ad-bc)(1+f1^2 t^2)^2 (at+b)(ct+d), degree 6.
  p_ab, p_cd = np.array([a, b]), np.array([c, d])
  q = np.polyadd(np.polymul(p_ab, p_ab), f2 * f2 * np.polymul(p_cd, p_cd))
  lhs = np.polymul([1.0, 0.0], np.polymul(q, q))
  rhs = (a * d - b * c) * np.polymul(
    np.polymul([f1 * f1, 0.0, 1.0], [f1 * f1, 0.0, 1.0]), np.polymul(p_ab, p_cd)
  )
  g = np.polysub(lhs, rhs)
  coeffs = np.trim_zeros(np.atleast_1d(g), 'f')
  roots = np.roots(coeffs).real if coeffs.size > 1 else np.zeros(0)

  def cost(t):
    return t * t / (1 + f1 * f1 * t * t) + (c * t + d) ** 2 / (
      (a * t + b) ** 2 + f2**2 * (c * t + d) ** 2
    )

  # The minimum over the reals is at a real root of g or at infinity; the real parts of complex
  # roots are extra candidates that can only tie it.
  best_t = np.inf  # the cost at t -> infinity (infinite when f1 = 0)
  best_cost = 1.0 / (f1 * f1) + c * c / (a * a + f2 * f2 * c * c) if f1 else np.inf
  for t in roots:
    ct = cost(t)
    if ct < best_cost:
      best_t, best_cost = t, ct
  if np.isinf(best_t):
    l1 = np.array([f1, 0.0, -1.0])
    l2 = np.array([-f2 * c, a, c])
  else:
    l1 = np.array([best_t * f1, 1.0, -best_t])
    l2 = np.array([-f2 * (c * best_t + d), a * best_t + b, c * best_t + d])

  def closest(line):  # point on the line closest to the origin
    return np.array([-line[0] * line[2], -line[1] * line[2], line[0] ** 2 + line[1] ** 2])

  y1 = np.linalg.inv(t1) @ r1.T @ closest(l1)
  y2 = np.linalg.inv(t2) @ r2.T @ closest(l2)
  return y1[:2] / y1[2], y2[:2] / y2[2]


def correct_matches(f: ArrayLike, u1: ArrayLike, u2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Optimal correction of correspondences onto a pair of epipolar lines (Hartley & Sturm 1997).

  Moves (u1, u2) the least (in summed squared image distance) so that `x2^T F x1 = 0` holds exactly;
  what `cv2.correctMatches` computes. Host-side numpy (polynomial roots per point).

  Args:
    f: (3, 3) fundamental matrix, `x2^T F x1 = 0`.
    u1, u2: (..., N, 2) pixels in views 1 and 2.

  Returns:
    (..., N, 2) corrected u1 and u2, float64. NaN where the geometry is degenerate (an epipole at
    the origin of the point-centred frame).
  """
  f = np.asarray(f, np.float64)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  if u1.shape != u2.shape or u1.shape[-1:] != (2,):
    raise ValueError(f'u1 and u2 must be matching (..., N, 2), got {u1.shape} and {u2.shape}')
  out1, out2 = np.empty_like(u1), np.empty_like(u2)
  flat1, flat2 = u1.reshape(-1, 2), u2.reshape(-1, 2)
  o1, o2 = out1.reshape(-1, 2), out2.reshape(-1, 2)
  for i in range(flat1.shape[0]):
    o1[i], o2[i] = _correct_one(f, flat1[i], flat2[i])
  return out1, out2


def triangulate_polynomial(
  u1: ArrayLike,
  p1: ArrayLike,
  u2: ArrayLike,
  p2: ArrayLike,
  *,
  where: str = '',
) -> np.ndarray:
  """Optimal two-view ("polynomial") triangulation: correct the matches, then DLT.

  As the official `polynomial_triangulation`: F from the two projection matrices, Hartley-Sturm
  correction of each correspondence, then linear-eigen (DLT) triangulation of the corrected points.
  If every corrected point is NaN (the official comment: a purely sideways second camera), F is
  re-estimated from the points with the normalised 8-point algorithm and the correction repeated.

  Args:
    u1, u2: (..., J, 2) pixels in views 1 and 2.
    p1, p2: (3, 4) projection matrices.
    where: context for error messages.

  Returns:
    (..., J, 3) float64 points in the world frame and unit of the projection matrices.
  """
  p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
  u1, u2 = np.asarray(u1, np.float64), np.asarray(u2, np.float64)
  proj = np.stack([p1, p2])
  check_views(np.stack([u1, u2], axis=-3), proj, where=where)
  f = fundamental_from_projections(p1, p2)
  c1, c2 = correct_matches(f, u1, u2)
  if np.isnan(c1).all() or np.isnan(c2).all():
    from jaxpose.geometry import epipolar

    f = epipolar.fundamental_8point(u1.reshape(-1, 2), u2.reshape(-1, 2), where=where)
    c1, c2 = correct_matches(f, u1, u2)
  return triangulate_dlt(np.stack([c1, c2], axis=-3), proj, where=where)


def stack_views(
  per_view: Sequence[ArrayLike], *, names: Sequence[str] | None = None, what: str = 'kp2d'
) -> np.ndarray:
  """Stacks per-view host arrays (T, ...) into (T, V, ...) after checking that they agree.

  Args:
    per_view: V arrays of shape (T, ...) (frames first).
    names: optional view names for messages.
    what: what the arrays are, for messages.

  Returns:
    (T, V, ...) numpy array.

  Raises:
    ValueError: fewer than two views, or views whose frame counts / trailing shapes disagree (the
      message names the view and both shapes).
  """
  arrays = [np.asarray(a) for a in per_view]
  label = (
    [f'view {n!r}' for n in names]
    if names is not None
    else [f'view {i}' for i in range(len(arrays))]
  )
  if len(arrays) < 2:
    raise ValueError(f'{what}: need at least 2 views, got {len(arrays)}')
  ref = arrays[0]
  for lab, a in zip(label[1:], arrays[1:], strict=False):
    if a.shape[:1] != ref.shape[:1]:
      raise ValueError(
        f'{what}: {lab} has {a.shape[0] if a.ndim else 0} frames, {label[0]} has {ref.shape[0]}'
      )
    if a.shape != ref.shape:
      raise ValueError(f'{what}: {lab} has shape {a.shape}, {label[0]} has {ref.shape}')
  return np.stack(arrays, axis=1)
