"""Pose Structure Score (PSS@k) of EpipolarPose, with host-side k-means to fit its cluster centres.

Paper: "Self-Supervised Learning of 3D Human Pose using Multi-view Geometry" (Kocabas, Karagoz,
Akbas, CVPR 2019, arXiv 1903.02330), §4. **Not in the official repo** (github.com/mkocabas/EpipolarPose
at 299ccb0acd4b0c57ef875aeb77b4e4e177c6accf; issue #45 is still open): this is a re-implementation of
the paper's definition, checked against the re-implementation fixture `epipolarpose__pss.npz`.

Definition: fit k-means with k clusters on the normalised ground-truth *training* poses; C(p) is the
index of the nearest centre to the normalised pose p; PSS(pred, gt) = 1[C(pred) == C(gt)], averaged
over the test set. The paper reports PSS@50 and PSS@100.

Normalisation (an assumption of the fixture, the paper only says "scale invariant"): subtract the
root joint, flatten (J, 3) -> (3J,), divide by the L2 norm of the flattened vector. A pose whose
joints all coincide with the root normalises to NaN (and is assigned cluster 0 by argmin of NaN
distances in numpy; garbage in, garbage out; check inputs with `validate_poses`).

k-means (`fit_pss_centers`): host numpy, Lloyd iterations from k-means++ seeding (seeded numpy
Generator), `n_init` restarts keeping the lowest inertia, stop when the centres move less than
`tol` times the mean per-dimension variance of the data (sklearn's criterion), at most `max_iter`
iterations; an empty cluster is re-seeded with the point farthest from its centre. Fit once per
dataset, save the centres (`save_pss_centers`), and evaluate with fixed centres, as the fixture does.

Per-sample functions (`normalize_pose`, `assign_clusters`, `pss`) work on numpy (float64 kept) and
jnp (jit/vmap); `pss` returns (B,) so it masks and aggregates like the other metrics.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace


def normalize_pose(pose: ArrayLike, root: int = 0) -> ArrayLike:
  """Root-centred, flattened, unit-L2-norm pose.

  Args:
    pose: (..., J, 3) poses, any unit.
    root: root joint index.

  Returns:
    (..., 3J) unit vectors.
  """
  xp = namespace(pose)
  p = xp.asarray(pose)
  p = p - p[..., root : root + 1, :]
  flat = p.reshape(p.shape[:-2] + (-1,))
  return flat / xp.linalg.norm(flat, axis=-1, keepdims=True)


def assign_clusters(pose: ArrayLike, centers: ArrayLike, root: int = 0) -> ArrayLike:
  """Index of the nearest centre (squared Euclidean) to each normalised pose.

  Args:
    pose: (..., J, 3) poses.
    centers: (K, 3J) cluster centres in the normalised space.
    root: root joint index.

  Returns:
    (...) int32 cluster indices.
  """
  xp = namespace(pose, centers)
  z = normalize_pose(pose, root)
  c = xp.asarray(centers).astype(z.dtype)
  d = xp.sum(z * z, -1)[..., None] - 2.0 * z @ c.T + xp.sum(c * c, -1)
  return xp.argmin(d, axis=-1).astype(xp.int32)


def pss(pred: ArrayLike, gt: ArrayLike, centers: ArrayLike, root: int = 0) -> ArrayLike:
  """Pose Structure Score per sample: 1.0 where pred and gt fall in the same cluster, else 0.0.

  Args:
    pred: (..., J, 3) predicted poses.
    gt: (..., J, 3) ground-truth poses (same joint order; any common or differing scale).
    centers: (K, 3J) fixed centres (`fit_pss_centers` on the training poses); PSS@K.
    root: root joint index.

  Returns:
    (...) float32 (float64 for numpy float64 inputs) in {0, 1}; its mean over the test set is PSS@K.
  """
  xp = namespace(pred, gt, centers)
  a, b = assign_clusters(pred, centers, root), assign_clusters(gt, centers, root)
  dtype = xp.result_type(xp.asarray(pred).dtype, xp.float32)
  return (a == b).astype(dtype)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  """k-means++ seeding (Arthur & Vassilvitskii 2007) with 2 + log(k) local trials per centre."""
  n = x.shape[0]
  trials = 2 + int(np.log(k))
  centers = np.empty((k, x.shape[1]))
  centers[0] = x[rng.integers(n)]
  d2 = np.sum((x - centers[0]) ** 2, axis=1)
  for i in range(1, k):
    total = d2.sum()
    if total <= 0:
      centers[i] = x[rng.integers(n)]
      continue
    cand = np.searchsorted(np.cumsum(d2), rng.random(trials) * total)
    cand = np.minimum(cand, n - 1)
    cd2 = np.minimum(d2[None], np.sum((x[None] - x[cand][:, None]) ** 2, axis=2))
    best = int(np.argmin(cd2.sum(axis=1)))
    centers[i] = x[cand[best]]
    d2 = cd2[best]
  return centers


def _sq_dist(x, c):
  return np.maximum(np.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + np.sum(c * c, 1)[None], 0.0)


def _lloyd(x, centers, max_iter, tol_abs):
  for _ in range(max_iter):
    d = _sq_dist(x, centers)
    lab = np.argmin(d, axis=1)
    new = np.zeros_like(centers)
    counts = np.bincount(lab, minlength=len(centers))
    np.add.at(new, lab, x)
    empty = counts == 0
    new[~empty] /= counts[~empty, None]
    if empty.any():  # re-seed empty clusters with the worst-fitted points
      far = np.argsort(-d[np.arange(len(x)), lab])[: int(empty.sum())]
      new[empty] = x[far]
    shift = np.sum((new - centers) ** 2)
    centers = new
    if shift <= tol_abs:
      break
  d = _sq_dist(x, centers)
  lab = np.argmin(d, axis=1)
  return centers, lab, float(d[np.arange(len(x)), lab].sum())


def fit_pss_centers(
  train_poses: ArrayLike,
  k: int,
  *,
  root: int = 0,
  seed: int = 0,
  n_init: int = 10,
  max_iter: int = 300,
  tol: float = 1e-4,
) -> tuple[np.ndarray, float]:
  """k-means centres of normalised training poses (host numpy, float64).

  Args:
    train_poses: (N, J, 3) ground-truth training poses, N >= k.
    k: number of clusters (the paper: 50 and 100).
    root: root joint index.
    seed: numpy Generator seed (k-means++ seeding of every restart).
    n_init: restarts; the lowest inertia wins.
    max_iter: Lloyd iterations per restart.
    tol: convergence tolerance relative to the mean per-dimension variance.

  Returns:
    (centres (k, 3J) float64, inertia = sum of squared distances to the nearest centre).

  Raises:
    ValueError: wrong shape, fewer poses than clusters, or non-finite normalised poses.
  """
  p = np.asarray(train_poses, np.float64)
  if p.ndim != 3 or p.shape[-1] != 3:
    raise ValueError(f'train_poses must be (N, J, 3), got shape {p.shape}')
  if not 1 <= k <= p.shape[0]:
    raise ValueError(f'k must be in [1, N={p.shape[0]}], got {k}')
  with np.errstate(invalid='ignore', divide='ignore'):
    x = normalize_pose(p, root)
  bad = ~np.isfinite(x).all(axis=1)
  if bad.any():
    raise ValueError(
      f'train_poses: {int(bad.sum())} poses do not normalise (non-finite or all joints at the root),'
      f' first at index {int(np.argmax(bad))}'
    )
  rng = np.random.default_rng(seed)
  tol_abs = tol * float(np.mean(np.var(x, axis=0)))
  best = None
  for _ in range(n_init):
    c, _, inertia = _lloyd(x, _kmeans_pp(x, k, rng), max_iter, tol_abs)
    if best is None or inertia < best[1]:
      best = (c, inertia)
  return best


def save_pss_centers(
  path: str | os.PathLike, centers: ArrayLike, meta: Mapping[str, Any] | None = None
) -> pathlib.Path:
  """Writes `centers` (K, 3J) and a JSON `meta` (dataset, split, k, root, seed, ...) to an npz."""
  path = pathlib.Path(path)
  c = np.asarray(centers, np.float64)
  if c.ndim != 2 or c.shape[1] % 3:
    raise ValueError(f'{path}: centers must be (K, 3J), got shape {c.shape}')
  info = {'k': int(c.shape[0]), 'num_joints': c.shape[1] // 3, **(meta or {})}
  with open(path, 'wb') as f:
    np.savez(f, centers=c, meta=np.asarray(json.dumps(info)))
  return path


def load_pss_centers(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
  """Reads an npz written by `save_pss_centers`: (centers (K, 3J), meta dict).

  Raises:
    ValueError: the file lacks the `centers` key or has the wrong shape (naming the file).
  """
  path = pathlib.Path(path)
  with np.load(path, allow_pickle=False) as z:
    if 'centers' not in z.files:
      raise ValueError(f'{path}: no key "centers" (keys: {", ".join(z.files)})')
    c = np.asarray(z['centers'], np.float64)
    meta = json.loads(str(z['meta'])) if 'meta' in z.files else {}
  if c.ndim != 2 or c.shape[1] % 3:
    raise ValueError(f'{path}: centers must be (K, 3J), got shape {c.shape}')
  return c, meta


def fit_and_save_pss_centers(
  train_poses: ArrayLike,
  k: int,
  path: str | os.PathLike,
  *,
  root: int = 0,
  seed: int = 0,
  meta: Mapping[str, Any] | None = None,
  **kmeans_kwargs: Any,
) -> np.ndarray:
  """`fit_pss_centers` on a dataset's training poses, then `save_pss_centers`; returns the centres.

  Args:
    train_poses: (N, J, 3) ground-truth training poses (e.g. every frame of the train split).
    k: clusters; path: output npz; root, seed, **kmeans_kwargs: see `fit_pss_centers`.
    meta: extra provenance stored with the centres (dataset name, split, layout).
  """
  centers, inertia = fit_pss_centers(train_poses, k, root=root, seed=seed, **kmeans_kwargs)
  info = {'root': root, 'seed': seed, 'inertia': inertia, 'num_poses': len(train_poses)}
  save_pss_centers(path, centers, {**info, **(meta or {})})
  return centers
