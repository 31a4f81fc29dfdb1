"""H36M and 3DHP protocol aggregation on hand-computed examples, and bad-input errors."""

import numpy as np
import pytest

from jaxpose.eval import protocols


def test_h36m_action_names():
  names = protocols.h36m_action_names()
  assert len(names) == 15 and names[0] == 'Directions' and 'WalkDog' in names


def test_h36m_mean_of_action_means():
  errors = np.array([1.0, 3.0, 5.0, 10.0, 20.0])
  actions = ['Walking 1', 'Walking', 'Walking 1', 'Eating 2', 'TakingPhoto 1']
  out = protocols.h36m_protocol(errors, actions)
  assert list(out) == ['Eating', 'Photo', 'Walking', 'average']
  assert out['Walking'] == pytest.approx(3.0)  # frame-weighted within the category
  assert out['average'] == pytest.approx((3.0 + 10.0 + 20.0) / 3)  # not the frame mean (7.8)


def test_h36m_valid_mask_drops_padding():
  errors = np.array([1.0, np.nan, 3.0])
  out = protocols.h36m_protocol(errors, ['Sitting'] * 3, valid=[True, False, True])
  assert out == {'Sitting': pytest.approx(2.0), 'average': pytest.approx(2.0)}


@pytest.mark.parametrize(
  'errors, actions, pattern',
  [
    (np.ones((3, 2)), ['a'] * 3, r'errors: expected shape \(N,\), got \(3, 2\)'),
    (np.ones(3), ['a'] * 2, r'actions: expected shape \(3,\).*got \(2,\)'),
    (np.array([1.0, np.inf]), ['a'] * 2, 'errors: 1 non-finite'),
    (np.ones(0), [], 'no frames'),
  ],
)
def test_h36m_bad_inputs(errors, actions, pattern):
  with pytest.raises(ValueError, match=pattern):
    protocols.h36m_protocol(errors, actions)


def test_h36m_evaluate_and_table():
  rng = np.random.default_rng(0)
  gt = rng.normal(size=(6, 17, 3)).astype(np.float32) * 0.2
  pred = gt + np.array([0.003, 0.004, 0.0], np.float32)
  res = protocols.h36m_evaluate(pred, gt, ['Directions 1'] * 3 + ['Greeting'] * 3)
  assert res['P1']['average'] == pytest.approx(5.0, rel=1e-4)  # 5 mm
  assert res['P2']['average'] == pytest.approx(0.0, abs=1e-3)  # a translation is aligned away
  table = protocols.format_h36m_table(res)
  lines = table.splitlines()
  assert 'Direc' in lines[0] and 'Greet' in lines[0] and 'Avg' in lines[0]
  assert lines[2].startswith('P1') and '5.0' in lines[2]
  with pytest.raises(ValueError, match=r'gt: expected shape \(6, 17, 3\), got \(5, 17, 3\)'):
    protocols.h36m_evaluate(pred, gt[:5], ['Directions'] * 6)
  with pytest.raises(ValueError, match=r'pred: expected 17 joints.*\(6, 16, 3\)'):
    protocols.h36m_evaluate(pred[:, :16], gt[:, :16], ['Directions'] * 6)


def test_mpi3dhp_protocol():
  n = 4
  gt = np.zeros((n, 17, 3), np.float32)
  gt[:, 14] = [10.0, 20.0, 30.0]  # root offset is removed from both poses
  pred = gt + np.array([500.0, 0.0, 0.0], np.float32)  # same pose after rooting ...
  pred[:2, 0, 0] += 200.0  # ... except TS1's head top, 200 mm off (not within 150)
  pred[2, 15, 0] += np.nan  # an invalid frame may hold NaN
  valid = np.array([True, True, False, True])
  seq = np.array(['TS1', 'TS1', 'TS2', 'TS2'])
  res = protocols.mpi3dhp_protocol(pred, gt, seq, valid=valid)
  assert list(res) == ['TS1', 'TS2', 'all']
  assert res['TS1']['frames'] == 2 and res['TS2']['frames'] == 1 and res['all']['frames'] == 3
  assert res['TS1']['pck'] == pytest.approx(100 * 13 / 14)
  assert res['TS1']['mpjpe'] == pytest.approx(200 / 17, rel=1e-5)
  assert res['TS2'] == {
    'pck': 100.0,
    'auc': pytest.approx(100 * 30 / 31),
    'mpjpe': 0.0,
    'frames': 1,
  }
  assert res['all']['pck'] == pytest.approx((2 * 100 * 13 / 14 + 100) / 3)
  assert 'TS1' in protocols.format_mpi3dhp_table(res)
  with pytest.raises(ValueError, match='pred: 1 non-finite'):
    protocols.mpi3dhp_protocol(pred, gt, seq)
  with pytest.raises(ValueError, match=r'sequences: expected shape \(4,\)'):
    protocols.mpi3dhp_protocol(pred, gt, seq[:3], valid=valid)
