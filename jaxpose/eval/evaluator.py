"""Drives an eval step over the evaluation tiling and turns per-frame errors into protocol numbers.

Device side: `eval_step(variables, batch)` (jaxpose/train/steps.py) returns per-frame errors.
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

from jaxpose.data import pipeline
from jaxpose.eval import protocols
from jaxpose.train import sharding

_META_KEYS = ('frame_idx', 'seq_id', 'valid')


def _to_host(tree: dict[str, Any]) -> dict[str, np.ndarray]:
  if jax.process_count() > 1:
    tree = multihost_utils.process_allgather(tree, tiled=True)
  return {k: np.asarray(v) for k, v in tree.items()}


def evaluate(eval_step: Callable, variables: Any, config: mlc.ConfigDict, mesh,
             split: str | None = None, max_batches: int = 0, progress: bool = False) -> dict[str, Any]:
  """Runs the whole evaluation split. Returns protocol numbers (mm) plus one example batch.

  Returns:
    {'mpjpe_mm', 'p_mpjpe_mm' (action-wise means, the H36M protocol), 'mpjpe_mm_frames'
     (frame-weighted), 'per_action': {action: {'mpjpe_mm', 'p_mpjpe_mm'}}, 'num_frames',
     'example': {'kp2d_norm', 'pred', 'gt'} host arrays of the first batch}.
  """
  split = split or config.data.eval_split
  table = pipeline.sequence_table(config.data, split)
  errs = {name: {r['seq_id']: np.full(r['num_frames'], np.nan) for r in table}
          for name in ('mpjpe_mm', 'p_mpjpe_mm')}
  example = None
  batches = pipeline.eval_batches(config.data, split, process_index=jax.process_index(),
                                  process_count=jax.process_count())
  if progress:
    from tqdm.auto import tqdm

    batches = tqdm(batches, desc='eval', unit='batch', leave=False)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    out = eval_step(variables, sharding.shard_batch(batch, mesh))
    host = _to_host({**{k: out[k] for k in errs}, **{k: batch[k] for k in _META_KEYS}})
    if example is None:
      example = {'kp2d_norm': np.asarray(batch['kp2d_norm']), 'pred': np.asarray(out['pred']),
                 'gt': np.asarray(batch['pose3d_cam']), 'valid': np.asarray(batch['valid'])}
    _scatter(errs, host)
  per_seq = _check_coverage(errs, table, complete=not max_batches)
  actions = np.concatenate([np.full(len(per_seq['mpjpe_mm'][r['seq_id']]), r['action'], object)
                            for r in table if r['seq_id'] in per_seq['mpjpe_mm']] or [np.zeros(0)])
  p1 = np.concatenate([per_seq['mpjpe_mm'][s] for s in per_seq['mpjpe_mm']] or [np.zeros(0)])
  p2 = np.concatenate([per_seq['p_mpjpe_mm'][s] for s in per_seq['p_mpjpe_mm']] or [np.zeros(0)])
  res1 = protocols.h36m_protocol(p1, actions)
  res2 = protocols.h36m_protocol(p2, actions)
  return {
    'mpjpe_mm': res1['average'], 'p_mpjpe_mm': res2['average'],
    'mpjpe_mm_frames': float(p1.mean()) if p1.size else float('nan'),
    'per_action': {a: {'mpjpe_mm': res1[a], 'p_mpjpe_mm': res2[a]} for a in res1 if a != 'average'},
    'num_frames': int(p1.size), 'example': example,
  }


def _scatter(errs: dict[str, dict[int, np.ndarray]], host: dict[str, np.ndarray]) -> None:
  """Writes per-frame errors of a batch of windows into their sequences' frame arrays."""
  valid, fidx, sid = host['valid'], host['frame_idx'], host['seq_id']
  for name in errs:
    e = host[name]
    if e.shape[1] == 1 and fidx.shape[1] > 1:  # single-output-frame models: the centre frame
      c = fidx.shape[1] // 2
      v, f = valid[:, c:c + 1], fidx[:, c:c + 1]
    else:
      v, f = valid, fidx
    for b in np.nonzero(v.any(axis=1))[0]:
      errs[name][int(sid[b])][f[b][v[b]]] = e[b][v[b]]


def _check_coverage(errs, table, complete: bool):
  """Every frame of every sequence must have exactly one error when the split was fully run."""
  out: dict[str, dict[int, np.ndarray]] = {k: {} for k in errs}
  for r in table:
    e = errs['mpjpe_mm'][r['seq_id']]
    missing = np.isnan(e)
    if complete and missing.any():
      raise RuntimeError(f'evaluation tiling left {int(missing.sum())} of {e.size} frames of '
                         f'sequence {r["seq_id"]} ({r["subject"]} {r["action"]}) uncovered')
    if not missing.all():
      for k in errs:
        out[k][r['seq_id']] = errs[k][r['seq_id']][~missing]
  return out


def format_table(res: dict[str, Any]) -> str:
  """The per-action table the papers print, plus the averages."""
  rows = [f'{"action":<16}{"MPJPE":>9}{"P-MPJPE":>9}']
  for a, v in sorted(res['per_action'].items()):
    rows.append(f'{a:<16}{v["mpjpe_mm"]:>9.1f}{v["p_mpjpe_mm"]:>9.1f}')
  rows.append(f'{"average":<16}{res["mpjpe_mm"]:>9.1f}{res["p_mpjpe_mm"]:>9.1f}')
  return '\n'.join(rows)
