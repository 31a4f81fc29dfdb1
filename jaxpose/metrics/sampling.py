"""Sample-set metrics for generative lifters (Platypose, DiffPose): best-of-N and calibration.

Samples sit on axis -4: samples (..., N, T, J, C) against gt (..., T, J, C). The oracle picks one
*sequence*: each sample's error is averaged over its frames and joints first, then the minimum
over samples is taken (Platypose's evaluate.py, "Seq = True"), unlike the per-pose
`multihyp.mpjpe_best_of`.

Calibration (propose `evaluation/calibration.py`, research/platypose.md §3.4): the centre is the
per-coordinate median over samples (the *lower* median for even N, as torch.median); for each of
the 21 levels q = 0, 0.05, ..., 1 and each joint, the q-quantile (numpy's linear interpolation)
of the sample errors |s - centre| is compared with the true error |centre - gt|; the indicator
"quantile > true error" averaged over frames is the coverage (Q, J). Coverages are summed over
sequences (`calibration_coverage`, skipping sequences with NaN) and the score is the ECE over
levels, mean_q |median_j(coverage_q) - q| (`calibration_score`). The official multiplies every
coordinate by 1/0.0036 first; that cancels and is not done here.

Official quirk (kept behind a flag): with T = 1 the official `true_error.squeeze()` drops the
frame axis and numpy broadcasting compares every joint's quantile with every joint's true error
(averaging over the second joint axis). `official_singleton_broadcast=True` reproduces that; the
default compares joint with joint. All three Platypose evaluation configs use T = 1.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.metrics.pose import joint_errors, mpjpe, mpjve, p_mpjpe

QUANTILES = tuple(round(0.05 * i, 2) for i in range(21))


def per_sample_mpjpe(samples: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """MPJPE of each sample sequence: (..., N, T, J, C), (..., T, J, C) -> (..., N)."""
  return mpjpe(samples, jnp.asarray(gt)[..., None, :, :, :]).mean(axis=-1)


def best_sample_index(samples: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """Index of the sample with the lowest sequence MPJPE (first on ties): (...) int."""
  return jnp.argmin(per_sample_mpjpe(samples, gt), axis=-1)


def min_mpjpe(samples: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """minMPJPE: min over N of the mean over frames and joints. -> (...), input unit."""
  return per_sample_mpjpe(samples, gt).min(axis=-1)


def min_p_mpjpe(samples: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """min-P-MPJPE: Procrustes per frame and sample, mean over frames, min over N. -> (...)."""
  samples = jnp.asarray(samples)
  gt = jnp.broadcast_to(jnp.asarray(gt)[..., None, :, :, :], samples.shape)
  return p_mpjpe(samples, gt).mean(axis=-1).min(axis=-1)


def best_sample_mpjve(samples: ArrayLike, gt: ArrayLike) -> jnp.ndarray:
  """MPJVE (mean over frame pairs) of the minMPJPE sample; needs T >= 2. -> (...)."""
  samples = jnp.asarray(samples)
  idx = best_sample_index(samples, gt)
  best = jnp.take_along_axis(samples, idx[..., None, None, None, None], axis=-4)[..., 0, :, :, :]
  return mpjve(best, gt).mean(axis=-1)


def lower_median(x: ArrayLike, axis: int) -> jnp.ndarray:
  """torch.median semantics: the lower of the two middle values for an even count."""
  x = jnp.sort(jnp.asarray(x), axis=axis)
  return jnp.take(x, (x.shape[axis] - 1) // 2, axis=axis)


def calibration_coverage(
  samples: ArrayLike,
  gt: ArrayLike,
  quantiles: ArrayLike = QUANTILES,
  *,
  official_singleton_broadcast: bool = False,
) -> jnp.ndarray:
  """Per-joint quantile coverage of one sample set.

  Args:
    samples: (..., N, T, J, 3) root-relative samples.
    gt: (..., T, J, 3) root-relative ground truth.
    quantiles: (Q,) levels, default the 21 levels 0, 0.05, ..., 1.
    official_singleton_broadcast: reproduce the official T = 1 broadcasting quirk (see module
      docstring); ignored for T > 1.

  Returns:
    (..., Q, J) fraction of frames whose true error is below the q-quantile of the sample errors.
  """
  samples, gt = jnp.asarray(samples), jnp.asarray(gt)
  centre = lower_median(samples, axis=-4)  # (..., T, J, 3)
  errors = joint_errors(samples, centre[..., None, :, :, :])  # (..., N, T, J)
  true = joint_errors(centre, gt)  # (..., T, J)
  q = jnp.quantile(errors, jnp.asarray(quantiles, errors.dtype), axis=-3)  # (Q, ..., T, J)
  q = jnp.moveaxis(q, 0, -3)  # (..., Q, T, J)
  if official_singleton_broadcast and samples.shape[-3] == 1:
    hit = q[..., 0, :, None] > true[..., None, :, :]  # (..., Q, J, J): every pair of joints
    return hit.astype(jnp.float32).mean(axis=-1)
  return (q > true[..., None, :, :]).astype(jnp.float32).mean(axis=-2)


def calibration_score(coverage_sum: ArrayLike, count: ArrayLike, quantiles: ArrayLike = QUANTILES):
  """ECE over quantile levels: mean_q |median_j(coverage_sum / count) - q|.

  Args:
    coverage_sum: (Q, J) summed `calibration_coverage` over the evaluated sequences.
    count: number of sequences summed.
    quantiles: (Q,) levels.

  Returns:
    () calibration error (0 = perfectly calibrated).
  """
  freq = jnp.asarray(coverage_sum) / count
  return jnp.abs(jnp.median(freq, axis=-1) - jnp.asarray(quantiles, freq.dtype)).mean()
