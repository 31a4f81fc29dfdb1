"""Host-side aggregation of per-frame errors into the published protocols (numpy only).

Human3.6M (research/videopose3d.md §5, data.md §1.1): actions are collapsed to their category with
`action.split(' ')[0]` ('Walking 1' -> 'Walking'), the error is averaged over all frames of a category
(frame-weighted, pooled over subjects and cameras), and the reported number is the unweighted mean of
the category means. Protocol 1 feeds per-frame MPJPE, Protocol 2 per-frame P-MPJPE.

MPI-INF-3DHP (data.md §3.4): valid frames only, root-relative errors in mm, PCK@150 and AUC over the
14 official joints, MPJPE over all joints; reported per sequence and pooled over all valid frames
('all'; for PCK and AUC the pooled value equals the frame-weighted sequence average).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from jax.typing import ArrayLike

from jaxpose import metrics
from jaxpose.geometry import skeleton
from jaxpose.geometry.validation import validate_poses

# VideoPose3D's category names, in the column order of the papers' tables.
H36M_ACTIONS: tuple[str, ...] = (
  'Directions',
  'Discussion',
  'Eating',
  'Greeting',
  'Phoning',
  'Photo',
  'Posing',
  'Purchases',
  'Sitting',
  'SittingDown',
  'Smoking',
  'Waiting',
  'WalkDog',
  'Walking',
  'WalkTogether',
)

# Spellings of the original H36M file names that VideoPose3D renames (data.md §1.1).
_ACTION_ALIASES = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}

AVERAGE = 'average'
ALL = 'all'


def h36m_action_names() -> tuple[str, ...]:
  """The 15 H36M action categories in table order (VideoPose3D spelling): a tuple of names."""
  return H36M_ACTIONS


def collapse_action(action: str) -> str:
  """'Walking 1' -> 'Walking'; also maps 'TakingPhoto' -> 'Photo' and 'WalkingDog' -> 'WalkDog'."""
  head = str(action).split(' ')[0]
  return _ACTION_ALIASES.get(head, head)


def _per_frame(name: str, values: ArrayLike) -> np.ndarray:
  v = np.asarray(values, np.float64)
  if v.ndim != 1:
    raise ValueError(f'{name}: expected shape (N,), got {v.shape}')
  if not np.all(np.isfinite(v)):
    raise ValueError(f'{name}: {int(np.sum(~np.isfinite(v)))} non-finite values in shape {v.shape}')
  return v


def _labels(name: str, labels: Sequence[str] | ArrayLike, n: int) -> np.ndarray:
  lab = np.asarray(labels)
  if lab.shape != (n,):
    raise ValueError(f'{name}: expected shape ({n},) to match the errors, got {lab.shape}')
  return lab


def _ordered(keys, canonical: Sequence[str]) -> list[str]:
  known = [k for k in canonical if k in keys]
  return known + sorted(k for k in keys if k not in canonical)


def h36m_protocol(
  errors: ArrayLike, actions: Sequence[str] | ArrayLike, *, valid: ArrayLike | None = None
) -> dict[str, float]:
  """Per-action means of per-frame errors and their unweighted mean.

  Args:
    errors: (N,) per-frame error (e.g. MPJPE for Protocol 1, P-MPJPE for Protocol 2), any unit.
    actions: (N,) action name per frame, raw ('Walking 1') or collapsed ('Walking').
    valid: optional (N,) bool; False frames (padding) are dropped.

  Returns:
    {category: mean error, ..., 'average': mean over categories}; categories in H36M table order,
    unknown ones after them, sorted.

  Raises:
    ValueError: errors not 1-D or non-finite on kept frames, label/mask length mismatch, no frames.
  """
  err = np.asarray(errors, np.float64)
  if err.ndim != 1:
    raise ValueError(f'errors: expected shape (N,), got {err.shape}')
  lab = _labels('actions', actions, err.shape[0])
  if valid is not None:
    keep = _labels('valid', valid, err.shape[0]).astype(bool)
    err, lab = err[keep], lab[keep]
  err = _per_frame('errors', err)
  if err.size == 0:
    raise ValueError('errors: no frames to evaluate (shape (0,))')
  cats = np.asarray([collapse_action(a) for a in lab])
  out = {c: float(err[cats == c].mean()) for c in _ordered(set(cats.tolist()), H36M_ACTIONS)}
  out[AVERAGE] = float(np.mean(list(out.values())))
  return out


def h36m_evaluate(
  pred: ArrayLike,
  gt: ArrayLike,
  actions: Sequence[str] | ArrayLike,
  *,
  valid: ArrayLike | None = None,
  scale: float = 1000.0,
) -> dict[str, dict[str, float]]:
  """Protocols 1 and 2 from poses.

  Args:
    pred: (N, 17, 3) root-relative predictions (metres by default).
    gt: (N, 17, 3) root-relative ground truth, same unit.
    actions: (N,) action labels.
    valid: optional (N,) frame mask.
    scale: multiplies the errors (1000: metres -> mm).

  Returns:
    {'P1': h36m_protocol(MPJPE), 'P2': h36m_protocol(P-MPJPE)}, in the poses' unit x `scale`
    (millimetres by default).
  """
  p = validate_poses('pred', pred, 'h36m17', channels=3, finite=valid is None)
  g = validate_poses('gt', gt, 17, channels=3, shape=p.shape, finite=valid is None)
  if p.ndim != 3:
    raise ValueError(f'pred: expected shape (N, 17, 3), got {p.shape}')
  p1 = np.asarray(metrics.mpjpe(p, g), np.float64) * scale
  p2 = np.asarray(metrics.p_mpjpe(p, g), np.float64) * scale
  return {
    'P1': h36m_protocol(p1, actions, valid=valid),
    'P2': h36m_protocol(p2, actions, valid=valid),
  }


def format_h36m_table(results: Mapping[str, Mapping[str, float]], digits: int = 1) -> str:
  """Renders {'P1': {action: value, ..., 'average': value}, ...} as a text table.

  Columns are the actions (first 5 letters, as in the papers) plus 'Avg'; one row per metric.
  """
  actions = _ordered(
    {a for r in results.values() for a in r if a != AVERAGE},
    H36M_ACTIONS,
  )
  cols = [a[:5] for a in actions] + ['Avg']
  width = max(6, digits + 5)
  head = 'metric'.ljust(8) + ''.join(c.rjust(width) for c in cols)
  lines = [head, '-' * len(head)]
  for name, r in results.items():
    vals = [r.get(a, float('nan')) for a in actions] + [r.get(AVERAGE, float('nan'))]
    lines.append(name.ljust(8) + ''.join(f'{v:{width}.{digits}f}' for v in vals))
  return '\n'.join(lines)


def mpi3dhp_protocol(
  pred: ArrayLike,
  gt: ArrayLike,
  sequences: Sequence[str] | ArrayLike,
  *,
  valid: ArrayLike | None = None,
  root: int = 14,
  pck_joints: Sequence[int] = metrics.PCK_JOINTS_3DHP,
  threshold: float = 150.0,
) -> dict[str, dict[str, float]]:
  """MPI-INF-3DHP PCK, AUC and MPJPE per sequence and pooled.

  Both poses are made relative to `root` (the official script compares root-relative poses), so pred
  may carry any root offset.

  Args:
    pred: (N, 17, 3) predictions in mm, mpi3dhp17 order (or set `root`/`pck_joints` for another).
    gt: (N, 17, 3) ground truth (univ_annot3), mm.
    sequences: (N,) sequence name per frame, e.g. 'TS1'.
    valid: optional (N,) valid_frame flags; only valid frames are scored (invalid frames may hold
      NaN).
    root: root joint index (14 = pelvis in mpi3dhp17).
    pck_joints: joints counted by PCK/AUC (the 14 official ones by default).
    threshold: PCK threshold in mm.

  Returns:
    {sequence: {'pck' (%), 'auc' (%), 'mpjpe' (mm), 'frames' (count)}, ..., 'all': pooled over
    all valid frames}.
  """
  p = validate_poses('pred', pred, None, channels=3, finite=False)
  if p.ndim != 3:
    raise ValueError(f'pred: expected shape (N, J, 3), got {p.shape}')
  g = validate_poses('gt', gt, None, channels=3, shape=p.shape, finite=False)
  seq = _labels('sequences', sequences, p.shape[0])
  if valid is not None:
    keep = _labels('valid', valid, p.shape[0]).astype(bool)
    p, g, seq = p[keep], g[keep], seq[keep]
  p = validate_poses('pred', p)
  g = validate_poses('gt', g)
  if p.shape[0] == 0:
    raise ValueError(f'pred: no valid frames to evaluate, got shape {p.shape}')
  p = skeleton.root_relative(p, root)
  g = skeleton.root_relative(g, root)
  per = {
    'pck': np.asarray(metrics.pck(p, g, threshold, joints=pck_joints), np.float64),
    'auc': np.asarray(metrics.auc(p, g, joints=pck_joints), np.float64),
    'mpjpe': np.asarray(metrics.mpjpe(p, g), np.float64),
  }

  def summary(sel: np.ndarray) -> dict[str, float]:
    out = {k: float(v[sel].mean()) for k, v in per.items()}
    out['frames'] = int(np.sum(sel))
    return out

  names = sorted(set(seq.tolist()))
  results = {s: summary(seq == s) for s in names}
  results[ALL] = summary(np.ones(seq.shape, bool))
  return results


def format_mpi3dhp_table(results: Mapping[str, Mapping[str, float]], digits: int = 2) -> str:
  """Renders `mpi3dhp_protocol` output: one row per sequence and 'all' (frames, PCK %, AUC %,
  MPJPE mm)."""
  head = f'{"seq":<8}{"frames":>8}{"PCK":>9}{"AUC":>9}{"MPJPE":>9}'
  lines = [head, '-' * len(head)]
  for name, r in results.items():
    lines.append(
      f'{name:<8}{r["frames"]:>8d}{r["pck"]:>9.{digits}f}{r["auc"]:>9.{digits}f}'
      f'{r["mpjpe"]:>9.{digits}f}'
    )
  return '\n'.join(lines)
