"""DeepMimic -> SMPL-format retargeting and the deepmimic_smpl records (the 'small' synthetic body)."""

import numpy as np
import pytest

from jaxpose.body import smpl
from jaxpose.body import synthetic as body_synthetic
from jaxpose.data import bodies, deepmimic, deepmimic_smpl, io
from jaxpose.geometry import camera

M = deepmimic_smpl.YUP_TO_ZUP
# Bones of the DeepMimic skeleton (y-up FK positions, `deepmimic.forward_kinematics`) that the
# driven SMPL bones must follow: (SMPL joint, SMPL child, DeepMimic joint, DeepMimic end point).
BONES = [(k, c, d, e) for k, (d, c, e) in deepmimic_smpl.DRIVEN.items() if k != 0]


@pytest.fixture(scope='module')
def small_rest():
  """The 'small' body's rest joints with the fitted shape, and the shape."""
  arrays = body_synthetic.synthetic_arrays('small')
  reg = body_synthetic.synthetic_regressors('small')['J_regressor_h36m']
  betas = deepmimic_smpl.fit_betas(arrays, reg)
  shaped = arrays['v_template'] + arrays['shapedirs'] @ betas
  return arrays['J_regressor'] @ shaped, betas, reg @ shaped


@pytest.fixture(scope='module')
def clips():
  pose = deepmimic.resample([deepmimic.read_clip(deepmimic.clip_path(c)) for c in deepmimic.CLIPS])
  return pose, deepmimic.forward_kinematics(pose)


@pytest.fixture(scope='module')
def retargeted():
  """Every clip on the 'small' body (about 5 s)."""
  return deepmimic_smpl.retarget_clips(deepmimic.CLIPS, 'small')


def _angle_deg(a, b):
  u = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  return np.degrees(np.arccos(np.clip(np.sum(u(a) * u(b), -1), -1, 1)))


def test_driven_bones_follow_deepmimic_on_every_clip(small_rest, clips):
  """SMPL FK bones point along DeepMimic's FK bones (z-up) on all 1,684 frames."""
  rest, _, _ = small_rest
  pose, pos = clips
  dm_rot = deepmimic_smpl.dm_world_rotations(pose)
  rot = deepmimic_smpl.retarget_rotations(dm_rot, deepmimic_smpl.rest_alignment(rest))
  joints = bodies.forward_kinematics(rot, rest)[0]
  ends = dict(pos)
  _, head = deepmimic.urdf_offsets()
  right_foot, left_foot = deepmimic_smpl._ankle_box_centre()
  ends['right_foot'] = pos['right_ankle'] + np.einsum(
    'tij,j->ti', dm_rot['right_ankle'], right_foot
  )
  ends['left_foot'] = pos['left_ankle'] + np.einsum('tij,j->ti', dm_rot['left_ankle'], left_foot)
  worst = {}
  for k, c, d, e in BONES:
    dm_bone = (ends[e] - pos[d]) @ M.T
    worst[d, e] = _angle_deg(joints[:, c] - joints[:, k], dm_bone).max()
  print('max driven-bone angle (deg):', max(worst.values()))
  assert max(worst.values()) < 1e-3, worst
  # The three spine joints share the pelvis -> spine3 rotation equally.
  np.testing.assert_allclose(rot[:, 3], rot[:, 6], atol=1e-9)
  np.testing.assert_allclose(rot[:, 6], rot[:, 9], atol=1e-9)
  for k in (10, 11, 13, 14, 15, 20, 21, 22, 23):
    np.testing.assert_allclose(rot[:, k], np.broadcast_to(np.eye(3), rot[:, k].shape), atol=1e-12)


def test_rest_pose_stands_arms_down_facing_deepmimic_forward(small_rest):
  """DeepMimic's rest pose (all rotations identity) gives the SMPL body standing, arms down,
  facing DeepMimic's forward (+x in y-up, also +x in H36M z-up)."""
  rest, _, _ = small_rest
  eye = np.eye(3)[None]
  dm_rot = {'root': eye}
  for name in deepmimic.urdf_offsets()[0]:
    dm_rot[name] = eye
  rot = deepmimic_smpl.retarget_rotations(dm_rot, deepmimic_smpl.rest_alignment(rest))
  np.testing.assert_allclose(rot[0, 0] @ [0, 0, 1.0], [1, 0, 0], atol=0.05)  # SMPL forward +z
  j = bodies.forward_kinematics(rot, rest)[0][0]
  assert j[15, 2] > j[12, 2] > j[0, 2] > j[4, 2] > j[7, 2]  # head > neck > pelvis > knee > ankle
  for shoulder, wrist in ((16, 20), (17, 21)):
    drop = j[shoulder, 2] - j[wrist, 2]
    assert drop > 0.9 * np.linalg.norm(j[wrist] - j[shoulder]), (shoulder, drop)
  assert j[1, 1] > j[2, 1]  # SMPL's left hip on the body's left: +y when facing +x (z up)


def test_fitted_shape_matches_deepmimic_limbs(small_rest):
  """Bone lengths of research/real_data.md: thigh 0.422 m, shin 0.410 m, upper arm 0.275 m."""
  _, betas, h36m = small_rest
  length = lambda a, b: np.linalg.norm(h36m[a] - h36m[b])
  for (a, b), target in {(1, 2): 0.422, (4, 5): 0.422, (2, 3): 0.410, (14, 15): 0.275}.items():
    assert abs(length(a, b) - target) < 0.01, ((a, b), length(a, b))
  assert np.abs(betas).max() < 4


