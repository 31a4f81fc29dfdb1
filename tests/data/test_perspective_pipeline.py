"""PersPose's crops in the image pipeline ('perspective', 'perspective_nopr') on deepmimic_render/tiny."""

import numpy as np
import pytest

from jaxpose.data import image_pipeline, images


def _cfg(render_dir, crop, augment=True):
  return dict(
    name='deepmimic_render',
    config='tiny',
    data_dir=str(render_dir),
    skeleton='h36m17',
    num_joints=17,
    batch_size=4,
    eval_batch_size=4,
    num_workers=0,
    flip_aug=False,
    image=dict(size=64, crop=crop, augment=augment, part_labels=True),
  )


def _eval_batch(render_dir, crop):
  return next(iter(image_pipeline.eval_batches(_cfg(render_dir, crop))))


def _check(b):
  x = b['pose3d_cam'].astype(np.float64) + b['pose3d_root']
  np.testing.assert_allclose(images.project(b['K_crop'], x), b['kp2d_px'], atol=2e-3)
  world = b['pose3d_world'].astype(np.float64)
  cam = world @ np.swapaxes(b['cam_R'], -1, -2) + b['cam_t'][..., None, :]
  np.testing.assert_allclose(cam, x, atol=1e-4)
  r = b['perspective_R'].astype(np.float64)
  np.testing.assert_allclose(
    r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5
  )


def test_pr_crop_centres_the_principal_point_and_rotates_the_3d(render_dir):
  pr = _eval_batch(render_dir, 'perspective')
  nopr = _eval_batch(render_dir, 'perspective_nopr')
  for b in (pr, nopr):
    _check(b)
    assert b['image_u8'].shape == (4, 64, 64, 3) and b['part_label_u8'].shape == (4, 64, 64)
    np.testing.assert_allclose(b['K_crop'][:, 0, 0], b['K_crop'][:, 1, 1], rtol=1e-5)  # square
    assert np.all(b['pe_valid'] == 1)
  np.testing.assert_allclose(pr['K_crop'][:, :2, 2], 32.0, atol=1e-4)
  # Without PR the principal point of the crop is wherever the person was: off-centre.
  assert np.abs(nopr['K_crop'][:, :2, 2] - 32.0).max() > 5.0
  np.testing.assert_allclose(nopr['perspective_R'], np.broadcast_to(np.eye(3), (4, 3, 3)))
  # Same person: the PR labels are the no-PR labels rotated by perspective_R.
  rot = np.einsum('bij,bnj->bni', pr['perspective_R'], nopr['pose3d_cam'])
  np.testing.assert_allclose(pr['pose3d_cam'], rot, atol=1e-5)
  assert np.abs(pr['pose3d_cam'] - nopr['pose3d_cam']).max() > 1e-3
  # The person is in the crop: most joints visible; the body's pixels are labelled.
  assert pr['kp2d_vis'].mean() > 0.9 and (pr['part_label_u8'] > 0).mean() > 0.05


def test_training_batches_augment_and_resume(render_dir):
  it = image_pipeline.train_iterator(_cfg(render_dir, 'perspective'), seed=3)
  a = next(it)
  _check(a)
  state = it.get_state()
  b = next(it)
  it2 = image_pipeline.train_iterator(_cfg(render_dir, 'perspective'), seed=3)
  it2.set_state(state)
  np.testing.assert_array_equal(next(it2)['image_u8'], b['image_u8'])


def test_unknown_crop_lists_the_sample_crops(render_dir):
  with pytest.raises(ValueError, match='perspective_nopr'):
    image_pipeline.image_spec(_cfg(render_dir, 'nope'), 'h36m17')
