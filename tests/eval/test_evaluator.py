"""The host-side evaluator: reassembly by frame index, the H36M protocol, and multi-host gathering.

The pipeline and the device are replaced by fakes, so the evaluator's host logic runs alone: two
sequences of 4 frames, eval windows of T_out = 2 frames, batches of 2 windows.
"""

import ml_collections as mlc
import numpy as np
import pytest

from jaxpose.eval import evaluator

TABLE = [
  {'seq_id': 0, 'num_frames': 4, 'subject': 'S9', 'action': 'Walking 1'},
  {'seq_id': 1, 'num_frames': 4, 'subject': 'S9', 'action': 'Eating 2'},
]
# Per-frame errors (mm) the fake eval step reports, by (sequence, frame).
ERR = {0: np.array([1.0, 2.0, 3.0, 4.0]), 1: np.array([10.0, 20.0, 30.0, 40.0])}


def _batches():
  """Four windows (seq, start) in batches of two; every frame owned once, all valid."""
  windows = [(0, 0), (0, 2), (1, 0), (1, 2)]
  for i in range(0, 4, 2):
    rows = windows[i : i + 2]
    fidx = np.array([[s, s + 1] for _, s in rows], np.int32)
    yield {
      'frame_idx': fidx,
      'seq_id': np.array([q for q, _ in rows], np.int32),
      'valid': np.ones((2, 2), bool),
      'owned': np.ones((2, 2), bool),
      'kp2d_norm': np.zeros((2, 2, 17, 2), np.float32),
      'pose3d_cam': np.zeros((2, 2, 17, 3), np.float32),
      # what the fake step reads to report its errors
      '_err': np.stack([ERR[q][s : s + 2] for q, s in rows]),
    }


class _SpanningArray:
  """A device output that spans several hosts: np.asarray on it raises, as jax does."""

  def __init__(self, data):
    self.data = np.asarray(data)
    self.shape = self.data.shape

  def __array__(self, *args, **kwargs):
    raise RuntimeError('array spans non-addressable devices; gather it first')


def _config():
  return mlc.ConfigDict(
    {'data': {'eval_split': 'test'}, 'eval': {'protocol': 'h36m'}, 'method': {'name': 'x'}}
  )


@pytest.fixture
def fake_pipeline(monkeypatch):
  monkeypatch.setattr(evaluator.pipeline, 'sequence_table', lambda data, split: TABLE)
  monkeypatch.setattr(evaluator.pipeline, 'eval_batches', lambda data, split, **kw: _batches())
  monkeypatch.setattr(evaluator.sharding, 'shard_batch', lambda batch, mesh: batch)


def _eval_step(wrap):
  def step(variables, batch):
    del variables
    err = batch['_err']
    return {
      'pred': wrap(np.full((*err.shape, 17, 3), 0.5, np.float32)),
      'mpjpe_mm': wrap(err),
      'p_mpjpe_mm': wrap(err / 2),
    }

  return step


def test_reassembles_frames_and_applies_the_h36m_protocol(fake_pipeline):
  res = evaluator.evaluate(_eval_step(np.asarray), None, _config(), mesh=None)
  assert res['num_frames'] == 8
  # action-wise means (Walking 2.5, Eating 25), then their mean; frames pooled: 13.75
  assert res['mpjpe_mm'] == pytest.approx((2.5 + 25.0) / 2)
  assert res['p_mpjpe_mm'] == pytest.approx((2.5 + 25.0) / 4)
  assert res['mpjpe_mm_frames'] == pytest.approx(13.75)
  assert set(res['per_group']) == {'Walking', 'Eating'}
  assert res['example']['pred'].shape == (2, 2, 17, 3)


def test_multi_host_outputs_are_gathered_before_numpy(fake_pipeline, monkeypatch):
  """With several processes every device output (the example's `pred` included) must go through
  process_allgather: np.asarray on an array that spans hosts raises."""
  gathered = []

  def allgather(tree, tiled=False):
    assert tiled
    gathered.append(sorted(tree))
    return {k: v.data if isinstance(v, _SpanningArray) else np.asarray(v) for k, v in tree.items()}

  monkeypatch.setattr(evaluator.jax, 'process_count', lambda: 2)
  monkeypatch.setattr(evaluator.multihost_utils, 'process_allgather', allgather)
  res = evaluator.evaluate(_eval_step(_SpanningArray), None, _config(), mesh=None)
  assert res['mpjpe_mm'] == pytest.approx((2.5 + 25.0) / 2)
  assert 'pred' in gathered[0] and 'pred' not in gathered[1]  # the example batch only
  np.testing.assert_array_equal(res['example']['pred'], np.full((2, 2, 17, 3), 0.5))


def test_outputs_with_the_global_batch_axis_are_scored(monkeypatch):
  """With 2 processes the step's outputs hold the global batch (2 rows) while this process's
  batch holds 1: the per-frame outputs are still recognised (by their T_out axis) and scored."""
  full = list(_batches())
  host = [{k: v[:1] for k, v in b.items()} for b in full]  # process 0's rows
  monkeypatch.setattr(evaluator.pipeline, 'sequence_table', lambda data, split: TABLE)
  monkeypatch.setattr(evaluator.pipeline, 'eval_batches', lambda data, split, **kw: iter(host))
  monkeypatch.setattr(evaluator.sharding, 'shard_batch', lambda batch, mesh: batch)
  monkeypatch.setattr(evaluator.jax, 'process_count', lambda: 2)
  it = iter(full)

  def step(variables, batch):
    err = next(it)['_err']  # the global batch's errors
    return {
      'pred': np.full((*err.shape, 17, 3), 0.5, np.float32),
      'mpjpe_mm': err,
      'p_mpjpe_mm': err / 2,
    }

  def allgather(tree, tiled=False):  # host entries: every process's rows
    b = full[len(seen)]
    seen.append(1)
    return {k: (b[k] if k in b and np.shape(v)[0] == 1 else np.asarray(v)) for k, v in tree.items()}

  seen = []
  monkeypatch.setattr(evaluator.multihost_utils, 'process_allgather', allgather)
  res = evaluator.evaluate(step, None, _config(), mesh=None)
  assert res['num_frames'] == 8
  assert res['mpjpe_mm'] == pytest.approx((2.5 + 25.0) / 2)
