"""Part segmentation of SMPL-format meshes from the skinning weights."""

import numpy as np
import pytest

from jaxpose.body import parts, synthetic
from jaxpose.body.smpl import SMPL_JOINT_NAMES


def test_joint_table_covers_every_part_and_mirrors():
  assert sorted(set(parts.JOINT_PART.tolist())) == list(range(1, len(parts.PARTS)))
  names = [parts.PARTS[p] for p in parts.JOINT_PART]
  assert names[16] == 'left_upper_arm' and names[5] == 'right_lower_leg' and names[12] == 'head'
  for jn, n in zip(SMPL_JOINT_NAMES, names):  # left joints -> left parts and vice versa
    if jn.startswith(('left_', 'right_')) and 'collar' not in jn:
      assert n.split('_')[0] == jn.split('_')[0], (jn, n)


def test_small_body_faces_get_the_part_of_their_bones():
  a = synthetic.synthetic_arrays('small')
  v, f = a['v_template'], np.asarray(a['f'], np.int64)
  fp = parts.face_parts(a['weights'], f)
  vp = parts.vertex_parts(a['weights'])
  assert fp.shape == (len(f),) and vp.shape == (len(v),)
  assert set(fp.tolist()) == set(range(1, len(parts.PARTS)))
  centre = v[f].mean(axis=1)
  idx = parts.PARTS.index
  # T-pose, y up, the body's left is +x: hands far out on their side, feet at the bottom, head on top.
  assert (centre[fp == idx('left_hand'), 0] > 0.6).all()
  assert (centre[fp == idx('right_hand'), 0] < -0.6).all()
  assert centre[fp == idx('head'), 1].min() > centre[fp == idx('torso'), 1].mean()
  assert centre[fp == idx('left_foot'), 1].max() < centre[fp == idx('left_lower_leg'), 1].mean()


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match=r'\(V, 24\)'):
    parts.vertex_parts(np.ones((5, 23)))
  with pytest.raises(ValueError, match='faces'):
    parts.face_parts(np.ones((5, 24)), np.array([[0, 1, 7]]))
