"""deepmimic_smpl_render/tiny: records agree with the body model, and the image pipeline carries
the body keys and the part labels through crops, rotations and flips consistently."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxpose import body
from jaxpose.body import parts
from jaxpose.data import bodies, build, image_pipeline, images, pipeline, sources
from jaxpose.render import zbuffer


@pytest.fixture(scope='module')
def smpl_render_dir(tmp_path_factory):
  tfds.disable_progress_bar()
  out = tmp_path_factory.mktemp('smpl_render')
  build.ensure_built('deepmimic_smpl_render', out, 'tiny')
  yield out
  image_pipeline.clear_stores()


@pytest.fixture(scope='module')
def small():
  return body.synthetic_model('small'), body.synthetic_joint_regressors('small')


def _cfg(data_dir, **kw):
  return dict(
    name='deepmimic_smpl_render',
    config='tiny',
    data_dir=str(data_dir),
    skeleton='h36m17',
    num_joints=17,
    batch_size=8,
    eval_batch_size=8,
    num_workers=0,
    flip_aug=True,
    image=dict(size=64, rot_prob=1.0, occlusion=0.0),
    **kw,
  )


def _joints_and_vertices(small, b):
  model, regs = small
  verts = bodies.body_vertices(model, b['body_rotmat'], b['body_betas'], b['body_transl'])
  return np.asarray(body.h36m_joints(regs, verts), np.float64), verts


def test_records_agree_with_the_body_model(smpl_render_dir, small):
  """Per view: forward(body params) regressed to H36M-17 is pose3d_cam, its projection kp2d_px."""
  src = sources.open_source('deepmimic_smpl_render', 'tiny', 'train', str(smpl_render_dir))
  assert len(src) == 4  # jump and kick, 2 frames each
  info = build.get_builder('deepmimic_smpl_render', 'tiny', str(smpl_render_dir)).info.metadata
  assert info['kind'] == 'image' and info['body_model'] == 'synthetic:small'
  assert tuple(info['part_names']) == parts.PARTS
  rec = src[1]
  b = {
    'body_rotmat': rec['body_rotmat'],
    'body_betas': np.broadcast_to(rec['body_betas'], (4, 10)),
    'body_transl': rec['body_transl'],
  }
  joints, _ = _joints_and_vertices(small, b)
  np.testing.assert_allclose(joints, rec['pose3d_cam'], atol=2e-4)
  np.testing.assert_allclose(images.project(rec['K'], joints), rec['kp2d_px'], atol=0.05)
  for v in range(4):
    lab = images.decode_mask(rec['part_masks'][v], 'mask')
    assert lab.shape == (rec['res_h'][v], rec['res_w'][v]) == (120, 120)
    assert set(np.unique(lab)) >= {0, parts.PARTS.index('torso')}


def test_pipeline_body_keys_follow_crops_and_flips(smpl_render_dir, small):
  """Through augmented crops (rotation, scale, flip): the body keys regress to pose3d_cam (+ root)
  and project through K_crop onto kp2d_px; a z-buffer render of the batch's body through K_crop
  reproduces the warped part labels (a flip mirrors the body and swaps the L/R labels alike)."""
  it = pipeline.train_iterator(_cfg(smpl_render_dir), seed=3)
  b = next(it)
  assert b['body_rotmat'].shape == (8, 24, 3, 3) and b['has_smpl'].all()
  flipped = np.linalg.det(b['crop_from_full'][:, :2, :2]) < 0
  assert flipped.any() and (~flipped).any()
  joints, verts = _joints_and_vertices(small, b)
  x = b['pose3d_cam'].astype(np.float64) + b['pose3d_root']
  # Unflipped rows exactly; flipped rows up to the synthetic mesh's own asymmetry (its seeded
  # pose correctives and regressor are not mirror-symmetric: the mirrored body's regressed joints
  # are within ~1 cm of the mirrored joints, the FK joints exactly; tests/data/test_bodies.py).
  np.testing.assert_allclose(joints[~flipped], x[~flipped], atol=2e-4)
  np.testing.assert_allclose(joints[flipped], x[flipped], atol=1.5e-2)
  kp = images.project(b['K_crop'], joints)
  np.testing.assert_allclose(kp[~flipped], b['kp2d_px'][~flipped], atol=0.05)
  np.testing.assert_allclose(kp[flipped], b['kp2d_px'][flipped], atol=0.5)
  model = small[0]
  face_parts = parts.face_parts(np.asarray(model.weights), np.asarray(model.faces))
  for i in range(len(verts)):
    img = zbuffer.render(
      verts[i], np.asarray(model.faces), b['K_crop'][i], 64, 64, pixel_center=0.0
    )
    f = img.fragments.face_index
    want = np.where(f >= 0, face_parts[np.maximum(f, 0)], 0)
    got = b['part_label_u8'][i]
    both = (want > 0) & (got > 0)
    iou = both.sum() / ((want > 0) | (got > 0)).sum()
    agree = (want == got)[both].mean()  # labels are resampled (nearest) from 120 px: edges differ
    # Measured: agree 0.92-0.95 unflipped, 0.79-0.89 flipped (the part boundaries of the mesh are
    # not exactly mirror-symmetric); the L/R-swapped labels agree ~0.33.
    assert both.sum() > 50 and iou > 0.7 and agree > 0.75, (i, bool(flipped[i]), iou, agree)
    # The L/R-swapped labels would not match (the test can fail on a missing label swap).
    swapped = images.flip_lut(parts.PARTS)[want]
    assert (swapped == got)[both].mean() < agree - 0.25


def test_eval_rows_carry_unflipped_bodies(smpl_render_dir, small):
  batch = next(iter(pipeline.eval_batches(_cfg(smpl_render_dir), 'test')))
  joints, _ = _joints_and_vertices(small, batch)
  x = batch['pose3d_cam'].astype(np.float64) + batch['pose3d_root']
  np.testing.assert_allclose(joints, x, atol=2e-4)
  assert batch['part_label_u8'].shape == (8, 64, 64)
