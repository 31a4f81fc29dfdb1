"""DSR parity with the official HMR head, SPIN losses, semantic label preparation and DSR losses.

Fixtures (research/dsr.md §7): `dsr__hmr_head.npz` holds a reduced-width official `hmr_head`
(state dict with the init_* buffers), layer4-like features (B, C, 7, 7), its outputs, and the
official camera conversion, projection, `batch_rodrigues` and `rot6d_to_rotmat` results;
`dsr__losses.npz` the official SPIN loss terms on fixed tensors, the label preparation of a
synthetic Graphonomy map, the textures of a synthetic prior and the DSR losses on a stand-in
rendered stack. Everything is built from the fixture's arrays and meta.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.geometry import rotation, spin
from jaxpose.methods import dsr as method
from jaxpose.models import dsr
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _with(key):
  params = fixture_files('dsr')
  if params[0].values[0] is None:
    return params
  keep = []
  for p in params:
    with np.load(p.values[0]) as z:
      if key in z.files:
        keep.append(p)
  return keep or [pytest.param(None, marks=pytest.mark.skip(reason=f'no fixture with {key}'))]


@pytest.mark.parametrize('path', _with('output/pred_rotmat'))
def test_hmr_head_matches_official(path):
  fx = Fixture(path)
  assert fx.meta['mode'] == 'eval'
  # The forward's n_iter, the camera's focal length and crop size are not in the weights: the meta
  # records them (keys, or the notes' "<n> iterations of", "2*<focal>/(<img_res>*s+1e-9)").
  n_iter = fx.setting('n_iter', r'(\d+) iterations of')
  focal = fx.setting('focal_length', r'2\*([\d.]+)/\(\d+\*s', float)
  res = fx.setting('img_res', r'2\*[\d.]+/\((\d+)\*s')
  if 'img_res' not in fx.meta and 'divided by' in fx.meta.get('notes', ''):
    assert fx.setting('half_res', r'divided by (\d+)') * 2 == res, 'notes disagree on img_res'
  head, variables = dsr.head_from_torch(fx.params, n_iter=n_iter)
  feats = jnp.asarray(fx['input/features'].transpose(0, 2, 3, 1))  # NCHW -> NHWC
  out = head.apply(variables, feats, train=False)
  assert_parity(out['body_rotmat'], fx['output/pred_rotmat'], name='pred_rotmat')
  assert_parity(out['body_betas'], fx['output/pred_shape'], name='pred_shape')
  assert_parity(out['cam_weak'], fx['output/pred_cam'], name='pred_cam')

  cam_t = spin.weak_to_perspective(out['cam_weak'], focal, res)
  assert_parity(cam_t, fx['output/pred_cam_t'], name='pred_cam_t')
  kp = spin.project_points(fx['input/joints3d'], fx['output/pred_cam_t'], focal, res)
  assert_parity(kp, fx['output/joints2d_norm'], name='joints2d_norm')
  assert_parity(spin.batch_rodrigues(fx['input/axis_angle']), fx['output/rodrigues'], name='rod')

  r = fx['output/rot6d_rotmat']
  if 'input/rot6d' in fx:  # official rot6d_to_rotmat on stored inputs
    assert_parity(rotation.rot6d_to_matrix(fx['input/rot6d']), r, name='rot6d_rotmat')
  else:
    # dsr__hmr_head.npz keeps only the output, so this is a round trip (weak; the convention is
    # tested through pred_rotmat above): an official result is rebuilt from its own first two
    # columns (the (3, 2) reshape read by columns).
    assert_parity(rotation.rot6d_to_matrix(rotation.matrix_to_rot6d(r)), r, name='rot6d_rotmat')


@pytest.mark.parametrize('path', _with('output/loss_regr_pose'))
def test_spin_losses_match_official(path):
  fx = Fixture(path)
  pred = {
    'body_rotmat': fx['input/pred_rotmat'],
    'body_betas': fx['input/pred_betas'],
    'cam_weak': fx['input/pred_cam'],
    'kp2d_norm': fx['input/pred_kp2d'],
    'joints3d': fx['input/pred_j3d'],
    'vertices': fx['input/pred_verts'],
  }
  gt = {
    'pose': fx['input/gt_pose'],
    'betas': fx['input/gt_betas'],
    'kp2d_norm': fx['input/gt_kp2d'],
    'pose3d': fx['input/gt_j3d'],
    'has_smpl': fx['input/has_smpl'],
    'has_pose_3d': fx['input/has_pose_3d'],
    'vertices': fx['input/gt_verts'],
  }
  assert not fx['input/has_smpl'].all(), 'the fixture masks one sample out of the SMPL terms'
  pred, gt = (
    {k: jnp.asarray(v) for k, v in pred.items()},
    {k: jnp.asarray(v) for k, v in gt.items()},
  )
  weights = method.LossWeights(
    openpose=fx.meta.get('openpose_train_weight', 0.0), gt=fx.meta.get('gt_train_weight', 1.0)
  )
  terms = method.body_losses(pred, gt, weights)
  for ours, theirs in [
    ('keypoints', 'loss_keypoints'),
    ('keypoints_3d', 'loss_keypoints_3d'),
    ('regr_pose', 'loss_regr_pose'),
    ('regr_betas', 'loss_regr_betas'),
    ('shape', 'loss_shape'),
    ('cam', 'loss_cam'),
  ]:
    assert_parity(terms[ours], fx[f'output/{theirs}'], name=theirs)


def _labels(fx):
  kp = fx['input/grph_keypoints'].reshape(-1, 3)
  labels = method.grph_to_labels(fx['input/grph'])
  return method.prepare_labels(labels, kp[:, :2], kp[:, 2], fx['input/semantic_prior'])


@pytest.mark.parametrize('path', _with('output/mc_mask'))
def test_label_preparation_matches_official(path):
  fx = Fixture(path)
  lab = _labels(fx)
  mask = fx['output/mc_mask']  # (H, W, 3), channels equal
  for c in range(mask.shape[-1]):
    np.testing.assert_array_equal(lab['dsr_mc_mask'], mask[..., c])
  valid = [method.DSR_MC_LABELS[i] for i in np.flatnonzero(lab['dsr_mc_valid'])]
  assert valid == [str(s) for s in fx['output/mc_valid_labels']]
  kp = fx['input/grph_keypoints'].reshape(-1, 3)
  bg_removed = method.remove_background(
    method.grph_to_labels(fx['input/grph']), kp[:, :2], kp[:, 2]
  )
  _, valid_mask, counts = method.mc_target(bg_removed)
  np.testing.assert_array_equal(counts[valid_mask], fx['output/mc_num_pixels'])
  for c in range(mask.shape[-1]):
    assert_parity(lab['dsr_mc_dist'], fx['output/dist_mat'][..., c], name='dist_mat')

  np.testing.assert_array_equal(lab['dsr_c_label'], fx['output/c_label'])
  assert tuple(str(s) for s in fx['output/c_valid_labels']) == method.DSR_C_LABELS
  assert_parity(lab['dsr_c_weight'], fx['output/c_class_weight'], name='c_class_weight')
  assert_parity(lab['dsr_texture_mc'], fx['output/texture_mc'], name='texture_mc')
  texture_c = method.c_textures(fx['input/semantic_prior'])
  assert_parity(texture_c, fx['output/texture_c'], name='texture_c')


@pytest.mark.parametrize('path', _with('output/loss_dsr_c'))
def test_dsr_losses_match_official(path):
  fx = Fixture(path)
  labels = {k: jnp.asarray(v)[None] for k, v in _labels(fx).items()}
  mc_prob, c_prob = method.split_official_render(fx['input/rendered'])
  niou = method.dsr_losses(mc_prob, c_prob, labels, loss_type='nIOU', niou='rowwise')
  assert_parity(niou['dsr_mc'], fx['output/loss_dsr_mc_nIOU'], name='loss_dsr_mc_nIOU')
  assert_parity(niou['dsr_c'], fx['output/loss_dsr_c'], name='loss_dsr_c')
  distm = method.dsr_losses(mc_prob, c_prob, labels, loss_type='DistM')
  assert_parity(distm['dsr_mc'], fx['output/loss_dsr_mc_DistM'], name='loss_dsr_mc_DistM')
  # The per-image IoU is a different number: the flag matters on this fixture.
  image = method.dsr_losses(mc_prob, c_prob, labels, niou='image')['dsr_mc']
  assert abs(float(image) - float(fx['output/loss_dsr_mc_nIOU'])) > 1e-3


@pytest.mark.parametrize('path', _with('output/loss_neg_iou_batched'))
def test_batched_neg_iou_fixture_value(path):
  pytest.skip(
    'output/loss_neg_iou_batched: the fixture does not store the inputs of this call (no '
    'combination of its stored arrays reproduces 0.6718); tested on constructed inputs in '
    'tests/methods/test_dsr.py'
  )
