"""3DPW 1.1.0: SMPL parameters of the official pickles, in the camera frame."""

import pickle
import re

import numpy as np
import pytest

from jaxpose.body import synthetic as body_synthetic
from jaxpose.data import bodies, build, io, synthetic


def test_body_reproduces_camera_frame_joints(built, manual_dir):
  """FK of (body_rotmat, body_transl) on the writer's rest skeleton = pose3d_cam, every frame:
  the moving phone camera is applied to the orientation and to the translation about J_0."""
  data = built('pw3d')
  rest = body_synthetic.rest_joints()
  for recs in data.values():
    for rec in recs:
      t = rec['num_frames']
      assert rec['body_rotmat'].shape == (t, 24, 3, 3) and rec['body_transl'].shape == (t, 3)
      assert rec['has_smpl'].all() and rec['has_smpl'].shape == (t,)
      joints = bodies.forward_kinematics(rec['body_rotmat'], rest)[0]
      joints += rec['body_transl'][:, None]
      np.testing.assert_allclose(joints, rec['pose3d_cam'], atol=2e-5)
  with open(manual_dir / 'sequenceFiles/test/outdoors_fencing_01.pkl', 'rb') as f:
    raw = pickle.load(f, encoding='latin1')
  actors = sorted(
    (r for r in data['test'] if r['action'] == 'outdoors_fencing_01'), key=lambda r: r['subject']
  )
  assert [r['body_gender'] for r in actors] == ['male', 'female']
  for a, rec in enumerate(actors):
    np.testing.assert_allclose(rec['body_betas'], raw['betas'][a][:10], atol=1e-6)
    local = bodies.axis_angle_to_rotmat(raw['poses'][a].reshape(-1, 24, 3))[:, 1:]
    np.testing.assert_allclose(rec['body_rotmat'][:, 1:], local, atol=1e-6)
    cam_r = raw['cam_poses'][:, :3, :3]
    glob = cam_r @ bodies.axis_angle_to_rotmat(raw['poses'][a][:, :3])
    np.testing.assert_allclose(rec['body_rotmat'][:, 0], glob, atol=1e-6)


def test_version_and_metadata(built, data_dir):
  built('pw3d')
  b = build.get_builder('pw3d', None, data_dir)
  assert str(b.info.version) == '1.1.0'
  assert b.info.metadata['body_model'].startswith('smpl')


@pytest.mark.parametrize(
  'defect,key,expected',
  [
    ('poses', r"\['poses'\]\[1\]", r'shape \(\d+, 72\)'),
    ('betas', r"\['betas'\]\[1\]", r'at least 10 values, got 9'),
    ('trans', r"\['trans'\]\[1\]", r'NaN/inf'),
  ],
)
def test_bad_body_parameters_name_file_key_expected(tmp_path, defect, key, expected):
  synthetic.write_3dpw(tmp_path / 'manual', defect=defect)
  with pytest.raises(io.DataFormatError) as err:
    build.build('pw3d', None, tmp_path / 'manual', tmp_path / 'data')
  msg = str(err.value)
  assert 'outdoors_fencing_01.pkl' in msg and re.search(key, msg), msg
  assert re.search(expected, msg) and 'expected' in msg and 'got' in msg, msg
  assert not build.is_built('pw3d', None, tmp_path / 'data')
