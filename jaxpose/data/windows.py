"""Window indices over whole sequences: training windows, evaluation tiling and reassembly.

A window is a row `(seq, start, first_owned)` of an int64 array:

  seq2seq  input and output frames start .. start + T - 1. Frames past the sequence end (only when
           the sequence is shorter than T) repeat the last frame (edge padding) and are not real.
           `first_owned` is the first frame index this window is responsible for: the evaluation
           tiling's last window is aligned to the sequence end, so it overlaps the previous one,
           and the overlapped frames belong to the earlier window.
  center   input frames centre - T // 2 .. centre + T - 1 - T // 2, clamped to the sequence
           (edge padding, VideoPose3D); the one output frame is the centre. `start` holds the centre
           and `first_owned` equals it.

`frame_info` turns a window into per-output-frame frame indices and masks; `reassemble` puts
per-window outputs back into whole sequences, each frame exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MODES = ('seq2seq', 'center')


def _check(frames: int, mode: str, stride: int = 1) -> None:
  if mode not in MODES:
    raise ValueError(f'window mode must be one of {MODES}, got {mode!r}')
  if frames < 1:
    raise ValueError(f'window length (data.frames) must be >= 1, got {frames}')
  if stride < 1:
    raise ValueError(f'window stride (data.stride) must be >= 1, got {stride}')


def _seq2seq_starts(length: int, frames: int, stride: int) -> np.ndarray:
  """Starts every `stride` frames, plus one aligned to the end so the tail is covered."""
  if length <= frames:
    return np.zeros(1, np.int64)
  starts = np.arange(0, length - frames + 1, stride, dtype=np.int64)
  if starts[-1] + frames < length:
    starts = np.append(starts, length - frames)
  return starts


def train_windows(lengths: Sequence[int], frames: int, stride: int, mode: str) -> np.ndarray:
  """Training windows of every sequence.

  Args:
    lengths: frames per sequence, indexed by sequence id.
    frames: window length T.
    stride: distance between consecutive window starts (seq2seq) or centres (center).
    mode: 'seq2seq' or 'center'.

  Returns:
    (N, 3) int64 rows (seq, start, first_owned). A last seq2seq window ends at the sequence end,
    so with stride <= T (stride 1 for center) every frame is in at least one window.
  """
  _check(frames, mode, stride)
  rows = []
  for s, length in enumerate(lengths):
    if mode == 'seq2seq':
      starts = _seq2seq_starts(int(length), frames, stride)
    else:
      starts = np.arange(0, int(length), stride, dtype=np.int64)
    rows.append(np.stack([np.full_like(starts, s), starts, starts * (mode == 'center')], 1))
  return np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)


def eval_windows(lengths: Sequence[int], frames: int, mode: str) -> np.ndarray:
  """Evaluation tiling: the owned frames of the windows cover every frame exactly once.

  seq2seq: non-overlapping windows at 0, T, 2T, ...; the last one is moved back to end at the last
  frame (its frames before k*T are owned by the previous window), or padded when the sequence is
  shorter than T. center: one window per frame.

  Args:
    lengths: frames per sequence, indexed by sequence id.
    frames: window length T (frames).
    mode: 'seq2seq' or 'center'.

  Returns:
    (N, 3) int64 rows (seq, start, first_owned): frame indices; a window owns its frames from
    first_owned on.
  """
  _check(frames, mode)
  rows = []
  for s, length in enumerate(lengths):
    length = int(length)
    if mode == 'center':
      c = np.arange(length, dtype=np.int64)
      rows.append(np.stack([np.full_like(c, s), c, c], 1))
      continue
    owned = np.arange(0, length, frames, dtype=np.int64)
    starts = np.minimum(owned, max(length - frames, 0))
    rows.append(np.stack([np.full_like(owned, s), starts, owned], 1))
  return np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)


def input_indices(start: int, length: int, frames: int, mode: str) -> np.ndarray:
  """Frame indices (T,) int64 of a window's input, clamped to [0, length - 1] (edge padding).

  `start` is the first frame (seq2seq) or the centre frame (center); `length` and `frames` (T)
  are in frames.
  """
  if mode == 'center':
    idx = start - frames // 2 + np.arange(frames)
  else:
    idx = start + np.arange(frames)
  return np.clip(idx, 0, length - 1)


def frame_info(
  start: int, first_owned: int, length: int, frames: int, mode: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per output frame: frame index, real (not padding) and owned masks.

  Returns:
    frame_idx (T_out,) int32 clamped to the sequence; real (T_out,) bool; owned (T_out,) bool.
    T_out = T for seq2seq, 1 for center.
  """
  if mode == 'center':
    idx = np.array([start])
    first_owned = start
  else:
    idx = start + np.arange(frames)
  real = idx < length
  owned = real & (idx >= first_owned)
  return np.minimum(idx, length - 1).astype(np.int32), real, owned


def reassemble(
  pred_windows: np.ndarray,
  frame_idx: np.ndarray,
  valid: np.ndarray,
  seq_id: np.ndarray,
  num_frames: Mapping[int, int] | Sequence[int],
) -> dict[int, np.ndarray]:
  """Puts per-window outputs back into whole sequences.

  Args:
    pred_windows: (N, T_out, ...) per-window outputs (e.g. (N, T, J, 3) poses or (N, T) errors).
    frame_idx: (N, T_out) frame index of each output.
    valid: (N, T_out) bool; which outputs to place (use the batches' `owned` mask to get every frame
      of every sequence, or `valid` to leave out frames the dataset marks unusable).
    seq_id: (N,) sequence id of each window (padding rows may hold any value if `valid` is False).
    num_frames: frames per sequence, {seq_id: T} or a list indexed by seq_id.

  Returns:
    {seq_id: (T_seq, ...)} for every sequence that received an output; frames that received none
    are NaN (float outputs) or 0.

  Raises:
    ValueError: a frame received two outputs, or an index is out of range.
  """
  pred_windows = np.asarray(pred_windows)
  frame_idx, valid, seq_id = np.asarray(frame_idx), np.asarray(valid, bool), np.asarray(seq_id)
  if frame_idx.shape != valid.shape or pred_windows.shape[:2] != valid.shape:
    raise ValueError(
      f'shape mismatch: pred_windows {pred_windows.shape}, frame_idx '
      f'{frame_idx.shape}, valid {valid.shape} (need (N, T_out, ...), (N, T_out))'
    )
  lengths = dict(num_frames) if isinstance(num_frames, Mapping) else dict(enumerate(num_frames))
  rows, cols = np.nonzero(valid)
  sids, fids = seq_id[rows], frame_idx[rows, cols]
  out: dict[int, np.ndarray] = {}
  fill = np.nan if np.issubdtype(pred_windows.dtype, np.floating) else 0
  for s in np.unique(sids):
    s = int(s)
    if s not in lengths:
      raise ValueError(f'seq_id {s} is not in num_frames')
    sel = sids == s
    f = fids[sel]
    if f.min() < 0 or f.max() >= lengths[s]:
      raise ValueError(f'sequence {s}: frame index {int(f.max())} outside [0, {lengths[s]})')
    counts = np.bincount(f, minlength=lengths[s])
    if (counts > 1).any():
      dup = int(np.flatnonzero(counts > 1)[0])
      raise ValueError(
        f'sequence {s}: frame {dup} received {int(counts[dup])} outputs; pass a '
        f"mask that covers each frame once (the batches' `owned`)"
      )
    arr = np.full((lengths[s],) + pred_windows.shape[2:], fill, pred_windows.dtype)
    arr[f] = pred_windows[rows[sel], cols[sel]]
    out[s] = arr
  return out
