"""EpipolarPose parity with the official integral head, decoding, loss and patch labels.

Fixtures (research/epipolarpose.md §8): `epipolarpose__integral_head.npz` holds a tiny official
`_make_deconv_layer` head + final conv (state dict, key prefixes described by
meta['state_dict_prefix']), features, the output volume, `softmax_integral_tensor`,
`get_joint_location_result` and `SmoothL1JointLocationLoss`; `epipolarpose__geometry.npz` part
(C) holds `get_batch_labels_from_global_coords` labels of the iterative-LS triangulation for two
views with (scale, rot) augmentation. Everything is built from the fixture's meta and arrays.
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.methods import epipolarpose as method
from jaxpose.models import epipolarpose
from jaxpose.models.layers.integral import softmax_integral_3d
from tests.parity._fixtures import Fixture, assert_parity, fixture_files


def _with(key):
  params = fixture_files('epipolarpose')
  if params[0].values[0] is None:
    return params
  keep = []
  for p in params:
    with np.load(p.values[0]) as z:
      if key in z.files:
        keep.append(p)
  return keep or [pytest.param(None, marks=pytest.mark.skip(reason=f'no fixture with {key}'))]


def _official_names(fx):
  """Maps the fixture's Sequential indices to the official PoseResNet names using the meta."""
  desc = fx.meta['state_dict_prefix']  # e.g. '0.=deconv Sequential, 1.=final conv'
  deconv = re.search(r'(\S+)=deconv', desc).group(1)
  final = re.search(r'(\S+)=final', desc).group(1)
  out = {}
  for k, v in fx.params.items():
    if k.startswith(deconv):
      out['deconv_layers.' + k[len(deconv) :]] = v
    elif k.startswith(final):
      out['final_layer.' + k[len(final) :]] = v
    else:
      raise KeyError(f'{fx.path}: param/{k} matches neither {deconv!r} nor {final!r}')
  return out


@pytest.mark.parametrize('path', _with('output/volume'))
def test_integral_head_matches_official(path):
  fx = Fixture(path)
  feats = fx['input/features'].transpose(0, 2, 3, 1)  # NCHW -> NHWC
  j, d = fx.meta['num_joints'], fx.meta['depth_res']
  head, variables = epipolarpose.head_from_torch(
    _official_names(fx), feats.shape[-1], num_joints=j, depth_res=d
  )
  logits = head.apply(variables, jnp.asarray(feats), train=False)
  b = feats.shape[0]
  assert_parity(logits.reshape(b, j * d, *logits.shape[-2:]), fx['output/volume'], name='volume')

  pose_norm = softmax_integral_3d(logits)
  assert_parity(pose_norm.reshape(b, -1), fx['output/joints_norm'], name='joints_norm')

  # get_joint_location_result(patch_width, patch_height, volume): its 4th column is a score of 1.
  patch = fx['output/joints_patch']
  assert np.all(patch[..., 3] == 1.0)
  # The patch size is an argument of that call, recorded in the meta ("maps x,y to <n> px"). It
  # assumes hm_depth = hm_width and re-splits the J*D channels by W: the same as pose_norm when
  # D = W (public fixture), the official reading otherwise.
  side = fx.setting('patch_size', r'maps x,y to (\d+) px')
  w = logits.shape[-1]
  official_split = logits.reshape(b, j * d // w, w, *logits.shape[-2:])
  decoded = method.decode_patch(softmax_integral_3d(official_split), side)
  assert_parity(decoded, patch[..., :3], name='joints_patch')

  label = fx['input/gt_label'].reshape(b, j, 3)
  weight = fx['input/label_weight'].reshape(b, j, 3)
  assert np.any(weight == 0), 'the fixture zeroes one weight so that masking is tested'
  loss = method.joint_location_loss(pose_norm, label, weight)
  assert_parity(loss, fx['output/loss'], name='loss')


@pytest.mark.parametrize('path', _with('output/patch_labels'))
def test_patch_labels_match_official(path):
  fx = Fixture(path)
  views = (fx['input/cam1_R'], fx['input/cam2_R'])
  centres = (fx['input/cam1_T'], fx['input/cam2_T'])
  n = len(fx['input/label_scale'])
  assert n == len(views)
  labels, weights = method.patch_labels_from_world(
    fx['output/X_iterative_LS'],  # self_supervision() labels the iterative-LS triangulation
    np.stack(views),
    np.stack(centres),
    np.stack([fx['input/K']] * n),
    np.stack([fx['input/label_center_x'], fx['input/label_center_y']], -1),
    np.stack([fx['input/label_width'], fx['input/label_height']], -1),
    fx['input/label_scale'],
    fx['input/label_rot'],
  )
  assert_parity(labels.reshape(n, -1), fx['output/patch_labels'], name='patch_labels')
  assert_parity(weights.reshape(n, -1), fx['output/patch_label_weights'], name='weights')
