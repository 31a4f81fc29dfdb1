"""The mean-training-pose baseline against a direct numpy computation from the stored sequences."""

import numpy as np
import pytest

from configs.common import data_block, get_base_config
from jaxpose import sharding
from jaxpose.data import sources
from jaxpose.eval import baselines, protocols


@pytest.fixture(scope='module')
def config(data_dir):
  c = get_base_config()
  c.data = data_block(
    name='h36m',
    config='gt',
    data_dir=str(data_dir),
    frames=9,
    stride=9,
    flip_aug=False,
    batch_size=8,
    eval_batch_size=8,
  )
  c.eval.flip_test = False
  return c


def _root_relative(store):
  return [
    store.read(i)['pose3d_cam'] - store.read(i)['pose3d_cam'][:, :1] for i in range(len(store))
  ]


def test_mean_train_pose_is_the_mean_of_every_training_frame(config):
  store = sources.get_store('h36m', 'gt', 'train', config.data.data_dir)
  frames = np.concatenate(_root_relative(store))
  np.testing.assert_allclose(baselines.mean_train_pose(config), frames.mean(0), atol=1e-6)


def test_baseline_scores_the_constant_pose_with_the_h36m_protocol(config):
  mean = baselines.mean_train_pose(config)
  res = baselines.mean_pose_baseline(config, sharding.make_mesh())
  store = sources.get_store('h36m', 'gt', 'test', config.data.data_dir)
  errs, actions = [], []
  for i, gt in enumerate(_root_relative(store)):
    pred = mean - mean[:1]
    errs.append(np.linalg.norm(gt - pred, axis=-1).mean(-1) * 1000.0)
    actions += [store.meta[i]['action']] * len(gt)
  expected = protocols.h36m_protocol(np.concatenate(errs), np.array(actions, object))
  assert res['mpjpe_mm'] == pytest.approx(expected['average'], rel=1e-5)
  assert res['mpjpe_mm'] > 1.0  # the synthetic poses vary: a constant pose cannot be exact
  assert isinstance(res['per_group'], dict) and res['per_group']
