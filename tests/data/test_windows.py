"""Window index properties: training windows cover every frame, evaluation tiles each exactly once."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.data import windows

lengths_st = st.lists(st.integers(1, 60), min_size=1, max_size=5)


def _owned_counts(index, lengths, frames, mode):
  counts = [np.zeros(n, int) for n in lengths]
  for s, start, first in index:
    fidx, real, owned = windows.frame_info(start, first, lengths[s], frames, mode)
    assert (fidx >= 0).all() and (fidx < lengths[s]).all()
    np.add.at(counts[s], fidx[owned], 1)
  return counts


@given(lengths_st, st.integers(1, 20), st.sampled_from(windows.MODES))
def test_eval_tiling_covers_every_frame_exactly_once(lengths, frames, mode):
  index = windows.eval_windows(lengths, frames, mode)
  for c in _owned_counts(index, lengths, frames, mode):
    assert (c == 1).all()
  if mode == 'seq2seq':  # as few windows as possible
    assert len(index) == sum(-(-n // frames) for n in lengths)


@given(lengths_st, st.integers(1, 20), st.integers(1, 10), st.sampled_from(windows.MODES))
def test_train_windows_cover_every_frame(lengths, frames, stride, mode):
  index = windows.train_windows(lengths, frames, stride, mode)
  seen = [np.zeros(n, bool) for n in lengths]
  for s, start, first in index:
    fidx, real, _ = windows.frame_info(start, first, lengths[s], frames, mode)
    seen[s][fidx[real]] = True
    inp = windows.input_indices(start, lengths[s], frames, mode)
    assert len(inp) == frames and inp.min() >= 0 and inp.max() < lengths[s]
  if stride <= (frames if mode == 'seq2seq' else 1):
    assert all(x.all() for x in seen)


def test_seq2seq_padding_and_last_window():
  # 10 frames, T=4: tiles at 0, 4 and a last one moved back to 6 owning frames 8, 9.
  idx = windows.eval_windows([10], 4, 'seq2seq')
  np.testing.assert_array_equal(idx, [[0, 0, 0], [0, 4, 4], [0, 6, 8]])
  fidx, real, owned = windows.frame_info(6, 8, 10, 4, 'seq2seq')
  np.testing.assert_array_equal(owned, [False, False, True, True])
  # Shorter than T: edge padded, padding neither real nor owned.
  fidx, real, owned = windows.frame_info(0, 0, 3, 5, 'seq2seq')
  np.testing.assert_array_equal(fidx, [0, 1, 2, 2, 2])
  np.testing.assert_array_equal(real, [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(windows.input_indices(1, 5, 5, 'center'), [0, 0, 1, 2, 3])
  np.testing.assert_array_equal(windows.train_windows([10], 4, 3, 'seq2seq')[:, 1], [0, 3, 6])
  np.testing.assert_array_equal(windows.train_windows([11], 4, 3, 'seq2seq')[:, 1], [0, 3, 6, 7])


@given(lengths_st, st.integers(1, 12))
def test_reassemble_inverts_tiling(lengths, frames):
  index = windows.eval_windows(lengths, frames, 'seq2seq')
  seqs = [np.random.default_rng(i).normal(size=(n, 2)) for i, n in enumerate(lengths)]
  info = [windows.frame_info(st_, fo, lengths[s], frames, 'seq2seq') for s, st_, fo in index]
  fidx = np.stack([i[0] for i in info])
  owned = np.stack([i[2] for i in info])
  preds = np.stack([seqs[s][f] for (s, _, _), f in zip(index, fidx)])
  out = windows.reassemble(preds, fidx, owned, index[:, 0], lengths)
  for s, x in enumerate(seqs):
    np.testing.assert_array_equal(out[s], x)


def test_reassemble_rejects_double_coverage():
  fidx = np.array([[0, 1], [1, 2]])
  with pytest.raises(ValueError, match='frame 1 received 2 outputs'):
    windows.reassemble(np.zeros((2, 2)), fidx, np.ones((2, 2), bool), np.array([0, 0]), [3])
  out = windows.reassemble(
    np.ones((2, 2)), fidx, np.array([[1, 0], [0, 1]], bool), np.array([0, 0]), {0: 4}
  )
  np.testing.assert_array_equal(np.isnan(out[0]), [False, True, False, True])


def test_bad_arguments():
  with pytest.raises(ValueError, match='mode must be one of'):
    windows.train_windows([5], 3, 1, 'centre')
  with pytest.raises(ValueError, match='stride'):
    windows.train_windows([5], 3, 0, 'seq2seq')
