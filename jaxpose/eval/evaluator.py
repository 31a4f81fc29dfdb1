"""Drives an eval step over the evaluation tiling and turns per-frame errors into protocol numbers.

Device side: `eval_step(variables, batch)` (jaxpose/eval/steps.py) returns per-frame errors.
Host side (numpy): windows are put back into whole sequences by `frame_idx`, padded rows and
frames are dropped by `valid`, every frame must be covered exactly once, and the frames are
grouped by action for the H36M protocol (mean over frames within each action, then over actions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_collections as mlc
import numpy as np
from jax.experimental import multihost_utils

from jaxpose import sharding
from jaxpose.data import pipeline
from jaxpose.eval import protocols

_META_KEYS = ('frame_idx', 'seq_id', 'valid', 'owned')
# Host-side batch entries of the returned example (lifters: kp2d_norm; image models: kp2d_px).
_EXAMPLE_KEYS = ('kp2d_norm', 'kp2d_px', 'pose3d_cam')


def _to_host(tree: dict[str, Any]) -> dict[str, np.ndarray]:
  """Global device arrays and this host's batch rows -> numpy arrays of every host's rows.

  With one process this is np.asarray. With several, device outputs span hosts (np.asarray on them
  raises) and host batches hold only this process's rows: `process_allgather(tiled=True)` gives
  each the global batch axis, in process order, on every host.
  """
  if jax.process_count() > 1:
    tree = multihost_utils.process_allgather(tree, tiled=True)
  return {k: np.asarray(v) for k, v in tree.items()}


def evaluate(
  eval_step: Callable,
  variables: Any,
  config: mlc.ConfigDict,
  mesh,
  split: str | None = None,
  max_batches: int = 0,
  progress: bool = False,
) -> dict[str, Any]:
  """Runs the whole evaluation split. Returns protocol numbers plus one example batch.

  Every per-frame output of `eval_step` ((B, T_out) arrays: the engine's errors plus whatever a
  method's `eval_metrics` adds, e.g. D3DP's J-Agg) is reassembled and aggregated by the protocol.

  Args:
    eval_step: `eval_step(variables, batch) -> {'pred': (B, T_out, J, 3) metres, name: (B, T_out)}`
      (`jaxpose.eval.steps.make_eval_step`), B = data.eval_batch_size.
    variables: the model's variables (replicated on `mesh`).
    config: the run config (data block, eval.protocol 'h36m' or 'mpi_inf_3dhp').
    mesh: the device mesh the batches are sharded on (axis 'data').
    split: the split to evaluate (default data.eval_split).
    max_batches: stop after this many batches (0 = all; then coverage is not checked).
    progress: show a tqdm bar.

  Returns:
    {'mpjpe_mm', 'p_mpjpe_mm': the headline numbers (H36M: action-wise means, the paper protocol;
     3DHP: pooled over valid frames, with 'pck150' and 'auc' in percent), 'mpjpe_mm_frames'
     (frame-weighted), 'per_group': {action or sequence: {metric: value}}, 'num_frames',
     'example': {'kp2d_norm' (lifters) or 'kp2d_px' (image models), 'pred', 'gt', 'valid'} host
     arrays of the first batch}.
  """
  split = split or config.data.eval_split
  table = pipeline.sequence_table(config.data, split)
  errs: dict[str, dict[int, np.ndarray]] = {}  # every per-frame (B, T_out) output of eval_step
  covered = {r['seq_id']: np.zeros(r['num_frames'], np.int32) for r in table}
  example = None
  batches = pipeline.eval_batches(
    config.data, split, process_index=jax.process_index(), process_count=jax.process_count()
  )
  if progress:
    from tqdm.auto import tqdm

    batches = tqdm(batches, desc='eval', unit='batch', leave=False)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    out = eval_step(variables, sharding.shard_batch(batch, mesh))
    if not errs:
      # (B, T_out) outputs; B is the global batch, `batch` holds this process's rows only.
      t_out = batch['valid'].shape[1:]
      names = [
        k for k, v in out.items() if k != 'pred' and len(v.shape) == 2 and v.shape[1:] == t_out
      ]
      errs = {n: {r['seq_id']: np.full(r['num_frames'], np.nan) for r in table} for n in names}
    # Everything goes through _to_host: with several processes `out` spans hosts and np.asarray
    # on it raises; the example batch is gathered with the rest.
    extra = {} if example is not None else {'pred': out['pred']}
    shown = tuple(k for k in _EXAMPLE_KEYS if k in batch)
    meta = _META_KEYS if example is not None else (*_META_KEYS, *shown)
    host = _to_host({**{k: out[k] for k in errs}, **extra, **{k: batch[k] for k in meta}})
    if example is None:
      example = {k: host[k] for k in shown if k != 'pose3d_cam'}
      example.update(pred=host['pred'], gt=host['pose3d_cam'], valid=host['valid'])
    _scatter(errs, covered, host)
  per_seq = _check_coverage(errs, covered, table, complete=not max_batches)
  rows = [r for r in table if r['seq_id'] in per_seq['mpjpe_mm']]
  frames = {
    n: np.concatenate([per_seq[n][r['seq_id']] for r in rows] or [np.zeros(0)]) for n in errs
  }
  n = frames['mpjpe_mm'].size
  res: dict[str, Any] = {
    'num_frames': int(n),
    'example': example,
    'mpjpe_mm_frames': float(frames['mpjpe_mm'].mean()) if n else np.nan,
  }
  if not n:
    return {**res, 'mpjpe_mm': np.nan, 'p_mpjpe_mm': np.nan, 'per_group': {}}
  if config.eval.protocol == 'mpi_inf_3dhp':
    groups = np.concatenate(
      [np.full(len(per_seq['mpjpe_mm'][r['seq_id']]), r['subject'], object) for r in rows]
    )
    per_group = {
      g: {k: float(v[groups == g].mean()) for k, v in frames.items()}
      for g in sorted(set(groups.tolist()))
    }
    return {**res, **{k: float(v.mean()) for k, v in frames.items()}, 'per_group': per_group}
  actions = np.concatenate(
    [np.full(len(per_seq['mpjpe_mm'][r['seq_id']]), r['action'], object) for r in rows]
  )
  by = {k: protocols.h36m_protocol(frames[k], actions) for k in errs}
  per_group = {a: {k: by[k][a] for k in errs} for a in by['mpjpe_mm'] if a != 'average'}
  return {**res, **{k: by[k]['average'] for k in errs}, 'per_group': per_group}


def _scatter(
  errs: dict[str, dict[int, np.ndarray]],
  covered: dict[int, np.ndarray],
  host: dict[str, np.ndarray],
) -> None:
  """Writes a batch's per-frame errors into their sequences' frame arrays.

  `owned` (B, T_out) marks the frames a window is responsible for (each frame of the split is owned
  by exactly one window); `valid` marks the owned frames that are scored (3DHP's invalid frames and
  MotionBERT's excluded videos are owned but not valid). All are (B, T_out) like the errors.
  """
  valid, owned, fidx, sid = host['valid'], host['owned'], host['frame_idx'], host['seq_id']
  for b in np.nonzero(owned.any(axis=1))[0]:
    seq = int(sid[b])
    np.add.at(covered[seq], fidx[b][owned[b]], 1)
    for name in errs:
      errs[name][seq][fidx[b][valid[b]]] = host[name][b][valid[b]]


def _check_coverage(errs, covered, table, complete: bool):
  """Every frame of every sequence is owned exactly once when the split was fully run; returns
  the scored (valid) frames' errors per sequence."""
  out: dict[str, dict[int, np.ndarray]] = {k: {} for k in errs}
  for r in table:
    c = covered[r['seq_id']]
    if complete and not (c == 1).all():
      raise RuntimeError(
        f'evaluation tiling covered {int((c == 0).sum())} frames of sequence '
        f'{r["seq_id"]} ({r["subject"]} {r["action"]}) zero times and '
        f'{int((c > 1).sum())} more than once; each frame must be owned once'
      )
    keep = ~np.isnan(errs['mpjpe_mm'][r['seq_id']])
    if keep.any():
      for k in errs:
        out[k][r['seq_id']] = errs[k][r['seq_id']][keep]
  return out


_HEADERS = {'mpjpe_mm': 'MPJPE', 'p_mpjpe_mm': 'P-MPJPE', 'pck150': 'PCK150', 'auc': 'AUC'}


def format_table(res: dict[str, Any]) -> str:
  """The per-action (H36M) or per-subject (3DHP) table the papers print, plus the averages: one
  column per metric of `res` (MPJPE, P-MPJPE in mm; PCK150, AUC in %; a method's extra ones)."""
  extra = [k for k in (next(iter(res['per_group'].values()), {}) or {}) if k not in _HEADERS]
  heads = {**_HEADERS, **{k: k.removesuffix('_mm').replace('_p2', '/P2')[:9] for k in extra}}
  cols = [k for k in heads if k in res]
  rows = ['group'.ljust(16) + ''.join(f'{heads[k]:>9}' for k in cols)]
  for g, v in res['per_group'].items():
    rows.append(f'{g:<16}' + ''.join(f'{v[k]:>9.1f}' for k in cols))
  rows.append('average'.ljust(16) + ''.join(f'{res[k]:>9.1f}' for k in cols))
  return '\n'.join(rows)