def test_mesh_joints_follow_deepmimic_on_every_clip(retargeted):
  """The mesh-regressed H36M-17 vs DeepMimic's FK H36M-17: pelvis exact (transl), the rest a few
  cm apart (different joint definitions, skinning)."""
  assert set(retargeted) == set(deepmimic.CLIPS)
  fk = deepmimic.clips_h36m17()
  for clip, ret in retargeted.items():
    e = deepmimic_smpl.retarget_errors(ret)
    print(clip, {k: round(v, 1) for k, v in e.items()})
    np.testing.assert_allclose(ret.joints_mesh[:, 0], ret.joints_fk[:, 0], atol=1e-5)
    np.testing.assert_allclose(ret.joints_fk, fk[clip], atol=1e-5)
    assert e['pa_mpjpe_mm'] < 40 and e['mpjpe_body_mm'] < 40, (clip, e)
    assert e['bone_angle_body_deg'] < 6, (clip, e)
    # FK joints of the body carry the same transl: its pelvis is above the regressed one.
    assert np.all(ret.joints_smpl[:, 0] != ret.joints_mesh[:, 0])


def test_camera_sequence_is_consistent(retargeted):
  """Camera-frame body params reproduce the record's pose3d through the body model, and the 2D is
  its projection; pose3d_fk_cam is the `deepmimic` dataset's 3D."""
  ret = retargeted['walk']
  cam = deepmimic.cameras()[1]
  seq = deepmimic_smpl.camera_sequence(ret, cam)
  model = body_synthetic.synthetic_model('small')
  reg = body_synthetic.synthetic_regressors('small')['J_regressor_h36m']
  verts = np.asarray(
    smpl.forward(model, seq['body_rotmat'], seq['body_betas'], seq['body_transl']).vertices
  )
  np.testing.assert_allclose(reg @ verts, seq['pose3d_cam'], atol=2e-4)
  ref3d, ref2d = deepmimic.project(deepmimic.clip_h36m17('walk'), cam)
  np.testing.assert_allclose(seq['pose3d_fk_cam'], ref3d, atol=1e-5)
  uv = camera.project_to_2d(seq['pose3d_cam'].astype(np.float64), cam['intrinsic'])
  px = camera.image_coordinates(uv, cam['res_w'], cam['res_h'])
  np.testing.assert_allclose(seq['kp2d_px'], px, atol=1e-2)
  assert np.abs(seq['kp2d_px'] - ref2d).max() < 60  # a few cm at 3-7 m: tens of pixels at most
  assert seq['has_smpl'].all() and seq['body_betas'].shape == (10,)


def test_builder_records_subset():
  from tfds_builders.deepmimic_smpl.deepmimic_smpl_dataset_builder import read_sequences

  out = read_sequences(('walk', 'run'), 'small')
  assert [len(out['train']), len(out['test'])] == [4, 4]
  key, rec = out['test'][0]
  assert key == 'DM/walk/54138969' and rec['action'] == 'walk' and rec['subject'] == 'DM'
  t = rec['num_frames']
  shapes = {
    'kp2d_px': (t, 17, 2),
    'pose3d_cam': (t, 17, 3),
    'pose3d_fk_cam': (t, 17, 3),
    'body_rotmat': (t, 24, 3, 3),
    'body_betas': (10,),
    'body_transl': (t, 3),
    'has_smpl': (t,),
  }
  assert {k: rec[k].shape for k in shapes} == shapes
  assert rec['body_rotmat'].dtype == np.float32 and rec['has_smpl'].dtype == bool


def test_body_arrays_reject_non_rotations():
  from tfds_builders._common import body_arrays

  rot = np.tile(np.eye(3, dtype=np.float32), (3, 24, 1, 1))
  rot[1, 5, 0, 0] = 2.0
  with pytest.raises(io.DataFormatError, match=r'x\.pkl: seq \(body_rotmat\): expected rotation'):
    body_arrays(file='x.pkl', key='seq', rotmat=rot, betas=np.zeros(10), transl=np.zeros((3, 3)))
  with pytest.raises(io.DataFormatError, match=r'body_betas.*expected shape \(10\)'):
    body_arrays(
      file='x.pkl',
      key='seq',
      rotmat=rot[:1] * 0 + np.eye(3),
      betas=np.zeros(9),
      transl=np.zeros((1, 3)),
    )


@pytest.mark.slow
def test_full_build(tmp_path):
  """The TFDS build with the 'full' body (about 30 s on 2 cores): counts and split as deepmimic."""
  import tensorflow_datasets as tfds

  from jaxpose.data import build, sources

  build.build('deepmimic_smpl', data_dir=tmp_path)
  info = build.get_builder('deepmimic_smpl', None, tmp_path).info
  assert info.metadata['body_model'] == 'synthetic:full'
  test = [
    sources._decode(r)
    for r in tfds.data_source('deepmimic_smpl/gt', split='test', data_dir=str(tmp_path))
  ]
  assert len(test) == 12 and sum(r['num_frames'] for r in test) == 4 * 307
  assert {r['action'] for r in test} == set(deepmimic.TEST_CLIPS)
  assert info.splits['train'].num_examples == 48
