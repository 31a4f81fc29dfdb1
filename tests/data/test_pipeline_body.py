"""The sequence pipeline passes SMPL-format body keys through windows and flips (pw3d 1.1.0)."""

import numpy as np
import pytest

from jaxpose.body import synthetic as body_synthetic
from jaxpose.data import bodies, build, pipeline, sources, synthetic, transforms


@pytest.fixture(scope='module')
def pw3d_dir(tmp_path_factory):
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  manual = tmp_path_factory.mktemp('pw3d_manual')
  synthetic.write_3dpw(manual, num_frames=16)
  out = tmp_path_factory.mktemp('pw3d_tfds')
  build.build('pw3d', None, manual, out)
  yield out
  sources.clear_stores()


def _cfg(data_dir, **kw):
  base = dict(
    name='pw3d',
    config='',
    data_dir=str(data_dir),
    train_split='train',
    eval_split='test',
    frames=5,
    stride=2,
    mode='seq2seq',
    use_conf=False,
    flip_aug=True,
    batch_size=6,
    eval_batch_size=4,
    num_workers=0,
    skeleton='smpl24',
    num_joints=24,
  )
  return {**base, **kw}


def _fk_cam(batch):
  """Camera-frame joints (b, T, 24, 3) from the batch's body parameters (designed rest skeleton)."""
  rot = batch['body_rotmat']
  b, t = rot.shape[:2]
  joints = bodies.forward_kinematics(rot.reshape(b * t, 24, 3, 3), body_synthetic.rest_joints())[0]
  return joints.reshape(b, t, 24, 3) + batch['body_transl'][:, :, None]


def test_train_batches_have_body_keys_consistent_with_flips(pw3d_dir):
  """In flipped and unflipped rows alike, the body's FK joints equal the (mirrored) 3D labels."""
  it = pipeline.train_iterator(_cfg(pw3d_dir), seed=0)
  plain = pipeline.train_iterator(_cfg(pw3d_dir, flip_aug=False), seed=0)  # same order, no flips
  flipped = 0
  for _ in range(4):
    batch, ref = next(it), next(plain)
    assert batch['body_rotmat'].shape == (6, 5, 24, 3, 3)
    assert batch['body_betas'].shape == (6, 5, 10) and batch['body_transl'].shape == (6, 5, 3)
    assert batch['has_smpl'].shape == (6, 5) and batch['has_smpl'].dtype == bool
    absolute = batch['pose3d_cam'] + batch['pose3d_root']
    np.testing.assert_allclose(_fk_cam(batch), absolute, atol=1e-4)
    rows = np.any(batch['body_transl'] != ref['body_transl'], axis=(1, 2))
    np.testing.assert_array_equal(rows, np.any(batch['pose3d_cam'] != ref['pose3d_cam'], (1, 2, 3)))
    flipped += int(rows.sum())
  assert 0 < flipped < 24


def test_center_mode_and_eval_batches(pw3d_dir):
  cfg = _cfg(pw3d_dir, mode='center', frames=5)
  batch = next(iter(pipeline.eval_batches(cfg)))
  assert batch['body_rotmat'].shape == (4, 1, 24, 3, 3) and batch['has_smpl'].shape == (4, 1)
  np.testing.assert_allclose(_fk_cam(batch), batch['pose3d_cam'] + batch['pose3d_root'], atol=1e-4)
  store = sources.get_store('pw3d', '', 'test', str(pw3d_dir))
  rec = store.read(int(batch['seq_id'][0]))
  idx = int(batch['frame_idx'][0, 0])
  np.testing.assert_array_equal(batch['body_rotmat'][0, 0], rec['body_rotmat'][idx])
  np.testing.assert_array_equal(batch['body_betas'][0, 0], rec['body_betas'])


def test_flip_batch_mirrors_bodies(pw3d_dir):
  batch = next(iter(pipeline.eval_batches(_cfg(pw3d_dir))))
  out = transforms.flip_batch(batch, 'smpl24')
  np.testing.assert_allclose(_fk_cam(out), out['pose3d_cam'] + out['pose3d_root'], atol=1e-4)
  np.testing.assert_array_equal(
    transforms.flip_batch(out, 'smpl24')['body_rotmat'], batch['body_rotmat']
  )


def test_datasets_without_bodies_have_no_body_keys(cfg):
  batch = next(iter(pipeline.eval_batches(cfg)))
  assert not set(bodies.BODY_KEYS) & set(batch)
